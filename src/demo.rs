//! `sluice demo`: two HTTP servers and two WebSocket echo servers on loopback, with
//! sluice in front of them and the admin endpoint on, in one process and no setup.
//!
//! The demo servers are plain blocking std::net code on their own threads: they are
//! peers for trying sluice out (and for `examples/`), never part of the proxy's hot
//! path, which stays single-threaded.

use protocol::h1::{self, Limits};
use protocol::ws::{self, Opcode, Role};
use protocol::Status;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

const PAGE: &str = include_str!("demo/page.html");

/// Reads one request head from a blocking stream; returns (head bytes, extra bytes read).
fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<h1::RequestHead> {
    let mut chunk = [0u8; 4096];
    loop {
        match h1::parse_request(buf, &Limits::default()) {
            Ok(Status::Complete(h)) => return Some(h),
            Ok(Status::Partial) => {}
            Err(_) => return None,
        }
        let n = s.read(&mut chunk).ok().filter(|&n| n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn respond(s: &mut TcpStream, status: &str, ctype: &str, body: &[u8]) -> bool {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())
        .and_then(|_| s.write_all(body))
        .is_ok()
}

fn health_body(name: &str) -> String {
    // The seed's contract, plus the load report sluice turns into weights.
    format!("{{\"status\":\"200\",\"server\":\"{name}\",\"cpu\":10.0,\"memory\":20.0}}")
}

/// Serves the demo HTTP backend on `listener` forever (a thread per connection).
pub fn serve_http(name: &'static str, listener: TcpListener) {
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || http_conn(name, stream));
    }
}

fn http_conn(name: &str, mut s: TcpStream) {
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(Duration::from_secs(300)));
    let mut buf = Vec::new();
    while let Some(head) = read_head(&mut s, &mut buf) {
        let target = String::from_utf8_lossy(head.target.get(&buf)).into_owned();
        if let h1::BodyKind::Length(n) = head.body {
            // Discard a small body (the demo has no uploads).
            let need = head.head_len + n as usize;
            while buf.len() < need {
                let mut chunk = [0u8; 4096];
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(k) => buf.extend_from_slice(&chunk[..k]),
                }
            }
            buf.drain(..need);
        } else {
            buf.drain(..head.head_len);
        }
        let path = target.split('?').next().unwrap_or("");
        let ok = match path {
            "/healthCheck" => respond(
                &mut s,
                "200 OK",
                "application/json",
                health_body(name).as_bytes(),
            ),
            "/" | "/index.html" => {
                let page = PAGE.replace("{server}", name);
                respond(
                    &mut s,
                    "200 OK",
                    "text/html; charset=utf-8",
                    page.as_bytes(),
                )
            }
            _ => {
                let body = format!("hello from {name}: {target}\n");
                respond(&mut s, "200 OK", "text/plain", body.as_bytes())
            }
        };
        if !ok || !head.keep_alive {
            return;
        }
    }
}

/// Serves the demo WebSocket echo backend on `listener` forever. It greets each client
/// with a text message naming itself, then echoes every message with its own opcode.
pub fn serve_ws(name: &'static str, listener: TcpListener) {
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || ws_conn(name, stream));
    }
}

fn ws_conn(name: &str, mut s: TcpStream) {
    let _ = s.set_nodelay(true);
    let mut buf = Vec::new();
    let Some(head) = read_head(&mut s, &mut buf) else {
        return;
    };
    let head_bytes = &buf[..head.head_len];
    let up = ws::check_client_upgrade(
        head.method == h1::Method::Get,
        head.version == h1::Version::Http11,
        h1::header_lines(head_bytes),
    );
    let key = match up {
        Ok(u) => u.key,
        Err(_) => {
            let body = health_body(name);
            respond(&mut s, "200 OK", "application/json", body.as_bytes());
            return;
        }
    };
    let accept = ws::accept_key(&key);
    let mut resp = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ".to_vec();
    resp.extend_from_slice(&accept);
    resp.extend_from_slice(b"\r\n\r\n");
    let mut greeting = Vec::new();
    write_frame(
        &mut greeting,
        Opcode::Text,
        true,
        format!("connected to {name}").as_bytes(),
    );
    resp.extend_from_slice(&greeting);
    if s.write_all(&resp).is_err() {
        return;
    }
    buf.drain(..head.head_len);
    echo_frames(&mut s, buf);
}

fn write_frame(out: &mut Vec<u8>, opcode: Opcode, fin: bool, payload: &[u8]) {
    let h = ws::FrameHeader {
        fin,
        rsv: 0,
        opcode,
        mask: None,
        payload_len: payload.len() as u64,
        header_len: 0,
    };
    let mut hb = [0u8; ws::MAX_HEADER_LEN];
    let n = ws::encode_frame_header(&h, &mut hb);
    out.extend_from_slice(&hb[..n]);
    out.extend_from_slice(payload);
}

/// Echoes client frames until Close or EOF (payload limit 16 MiB per frame).
pub fn echo_frames(s: &mut TcpStream, mut buf: Vec<u8>) {
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let h = match ws::parse_frame_header(&buf, Role::Client, 0) {
            Ok(Status::Complete(h)) if h.payload_len <= 16 << 20 => h,
            Ok(Status::Partial) => {
                match s.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
                continue;
            }
            _ => return,
        };
        let end = h.header_len as usize + h.payload_len as usize;
        while buf.len() < end {
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let mut payload = buf[h.header_len as usize..end].to_vec();
        if let Some(key) = h.mask {
            ws::apply_mask(&mut payload, key, 0);
        }
        buf.drain(..end);
        let mut out = Vec::with_capacity(payload.len() + 14);
        match h.opcode {
            Opcode::Ping => write_frame(&mut out, Opcode::Pong, true, &payload),
            Opcode::Pong => continue,
            op => write_frame(&mut out, op, h.fin, &payload),
        }
        if s.write_all(&out).is_err() || h.opcode == Opcode::Close {
            return;
        }
    }
}

/// Binds the demo's backends on 127.0.0.1 ephemeral ports and starts their threads;
/// returns (http addresses, websocket addresses).
pub fn start_backends() -> std::io::Result<(Vec<SocketAddr>, Vec<SocketAddr>)> {
    let mut http = Vec::new();
    let mut wss = Vec::new();
    for name in ["demo-http-1", "demo-http-2"] {
        let l = TcpListener::bind("127.0.0.1:0")?;
        http.push(l.local_addr()?);
        std::thread::spawn(move || serve_http(name, l));
    }
    for name in ["demo-ws-1", "demo-ws-2"] {
        let l = TcpListener::bind("127.0.0.1:0")?;
        wss.push(l.local_addr()?);
        std::thread::spawn(move || serve_ws(name, l));
    }
    Ok((http, wss))
}

/// The demo's configuration text for the given backends and ports.
pub fn config_text(http: &[SocketAddr], wss: &[SocketAddr], port: u16, admin_port: u16) -> String {
    format!(
        "[frontend]\nhost=127.0.0.1\nport={port}\n\n\
         [http]\nenable_health_check=true\nhealth_check_interval=5\nalgorithm=round-robin\n\
         server1_addr={}\nserver2_addr={}\n\n\
         [websocket]\nenable_health_check=true\nhealth_check_interval=5\nalgorithm=least-connections\n\
         server1={}\nserver2={}\n\n\
         [admin]\nhost=127.0.0.1\nport={admin_port}\n\n[log]\nlevel=info\naccess_log=true\n",
        http[0], http[1], wss[0], wss[1]
    )
}
