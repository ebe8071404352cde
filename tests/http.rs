//! End-to-end HTTP/1.1 semantics through sluice (issue 3): keep-alive, pipelining,
//! HTTP/1.0, bodies both ways, 100-continue, bodiless responses, header handling,
//! X-Forwarded-*, absolute-form targets, the seed's example configuration and curl.
mod util;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use util::*;

/// One server, default pool settings.
fn proxy1(b: SocketAddr) -> Proxy {
    Proxy::start("[http]\nserver1_addr={b0}\n", &[b])
}

/// A backend answering `<METHOD> <target> <body length>`.
fn echo() -> Backend {
    Backend::start(|r| ok(&format!("{} {} {}", r.method, r.target, r.body.len())))
}

#[test]
fn keep_alive_reuses_one_backend_connection() {
    let b = echo();
    let p = proxy1(b.addr);
    let mut c = Client::connect(p.addr);
    for i in 0..20 {
        let r = c.get(&format!("/k{i}"));
        assert_eq!((r.status, r.text()), (200, format!("GET /k{i} 0")));
    }
    // New client connections reuse the same pooled backend connection too.
    for i in 0..5 {
        let r = get(p.addr, &format!("/n{i}"));
        assert_eq!((r.status, r.text()), (200, format!("GET /n{i} 0")));
    }
    assert_eq!(b.count(), 25);
    assert_eq!(
        b.accepted(),
        1,
        "min_workers=1 and sequential requests: one connection"
    );
    assert!(b.requests().iter().all(|r| r.conn == 0));
}

#[test]
fn pipelined_requests_answered_in_order() {
    let b = Backend::start(|r| {
        // The first one is slow so a proxy answering out of order would show it.
        let reply = ok(&format!("answer to {}", r.target));
        if r.target == "/one" {
            Reply::Delay(Duration::from_millis(100), Box::new(reply))
        } else {
            reply
        }
    });
    let p = proxy1(b.addr);
    let mut c = Client::connect(p.addr);
    c.send(
        b"GET /one HTTP/1.1\r\nHost: t\r\n\r\nGET /two HTTP/1.1\r\nHost: t\r\n\r\n\
          POST /three HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello",
    );
    for want in ["/one", "/two", "/three"] {
        let r = c.read_response(false).expect("pipelined response");
        assert_eq!((r.status, r.text()), (200, format!("answer to {want}")));
    }
    let seen = b.requests();
    let targets: Vec<&str> = seen.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(targets, ["/one", "/two", "/three"]);
    assert_eq!(seen[2].body, b"hello");
    // Still usable afterwards.
    assert_eq!(c.get("/four").text(), "answer to /four");
}

#[test]
fn http10_client_without_host() {
    let b = echo();
    let p = proxy1(b.addr);
    let mut c = Client::connect(p.addr);
    c.send(b"GET /old?x=1 HTTP/1.0\r\nUser-Agent: ancient\r\n\r\n");
    let r = c.read_response(false).expect("response");
    assert_eq!((r.status, r.text()), (200, "GET /old?x=1 0".to_string()));
    assert_eq!(r.header("connection"), Some("close"));
    assert!(
        c.closed(),
        "an HTTP/1.0 request without keep-alive ends the connection"
    );
    let seen = &b.requests()[0];
    // Forwarded as 1.0 so the backend never answers with chunked framing the client
    // cannot read (protocol::h1::write_request_head), on a kept-alive pooled connection.
    assert_eq!(seen.version, "HTTP/1.0");
    assert_eq!(seen.header("connection"), Some("keep-alive"));
    assert_eq!(
        seen.header("host"),
        Some(b.addr.to_string().as_str()),
        "backend got a Host"
    );
    assert_eq!(seen.header("user-agent"), Some("ancient"));
}

#[test]
fn http10_keep_alive_client() {
    let b = echo();
    let p = proxy1(b.addr);
    let mut c = Client::connect(p.addr);
    for _ in 0..2 {
        c.send(b"GET /ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
        let r = c.read_response(false).expect("response");
        assert_eq!((r.status, r.text()), (200, "GET /ka 0".to_string()));
        assert_eq!(r.header("connection"), Some("keep-alive"));
    }
}

#[test]
fn content_length_bodies_both_ways() {
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let resp_len = 500_000usize;
    let b = Backend::start(move |r| {
        let sum: u64 = r.body.iter().map(|&x| x as u64).sum();
        let payload: Vec<u8> = (0..resp_len).map(|i| (i % 253) as u8).collect();
        let mut out = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {resp_len}\r\nX-Sum: {sum}\r\nX-Len: {}\r\n\r\n",
            r.body.len()
        )
        .into_bytes();
        out.extend_from_slice(&payload);
        Reply::Raw(out)
    });
    let p = proxy1(b.addr);
    let mut c = Client::connect(p.addr);
    for _ in 0..2 {
        c.send(
            format!(
                "PUT /up HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        );
        c.send(&body);
        let r = c.read_response(false).expect("response");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-len"), Some("300000"));
        let sum: u64 = body.iter().map(|&x| x as u64).sum();
        assert_eq!(r.header("x-sum"), Some(sum.to_string().as_str()));
        assert_eq!(r.body.len(), resp_len);
        assert!(r
            .body
            .iter()
            .enumerate()
            .all(|(i, &x)| x == (i % 253) as u8));
    }
    assert_eq!(b.requests()[0].body, body);
}

#[test]
fn chunked_bodies_pass_through_unchanged() {
    let resp_body = b"7\r\nchunked\r\n1;ext=1\r\n \r\n8\r\nresponse\r\n0\r\n\r\n";
    let b = Backend::start(move |_| {
        let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        out.extend_from_slice(resp_body);
        Reply::Raw(out)
    });
    let p = proxy1(b.addr);
    let mut c = Client::connect(p.addr);
    let req_body = b"5\r\nhello\r\n1\r\n \r\nA;name=value\r\n0123456789\r\n0\r\n\r\n";
    c.send(b"POST /chunks HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    // In pieces, so the proxy sees the framing split anywhere.
    for piece in req_body.chunks(7) {
        c.send(piece);
        std::thread::sleep(Duration::from_millis(2));
    }
    let (status, headers) = c.read_head().expect("head");
    assert_eq!(status, 200);
    assert!(headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v == "chunked"));
    assert_eq!(
        c.read_raw(resp_body.len()).unwrap(),
        resp_body,
        "response framing passed byte for byte"
    );
    let seen = &b.requests()[0];
    assert_eq!(seen.header("transfer-encoding"), Some("chunked"));
    assert_eq!(seen.body, b"hello 0123456789");
    assert_eq!(
        seen.raw_body, req_body,
        "request framing passed byte for byte"
    );
    // The connection still works (the chunked response was delimited exactly).
    assert_eq!(c.get("/after").status, 200);
}

#[test]
fn transfer_coding_gzip_then_chunked_is_forwarded() {
    let b = echo();
    let p = proxy1(b.addr);
    let mut c = Client::connect(p.addr);
    c.send(b"POST /gz HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!((r.status, r.text()), (200, "POST /gz 3".to_string()));
    assert_eq!(
        b.requests()[0].header("transfer-encoding"),
        Some("gzip, chunked")
    );
}

#[test]
fn expect_100_continue() {
    // A backend that answers 100 Continue before reading the body, as servers do.
    let b = RawBackend::start(|mut s, _, stop: &AtomicBool| {
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let Some(head) = read_head_raw(&mut s, stop) else {
            return;
        };
        assert_eq!(head_value(&head, "expect"), Some("100-continue"));
        let len: usize = head_value(&head, "content-length")
            .unwrap()
            .parse()
            .unwrap();
        s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").unwrap();
        let mut body = vec![0; len];
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.read_exact(&mut body).unwrap();
        let reply = format!(
            "HTTP/1.1 201 Created\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(reply.as_bytes()).unwrap();
        s.write_all(&body).unwrap();
        let _ = read_head_raw(&mut s, stop);
    });
    let p = proxy1(b.addr);
    let mut c = Client::connect(p.addr);
    c.send(
        b"POST /upload HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n",
    );
    // The client waits for the interim response before sending the body.
    let interim = c.read_response(false).expect("interim response");
    assert_eq!(interim.status, 100);
    c.send(b"hello world");
    let r = c.read_response(false).expect("final response");
    assert_eq!((r.status, r.text()), (201, "hello world".to_string()));
}

#[test]
fn head_204_304_have_no_body_and_keep_the_connection() {
    let b = Backend::start(|r| match r.target.as_str() {
        "/head" => {
            Reply::Raw(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nX-Head: yes\r\n\r\n".to_vec())
        }
        "/204" => Reply::Raw(b"HTTP/1.1 204 No Content\r\nX-Empty: 1\r\n\r\n".to_vec()),
        "/304" => Reply::Raw(
            b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 99\r\n\r\n".to_vec(),
        ),
        t => ok(&format!("body of {t}")),
    });
    let p = proxy1(b.addr);
    let mut c = Client::connect(p.addr);
    for round in 0..2 {
        c.send(b"HEAD /head HTTP/1.1\r\nHost: t\r\n\r\n");
        let r = c.read_response(true).unwrap();
        assert_eq!(
            (r.status, r.header("content-length"), r.header("x-head")),
            (200, Some("1234"), Some("yes"))
        );
        assert_eq!(c.get("/204").status, 204);
        let r = c.get("/304");
        assert_eq!((r.status, r.header("etag")), (304, Some("\"v1\"")));
        // A body-carrying response right after: any stray byte would corrupt it.
        let r = c.get(&format!("/after{round}"));
        assert_eq!(
            (r.status, r.text()),
            (200, format!("body of /after{round}"))
        );
    }
    assert_eq!(
        b.accepted(),
        1,
        "bodiless responses leave the backend connection reusable"
    );
}

#[test]
fn target_header_order_case_and_host_preserved() {
    let b = echo();
    let p = proxy1(b.addr);
    let mut c = Client::connect(p.addr);
    c.send(
        b"GET /a/b%20c?x=1&y=two&x=3 HTTP/1.1\r\nHost: Example.COM:8080\r\nX-Zeta: 1\r\n\
          x-alpha: Two  words\r\nACCEPT: */*\r\nX-Zeta: again\r\nCookie: a=1; b=2\r\n\r\n",
    );
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 200);
    let seen = &b.requests()[0];
    assert_eq!(seen.target, "/a/b%20c?x=1&y=two&x=3");
    let names: Vec<&str> = seen
        .headers
        .iter()
        .map(|(n, _)| n.as_str())
        .take(6)
        .collect();
    assert_eq!(
        names,
        ["Host", "X-Zeta", "x-alpha", "ACCEPT", "X-Zeta", "Cookie"]
    );
    let values: Vec<&str> = seen
        .headers
        .iter()
        .map(|(_, v)| v.as_str())
        .take(6)
        .collect();
    assert_eq!(
        values,
        [
            "Example.COM:8080",
            "1",
            "Two  words",
            "*/*",
            "again",
            "a=1; b=2"
        ]
    );
}

#[test]
fn hop_by_hop_headers_removed_both_ways() {
    let b = Backend::start(|_| {
        Reply::Raw(
            b"HTTP/1.1 200 OK\r\nConnection: X-Backend-Secret, keep-alive\r\nX-Backend-Secret: s\r\n\
              Keep-Alive: timeout=30\r\nProxy-Connection: keep-alive\r\nX-End: kept\r\nContent-Length: 2\r\n\r\nok"
                .to_vec(),
        )
    });
    let p = proxy1(b.addr);
    let mut c = Client::connect(p.addr);
    c.send(
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: keep-alive, X-Secret, Upgrade\r\nX-Secret: hidden\r\n\
          Keep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\nUpgrade: h2c\r\n\
          Trailer: X-T\r\nX-Kept: yes\r\n\r\n",
    );
    let r = c.read_response(false).unwrap();
    assert_eq!((r.status, r.text()), (200, "ok".to_string()));
    for gone in [
        "connection",
        "x-backend-secret",
        "keep-alive",
        "proxy-connection",
    ] {
        assert_eq!(r.header(gone), None, "{gone} reached the client");
    }
    assert_eq!(r.header("x-end"), Some("kept"));
    let seen = &b.requests()[0];
    for gone in [
        "connection",
        "x-secret",
        "keep-alive",
        "te",
        "proxy-connection",
        "upgrade",
        "trailer",
    ] {
        assert_eq!(seen.header(gone), None, "{gone} reached the backend");
    }
    assert_eq!(seen.header("x-kept"), Some("yes"));
    // The client asked for keep-alive: still open.
    assert_eq!(c.get("/again").status, 200);
}

#[test]
fn x_forwarded_headers() {
    let b = echo();
    let p = proxy1(b.addr);
    let mut c = Client::connect(p.addr);
    c.send(
        b"GET / HTTP/1.1\r\nHost: shop.example\r\nX-Forwarded-For: 10.1.2.3\r\n\
          X-Forwarded-Proto: https\r\nX-Forwarded-Host: spoofed\r\n\r\n",
    );
    assert_eq!(c.read_response(false).unwrap().status, 200);
    c.send(b"GET / HTTP/1.1\r\nHost: plain.example\r\n\r\n");
    assert_eq!(c.read_response(false).unwrap().status, 200);
    let seen = b.requests();
    assert_eq!(
        seen[0].header("x-forwarded-for"),
        Some("10.1.2.3, 127.0.0.1")
    );
    assert_eq!(seen[0].header("x-forwarded-proto"), Some("http"));
    assert_eq!(seen[0].header("x-forwarded-host"), Some("shop.example"));
    let count = |r: &SeenRequest, n: &str| {
        r.headers
            .iter()
            .filter(|(h, _)| h.eq_ignore_ascii_case(n))
            .count()
    };
    assert_eq!(count(&seen[0], "x-forwarded-for"), 1);
    assert_eq!(count(&seen[0], "x-forwarded-host"), 1);
    assert_eq!(seen[1].header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(seen[1].header("x-forwarded-host"), Some("plain.example"));
}

#[test]
fn absolute_form_target_never_reaches_another_host() {
    let configured = echo();
    let other = Backend::hello("not configured");
    let p = proxy1(configured.addr);
    let mut c = Client::connect(p.addr);
    let req = format!(
        "GET http://{0}/secret HTTP/1.1\r\nHost: {0}\r\n\r\n",
        other.addr
    );
    c.send(req.as_bytes());
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        r.text(),
        format!("GET http://{}/secret 0", other.addr),
        "served by the configured server"
    );
    // Any connection sluice made to `other` came before the answer, so before the
    // test's own direct connection: it would be accepted first.
    assert_eq!(
        other.connections_before_ours(),
        0,
        "the absolute-form host was contacted"
    );
    assert_eq!(other.count(), 1, "only the test's own request reached it");
}

/// The example configuration of the seed's README (the `ini` block), kept in the
/// repository: tests read only files of the repository.
const SEED_EXAMPLE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/seed.ini"));

#[test]
fn seed_readme_example_config_loads_and_serves() {
    let ini = SEED_EXAMPLE;
    let backends = [
        Backend::hello("es1"),
        Backend::hello("es2"),
        Backend::hello("es3"),
    ];
    let addrs: Vec<SocketAddr> = backends.iter().map(|b| b.addr).collect();
    let resolve = move |host: &str, port: u16| -> Result<SocketAddr, String> {
        assert_eq!(port, 8080, "the example uses port 8080 everywhere");
        match host {
            "es1_hc" => Ok(addrs[0]),
            "es2_hc" => Ok(addrs[1]),
            "es3_hc" => Ok(addrs[2]),
            "rp_v11" => Ok("127.0.0.1:0".parse().unwrap()),
            other => Err(format!("unknown host {other}")),
        }
    };
    let mut cfg = sluice::config::parse(ini, "README.ini", &resolve)
        .expect("the seed's example loads unchanged");
    cfg.log.level = log::LevelFilter::Warn;
    cfg.log.access_log = sluice::config::AccessLogDest::Off;
    assert_eq!(cfg.http.servers.len(), 3);
    assert_eq!(cfg.http.servers[0].min_workers, 3);
    assert_eq!(cfg.http.servers[0].max_workers, 10);
    assert_eq!(cfg.websocket.servers.len(), 3);
    let p = Proxy::from_config(cfg);
    let mut counts = [0usize; 3];
    for i in 0..30 {
        let mut c = Client::connect(p.addr);
        let r = c.get(&format!("/page{i}"));
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
        let n = ["hello from es1", "hello from es2", "hello from es3"]
            .iter()
            .position(|&t| t == r.text())
            .unwrap_or_else(|| panic!("unexpected body {:?}", r.text()));
        counts[n] += 1;
    }
    assert!(
        counts.iter().all(|&n| n > 0),
        "random spread over all three: {counts:?}"
    );
    // min_workers=3 per server were opened.
    for b in &backends {
        assert!(
            wait_until(|| b.accepted() >= 3),
            "pool of 3 opened, got {}",
            b.accepted()
        );
    }
}

/// curl, the independent HTTP client; a missing one fails the test (a test that
/// passes without running proves nothing).
#[track_caller]
fn require_curl() {
    let found = std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "curl not found: install it (apt-get install curl) or run ./scripts/test, which installs it"
    );
}

#[test]
fn curl_keep_alive_over_two_urls() {
    require_curl();
    let b = echo();
    let p = proxy1(b.addr);
    let base = format!("http://{}", p.addr);
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "10",
            "-w",
            " connects=%{num_connects} code=%{http_code}\\n",
        ])
        .arg(format!("{base}/first?q=1"))
        .arg(format!("{base}/second"))
        .output()
        .expect("run curl");
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text, "GET /first?q=1 0 connects=1 code=200\nGET /second 0 connects=0 code=200\n",
        "second URL reused the connection"
    );
    // An upload through curl too.
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "10",
            "--data-binary",
            "@-",
            "-H",
            "Expect:",
        ])
        .arg(format!("{base}/post"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(&[b'x'; 70_000])?;
            child.wait_with_output()
        })
        .expect("run curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "POST /post 70000");
    assert_eq!(b.accepted(), 1);
}

#[test]
fn final_response_before_the_body_closes_the_exchange_cleanly() {
    // RFC 9110 §10.1.1: a server may answer an Expect: 100-continue request with a
    // final status and never read the body.
    let b = RawBackend::start(|mut s, _, stop: &AtomicBool| {
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        while let Some(head) = read_head_raw(&mut s, stop) {
            let reply: &[u8] = if head.starts_with("POST") {
                b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 4\r\n\r\nnope"
            } else {
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
            };
            if s.write_all(reply).is_err() {
                return;
            }
        }
    });
    let p = proxy1(b.addr);
    let mut c = Client::connect(p.addr);
    c.send(b"POST /x HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    let r = c
        .read_response(false)
        .expect("the final response arrives without the body");
    assert_eq!((r.status, r.text()), (417, "nope".to_string()));
    // The request was never completed: sluice cannot tell the body from a next
    // request, so the connection must end rather than hang or misparse.
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed());
    assert_eq!(get(p.addr, "/").text(), "ok");
}

#[test]
fn client_idle_timeout_closes_idle_keep_alive_clients_but_not_busy_ones() {
    const IDLE: Duration = Duration::from_millis(300);
    let b = Backend::start(|r| {
        if r.target == "/slow" {
            // Three times client_idle_timeout before the answer.
            Reply::Delay(3 * IDLE, Box::new(ok("slow answer")))
        } else {
            ok(&r.target)
        }
    });
    let p = Proxy::start(
        &format!(
            "[frontend]\nhost=127.0.0.1\nport=0\nclient_idle_timeout={}ms\n\n[http]\nserver1_addr={{b0}}\n",
            IDLE.as_millis()
        ),
        &[b.addr],
    );
    // Idle after a response: closed after client_idle_timeout, not before. The clock
    // starts before the request is sent, so the idle deadline (set when the response
    // was done) is later than `sent + IDLE`.
    let mut c = Client::connect(p.addr);
    let sent = std::time::Instant::now();
    assert_eq!(c.get("/first").text(), "/first");
    assert!(c.closed(), "an idle keep-alive client was never closed");
    let idle = sent.elapsed();
    assert!(idle >= IDLE, "closed after {idle:?}, before {IDLE:?}");
    // A client that connects and never sends anything is idle as well.
    let mut quiet = Client::connect(p.addr);
    let opened = std::time::Instant::now();
    assert!(quiet.closed(), "a silent client was never closed");
    assert!(
        opened.elapsed() >= IDLE,
        "closed after {:?}",
        opened.elapsed()
    );
    // A client waiting for a response is not idle: the answer comes after three
    // idle timeouts, and the connection is still usable after it.
    let mut busy = Client::connect(p.addr);
    let r = busy.get("/slow");
    assert_eq!((r.status, r.text()), (200, "slow answer".to_string()));
    assert_eq!(busy.get("/after").text(), "/after");
}
