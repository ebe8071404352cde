//! A DNS server for the tests: UDP and TCP on one 127.0.0.1 port, answers and TTLs
//! scripted by the test, and faults: drop, delay, truncate (TC over UDP, the full
//! answer over TCP), SERVFAIL, NXDOMAIN, and spoofs (a wrong-ID answer and an answer
//! from another port, both with a decoy address, sent before the real one).
#![allow(dead_code)]

use protocol::dns::{
    rcode, read_name, write_response, Header, Name, Question, RData, Record, RecordType, CLASS_IN,
};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the server does with a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    Drop,
    Delay(Duration),
    /// UDP answers carry TC and no records; TCP answers in full.
    Truncate,
    Servfail,
    Nxdomain,
    /// A wrong-ID answer and one from another port (decoy data) before the real one.
    Spoof,
}

/// One query the server saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub name: String,
    pub qtype: RecordType,
    pub tcp: bool,
}

#[derive(Default)]
struct State {
    records: HashMap<(String, u16), (u32, Vec<RData>)>,
    fault: Option<Fault>,
    decoy: Vec<RData>,
    seen: Vec<Seen>,
}

pub struct DnsServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

pub fn a(ip: [u8; 4]) -> RData {
    RData::A(Ipv4Addr::from(ip))
}

pub fn aaaa(ip: &str) -> RData {
    RData::Aaaa(ip.parse::<Ipv6Addr>().unwrap())
}

pub fn srv(priority: u16, weight: u16, port: u16, target: &str) -> RData {
    RData::Srv {
        priority,
        weight,
        port,
        target: Name::from_dotted(target).unwrap(),
    }
}

impl DnsServer {
    pub fn start() -> DnsServer {
        // UDP and TCP on the same port: retry until the TCP side is free too.
        let (udp, tcp) = (0..50)
            .find_map(|_| {
                let udp = UdpSocket::bind("127.0.0.1:0").ok()?;
                let tcp = TcpListener::bind(udp.local_addr().ok()?).ok()?;
                Some((udp, tcp))
            })
            .expect("a free port for UDP and TCP");
        let addr = udp.local_addr().unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        tcp.set_nonblocking(true).unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s1, st1) = (state.clone(), stop.clone());
        let udp_thread = std::thread::spawn(move || serve_udp(udp, s1, st1));
        let (s2, st2) = (state.clone(), stop.clone());
        let tcp_thread = std::thread::spawn(move || serve_tcp(tcp, s2, st2));
        DnsServer {
            addr,
            state,
            stop,
            threads: vec![udp_thread, tcp_thread],
        }
    }

    /// Answers `name` with `data` and `ttl` for the type of `data` (A, AAAA or SRV);
    /// another type of a known name is NODATA.
    pub fn set(&self, name: &str, ttl: u32, data: Vec<RData>) {
        let qtype = match data.first() {
            Some(RData::Srv { .. }) => RecordType::Srv,
            Some(RData::Aaaa(_)) => RecordType::Aaaa,
            _ => RecordType::A,
        };
        let key = (name.to_ascii_lowercase(), qtype.as_u16());
        self.state.lock().unwrap().records.insert(key, (ttl, data));
    }

    /// Forgets `name` (NXDOMAIN from now on).
    pub fn remove(&self, name: &str) {
        let name = name.to_ascii_lowercase();
        self.state
            .lock()
            .unwrap()
            .records
            .retain(|k, _| k.0 != name);
    }

    pub fn fault(&self, fault: Fault) {
        self.state.lock().unwrap().fault = Some(fault);
    }

    /// The data spoofed answers carry.
    pub fn decoy(&self, data: Vec<RData>) {
        self.state.lock().unwrap().decoy = data;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// Queries seen for `name` and `qtype` (any transport).
    pub fn count_type(&self, name: &str, qtype: RecordType) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.qtype == qtype && s.name.eq_ignore_ascii_case(name))
            .count()
    }

    /// Queries seen for `name` (any type, any transport).
    pub fn count(&self, name: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.name.eq_ignore_ascii_case(name))
            .count()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The ID, question name and type of a query.
fn question(query: &[u8]) -> Option<(u16, Name, RecordType)> {
    let id = u16::from_be_bytes([*query.first()?, *query.get(1)?]);
    let (name, end) = read_name(query, 12).ok()?;
    let qtype = u16::from_be_bytes([*query.get(end)?, *query.get(end + 1)?]);
    Some((id, name, RecordType::from_u16(qtype)))
}

/// The answer to `query`, or None to stay silent.
fn answer(
    state: &Mutex<State>,
    query: &[u8],
    tcp: bool,
    id_xor: u16,
    decoy: bool,
) -> Option<Vec<u8>> {
    let (id, name, qtype) = question(query)?;
    let st = state.lock().unwrap();
    let fault = st.fault.unwrap_or(Fault::None);
    let key = (
        name.to_string().trim_end_matches('.').to_ascii_lowercase(),
        qtype.as_u16(),
    );
    let found = st.records.get(&key).cloned();
    let known = st.records.keys().any(|k| k.0 == key.0);
    let decoy_data = st.decoy.clone();
    drop(st);
    let mut header = Header {
        id: id ^ id_xor,
        qr: true,
        rd: true,
        ra: true,
        ..Header::default()
    };
    let (ttl, mut data) = found.unwrap_or((0, Vec::new()));
    if decoy {
        data = decoy_data;
    }
    match fault {
        Fault::Servfail => header.rcode = rcode::SERVFAIL,
        Fault::Nxdomain => header.rcode = rcode::NXDOMAIN,
        Fault::Truncate if !tcp => {
            header.tc = true;
            data.clear();
        }
        _ if !known && !decoy => header.rcode = rcode::NXDOMAIN,
        _ => {}
    }
    let q = Question {
        name: name.clone(),
        qtype,
        qclass: CLASS_IN,
    };
    let records: Vec<Record> = data
        .into_iter()
        .map(|d| Record::new(name.clone(), ttl, d))
        .collect();
    let mut out = Vec::new();
    write_response(&header, Some(&q), &records, &[], &[], &mut out).ok()?;
    Some(out)
}

fn record(state: &Mutex<State>, query: &[u8], tcp: bool) -> Fault {
    let mut st = state.lock().unwrap();
    if let Some((_, name, qtype)) = question(query) {
        let name = name.to_string().trim_end_matches('.').to_string();
        st.seen.push(Seen { name, qtype, tcp });
    }
    st.fault.unwrap_or(Fault::None)
}

fn serve_udp(sock: UdpSocket, state: Arc<Mutex<State>>, stop: Arc<AtomicBool>) {
    let other = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut buf = [0u8; 1500];
    while !stop.load(Ordering::SeqCst) {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let query = &buf[..n];
        match record(&state, query, false) {
            Fault::Drop => continue,
            Fault::Delay(d) => std::thread::sleep(d),
            Fault::Spoof => {
                if let Some(bad) = answer(&state, query, false, 0x5a5a, true) {
                    let _ = sock.send_to(&bad, from);
                }
                if let Some(bad) = answer(&state, query, false, 0, true) {
                    let _ = other.send_to(&bad, from);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {}
        }
        if let Some(out) = answer(&state, query, false, 0, false) {
            let _ = sock.send_to(&out, from);
        }
    }
}

fn serve_tcp(listener: TcpListener, state: Arc<Mutex<State>>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        let Ok((mut conn, _)) = listener.accept() else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let _ = conn.set_nonblocking(false);
        let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
        let mut len = [0u8; 2];
        if conn.read_exact(&mut len).is_err() {
            continue;
        }
        let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if conn.read_exact(&mut query).is_err() {
            continue;
        }
        if record(&state, &query, true) == Fault::Drop {
            continue;
        }
        if let Some(out) = answer(&state, &query, true, 0, false) {
            let mut framed = (out.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&out);
            let _ = conn.write_all(&framed);
        }
    }
}
