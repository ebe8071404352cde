//! TLS test helpers: a test PKI made with the `openssl` command at run time (deleted on
//! drop), sluice with a `[tls]` listener on its own thread, and the independent clients
//! (curl, Python's ssl, openssl s_client, rustls) run against it.
#![allow(dead_code)]

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

mod pki;
pub use pki::Pki;

impl Pki {
    /// `ca` signs `a` (a.test, localhost, 127.0.0.1) and `b` (b.test); `other-ca` signs
    /// `c` (a.test), for unknown-CA tests. ECDSA P-256.
    pub fn new(tag: &str) -> Pki {
        let pki = Pki::empty(&format!("e2e-tls-{tag}"));
        pki.ca("ca");
        pki.ca("other-ca");
        pki.leaf("a", "ca", "ec", "DNS:a.test,DNS:localhost,IP:127.0.0.1");
        pki.leaf("b", "ca", "ec", "DNS:b.test");
        pki.leaf("c", "other-ca", "ec", "DNS:a.test,IP:127.0.0.1");
        pki
    }

    /// `text` with `{pki}` replaced by this directory.
    pub fn ini(&self, text: &str) -> String {
        text.replace("{pki}", &self.dir.to_string_lossy())
    }
}

/// sluice with `[tls]` on its own thread (plain listener, TLS listener, admin), stopped on
/// drop.
pub struct TlsProxy {
    pub addr: SocketAddr,
    pub tls: SocketAddr,
    pub admin: SocketAddr,
    stop: sluice::StopHandle,
    thread: Option<JoinHandle<()>>,
}

impl TlsProxy {
    /// `ini` holds the groups and the `[tls]` section (without host/port); `{b0}`… become
    /// the backends, `{pki}` the certificate directory.
    #[track_caller]
    pub fn start(pki: &Pki, ini: &str, backends: &[SocketAddr]) -> TlsProxy {
        let mut text = pki.ini(ini);
        for (i, b) in backends.iter().enumerate() {
            text = text.replace(&format!("{{b{i}}}"), &b.to_string());
        }
        let text = format!(
            "[frontend]\nhost=127.0.0.1\nport=0\n\n{text}\n\
             [admin]\nhost=127.0.0.1\nport=0\n[log]\nlevel=warn\naccess_log=false\n"
        );
        // Every host name is 127.0.0.1: backends are named by the certificates' names.
        let local = |_: &str, port: u16| Ok(SocketAddr::from(([127, 0, 0, 1], port)));
        let cfg = sluice::config::parse(&text, "test.ini", &local)
            .unwrap_or_else(|e| panic!("test config invalid: {e}\n{text}"));
        let mut reactor = sluice::Reactor::with_seed(cfg, 42).expect("reactor starts");
        let addr = reactor.local_addr().expect("local addr");
        let tls = reactor.tls_addr().expect("a [tls] listener");
        let admin = reactor.admin_addr().expect("admin");
        let stop = reactor.stop_handle();
        let thread = std::thread::spawn(move || reactor.run().expect("reactor runs"));
        TlsProxy {
            addr,
            tls,
            admin,
            stop,
            thread: Some(thread),
        }
    }

    pub fn metrics(&self) -> String {
        crate::util::metrics_at(self.admin)
    }

    /// A `/metrics` value by line prefix.
    pub fn metric(&self, prefix: &str) -> f64 {
        crate::util::metric_in(&self.metrics(), prefix)
    }

    pub fn failures(&self, side: &str, reason: &str) -> f64 {
        self.metric(&format!(
            "sluice_tls_handshake_failures_total{{side=\"{side}\",reason=\"{reason}\"}}"
        ))
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs a command with a time bound; its output.
#[track_caller]
pub fn run(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut input = child.stdin.take().expect("stdin");
    let bytes = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&bytes);
    });
    let pid = child.id();
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(20));
        // The command hung: kill it so the test fails instead of hanging.
        let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
    });
    let out = child.wait_with_output().expect("wait");
    drop(watchdog);
    let _ = writer.join();
    out
}

/// A rustls client trusting `ca` (PEM path), for WSS and raw checks.
pub fn rustls_client(ca: &str) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).expect("ca file") {
        roots.add(c.expect("ca pem")).expect("add ca");
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// A blocking TLS stream to `addr` with SNI `name`.
pub type TlsStream = rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>;

#[track_caller]
pub fn tls_connect(addr: SocketAddr, ca: &str, name: &str) -> TlsStream {
    let name = rustls::pki_types::ServerName::try_from(name.to_string()).expect("name");
    let conn = rustls::ClientConnection::new(rustls_client(ca), name).expect("client");
    let s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    rustls::StreamOwned::new(conn, s)
}

/// A TLS HTTP/1.1 backend in Python (`ssl` + `http.server`): answers every request with
/// `hs=<handshakes so far> sni=<last SNI> path=<path>`; killed on drop.
pub struct PyTlsBackend {
    child: std::process::Child,
    pub addr: SocketAddr,
}

const PY_BACKEND: &str = r#"
import http.server, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
state = {"hs": 0, "sni": "-"}
def sni(sock, name, c):
    state["sni"] = name or "-"
ctx.sni_callback = sni
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        body = ("hs=%d sni=%s path=%s" % (state["hs"], state["sni"], self.path)).encode()
        if self.path == "/healthCheck":
            body = b'{"status":"200"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    do_GET = do_POST = answer
    def log_message(self, *a):
        sys.stderr.write("%s\n" % self.path)
class S(http.server.ThreadingHTTPServer):
    daemon_threads = True
    def get_request(self):
        sock, addr = self.socket.accept()
        state["hs"] += 1
        return sock, addr
httpd = S(("127.0.0.1", 0), H)
httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
print(httpd.server_address[1], flush=True)
httpd.serve_forever()
"#;

impl PyTlsBackend {
    /// Serves `cert`/`key` (file names in the PKI directory).
    pub fn start(pki: &Pki, cert: &str, key: &str) -> PyTlsBackend {
        use std::io::BufRead;
        let log = std::fs::File::create(pki.path(&format!("py-{cert}-{key}.log"))).unwrap();
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(PY_BACKEND)
            .arg(pki.path(cert))
            .arg(pki.path(key))
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("python3");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the backend's port");
        let port: u16 = line.trim().parse().expect("a port number");
        PyTlsBackend {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for PyTlsBackend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
