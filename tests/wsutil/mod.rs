//! WebSocket peers for the end-to-end tests: a tungstenite echo backend with a few
//! scripted commands, a raw backend that answers the handshake and hands the socket to
//! the test, tungstenite clients, and raw frame helpers for what tungstenite will not
//! send (fragments, RSV1, protocol violations). Every socket has a read timeout and
//! every loop is bounded in count and time.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Error, Message, WebSocket};

use crate::util::Failures;

/// Bound for any single wait on a peer.
pub const WAIT: Duration = Duration::from_secs(10);
/// Longest a backend connection thread lives.
const CONN_LIFETIME: Duration = Duration::from_secs(120);
/// Stack of a peer thread (thousands of them run in the scale tests).
const STACK: usize = 256 * 1024;
/// A fixed client key (RFC 6455 §1.3's example).
pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// tungstenite settings for every peer: small read buffers (thousands of peers), the
/// default 64 MiB message limit.
pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

/// The `[websocket]` section pointing at `{b0}` with extra keys.
pub fn ws_ini(extra: &str) -> String {
    format!("[websocket]\nserver1={{b0}}\n{extra}\n")
}

/// Something a backend connection saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    /// A Close frame arrived: code and reason (None: empty payload).
    Close(usize, Option<(u16, String)>),
    /// A Ping arrived with this payload (tungstenite answers it).
    Ping(usize, Vec<u8>),
    /// A Pong arrived with this payload.
    Pong(usize, Vec<u8>),
    /// The connection ended (EOF, error or close handshake done).
    Ended(usize),
}

/// An upgrade request as the backend saw it: target and header lines, in order.
pub type SeenUpgrade = (String, Vec<(String, String)>);

/// What the echo backend records.
#[derive(Default)]
pub struct Shared {
    /// Upgrade requests: target and header lines, in order.
    pub requests: Mutex<Vec<SeenUpgrade>>,
    pub events: Mutex<Vec<Ev>>,
    pub accepted: AtomicUsize,
    pub open: AtomicUsize,
    stop: AtomicBool,
}

impl Shared {
    pub fn events(&self) -> Vec<Ev> {
        self.events.lock().unwrap().clone()
    }
    fn push(&self, ev: Ev) {
        self.events.lock().unwrap().push(ev);
    }
    /// The Close frames received on connection `conn`.
    pub fn closes(&self, conn: usize) -> Vec<Option<(u16, String)>> {
        let evs = self.events.lock().unwrap();
        evs.iter()
            .filter_map(|e| match e {
                Ev::Close(c, f) if *c == conn => Some(f.clone()),
                _ => None,
            })
            .collect()
    }
    /// How many times `ev` was recorded (e.g. `Ev::Ping(0, payload)`).
    pub fn count(&self, ev: Ev) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| **e == ev)
            .count()
    }
    pub fn ended(&self, conn: usize) -> bool {
        self.events.lock().unwrap().contains(&Ev::Ended(conn))
    }
    /// A header of the n-th upgrade request.
    pub fn header(&self, n: usize, name: &str) -> Option<String> {
        let reqs = self.requests.lock().unwrap();
        reqs.get(n)?
            .1
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }
}

/// A threaded tungstenite echo backend on 127.0.0.1:0. It echoes Text and Binary
/// messages with their type, answers `GET /healthCheck` (any plain HTTP request) with
/// 200, picks `chat.v2` when the client offers it, and obeys text commands:
/// `cmd:close:CODE:REASON`, `cmd:ping:PAYLOAD`, `cmd:eof` (FIN, no Close),
/// `cmd:reset` (RST, no Close), `cmd:big:N` (a text message of N bytes).
pub struct EchoBackend {
    pub addr: SocketAddr,
    pub shared: Arc<Shared>,
    failures: Failures,
    thread: Option<JoinHandle<()>>,
}

impl EchoBackend {
    pub fn start() -> EchoBackend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let shared = Arc::new(Shared::default());
        let sh = shared.clone();
        let failures = Failures::default();
        let f = failures.clone();
        let thread = std::thread::spawn(failures.catching(move || {
            while !sh.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let conn = sh.accepted.fetch_add(1, Ordering::SeqCst);
                        sh.open.fetch_add(1, Ordering::SeqCst);
                        let sh = sh.clone();
                        let spawned =
                            std::thread::Builder::new()
                                .stack_size(STACK)
                                .spawn(f.catching(move || {
                                    echo_conn(stream, conn, &sh);
                                    sh.push(Ev::Ended(conn));
                                    sh.open.fetch_sub(1, Ordering::SeqCst);
                                }));
                        // Thousands of connections can exhaust threads; that is the
                        // test's load, not a failure of the backend's logic.
                        if spawned.is_err() {
                            eprintln!("echo backend: cannot spawn a thread");
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        }));
        EchoBackend {
            addr,
            shared,
            failures,
            thread: Some(thread),
        }
    }

    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }
    pub fn open(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }
}

impl Drop for EchoBackend {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.failures.check("echo backend");
    }
}

/// A stream that first yields bytes already read (the request head).
pub struct Prefixed {
    pre: Vec<u8>,
    pos: usize,
    pub s: TcpStream,
}

impl Read for Prefixed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos < self.pre.len() {
            let n = buf.len().min(self.pre.len() - self.pos);
            buf[..n].copy_from_slice(&self.pre[self.pos..self.pos + n]);
            self.pos += n;
            return Ok(n);
        }
        self.s.read(buf)
    }
}

impl Write for Prefixed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.s.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.s.flush()
    }
}

/// Reads an HTTP head byte by byte (so nothing after it is consumed).
pub fn read_head(s: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 64 * 1024 {
            return None;
        }
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => return None,
        }
    }
    String::from_utf8(head).ok()
}

/// The value of a header in a raw head.
pub fn head_header(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

/// Sets SO_LINGER to 0 so that dropping the socket sends a reset.
pub fn set_linger_zero(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid fd and a correctly sized `linger` value.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt(SO_LINGER)");
}

// tungstenite's callback type fixes the large `ErrorResponse` error.
#[allow(clippy::result_large_err)]
fn echo_conn(mut stream: TcpStream, conn: usize, sh: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let _ = stream.set_nodelay(true);
    let Some(head) = read_head(&mut stream) else {
        return;
    };
    let lower = head.to_ascii_lowercase();
    if !lower.contains("\nupgrade:") || !lower.contains("websocket") {
        let body = "{\"status\":\"200\"}";
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(resp.as_bytes());
        return;
    }
    let pre = Prefixed {
        pre: head.into_bytes(),
        pos: 0,
        s: stream,
    };
    let record = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        let headers = req
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        sh.requests
            .lock()
            .unwrap()
            .push((req.uri().to_string(), headers));
        let offered = req
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok());
        if offered.is_some_and(|p| p.split(',').any(|t| t.trim() == "chat.v2")) {
            resp.headers_mut()
                .insert("Sec-WebSocket-Protocol", "chat.v2".parse().unwrap());
        }
        Ok(resp)
    };
    let Ok(mut ws) = tungstenite::accept_hdr_with_config(pre, record, Some(ws_config())) else {
        return;
    };
    let end = Instant::now() + CONN_LIFETIME;
    while Instant::now() < end && !sh.stop.load(Ordering::SeqCst) {
        match ws.read() {
            Ok(Message::Text(t)) if t.starts_with("cmd:") => {
                if !command(&mut ws, &t) {
                    return;
                }
            }
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                if ws.send(m).is_err() {
                    return;
                }
            }
            Ok(Message::Pong(p)) => {
                sh.push(Ev::Pong(conn, p.to_vec()));
                // Pongs to the proxy's own pings are forwarded here too: not ours.
                if &p[..] != b"sluice" {
                    let text = format!("got pong: {}", String::from_utf8_lossy(&p));
                    let _ = ws.send(Message::text(text));
                }
            }
            Ok(Message::Close(f)) => {
                let f = f.map(|f| (u16::from(f.code), f.reason.to_string()));
                sh.push(Ev::Close(conn, f));
            }
            Ok(Message::Ping(p)) => sh.push(Ev::Ping(conn, p.to_vec())),
            Ok(_) => {}
            Err(Error::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// Runs one echo-backend command; false = the connection is done.
fn command(ws: &mut WebSocket<Prefixed>, cmd: &str) -> bool {
    let mut parts = cmd.splitn(4, ':').skip(1);
    match (parts.next(), parts.next(), parts.next()) {
        (Some("close"), Some(code), reason) => {
            let code: u16 = code.parse().unwrap_or(1000);
            let frame = CloseFrame {
                code: CloseCode::from(code),
                reason: reason.unwrap_or("").into(),
            };
            ws.close(Some(frame)).is_ok()
        }
        (Some("ping"), payload, _) => ws
            .send(Message::Ping(
                payload.unwrap_or("").as_bytes().to_vec().into(),
            ))
            .is_ok(),
        (Some("eof"), _, _) => {
            let _ = ws.get_ref().s.shutdown(Shutdown::Both);
            false
        }
        (Some("reset"), _, _) => {
            set_linger_zero(&ws.get_ref().s);
            false
        }
        (Some("big"), Some(n), _) => {
            let n: usize = n.parse().unwrap_or(0);
            ws.send(Message::text("x".repeat(n))).is_ok()
        }
        _ => true,
    }
}

/// A backend that answers each upgrade with a 101 (plus `extra` header lines) and
/// hands the socket to `then`. It records each request head.
pub struct RawBackend {
    pub addr: SocketAddr,
    pub heads: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    failures: Failures,
    thread: Option<JoinHandle<()>>,
}

type RawHandler = dyn Fn(TcpStream, &str) + Send + Sync;

impl RawBackend {
    /// `reply(head)` returns the bytes to write after reading the request head (use
    /// `accept_101`); then `then(stream, head)` runs on the connection's thread.
    pub fn start(
        reply: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static,
        then: impl Fn(TcpStream, &str) + Send + Sync + 'static,
    ) -> RawBackend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let heads = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, st) = (heads.clone(), stop.clone());
        type Reply = dyn Fn(&str) -> Vec<u8> + Send + Sync;
        let reply: Arc<Reply> = Arc::new(reply);
        let then: Arc<RawHandler> = Arc::new(then);
        let failures = Failures::default();
        let f = failures.clone();
        let thread = std::thread::spawn(failures.catching(move || {
            while !st.load(Ordering::SeqCst) {
                let Ok((mut s, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(2));
                    continue;
                };
                let (h, reply, then) = (h.clone(), reply.clone(), then.clone());
                std::thread::spawn(f.catching(move || {
                    let _ = s.set_read_timeout(Some(WAIT));
                    let _ = s.set_nodelay(true);
                    let Some(head) = read_head(&mut s) else {
                        return;
                    };
                    h.lock().unwrap().push(head.clone());
                    if s.write_all(&reply(&head)).is_err() {
                        return;
                    }
                    then(s, &head);
                }));
            }
        }));
        RawBackend {
            addr,
            heads,
            stop,
            failures,
            thread: Some(thread),
        }
    }

    pub fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

impl Drop for RawBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.failures.check("raw WebSocket backend");
    }
}

/// A 101 answering `head`'s key, with extra header lines (each ending in CRLF).
pub fn accept_101(head: &str, extra: &str) -> Vec<u8> {
    let key = head_header(head, "sec-websocket-key").unwrap_or_default();
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
    )
    .into_bytes()
}

pub type Ws = WebSocket<TcpStream>;

/// A tungstenite client through the proxy, with extra request headers.
#[track_caller]
pub fn ws_connect(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (Ws, tungstenite::handshake::client::Response) {
    let mut req = format!("ws://{addr}{path}")
        .into_client_request()
        .expect("request");
    for (k, v) in headers {
        let name: tungstenite::http::HeaderName = k.parse().expect("header name");
        req.headers_mut()
            .insert(name, v.parse().expect("header value"));
    }
    let s = TcpStream::connect(addr).expect("connect to proxy");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_nodelay(true).unwrap();
    match tungstenite::client::client_with_config(req, s, Some(ws_config())) {
        Ok(r) => r,
        Err(e) => panic!("WebSocket handshake through the proxy failed: {e}"),
    }
}

/// Reads the next Text/Binary/Close message (Pings and Pongs are skipped; tungstenite
/// answers Pings itself).
#[track_caller]
pub fn next_msg(ws: &mut Ws) -> Message {
    let end = Instant::now() + WAIT;
    while Instant::now() < end {
        match ws.read() {
            Ok(Message::Ping(_) | Message::Pong(_)) => {}
            Ok(m) => return m,
            Err(e) => panic!("reading from the proxy: {e}"),
        }
    }
    panic!("no message within {WAIT:?}");
}

/// Reads until the proxy's Close frame arrives and returns its code and reason, then
/// checks that the connection ends.
#[track_caller]
pub fn expect_close(ws: &mut Ws) -> (u16, String) {
    let end = Instant::now() + WAIT;
    let mut got = None;
    while Instant::now() < end {
        match ws.read() {
            Ok(Message::Close(f)) => {
                let f = f.expect("Close frame with a code");
                got = Some((u16::from(f.code), f.reason.to_string()));
            }
            Ok(_) => {}
            Err(Error::ConnectionClosed | Error::AlreadyClosed) => break,
            Err(Error::Io(e))
                if e.kind() == io::ErrorKind::ConnectionReset
                    || e.kind() == io::ErrorKind::BrokenPipe =>
            {
                break
            }
            Err(Error::Protocol(
                tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
            )) => break,
            Err(e) => panic!("waiting for Close: {e}"),
        }
    }
    got.expect("a Close frame from the proxy")
}

/// Polls `f` until it returns true or `WAIT` passes.
pub fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + WAIT;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// One frame as read from the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    pub masked: bool,
    /// Unmasked.
    pub payload: Vec<u8>,
}

impl Frame {
    /// (code, reason) of a Close frame.
    pub fn close(&self) -> Option<(u16, Vec<u8>)> {
        (self.opcode == 8 && self.payload.len() >= 2).then(|| {
            (
                u16::from_be_bytes([self.payload[0], self.payload[1]]),
                self.payload[2..].to_vec(),
            )
        })
    }
}

/// Encodes one frame (RFC 6455 §5.2); `mask` = Some for client frames.
pub fn frame(fin: bool, rsv: u8, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![(if fin { 0x80 } else { 0 }) | (rsv << 4) | opcode];
    let m = if mask.is_some() { 0x80 } else { 0 };
    let n = payload.len();
    if n < 126 {
        out.push(m | n as u8);
    } else if n <= 0xffff {
        out.push(m | 126);
        out.extend((n as u16).to_be_bytes());
    } else {
        out.push(m | 127);
        out.extend((n as u64).to_be_bytes());
    }
    match mask {
        Some(k) => {
            out.extend(k);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => out.extend(payload),
    }
    out
}

/// The mask every raw client frame uses.
pub const MASK: Option<[u8; 4]> = Some([0x37, 0xfa, 0x21, 0x3d]);

/// A Close payload.
pub fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

/// Reads one frame.
pub fn read_frame(r: &mut impl Read) -> io::Result<Frame> {
    let mut h = [0u8; 2];
    r.read_exact(&mut h)?;
    let masked = h[1] & 0x80 != 0;
    let len = match h[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b)?;
            u64::from(u16::from_be_bytes(b))
        }
        127 => {
            let mut b = [0u8; 8];
            r.read_exact(&mut b)?;
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    };
    let mut key = [0u8; 4];
    if masked {
        r.read_exact(&mut key)?;
    }
    let len = usize::try_from(len).map_err(|_| io::Error::other("frame too long"))?;
    if len > 64 << 20 {
        return Err(io::Error::other("frame too long"));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    if masked {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= key[i % 4];
        }
    }
    Ok(Frame {
        fin: h[0] & 0x80 != 0,
        rsv: (h[0] >> 4) & 7,
        opcode: h[0] & 0xf,
        masked,
        payload,
    })
}

/// Reads frames until a Close arrives (skipping others) and returns it.
#[track_caller]
pub fn read_close(r: &mut impl Read) -> (u16, Vec<u8>) {
    for _ in 0..1000 {
        let f = read_frame(r).expect("a frame before the Close");
        if f.opcode == 8 {
            return f.close().expect("a Close with a code");
        }
    }
    panic!("no Close within 1000 frames");
}

/// True when the peer ended the stream with a FIN (EOF) within the read timeout. A
/// reset is false: sluice's lingering close exists so that a peer reads the Close and
/// then EOF, never a reset that could discard the Close.
pub fn at_eof(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 256];
    for _ in 0..1000 {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

/// A raw upgrade through the proxy: sends the request (standard headers plus `extra`,
/// each line ending in CRLF) and reads the response head. Returns the stream and head.
#[track_caller]
pub fn raw_upgrade(addr: SocketAddr, target: &str, extra: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(addr).expect("connect to proxy");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_nodelay(true).unwrap();
    let req = format!(
        "GET {target} HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    );
    s.write_all(req.as_bytes()).expect("send upgrade");
    let head = read_head(&mut s).expect("a response head");
    (s, head)
}

/// The status code of a raw response head.
pub fn status(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A payload of `n` bytes with a recognisable pattern (valid UTF-8).
pub fn pattern(n: usize) -> String {
    (0..n).map(|i| (b'a' + (i % 26) as u8) as char).collect()
}

/// Connections a listener at `addr` has accepted or queued and not yet closed: the
/// entries of /proc/net/tcp whose local address is `addr`, ESTABLISHED or CLOSE_WAIT
/// (the listener itself and sockets already closed by their owner are left out).
pub fn held_connections(addr: SocketAddr) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let port = format!(":{:04X}", addr.port());
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.len() > 3 && cols[1].ends_with(&port) && matches!(cols[3], "01" | "08")
        })
        .count()
}
