//! Micro-benchmark of the sans-IO parsers: request/response heads, chunked body
//! framing, and WebSocket frame tracking, in bytes/s and ns per call.
//! `cargo bench --bench parsers` (release profile; plain std timing, median of 7 runs).

use protocol::h1::{self, BodyDecoder, BodyKind, Limits, Method};
use protocol::ws::{self, FrameTracker, Role, TrackerConfig};
use std::hint::black_box;
use std::time::Instant;

const BROWSER_REQUEST: &[u8] = b"GET /api/v1/items?page=2&sort=desc HTTP/1.1\r\n\
Host: shop.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://shop.example.com/catalog\r\n\
Cookie: session=8f2d9c1e4b7a6f30; theme=dark; consent=yes\r\n\
Connection: keep-alive\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Site: same-origin\r\n\
Priority: u=0, i\r\n\r\n";

const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Thu, 26 Nov 2026 23:00:00 GMT\r\n\
Content-Type: application/json\r\nContent-Length: 1234\r\nConnection: keep-alive\r\n\
Cache-Control: no-store\r\nVary: Accept-Encoding\r\n\r\n";

/// Runs `f` `iters` times per sample, 7 samples; returns the median ns per call.
fn bench(iters: u32, mut f: impl FnMut()) -> f64 {
    let mut samples = Vec::with_capacity(7);
    for _ in 0..7 {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        samples.push(t.elapsed().as_nanos() as f64 / iters as f64);
    }
    samples.sort_by(f64::total_cmp);
    samples[3]
}

fn report(name: &str, bytes: usize, ns: f64) {
    let mbps = bytes as f64 / ns * 1e9 / 1e6;
    println!("{name:<44} {ns:>9.1} ns/call {mbps:>9.0} MB/s ({bytes} bytes)");
}

fn chunked_body(chunks: usize, size: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for _ in 0..chunks {
        v.extend_from_slice(format!("{size:x}\r\n").as_bytes());
        v.extend(std::iter::repeat_n(b'x', size));
        v.extend_from_slice(b"\r\n");
    }
    v.extend_from_slice(b"0\r\n\r\n");
    v
}

fn frames(count: usize, payload: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let key = [1, 2, 3, 4];
    for _ in 0..count {
        let h = ws::FrameHeader {
            fin: true,
            rsv: 0,
            opcode: ws::Opcode::Binary,
            mask: Some(key),
            payload_len: payload as u64,
            header_len: 0,
        };
        let mut hb = [0u8; ws::MAX_HEADER_LEN];
        let n = ws::encode_frame_header(&h, &mut hb);
        out.extend_from_slice(&hb[..n]);
        out.extend(std::iter::repeat_n(0xAB, payload));
    }
    out
}

fn main() {
    let limits = Limits::default();
    println!("sluice parser micro-benchmarks (median of 7 samples)\n");

    let ns = bench(200_000, || {
        black_box(h1::parse_request(black_box(BROWSER_REQUEST), &limits).ok());
    });
    report(
        "h1 parse_request (browser, 13 headers)",
        BROWSER_REQUEST.len(),
        ns,
    );

    let ns = bench(200_000, || {
        black_box(h1::parse_response(black_box(RESPONSE), Method::Get, &limits).ok());
    });
    report("h1 parse_response (8 headers)", RESPONSE.len(), ns);

    if let Ok(protocol::Status::Complete(head)) = h1::parse_request(BROWSER_REQUEST, &limits) {
        let fwd = h1::Forwarded {
            client_ip: b"192.0.2.7",
            proto: b"http",
            default_host: b"b",
        };
        let mut out = Vec::with_capacity(2048);
        let ns = bench(200_000, || {
            out.clear();
            h1::write_request_head(black_box(BROWSER_REQUEST), &head, &fwd, false, &mut out);
            black_box(&out);
        });
        report("h1 write_request_head (rewrite)", BROWSER_REQUEST.len(), ns);
    }

    for (chunks, size) in [(64, 64), (16, 16 * 1024)] {
        let body = chunked_body(chunks, size);
        let ns = bench(2_000, || {
            let mut d = BodyDecoder::new(BodyKind::Chunked, None);
            black_box(d.feed(black_box(&body)).ok());
        });
        report(
            &format!("h1 chunked framing ({chunks} x {size} B)"),
            body.len(),
            ns,
        );
    }

    for (count, payload) in [(16, 64), (256, 16), (64, 1024), (4, 256 * 1024)] {
        let stream = frames(count, payload);
        let cfg = TrackerConfig {
            from: Role::Client,
            rsv_allowed: 0,
            max_message_bytes: 0,
        };
        let ns = bench(500, || {
            let mut t = FrameTracker::new(cfg);
            let mut pos = 0;
            while pos < stream.len() {
                match t.feed(&stream[pos..]) {
                    Ok((0, None)) | Err(_) => break,
                    Ok((n, _)) => pos += n,
                }
            }
            black_box(pos);
        });
        report(
            &format!("ws FrameTracker ({count} frames x {payload} B)"),
            stream.len(),
            ns,
        );
        // What the tunnel relay calls: runs through data frames, one call per
        // buffer unless a control frame comes.
        let ns = bench(500, || {
            let mut t = FrameTracker::new(cfg);
            let mut pos = 0;
            while pos < stream.len() {
                match t.feed_relay(&stream[pos..]) {
                    Ok((0, None)) | Err(_) => break,
                    Ok((n, _)) => pos += n,
                }
            }
            black_box(pos);
        });
        report(
            &format!("ws feed_relay ({count} frames x {payload} B)"),
            stream.len(),
            ns,
        );
    }

    let mut payload = vec![0u8; 64 * 1024];
    let ns = bench(5_000, || {
        ws::apply_mask(black_box(&mut payload), [1, 2, 3, 4], 0);
    });
    report("ws apply_mask (64 KiB)", payload.len(), ns);
}
