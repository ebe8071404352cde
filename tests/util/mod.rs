//! Shared end-to-end test helpers: an in-process sluice, scriptable backends on
//! 127.0.0.1:0, and a small raw HTTP client. Every loop is bounded in count and time.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod process;
#[allow(unused_imports)] // not every test binary starts a child process
pub use process::*;

/// Default bound for any wait in a test.
pub const WAIT: Duration = Duration::from_secs(10);

/// Panics in the threads a test helper starts (the reactor, backend handlers) are
/// collected here and raised again when the helper is dropped, so an assertion or an
/// error inside a thread fails the test instead of being printed and forgotten.
#[derive(Clone, Default)]
pub struct Failures(Arc<Mutex<Vec<String>>>);

impl Failures {
    /// Wraps a thread body so that its panic is recorded (and still printed).
    pub fn catching<F: FnOnce() + Send + 'static>(&self, f: F) -> impl FnOnce() + Send + 'static {
        let failures = self.0.clone();
        move || {
            if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
                let msg = p
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| p.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a non-string panic".to_string());
                failures.lock().unwrap_or_else(|e| e.into_inner()).push(msg);
            }
        }
    }

    /// Panics (unless already unwinding) if any caught thread panicked.
    #[track_caller]
    pub fn check(&self, what: &str) {
        let failed = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if !failed.is_empty() && !std::thread::panicking() {
            panic!("{what}: a thread panicked: {}", failed.join(" | "));
        }
    }
}

/// A sluice reactor running on its own thread, stopped on drop.
pub struct Proxy {
    pub addr: SocketAddr,
    /// The admin listener, when the configuration has an `[admin]` section.
    pub admin: Option<SocketAddr>,
    stop: sluice::StopHandle,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts sluice with an INI text. `{b0}`, `{b1}`… in the text are replaced by the
    /// given backend addresses; the frontend listens on 127.0.0.1:0 unless the text
    /// has its own `[frontend]` section.
    #[track_caller]
    pub fn start(ini: &str, backends: &[SocketAddr]) -> Proxy {
        let mut text = ini.to_string();
        for (i, b) in backends.iter().enumerate() {
            text = text.replace(&format!("{{b{i}}}"), &b.to_string());
        }
        if !text.contains("[frontend]") {
            text = format!("[frontend]\nhost=127.0.0.1\nport=0\n\n{text}");
        }
        if !text.contains("[log]") {
            text.push_str("\n[log]\nlevel=warn\naccess_log=false\n");
        }
        let cfg = sluice::config::parse(&text, "test.ini", &sluice::config::resolve_system)
            .unwrap_or_else(|e| panic!("test config invalid: {e}\n{text}"));
        Proxy::from_config(cfg)
    }

    /// Starts sluice with a parsed configuration.
    #[track_caller]
    pub fn from_config(cfg: sluice::config::Config) -> Proxy {
        let mut reactor = sluice::Reactor::with_seed(cfg, 42).expect("reactor starts");
        let addr = reactor.local_addr().expect("local addr");
        let admin = reactor.admin_addr();
        let stop = reactor.stop_handle();
        let thread = std::thread::spawn(move || {
            reactor.run().expect("reactor runs");
        });
        Proxy {
            addr,
            admin,
            stop,
            thread: Some(thread),
        }
    }
}

impl Proxy {
    /// Starts sluice with an admin listener on 127.0.0.1:0 (for `metric`).
    #[track_caller]
    pub fn start_with_admin(ini: &str, backends: &[SocketAddr]) -> Proxy {
        Proxy::start(
            &format!("{ini}\n[admin]\nhost=127.0.0.1\nport=0\n"),
            backends,
        )
    }

    /// The value of the first `/metrics` line that starts with `prefix` (a metric name,
    /// optionally with the start of its labels: `sluice_server_queue_length{group="http",server="server1"`).
    #[track_caller]
    pub fn metric(&self, prefix: &str) -> f64 {
        metric_in(&self.metrics(), prefix)
    }

    /// One `/metrics` text (one snapshot of the reactor's state).
    #[track_caller]
    pub fn metrics(&self) -> String {
        metrics_at(self.admin.expect("the proxy has no [admin] section"))
    }
}

/// The `/metrics` text of the admin endpoint at `admin`.
#[track_caller]
pub fn metrics_at(admin: SocketAddr) -> String {
    let mut c = Client::connect(admin);
    c.send(b"GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
    let r = c.read_response(false).expect("a /metrics response");
    assert_eq!(r.status, 200, "/metrics: {}", r.text());
    r.text()
}

/// The value of the first line of a `/metrics` text that starts with `prefix`.
#[track_caller]
pub fn metric_in(text: &str, prefix: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no metric {prefix} in:\n{text}"));
    line.rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("unreadable metric line {line:?}"))
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some(t) = self.thread.take() {
            // Bounded: a reactor that does not stop (stuck in a loop) must fail the
            // test, not hang the suite. Its thread is left behind; the process ends.
            let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while !t.is_finished() && std::time::Instant::now() < until {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            if t.is_finished() {
                // A reactor that panicked or returned an error fails the test.
                if let Err(p) = t.join() {
                    if !std::thread::panicking() {
                        std::panic::resume_unwind(p);
                    }
                }
            } else if !std::thread::panicking() {
                panic!("the reactor did not stop within 10 s of being asked: stuck in a loop?");
            }
        }
    }
}

/// A request as a test backend saw it.
#[derive(Clone, Debug, Default)]
pub struct SeenRequest {
    pub method: String,
    pub target: String,
    pub version: String,
    /// Header lines as received (name, value), in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body bytes exactly as they arrived (chunk framing included).
    pub raw_body: Vec<u8>,
    /// Which accepted connection (0-based) carried it.
    pub conn: usize,
}

impl SeenRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a scripted backend does with a request.
pub enum Reply {
    /// Write these bytes, keep the connection open for more requests.
    Raw(Vec<u8>),
    /// Write these bytes, then close.
    RawClose(Vec<u8>),
    /// Sleep, then reply.
    Delay(Duration, Box<Reply>),
    /// Close without answering.
    Close,
    /// Never answer (hold the connection until the backend is dropped).
    Hang,
}

/// A 200 response with a body (Content-Length framed, keep-alive).
pub fn ok(body: &str) -> Reply {
    Reply::Raw(
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

type Handler = dyn Fn(&SeenRequest) -> Reply + Send + Sync;

/// A threaded HTTP/1.1 backend on 127.0.0.1:0 with a scripted handler. It records
/// every request and counts accepted and open connections.
pub struct Backend {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<SeenRequest>>>,
    /// Targets whose request head arrived (recorded before the body is read).
    pub heads: Arc<Mutex<Vec<String>>>,
    /// Connections this backend closed itself for idleness (`start_idle_close`).
    pub idle_closed: Arc<AtomicUsize>,
    pub accepted: Arc<AtomicUsize>,
    pub open: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    failures: Failures,
    thread: Option<JoinHandle<()>>,
}

impl Backend {
    /// Starts a backend answering every request with `handler`.
    pub fn start(handler: impl Fn(&SeenRequest) -> Reply + Send + Sync + 'static) -> Backend {
        Backend::start_on(TcpListener::bind("127.0.0.1:0").expect("bind"), handler)
    }

    /// A backend answering `hello from <name>` to everything and `{"status":"200"}` to
    /// `/healthCheck`.
    pub fn hello(name: &'static str) -> Backend {
        Backend::start(move |r| {
            if r.target == "/healthCheck" {
                ok("{\"status\":\"200\"}")
            } else {
                ok(&format!("hello from {name}"))
            }
        })
    }

    /// Starts on an existing listener (to restart on the same port).
    pub fn start_on(
        listener: TcpListener,
        handler: impl Fn(&SeenRequest) -> Reply + Send + Sync + 'static,
    ) -> Backend {
        Backend::start_opts(listener, None, handler)
    }

    /// A backend that closes every connection left idle (no byte of a new request)
    /// for `idle`, as servers with a short keep-alive timeout do.
    pub fn start_idle_close(
        idle: Duration,
        handler: impl Fn(&SeenRequest) -> Reply + Send + Sync + 'static,
    ) -> Backend {
        Backend::start_opts(
            TcpListener::bind("127.0.0.1:0").expect("bind"),
            Some(idle),
            handler,
        )
    }

    fn start_opts(
        listener: TcpListener,
        idle_close: Option<Duration>,
        handler: impl Fn(&SeenRequest) -> Reply + Send + Sync + 'static,
    ) -> Backend {
        let addr = listener.local_addr().expect("addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let failures = Failures::default();
        let (s, a, o, st) = (seen.clone(), accepted.clone(), open.clone(), stop.clone());
        let hd = heads.clone();
        let idle_closed = Arc::new(AtomicUsize::new(0));
        let ic = idle_closed.clone();
        let f = failures.clone();
        let thread = std::thread::spawn(failures.catching(move || {
            while !st.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let conn = a.fetch_add(1, Ordering::SeqCst);
                        o.fetch_add(1, Ordering::SeqCst);
                        let (s, o, st, h) = (s.clone(), o.clone(), st.clone(), handler.clone());
                        let (hd, ic) = (hd.clone(), ic.clone());
                        std::thread::spawn(f.catching(move || {
                            // Counted down even when the handler panics.
                            struct Open(Arc<AtomicUsize>);
                            impl Drop for Open {
                                fn drop(&mut self) {
                                    self.0.fetch_sub(1, Ordering::SeqCst);
                                }
                            }
                            let _open = Open(o);
                            let idle_close = idle_close.map(|d| (d, &*ic));
                            serve_conn(stream, conn, &s, &hd, &*h, &st, idle_close);
                        }));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        }));
        Backend {
            addr,
            seen,
            heads,
            idle_closed,
            accepted,
            open,
            stop,
            failures,
            thread: Some(thread),
        }
    }

    pub fn requests(&self) -> Vec<SeenRequest> {
        self.seen.lock().unwrap().clone()
    }
    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
    /// True once a request head for `target` arrived (its body may be incomplete).
    pub fn head_seen(&self, target: &str) -> bool {
        self.heads.lock().unwrap().iter().any(|t| t == target)
    }

    /// How many connections this backend accepted before one the test opens now.
    ///
    /// The test connects directly, sends a request and waits until the backend has
    /// it: the kernel hands connections to `accept` in the order they were made, so
    /// every connection anyone (sluice) opened before this call has been accepted by
    /// then. This turns "sluice opened no connection" into a check that does not
    /// depend on how fast the backend's accept thread runs. The handler's answer is
    /// not read; the request is counted in `count()` and `accepted()`.
    #[track_caller]
    pub fn connections_before_ours(&self) -> usize {
        let target = format!("/direct-from-the-test-{}", self.accepted());
        let mut s = TcpStream::connect(self.addr).expect("connect to the backend");
        s.write_all(format!("GET {target} HTTP/1.1\r\nHost: direct\r\n\r\n").as_bytes())
            .expect("write to the backend");
        let mut conn = None;
        assert!(
            wait_until(|| {
                conn = self
                    .requests()
                    .iter()
                    .find(|r| r.target == target)
                    .map(|r| r.conn);
                conn.is_some()
            }),
            "the backend never saw the test's direct request"
        );
        conn.unwrap()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.failures.check("test backend");
    }
}

fn serve_conn(
    stream: TcpStream,
    conn: usize,
    seen: &Mutex<Vec<SeenRequest>>,
    heads: &Mutex<Vec<String>>,
    h: &Handler,
    stop: &AtomicBool,
    idle_close: Option<(Duration, &AtomicUsize)>,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let _ = stream.set_nodelay(true);
    let mut w = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut r = BufReader::new(stream);
    let deadline = Instant::now() + Duration::from_secs(120);
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        if let Some((idle, closed)) = idle_close {
            // Wait for the first byte of the next request at most `idle`, then close.
            let _ = r.get_ref().set_read_timeout(Some(idle));
            match r.fill_buf() {
                Ok([]) => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    closed.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                Err(_) => return,
                Ok(_) => {}
            }
            let _ = r
                .get_ref()
                .set_read_timeout(Some(Duration::from_millis(200)));
        }
        let req = match read_request(&mut r, conn, heads, stop) {
            Some(req) => req,
            None => return,
        };
        seen.lock().unwrap().push(req.clone());
        let mut reply = h(&req);
        loop {
            match reply {
                Reply::Delay(d, next) => {
                    std::thread::sleep(d);
                    reply = *next;
                }
                Reply::Raw(bytes) => {
                    if w.write_all(&bytes).is_err() {
                        return;
                    }
                    break;
                }
                Reply::RawClose(bytes) => {
                    let _ = w.write_all(&bytes);
                    return;
                }
                Reply::Close => return,
                Reply::Hang => {
                    while !stop.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    return;
                }
            }
        }
    }
}

/// Reads one request (Content-Length or chunked body); None on EOF or stop.
fn read_request(
    r: &mut BufReader<TcpStream>,
    conn: usize,
    heads: &Mutex<Vec<String>>,
    stop: &AtomicBool,
) -> Option<SeenRequest> {
    let mut line = String::new();
    loop {
        match r.read_line(&mut line) {
            Ok(0) => return None,
            Ok(_) => break,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if stop.load(Ordering::SeqCst) {
                    return None;
                }
            }
            Err(_) => return None,
        }
    }
    let mut parts = line.trim_end().splitn(3, ' ');
    let mut req = SeenRequest {
        method: parts.next()?.to_string(),
        target: parts.next()?.to_string(),
        version: parts.next()?.to_string(),
        conn,
        ..Default::default()
    };
    loop {
        let mut h = String::new();
        read_line_retry(r, &mut h, stop)?;
        let h = h.trim_end_matches(['\r', '\n']);
        if h.is_empty() {
            break;
        }
        let (n, v) = h.split_once(':')?;
        req.headers.push((n.to_string(), v.trim().to_string()));
    }
    heads.lock().unwrap().push(req.target.clone());
    if let Some(len) = req.header("content-length") {
        let len: usize = len.parse().ok()?;
        req.body = vec![0; len];
        read_exact_retry(r, &mut req.body, stop)?;
        req.raw_body = req.body.clone();
    } else if req
        .header("transfer-encoding")
        .is_some_and(|t| t.contains("chunked"))
    {
        loop {
            let mut size = String::new();
            read_line_retry(r, &mut size, stop)?;
            req.raw_body.extend_from_slice(size.as_bytes());
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; n + 2];
            read_exact_retry(r, &mut chunk, stop)?;
            req.raw_body.extend_from_slice(&chunk);
            if n == 0 {
                break;
            }
            req.body.extend_from_slice(&chunk[..n]);
        }
    }
    Some(req)
}

fn read_line_retry(
    r: &mut BufReader<TcpStream>,
    out: &mut String,
    stop: &AtomicBool,
) -> Option<()> {
    loop {
        match r.read_line(out) {
            Ok(0) => return None,
            Ok(_) => return Some(()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if stop.load(Ordering::SeqCst) {
                    return None;
                }
            }
            Err(_) => return None,
        }
    }
}

/// Fills `out` from a socket with a read timeout, retrying timeouts until `stop` is set;
/// `None` at EOF, on an error, or when stopped.
pub fn read_exact_retry(r: &mut impl Read, out: &mut [u8], stop: &AtomicBool) -> Option<()> {
    let mut have = 0;
    while have < out.len() {
        match r.read(&mut out[have..]) {
            Ok(0) => return None,
            Ok(n) => have += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if stop.load(Ordering::SeqCst) {
                    return None;
                }
            }
            Err(_) => return None,
        }
    }
    Some(())
}

/// A response as the test client saw it.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A raw client connection to the proxy.
pub struct Client {
    pub r: BufReader<TcpStream>,
    pub w: TcpStream,
}

impl Client {
    #[track_caller]
    pub fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).expect("connect to proxy");
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.set_nodelay(true).unwrap();
        Client {
            w: s.try_clone().unwrap(),
            r: BufReader::new(s),
        }
    }

    #[track_caller]
    pub fn send(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).expect("write to proxy");
    }

    /// Reads one response; `head_request` = the request was HEAD (no body).
    pub fn read_response(&mut self, head_request: bool) -> Option<Response> {
        let (status, headers) = self.read_head()?;
        let mut resp = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if head_request || status == 204 || status == 304 || (100..200).contains(&status) {
            return Some(resp);
        }
        if let Some(len) = resp.header("content-length") {
            let len: usize = len.parse().ok()?;
            resp.body = vec![0; len];
            self.r.read_exact(&mut resp.body).ok()?;
        } else if resp
            .header("transfer-encoding")
            .is_some_and(|t| t.contains("chunked"))
        {
            loop {
                let mut size = String::new();
                self.r.read_line(&mut size).ok()?;
                let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
                let mut chunk = vec![0; n + 2];
                self.r.read_exact(&mut chunk).ok()?;
                if n == 0 {
                    break;
                }
                resp.body.extend_from_slice(&chunk[..n]);
            }
        } else {
            self.r.read_to_end(&mut resp.body).ok()?;
        }
        Some(resp)
    }

    /// Sends a GET and reads its response.
    #[track_caller]
    pub fn get(&mut self, target: &str) -> Response {
        self.send(format!("GET {target} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
        self.read_response(false).expect("a response")
    }

    /// True when the proxy closed the connection (EOF) within the read timeout.
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.r.read(&mut b), Ok(0))
            || matches!(self.r.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset)
    }
}

/// One GET on a new connection.
#[track_caller]
pub fn get(addr: SocketAddr, target: &str) -> Response {
    Client::connect(addr).get(target)
}

/// Polls `f` until it is true or `WAIT` passes.
pub fn wait_until(mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + WAIT;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// A backend whose connections are handed, raw, to a closure (for what the scripted
/// `Backend` cannot do: streaming huge bodies, answering 100-continue before the body).
/// The closure gets the stream, the 0-based connection number and the stop flag; it
/// must return by itself (use read timeouts and check the flag).
pub struct RawBackend {
    pub addr: SocketAddr,
    pub accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    failures: Failures,
    thread: Option<JoinHandle<()>>,
}

impl RawBackend {
    pub fn start(
        handler: impl Fn(TcpStream, usize, &AtomicBool) + Send + Sync + 'static,
    ) -> RawBackend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let handler = Arc::new(handler);
        let failures = Failures::default();
        let (a, st, f) = (accepted.clone(), stop.clone(), failures.clone());
        let thread = std::thread::spawn(failures.catching(move || {
            while !st.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_nodelay(true);
                        let conn = a.fetch_add(1, Ordering::SeqCst);
                        let (h, st) = (handler.clone(), st.clone());
                        std::thread::spawn(f.catching(move || h(stream, conn, &st)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        }));
        RawBackend {
            addr,
            accepted,
            stop,
            failures,
            thread: Some(thread),
        }
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for RawBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.failures.check("raw test backend");
    }
}

/// Reads a head (through the empty line) from a blocking stream with a read timeout,
/// byte by byte so nothing after it is consumed. None on EOF, error or stop.
pub fn read_head_raw(s: &mut TcpStream, stop: &AtomicBool) -> Option<String> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(0) => return None,
            Ok(_) => head.push(b[0]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if stop.load(Ordering::SeqCst) {
                    return None;
                }
            }
            Err(_) => return None,
        }
        if head.len() > 64 * 1024 {
            return None;
        }
    }
    String::from_utf8(head).ok()
}

/// The value of a header in a raw head text (case-insensitive name).
pub fn head_value<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

impl Client {
    /// Reads a response head only: (status, headers).
    pub fn read_head(&mut self) -> Option<(u16, Vec<(String, String)>)> {
        let mut line = String::new();
        if self.r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let status: u16 = line.split(' ').nth(1)?.parse().ok()?;
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            self.r.read_line(&mut h).ok()?;
            let h = h.trim_end_matches(['\r', '\n']);
            if h.is_empty() {
                break;
            }
            let (n, v) = h.split_once(':')?;
            headers.push((n.to_string(), v.trim().to_string()));
        }
        Some((status, headers))
    }

    /// Reads exactly `n` raw bytes.
    pub fn read_raw(&mut self, n: usize) -> Option<Vec<u8>> {
        let mut out = vec![0; n];
        self.r.read_exact(&mut out).ok()?;
        Some(out)
    }

    /// Reads until EOF (or error): whatever the proxy still sends.
    pub fn read_rest(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = self.r.read_to_end(&mut out);
        out
    }
}

/// Reads and discards from a blocking stream (with a read timeout) until the peer
/// closes it or resets it (true), or until `stop` is set (false).
pub fn discard_until_closed(s: &mut TcpStream, stop: &AtomicBool) -> bool {
    let mut sink = [0u8; 1024];
    loop {
        match s.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if stop.load(Ordering::SeqCst) {
                    return false;
                }
            }
            Err(_) => return true,
        }
    }
}
