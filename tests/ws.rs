//! Issue 4, the upgrade and the relay, end to end over 127.0.0.1 with tungstenite as
//! the independent peer (raw frames where tungstenite will not produce the bytes).
//! Failure semantics are in `ws_fail.rs`, scale and memory in `ws_scale.rs`.

mod util;
mod wsutil;

use std::io::Write;
use std::time::{Duration, Instant};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::Message;
use util::{Backend, Client, Proxy};
use wsutil::*;

fn echo_proxy() -> (EchoBackend, Proxy) {
    let b = EchoBackend::start();
    let p = Proxy::start(&ws_ini(""), &[b.addr]);
    (b, p)
}

#[test]
fn messages_of_every_size_are_echoed_intact_with_their_type() {
    let (_b, p) = echo_proxy();
    let (mut ws, _) = ws_connect(p.addr, "/echo", &[]);
    for n in [0, 125, 126, 65535, 65536, 1 << 20] {
        let text = pattern(n);
        ws.send(Message::text(text.clone())).unwrap();
        match next_msg(&mut ws) {
            Message::Text(t) => assert!(t.as_str() == text, "text of {n} bytes came back changed"),
            m => panic!("text of {n} bytes came back as {m:?}"),
        }
        let bin: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
        ws.send(Message::binary(bin.clone())).unwrap();
        match next_msg(&mut ws) {
            Message::Binary(b) => {
                assert!(b[..] == bin[..], "binary of {n} bytes came back changed")
            }
            m => panic!(
                "binary of {n} bytes came back as {:?}",
                std::mem::discriminant(&m)
            ),
        }
    }
    ws.close(None).unwrap();
    // The backend's echo of the empty Close.
    assert_eq!(expect_close_or_end(&mut ws), Some((0, String::new())));
}

/// After a client-initiated close, reads until the end (the echo of our Close).
fn expect_close_or_end(ws: &mut Ws) -> Option<(u16, String)> {
    let end = Instant::now() + WAIT;
    while Instant::now() < end {
        match ws.read() {
            Ok(Message::Close(f)) => {
                return Some(f.map_or((0, String::new()), |f| {
                    (f.code.into(), f.reason.to_string())
                }))
            }
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

#[test]
fn fragmented_messages_pass_byte_for_byte() {
    // Client -> backend: a text message in three fragments with a Ping between them.
    let up: Vec<u8> = [
        frame(false, 0, 1, b"Hel", MASK),
        frame(true, 0, 9, b"mid", MASK),
        frame(false, 0, 0, b"lo ", MASK),
        frame(true, 0, 0, b"world", MASK),
    ]
    .concat();
    // Backend -> client: a binary message in two fragments.
    let down: Vec<u8> = [
        frame(false, 0, 2, &[1, 2, 3], None),
        frame(true, 0, 0, &[4, 5], None),
    ]
    .concat();
    let (want_up, down2) = (up.clone(), down.clone());
    let b = RawBackend::start(
        |h| accept_101(h, ""),
        move |mut s, _| {
            let mut got = vec![0u8; want_up.len()];
            if std::io::Read::read_exact(&mut s, &mut got).is_ok() && got == want_up {
                let _ = s.write_all(&down2);
            }
            let _ = read_frame(&mut s); // hold until the client closes
        },
    );
    let p = Proxy::start(&ws_ini(""), &[b.addr]);
    let (mut s, head) = raw_upgrade(p.addr, "/frag", "");
    assert_eq!(status(&head), 101, "{head}");
    s.write_all(&up).unwrap();
    let mut got = vec![0u8; down.len()];
    std::io::Read::read_exact(&mut s, &mut got)
        .expect("the backend saw the fragments unchanged and answered");
    assert_eq!(got, down);

    // The same fragments to a tungstenite backend arrive as one message.
    let (_e, p2) = echo_proxy();
    let (mut s, head) = raw_upgrade(p2.addr, "/frag", "");
    assert_eq!(status(&head), 101);
    s.write_all(&up).unwrap();
    // tungstenite answers the interleaved Ping first, then echoes the whole message.
    let pong = read_frame(&mut s).unwrap();
    assert_eq!((pong.opcode, pong.payload.as_slice()), (10, &b"mid"[..]));
    let f = read_frame(&mut s).unwrap();
    assert_eq!((f.fin, f.opcode, f.masked), (true, 1, false));
    assert_eq!(f.payload, b"Hello world");
}

#[test]
fn ping_and_pong_pass_both_ways() {
    let (b, p) = echo_proxy();
    let (mut ws, _) = ws_connect(p.addr, "/", &[]);
    // Client -> backend Ping, the backend's Pong comes back with the payload.
    ws.send(Message::Ping(b"from-client".to_vec().into()))
        .unwrap();
    let pong = loop {
        match ws.read().expect("pong") {
            Message::Pong(p) => break p,
            Message::Ping(_) => {}
            m => panic!("expected a Pong, got {m:?}"),
        }
    };
    assert_eq!(&pong[..], b"from-client");
    // Backend -> client Ping: tungstenite answers, the backend reports the Pong.
    ws.send(Message::text("cmd:ping:from-backend")).unwrap();
    let ping = match ws.read().expect("ping") {
        Message::Ping(p) => p,
        m => panic!("expected a Ping, got {m:?}"),
    };
    assert_eq!(&ping[..], b"from-backend");
    match next_msg(&mut ws) {
        Message::Text(t) => assert_eq!(t.as_str(), "got pong: from-backend"),
        m => panic!("{m:?}"),
    }
    assert!(b
        .shared
        .events()
        .contains(&Ev::Pong(0, b"from-backend".to_vec())));
}

#[test]
fn close_codes_and_reasons_are_relayed_both_ways() {
    // Client closes: the backend sees the code and reason, its echo comes back unchanged.
    let (b, p) = echo_proxy();
    let (mut ws, _) = ws_connect(p.addr, "/", &[]);
    let reason = "client bye \u{e9}\u{2603}";
    ws.close(Some(CloseFrame {
        code: CloseCode::from(4001),
        reason: reason.into(),
    }))
    .unwrap();
    assert_eq!(
        expect_close_or_end(&mut ws),
        Some((4001, reason.to_string()))
    );
    assert!(eventually(|| b.shared.ended(0)));
    assert_eq!(b.shared.closes(0), vec![Some((4001, reason.to_string()))]);

    // Backend closes: the client sees its code and reason, the backend gets the echo.
    let (mut ws, _) = ws_connect(p.addr, "/", &[]);
    ws.send(Message::text("cmd:close:1000:server done"))
        .unwrap();
    assert_eq!(expect_close(&mut ws), (1000, "server done".to_string()));
    assert!(eventually(|| b.shared.ended(1)));
    assert_eq!(
        b.shared.closes(1),
        vec![Some((1000, "server done".to_string()))]
    );

    // A Close without a payload passes as it is.
    let (mut s, head) = raw_upgrade(p.addr, "/", "");
    assert_eq!(status(&head), 101);
    s.write_all(&frame(true, 0, 8, b"", MASK)).unwrap();
    let f = read_frame(&mut s).unwrap();
    assert_eq!((f.opcode, f.payload.len()), (8, 0));
    assert!(eventually(|| b.shared.ended(2)));
    assert_eq!(b.shared.closes(2), vec![None]);
}

#[test]
fn subprotocol_is_negotiated_end_to_end() {
    let (b, p) = echo_proxy();
    let (mut ws, resp) = ws_connect(
        p.addr,
        "/chat",
        &[("Sec-WebSocket-Protocol", "chat.v1, chat.v2")],
    );
    assert_eq!(
        resp.headers()
            .get("sec-websocket-protocol")
            .map(|v| v.to_str().unwrap()),
        Some("chat.v2")
    );
    assert_eq!(
        b.shared.header(0, "sec-websocket-protocol").as_deref(),
        Some("chat.v1, chat.v2")
    );
    ws.send(Message::text("hi")).unwrap();
    assert_eq!(next_msg(&mut ws), Message::text("hi"));
}

#[test]
fn permessage_deflate_is_negotiated_end_to_end() {
    // RFC 7692 §7.2.3.1: "Hello" compressed, with RSV1 on the first frame.
    const HELLO: &[u8] = &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    let up = frame(true, 4, 1, HELLO, MASK);
    let down = [
        frame(false, 4, 1, &HELLO[..3], None),
        frame(true, 0, 0, &HELLO[3..], None),
    ]
    .concat();
    let (want_up, down2) = (up.clone(), down.clone());
    let b = RawBackend::start(
        |h| {
            let offered = head_header(h, "sec-websocket-extensions").unwrap_or_default();
            let ext = if offered.contains("permessage-deflate") {
                "Sec-WebSocket-Extensions: permessage-deflate\r\n"
            } else {
                ""
            };
            accept_101(h, ext)
        },
        move |mut s, _| {
            let mut got = vec![0u8; want_up.len()];
            if std::io::Read::read_exact(&mut s, &mut got).is_ok() && got == want_up {
                let _ = s.write_all(&down2);
            }
            let _ = read_frame(&mut s);
        },
    );
    let p = Proxy::start(&ws_ini(""), &[b.addr]);
    let offer = "permessage-deflate; client_max_window_bits";
    let (mut s, head) = raw_upgrade(
        p.addr,
        "/",
        &format!("Sec-WebSocket-Extensions: {offer}\r\n"),
    );
    assert_eq!(status(&head), 101, "{head}");
    assert_eq!(
        head_header(&head, "sec-websocket-extensions").as_deref(),
        Some("permessage-deflate")
    );
    assert_eq!(
        head_header(&b.heads()[0], "sec-websocket-extensions").as_deref(),
        Some(offer)
    );
    s.write_all(&up).unwrap();
    let mut got = vec![0u8; down.len()];
    std::io::Read::read_exact(&mut s, &mut got).expect("RSV1 frames relayed unchanged");
    assert_eq!(got, down);
}

#[test]
fn rsv1_without_negotiation_is_a_protocol_error() {
    let (b, p) = echo_proxy();
    let (mut s, head) = raw_upgrade(p.addr, "/", "");
    assert_eq!(status(&head), 101);
    s.write_all(&frame(true, 4, 1, b"zzz", MASK)).unwrap();
    assert_eq!(read_close(&mut s).0, 1002);
    assert!(eventually(|| b.shared.ended(0)));
    assert_eq!(
        b.shared
            .closes(0)
            .iter()
            .map(|c| c.as_ref().map(|c| c.0))
            .collect::<Vec<_>>(),
        vec![Some(1001)]
    );
}

#[test]
fn browser_style_headers_reach_the_backend() {
    let (b, p) = echo_proxy();
    let mut s = std::net::TcpStream::connect(p.addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let req = format!(
        "GET /socket?room=7&x=%20y HTTP/1.1\r\nHost: app.example\r\nConnection: keep-alive, Upgrade\r\n\
         Upgrade: WebSocket\r\nSec-WebSocket-Key: {KEY}\r\nsec-websocket-version: 13\r\n\
         Origin: https://app.example\r\nCookie: session=abc; theme=dark\r\nAuthorization: Bearer t0k\r\n\
         User-Agent: Mozilla/5.0\r\nX-Custom: kept\r\nPragma: no-cache\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let head = read_head(&mut s).unwrap();
    assert_eq!(status(&head), 101, "{head}");
    assert_eq!(
        head_header(&head, "sec-websocket-accept").as_deref(),
        Some(tungstenite::handshake::derive_accept_key(KEY.as_bytes()).as_str())
    );
    let reqs = b.shared.requests.lock().unwrap().clone();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].0, "/socket?room=7&x=%20y");
    let h = |n: &str| b.shared.header(0, n);
    assert_eq!(h("origin").as_deref(), Some("https://app.example"));
    assert_eq!(h("cookie").as_deref(), Some("session=abc; theme=dark"));
    assert_eq!(h("authorization").as_deref(), Some("Bearer t0k"));
    assert_eq!(h("x-custom").as_deref(), Some("kept"));
    assert_eq!(h("user-agent").as_deref(), Some("Mozilla/5.0"));
    assert_eq!(h("sec-websocket-key").as_deref(), Some(KEY));
    assert_eq!(h("x-forwarded-for").as_deref(), Some("127.0.0.1"));
    assert!(h("x-forwarded-proto").is_some() && h("x-forwarded-host").is_some());
    s.write_all(&frame(true, 0, 1, b"browser", MASK)).unwrap();
    let f = read_frame(&mut s).unwrap();
    assert_eq!((f.opcode, f.payload.as_slice()), (1, &b"browser"[..]));
}

#[test]
fn invalid_upgrades_get_400_and_never_reach_a_backend() {
    let (b, p) = echo_proxy();
    let cases = [
        // No Sec-WebSocket-Key.
        "GET / HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n".to_string(),
        // Unsupported version.
        format!("GET / HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 8\r\n\r\n"),
        // A key that is not 16 bytes of base64.
        "GET / HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n".to_string(),
        // Not GET.
        format!("POST / HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n"),
    ];
    for req in &cases {
        let mut c = Client::connect(p.addr);
        c.send(req.as_bytes());
        let r = c.read_response(false).expect("a response");
        assert_eq!(r.status, 400, "{req}");
        assert!(
            r.text().contains("WebSocket"),
            "the reason is given: {}",
            r.text()
        );
    }
    assert_eq!(b.accepted(), 0);
}

#[test]
fn no_reachable_server_answers_quickly() {
    // Two servers that refuse connections. Every upgrade tries both and gets 502 (no
    // server could be reached); each refusal is a passive failure, so the third ejects
    // both (max_fails=3). Issue 16: the fourth used to get 503 (no usable server);
    // passive ejection never empties a group, so it tries the ejected servers: 502.
    let dead: Vec<std::net::SocketAddr> = (0..2)
        .map(|_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
        })
        .collect();
    let p = Proxy::start_with_admin(
        "[websocket]\nserver1={b0}\nserver2={b1}\nconnect_timeout=5s\n",
        &dead,
    );
    for want in [502, 502, 502, 502, 502] {
        let t = Instant::now();
        let (_s, head) = raw_upgrade(p.addr, "/", "");
        assert_eq!(status(&head), want, "{head}");
        // Refused at once, not after connect_timeout.
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "took {:?}",
            t.elapsed()
        );
    }
    for server in ["server1", "server2"] {
        let ejections =
            format!("sluice_server_ejections_total{{group=\"websocket\",server=\"{server}\"");
        assert_eq!(p.metric(&ejections), 1.0, "{server} was ejected");
    }
}

#[test]
fn a_non_101_answer_is_relayed_as_http_and_the_connection_stays_usable() {
    let body = "no websocket for you";
    let resp = format!(
        "HTTP/1.1 403 Forbidden\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{body}",
        body.len()
    );
    let ws = RawBackend::start(
        move |_| resp.clone().into_bytes(),
        |mut s, _| {
            let _ = read_head(&mut s);
        },
    );
    let http = Backend::hello("h");
    let ini = "[http]\nserver1_addr={b0}\n[websocket]\nserver1={b1}\n";
    let p = Proxy::start(ini, &[http.addr, ws.addr]);
    let mut c = Client::connect(p.addr);
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    c.send(req.as_bytes());
    let r = c.read_response(false).expect("the backend's answer");
    assert_eq!((r.status, r.text().as_str()), (403, body));
    let r = c.get("/after");
    assert_eq!((r.status, r.text().as_str()), (200, "hello from h"));
    assert_eq!(ws.heads().len(), 1);

    // A 101 with a wrong accept key is a bad gateway, not a tunnel.
    let bad = RawBackend::start(
        |_| {
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n".to_vec()
        },
        |mut s, _| {
            let _ = read_frame(&mut s);
        },
    );
    let p = Proxy::start(&ws_ini(""), &[bad.addr]);
    let (_s, head) = raw_upgrade(p.addr, "/", "");
    assert_eq!(status(&head), 502, "{head}");
}

#[test]
fn bytes_sent_with_the_101_reach_the_client() {
    let b = RawBackend::start(
        |h| {
            [
                accept_101(h, ""),
                frame(true, 0, 1, b"early bird", None),
                frame(true, 0, 2, &[9; 300], None),
            ]
            .concat()
        },
        |mut s, _| {
            let _ = read_frame(&mut s);
        },
    );
    let p = Proxy::start(&ws_ini(""), &[b.addr]);
    let (mut ws, _) = ws_connect(p.addr, "/", &[]);
    assert_eq!(next_msg(&mut ws), Message::text("early bird"));
    assert_eq!(next_msg(&mut ws), Message::binary(vec![9; 300]));
}

#[test]
fn plain_http_and_websocket_share_a_listener() {
    let e = EchoBackend::start();
    let p = Proxy::start(
        "[http]\nserver1_addr={b0}\n[websocket]\nserver1={b0}\n",
        &[e.addr],
    );
    let r = util::get(p.addr, "/healthCheck");
    assert_eq!((r.status, r.text().as_str()), (200, "{\"status\":\"200\"}"));
    let (mut ws, _) = ws_connect(p.addr, "/", &[]);
    ws.send(Message::text("both")).unwrap();
    assert_eq!(next_msg(&mut ws), Message::text("both"));
}

#[test]
fn a_101_accepting_an_extension_the_client_did_not_offer_is_a_502() {
    // RFC 6455 §9.1 / RFC 7692 §5: the client would have to fail the connection.
    let b = RawBackend::start(
        |h| accept_101(h, "Sec-WebSocket-Extensions: permessage-deflate\r\n"),
        |_s, _| {},
    );
    let p = Proxy::start(&ws_ini(""), &[b.addr]);
    let (_s, head) = raw_upgrade(p.addr, "/", "");
    assert_eq!(status(&head), 502, "{head}");
    assert!(head_header(&b.heads()[0], "sec-websocket-extensions").is_none());
}
