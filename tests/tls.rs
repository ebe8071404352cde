//! Issue 17, the `[tls]` listener end to end over 127.0.0.1 with independent clients:
//! curl (`--cacert`), Python's `ssl`, `openssl s_client`, and rustls + tungstenite for WSS.
//! Certificates are made by the tests at run time (tlsutil::Pki).
#![cfg(feature = "tls")]

mod tlsutil;
mod util;
mod wsutil;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};
use tlsutil::*;
use tungstenite::Message;
use util::{ok, wait_until, Backend, SeenRequest};

const TLS_INI: &str = "[http]\nserver1={b0}\nenable_health_check=false\n\
    [tls]\nport=0\ncert={pki}/a.pem\nkey={pki}/a.key\ncert2={pki}/b.pem,{pki}/b.key\n";

/// Answers with what it saw: method, body length, X-Forwarded-Proto, target.
fn echo_backend() -> Backend {
    Backend::start(|r: &SeenRequest| {
        ok(&format!(
            "{} {} len={} proto={}",
            r.method,
            r.target,
            r.body.len(),
            r.header("X-Forwarded-Proto").unwrap_or("-")
        ))
    })
}

fn curl(pki: &Pki, port: u16, args: &[&str]) -> (String, String) {
    let resolve = format!("a.test:{port}:127.0.0.1");
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "10", "--cacert", &pki.path("ca.pem")])
        .args(["--resolve", &resolve])
        .args(args);
    let out = run(&mut cmd, b"");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn curl_get_post_chunked_keep_alive_over_tls_with_forwarded_proto_https() {
    let pki = Pki::new("curl");
    let b = echo_backend();
    let p = TlsProxy::start(&pki, TLS_INI, &[b.addr]);
    let port = p.tls.port();
    let url = |path: &str| format!("https://a.test:{port}{path}");
    // Three GETs on one connection: curl reuses it (one connect in total).
    let (out, err) = curl(
        &pki,
        port,
        &[
            "-w",
            " connects=%{num_connects}\n",
            &url("/one"),
            &url("/two"),
            &url("/three"),
        ],
    );
    assert_eq!(
        out,
        "GET /one len=0 proto=https connects=1\nGET /two len=0 proto=https connects=0\n\
         GET /three len=0 proto=https connects=0\n",
        "{err}"
    );
    // A 300 KB POST (many TLS records, more than the 16 KiB buffers) and a chunked one.
    let body = pki.path("body.bin");
    std::fs::write(&body, vec![b'x'; 300_000]).unwrap();
    let data = format!("@{body}");
    let (out, err) = curl(&pki, port, &["--data-binary", &data, &url("/post")]);
    assert_eq!(out, "POST /post len=300000 proto=https", "{err}");
    let (out, err) = curl(
        &pki,
        port,
        &[
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            &data,
            &url("/chunked"),
        ],
    );
    assert_eq!(out, "POST /chunked len=300000 proto=https", "{err}");
    // Plain HTTP on the other listener still says http.
    let r = util::get(p.addr, "/plain");
    assert_eq!(r.text(), "GET /plain len=0 proto=http");
    assert!(p.metric("sluice_tls_handshakes_total{side=\"client\"}") >= 3.0);
}

/// Python's `ssl` reading a large answer late: it sleeps before reading, so the proxy's
/// socket fills and its records wait; then every byte must follow.
const PY_SLOW_READER: &str = r#"
import hashlib, socket, ssl, sys, time
port, ca, version = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
v = ssl.TLSVersion.TLSv1_2 if version == "1.2" else ssl.TLSVersion.TLSv1_3
ctx.minimum_version = ctx.maximum_version = v
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname="a.test")
s.sendall(b"GET /big HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
time.sleep(1)
data = b""
while True:
    chunk = s.recv(1 << 20)
    if not chunk:
        break
    data += chunk
head, _, body = data.partition(b"\r\n\r\n")
print(len(body), hashlib.sha256(body).hexdigest())
"#;

/// A body far larger than the socket buffers, over TLS 1.2 and 1.3, to a client that reads
/// late: the proxy's records wait for the socket again and again, and each time the socket
/// drains the rest must follow (curl reads it too, as fast as it can).
#[test]
fn a_large_download_over_tls_arrives_whole() {
    let pki = Pki::new("large");
    let body: Vec<u8> = (0..6_000_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let mut answer =
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    answer.extend_from_slice(&body);
    let b = Backend::start(move |_| util::Reply::Raw(answer.clone()));
    let p = TlsProxy::start(&pki, TLS_INI, &[b.addr]);
    let port = p.tls.port();
    let want = {
        let out = run(
            Command::new("python3").args([
                "-c",
                "import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())",
            ]),
            &body,
        );
        format!(
            "{} {}",
            body.len(),
            String::from_utf8_lossy(&out.stdout).trim()
        )
    };
    for v in ["1.2", "1.3"] {
        let out = run(
            Command::new("python3").args([
                "-c",
                PY_SLOW_READER,
                &port.to_string(),
                &pki.path("ca.pem"),
                v,
            ]),
            b"",
        );
        let got = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            got.trim(),
            want,
            "TLS {v}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let file = pki.path(&format!("download-{v}.bin"));
        let (tls_min, tls_max) = (format!("--tlsv{v}"), v.to_string());
        let url = format!("https://a.test:{port}/big");
        let args = [tls_min.as_str(), "--tls-max", &tls_max, "-o", &file, &url];
        let (_, err) = curl(&pki, port, &args);
        let got = std::fs::read(&file).unwrap_or_default();
        assert!(
            got == body,
            "TLS {v}: curl got {} of {} bytes; {err}",
            got.len(),
            body.len()
        );
    }
}

/// A Python `ssl` client: SNI, the certificate it got, and pipelined requests.
const PY_CLIENT: &str = r#"
import json, socket, ssl, sys
port, ca, sni = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                    server_hostname=sni if sni != "-" else None)
cn = dict(x[0] for x in s.getpeercert()["subject"])["commonName"]
reqs = b"GET /p1 HTTP/1.1\r\nHost: x\r\n\r\n" \
       b"POST /p2 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello" \
       b"GET /p3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
s.sendall(reqs)
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
print(json.dumps({"cn": cn, "version": s.version(), "alpn": s.selected_alpn_protocol(),
                  "responses": data.decode()}))
"#;

fn python(pki: &Pki, port: u16, sni: &str, alpn: bool) -> serde_free::Json {
    let script = if alpn {
        PY_CLIENT.replace(
            "ctx.check_hostname = False",
            "ctx.check_hostname = False\nctx.set_alpn_protocols([\"h2\", \"http/1.1\"])",
        )
    } else {
        PY_CLIENT.to_string()
    };
    let out = run(
        Command::new("python3")
            .arg("-c")
            .arg(&script)
            .arg(port.to_string())
            .arg(pki.path("ca.pem"))
            .arg(sni),
        b"",
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python ssl client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_free::Json(text)
}

/// Just enough JSON reading for the Python client's one-line answer.
mod serde_free {
    pub struct Json(pub String);
    impl Json {
        pub fn get(&self, key: &str) -> String {
            let pat = format!("\"{key}\": \"");
            let start = self.0.find(&pat).map(|i| i + pat.len());
            let start = start.unwrap_or_else(|| panic!("no {key} in {}", self.0));
            let rest = &self.0[start..];
            let mut out = String::new();
            let mut chars = rest.chars();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => match chars.next() {
                        Some('r') => out.push('\r'),
                        Some('n') => out.push('\n'),
                        Some(o) => out.push(o),
                        None => break,
                    },
                    c => out.push(c),
                }
            }
            out
        }
    }
}

#[test]
fn python_ssl_pipelines_and_sni_picks_the_certificate() {
    let pki = Pki::new("py");
    let b = echo_backend();
    let p = TlsProxy::start(&pki, TLS_INI, &[b.addr]);
    let port = p.tls.port();
    let r = python(&pki, port, "b.test", true);
    assert_eq!(r.get("cn"), "b", "SNI b.test gets the b certificate");
    assert_eq!(r.get("version"), "TLSv1.3");
    assert_eq!(r.get("alpn"), "http/1.1", "h2 is not offered");
    let responses = r.get("responses");
    let bodies: Vec<&str> = responses
        .split("\r\n\r\n")
        .skip(1)
        .map(|s| s.split("HTTP/1.1").next().unwrap_or(""))
        .collect();
    assert_eq!(
        bodies,
        [
            "GET /p1 len=0 proto=https",
            "POST /p2 len=5 proto=https",
            "GET /p3 len=0 proto=https"
        ],
        "{responses}"
    );
    // An unknown name and no name at all get the first certificate.
    assert_eq!(python(&pki, port, "nobody.test", false).get("cn"), "a");
    assert_eq!(python(&pki, port, "-", false).get("cn"), "a");
    assert_eq!(python(&pki, port, "a.test", false).get("cn"), "a");
}

fn s_client(p: &TlsProxy, pki: &Pki, extra: &[&str], input: &[u8]) -> (bool, String) {
    let connect = p.tls.to_string();
    let ca = pki.path("ca.pem");
    let out = run(
        Command::new("openssl")
            .args(["s_client", "-connect", &connect, "-CAfile", &ca])
            .args(["-verify_return_error", "-ign_eof"])
            .args(extra),
        input,
    );
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn openssl_s_client_gets_the_sni_certificate_and_tls_1_1_is_refused() {
    let pki = Pki::new("s_client");
    let b = echo_backend();
    let p = TlsProxy::start(&pki, TLS_INI, &[b.addr]);
    let get = b"GET /s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let (okk, out) = s_client(&p, &pki, &["-servername", "b.test", "-tls1_3"], get);
    assert!(okk, "{out}");
    assert!(
        out.contains("subject=CN = b") || out.contains("subject=CN=b"),
        "{out}"
    );
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    assert!(out.contains("GET /s len=0 proto=https"), "{out}");
    let (okk, out) = s_client(&p, &pki, &["-servername", "a.test", "-tls1_2"], get);
    assert!(okk && out.contains("TLSv1.2"), "{out}");
    assert!(out.contains("GET /s len=0 proto=https"), "{out}");
    // TLS 1.1, allowed on the client side (OpenSSL 3 refuses it at its default level).
    let before = p.failures("client", "version");
    let (okk, out) = s_client(&p, &pki, &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"], get);
    assert!(!okk, "TLS 1.1 must fail: {out}");
    assert!(!out.contains("proto=https"), "{out}");
    assert!(
        wait_until(|| p.failures("client", "version") == before + 1.0),
        "the refusal is counted as reason=version"
    );
}

#[test]
fn plain_http_to_the_tls_port_is_closed_and_counted() {
    let pki = Pki::new("plain");
    let b = echo_backend();
    let p = TlsProxy::start(&pki, TLS_INI, &[b.addr]);
    let mut s = TcpStream::connect(p.tls).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let r = s.read_to_end(&mut got);
    assert!(
        r.is_ok() || got.is_empty(),
        "closed (EOF or reset), not left hanging: {r:?}"
    );
    assert!(
        !String::from_utf8_lossy(&got).contains("HTTP/1.1"),
        "{got:?}"
    );
    assert!(wait_until(|| p.failures("client", "plain_http") == 1.0));
    assert_eq!(b.count(), 0, "nothing reached the backend");
}

#[test]
fn a_client_stalled_mid_handshake_is_cut_at_the_timeout_while_others_are_served() {
    let pki = Pki::new("stall");
    let b = echo_backend();
    let ini = format!("{TLS_INI}handshake_timeout=700ms\n");
    let p = TlsProxy::start(&pki, &ini, &[b.addr]);
    // Half a ClientHello record header, then nothing.
    let mut stalled = TcpStream::connect(p.tls).unwrap();
    stalled.write_all(&[0x16, 0x03, 0x01, 0x02]).unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let silent = TcpStream::connect(p.tls).unwrap();
    let started = Instant::now();
    // Others are served meanwhile.
    for i in 0..3 {
        let (out, err) = curl(
            &pki,
            p.tls.port(),
            &[&format!("https://a.test:{}/x{i}", p.tls.port())],
        );
        assert_eq!(out, format!("GET /x{i} len=0 proto=https"), "{err}");
    }
    let mut buf = [0u8; 64];
    let r = stalled.read(&mut buf);
    let waited = started.elapsed();
    assert!(
        matches!(r, Ok(0))
            || matches!(r, Err(ref e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "closed: {r:?}"
    );
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_secs(4),
        "cut at the handshake timeout, after {waited:?}"
    );
    assert!(wait_until(|| p.failures("client", "timeout") == 2.0));
    drop(silent);
}

#[test]
fn websocket_over_tls_relays_messages() {
    let pki = Pki::new("wss");
    let echo = wsutil::EchoBackend::start();
    let ini = "[websocket]\nserver1={b0}\n\
               [tls]\nport=0\ncert={pki}/a.pem\nkey={pki}/a.key\n";
    let p = TlsProxy::start(&pki, ini, &[echo.addr]);
    let stream = tls_connect(p.tls, &pki.path("ca.pem"), "a.test");
    let url = format!("wss://a.test:{}/echo", p.tls.port());
    let (mut ws, resp) = tungstenite::client::client(url.as_str(), stream)
        .unwrap_or_else(|e| panic!("WSS handshake through the proxy failed: {e}"));
    assert_eq!(resp.status(), 101);
    for n in [5usize, 70_000, 1 << 20] {
        let text: String = (0..n).map(|i| (b'a' + (i % 26) as u8) as char).collect();
        ws.send(Message::text(text.clone())).unwrap();
        let reply = loop {
            match ws.read().expect("an echo") {
                Message::Ping(_) | Message::Pong(_) => {}
                m => break m,
            }
        };
        match reply {
            Message::Text(t) => assert!(t.as_str() == text, "{n} bytes came back changed"),
            m => panic!("{n} bytes came back as {m:?}"),
        }
    }
    assert_eq!(
        echo.shared.header(0, "X-Forwarded-Proto").as_deref(),
        Some("https")
    );
    ws.close(None).unwrap();
    let _ = ws.read();
}

#[test]
fn certificates_are_reloaded_on_sighup_and_a_bad_pair_keeps_the_old_one() {
    let pki = Pki::new("reload");
    let b = echo_backend();
    let tls_port = util::free_port();
    // The served pair is a copy the test replaces.
    let (cert, key) = (pki.path("live.pem"), pki.path("live.key"));
    std::fs::copy(pki.path("a.pem"), &cert).unwrap();
    std::fs::copy(pki.path("a.key"), &key).unwrap();
    let ini = format!(
        "[http]\nserver1={{b0}}\nenable_health_check=false\n\
         [tls]\nport={tls_port}\ncert={cert}\nkey={key}\n"
    );
    let p = util::ProxyProcess::start(&ini, &[b.addr]);
    let tls = std::net::SocketAddr::from(([127, 0, 0, 1], tls_port));
    assert!(wait_until(|| TcpStream::connect(tls).is_ok()));
    let served_cn = || {
        let out = run(
            Command::new("openssl").args([
                "s_client",
                "-connect",
                &tls.to_string(),
                "-servername",
                "b.test",
            ]),
            b"",
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .find(|l| l.starts_with("subject="))
            .map(|l| l.trim_start_matches("subject=").replace(' ', ""))
            .unwrap_or_default()
    };
    assert_eq!(served_cn(), "CN=a");
    // A mismatched pair (b's certificate, a's key): logged, the old one stays.
    std::fs::copy(pki.path("b.pem"), &cert).unwrap();
    p.signal("HUP");
    assert!(
        wait_until(|| p.stderr().contains("[tls] reload failed")),
        "{}",
        p.stderr()
    );
    assert_eq!(served_cn(), "CN=a");
    // The matching key: new connections get the new certificate.
    std::fs::copy(pki.path("b.key"), &key).unwrap();
    p.signal("HUP");
    assert!(wait_until(|| served_cn() == "CN=b"), "{}", p.stderr());
    let (out, err) = curl(
        &pki,
        tls_port,
        &[
            "--resolve",
            &format!("b.test:{tls_port}:127.0.0.1"),
            &format!("https://b.test:{tls_port}/r"),
        ],
    );
    assert_eq!(out, "GET /r len=0 proto=https", "{err}");
}

#[test]
fn check_loads_and_matches_every_pair_and_names_the_wrong_one() {
    let pki = Pki::new("check");
    let ini = pki.ini(
        "[http]\nserver1=127.0.0.1:1\n[tls]\nport=8443\ncert={pki}/a.pem\nkey={pki}/a.key\n\
         cert2={pki}/b.pem,{pki}/a.key\n",
    );
    let path = pki.path("check.ini");
    std::fs::write(&path, &ini).unwrap();
    let check = |path: &str| {
        run(
            Command::new(env!("CARGO_BIN_EXE_sluice")).args(["--check", "--config", path]),
            b"",
        )
    };
    let out = check(&path);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("[tls] cert2"), "names the pair: {err}");
    let good = pki.ini(&ini).replace(
        &pki.ini("{pki}/b.pem,{pki}/a.key"),
        &pki.ini("{pki}/b.pem,{pki}/b.key"),
    );
    std::fs::write(&path, good).unwrap();
    let out = check(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration OK"));
}
