//! The PROXY protocol against the real binary: `accept_proxy` (v1, v2, split headers,
//! malformed and missing ones, LOCAL, WebSocket upgrades) and `serverN_send_proxy`
//! seen by a raw backend.

mod util;

use protocol::proxy::{self, Accept, Addresses, Parsed};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use util::*;

const V1: &[u8] = b"PROXY TCP4 203.0.113.9 10.0.0.1 51000 80\r\n";

/// A v2 PROXY header for a TCP4 client `src` (to 10.0.0.1:80).
fn v2(src: &str) -> Vec<u8> {
    let src: SocketAddr = src.parse().unwrap();
    let SocketAddr::V4(src) = src else { panic!() };
    let dst = "10.0.0.1:80".parse().unwrap();
    let mut out = Vec::new();
    proxy::write_v2(false, &Addresses::Tcp4 { src, dst }, &mut out);
    out
}

fn start(accept: &str, backend: SocketAddr) -> ProxyProcess {
    let ini = format!(
        "[frontend]\nhost=127.0.0.1\nport={{port}}\naccept_proxy={accept}\nrequest_header_timeout=2s\n\n[http]\nserver1_addr={backend}\n\n[log]\nlevel=info\naccess_log=true\n"
    );
    ProxyProcess::start_raw(&ini).0
}

/// Sends `pieces` as separate writes (a pause between them so each is its own
/// segment) and reads the response.
fn send_split(addr: SocketAddr, pieces: &[&[u8]]) -> Option<Response> {
    let mut c = Client::connect(addr);
    for (n, p) in pieces.iter().enumerate() {
        if n > 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
        c.send(p);
    }
    c.read_response(false)
}

fn xff_of_last(b: &Backend) -> String {
    let seen = b.requests();
    let last = seen.last().expect("a request reached the backend");
    last.header("x-forwarded-for").unwrap_or("").to_string()
}

#[test]
fn v1_header_gives_the_client_address_to_x_forwarded_for_and_the_access_log() {
    let b = Backend::hello("a");
    let p = start("v1", b.addr);
    let mut req = V1.to_vec();
    req.extend_from_slice(b"GET /v1 HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = send_split(p.addr, &[&req]).expect("a response");
    assert_eq!(r.status, 200);
    assert_eq!(xff_of_last(&b), "203.0.113.9");
    assert!(
        wait_until(|| p.stderr().contains("203.0.113.9 \"GET /v1\" 200")),
        "{}",
        p.stderr()
    );
    // Split anywhere, even byte by byte across the signature, it is the same.
    let mut req = V1.to_vec();
    req.extend_from_slice(b"GET /split HTTP/1.1\r\nHost: t\r\n\r\n");
    let pieces: Vec<&[u8]> = vec![&req[..1], &req[1..9], &req[9..30], &req[30..50], &req[50..]];
    assert_eq!(send_split(p.addr, &pieces).expect("a response").status, 200);
    assert_eq!(xff_of_last(&b), "203.0.113.9");
}

#[test]
fn v2_header_split_across_writes_and_local_keeps_the_socket_address() {
    let b = Backend::hello("a");
    let p = start("v2", b.addr);
    let mut req = v2("198.51.100.4:40000");
    req.extend_from_slice(b"GET /v2 HTTP/1.1\r\nHost: t\r\n\r\n");
    let pieces: Vec<&[u8]> = vec![
        &req[..3],
        &req[3..13],
        &req[13..17],
        &req[17..29],
        &req[29..],
    ];
    assert_eq!(send_split(p.addr, &pieces).expect("a response").status, 200);
    assert_eq!(xff_of_last(&b), "198.51.100.4");
    assert!(
        wait_until(|| p.stderr().contains("198.51.100.4 \"GET /v2\" 200")),
        "{}",
        p.stderr()
    );
    // A keep-alive second request on the same connection keeps that address.
    let mut c = Client::connect(p.addr);
    c.send(&v2("198.51.100.5:40001"));
    assert_eq!(c.get("/a").status, 200);
    assert_eq!(c.get("/b").status, 200);
    assert_eq!(xff_of_last(&b), "198.51.100.5");
    // LOCAL (a health check from the load balancer): the socket's address stays.
    let mut local = Vec::new();
    proxy::write_v2(true, &Addresses::Unknown, &mut local);
    local.extend_from_slice(b"GET /local HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(
        send_split(p.addr, &[&local]).expect("a response").status,
        200
    );
    assert_eq!(xff_of_last(&b), "127.0.0.1");
}

#[track_caller]
fn refused(p: &ProxyProcess, bytes: &[u8], log: &str) {
    let mut c = Client::connect(p.addr);
    c.send(bytes);
    assert!(c.read_rest().is_empty(), "closed without an HTTP answer");
    assert!(
        wait_until(|| p.stderr().contains(log)),
        "{log}:\n{}",
        p.stderr()
    );
}

#[test]
fn a_missing_or_malformed_header_closes_the_connection_unanswered() {
    let b = Backend::hello("a");
    let p = start("v1", b.addr);
    refused(
        &p,
        b"GET / HTTP/1.1\r\nHost: t\r\n\r\n",
        "invalid PROXY protocol header (no PROXY protocol signature), closing",
    );
    refused(
        &p,
        b"PROXY TCP4 203.0.113.256 10.0.0.1 51000 80\r\nGET / HTTP/1.1\r\n\r\n",
        "invalid PROXY protocol header (PROXY v1 address malformed)",
    );
    // v2 where only v1 is accepted.
    let mut req = v2("198.51.100.4:40000");
    req.extend_from_slice(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    let before = p.stderr().matches("no PROXY protocol signature").count();
    let mut c = Client::connect(p.addr);
    c.send(&req);
    assert!(c.read_rest().is_empty());
    assert!(wait_until(|| p
        .stderr()
        .matches("no PROXY protocol signature")
        .count()
        > before));
    // Half a header, then nothing: closed at request_header_timeout (2 s).
    refused(&p, &V1[..20], "no PROXY protocol header within 2s, closing");
    assert_eq!(b.count(), 0, "nothing reached the backend");
}

/// What the raw backend saw: a request, on which connection, after which header.
#[derive(Clone, Debug)]
struct Seen {
    conn: usize,
    src: Option<SocketAddr>,
    local: bool,
    head: String,
}

#[test]
fn websocket_upgrade_after_a_proxy_header_and_send_proxy_toward_the_server() {
    // A raw backend that expects a v2 header first: health checks (LOCAL) get 200,
    // upgrades get 101, requests get 200; it records each connection's source.
    let seen: Arc<Mutex<Vec<Seen>>> = Default::default();
    let log = seen.clone();
    let backend = RawBackend::start(move |mut s, conn, stop| {
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut buf = Vec::new();
        let (header, consumed) = loop {
            let mut b = [0u8; 1];
            match s.read(&mut b) {
                Ok(1) => buf.push(b[0]),
                Ok(_) => return,
                Err(_) if stop.load(std::sync::atomic::Ordering::SeqCst) => return,
                Err(_) => continue,
            }
            match proxy::parse(&buf, Accept::V2) {
                Ok(Parsed::Partial) => {}
                Ok(Parsed::Done { header, consumed }) => break (header, consumed),
                Err(e) => panic!("bad PROXY header from sluice: {e}"),
            }
        };
        assert_eq!(consumed, buf.len());
        while let Some(head) = read_head_raw(&mut s, stop) {
            let target = head.split(' ').nth(1).unwrap_or("").to_string();
            log.lock().unwrap().push(Seen {
                conn,
                src: header.addrs.source(),
                local: header.local,
                head: head.clone(),
            });
            if head_value(&head, "upgrade").is_some() {
                let key = head_value(&head, "sec-websocket-key").unwrap_or("");
                let accept = protocol::ws::accept_key(key.as_bytes());
                let accept = String::from_utf8_lossy(&accept);
                let _ = write!(s, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n");
                discard_until_closed(&mut s, stop);
                return;
            }
            let body = if target == "/healthCheck" {
                "{\"status\":\"200\"}"
            } else {
                "hi"
            };
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let ini = format!(
        "[frontend]\nhost=127.0.0.1\nport={{port}}\naccept_proxy=any\n\n[http]\nserver1_addr={b}\nserver1_send_proxy=v2\nenable_health_check=true\nhealth_check_interval=300ms\n\n[websocket]\nserver1={b}\nserver1_send_proxy=v2\n\n[log]\nlevel=info\naccess_log=false\n",
        b = backend.addr
    );
    let (p, _) = ProxyProcess::start_raw(&ini);
    let client: SocketAddr = "203.0.113.9:51000".parse().unwrap();

    // Two requests on one client connection: two private backend connections, each
    // starting with a header naming that client.
    let mut c = Client::connect(p.addr);
    c.send(V1);
    assert_eq!(c.get("/one").text(), "hi");
    assert_eq!(c.get("/two").text(), "hi");
    // A WebSocket upgrade after a v2 header.
    let mut ws = TcpStream::connect(p.addr).unwrap();
    ws.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    ws.write_all(&v2("198.51.100.4:40000")).unwrap();
    write!(ws, "GET /chat HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").unwrap();
    let mut head = [0u8; 12];
    ws.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 101");

    assert!(
        wait_until(|| seen.lock().unwrap().iter().any(|s| s.local)),
        "a LOCAL health check"
    );
    let seen = seen.lock().unwrap().clone();
    let of = |target: &str| {
        seen.iter()
            .find(|s| s.head.starts_with(&format!("GET {target} ")))
            .unwrap_or_else(|| panic!("{target} not seen: {seen:?}"))
            .clone()
    };
    let (one, two, chat) = (of("/one"), of("/two"), of("/chat"));
    assert_eq!((one.src, one.local), (Some(client), false));
    assert_eq!((two.src, two.local), (Some(client), false));
    assert_ne!(one.conn, two.conn, "a private connection per request");
    assert_eq!(
        head_value(&one.head, "x-forwarded-for"),
        Some("203.0.113.9")
    );
    assert_eq!(chat.src, Some("198.51.100.4:40000".parse().unwrap()));
    assert_eq!(
        head_value(&chat.head, "x-forwarded-for"),
        Some("198.51.100.4")
    );
    let health = seen.iter().find(|s| s.local).unwrap();
    assert_eq!(health.src, None, "LOCAL carries no address");
    assert!(health.head.starts_with("GET /healthCheck "));
}

/// `max_connections_per_client` counts the address from the PROXY header, not the
/// load balancer's socket address that every connection shares.
#[test]
fn per_client_limits_count_the_proxy_address() {
    let b = Backend::hello("a");
    let ini = format!(
        "[frontend]\nhost=127.0.0.1\nport={{port}}\naccept_proxy=v2\nmax_connections_per_client=1\n\n[http]\nserver1_addr={}\n",
        b.addr
    );
    let p = ProxyProcess::start_raw(&ini).0;
    let get = |c: &mut Client, src: &str| {
        let mut req = v2(src);
        req.extend_from_slice(b"GET /limit HTTP/1.1\r\nHost: t\r\n\r\n");
        c.send(&req);
        c.read_response(false).expect("a response").status
    };
    // One client holds its one connection open (keep-alive).
    let mut first = Client::connect(p.addr);
    assert_eq!(get(&mut first, "198.51.100.7:40000"), 200);
    // The same client address again, through the same balancer: over its limit.
    let mut again = Client::connect(p.addr);
    assert_eq!(get(&mut again, "198.51.100.7:40001"), 429);
    // Another client behind the same balancer is not affected.
    let mut other = Client::connect(p.addr);
    assert_eq!(get(&mut other, "198.51.100.8:40000"), 200);
    drop(first);
}
