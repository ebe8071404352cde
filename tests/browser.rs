//! A real browser against sluice: headless Chromium loads the admin status page and the
//! demo page through sluice, and the test checks what the browser rendered, including a
//! WebSocket echo the page's own JavaScript made through the proxy.
//!
//! Needs Debian's `chromium` (scripts/test and .ci/run install it when missing).

use std::process::Command;
use std::time::Duration;

/// The headless browser on PATH; a missing one fails the test with what to install.
fn chromium() -> String {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for c in ["chromium", "chromium-browser", "google-chrome"] {
        if std::env::split_paths(&path).any(|d| d.join(c).is_file()) {
            return c.to_string();
        }
    }
    panic!(
        "chromium not found: install it (apt-get install chromium) or run ./scripts/test, which installs it"
    );
}

/// The DOM after the page's scripts ran (`--dump-dom`), retried while `want` is missing.
fn rendered(url: &str, want: &str) -> String {
    let browser = chromium();
    let mut last = String::new();
    for _ in 0..3 {
        let profile = tempdir();
        let out = Command::new(&browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
                "--virtual-time-budget=4000",
                "--timeout=15000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("--dump-dom")
            .arg(url)
            .output()
            .expect("run chromium");
        let _ = std::fs::remove_dir_all(&profile);
        last = String::from_utf8_lossy(&out.stdout).into_owned();
        if last.contains(want) {
            return last;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    last
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "sluice-chromium-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn browser_renders_status_page_and_echoes_a_websocket_message_through_sluice() {
    let (http, wss) = sluice::demo::start_backends().unwrap();
    let text = sluice::demo::config_text(&http, &wss, 0, 0).replace("level=info", "level=warn");
    let cfg = sluice::config::parse(&text, "demo", &sluice::config::resolve_system).unwrap();
    let mut reactor = sluice::Reactor::with_seed(cfg, 7).unwrap();
    let addr = reactor.local_addr().unwrap();
    let admin = reactor.admin_addr().expect("admin listener");
    let stop = reactor.stop_handle();
    let thread = std::thread::spawn(move || reactor.run().unwrap());

    // The demo page: served by a demo HTTP server through sluice; its script opens a
    // WebSocket to sluice, sends one message and shows the greeting and the echo.
    let page = rendered(
        &format!("http://{addr}/?admin={}", admin.port()),
        "&lt; hello through sluice",
    );
    assert!(
        page.contains("demo-http-"),
        "the page names the HTTP server that served it:\n{page}"
    );
    assert!(
        page.contains("&lt; connected to demo-ws-"),
        "WebSocket greeting rendered:\n{page}"
    );
    assert!(
        page.contains("&gt; hello through sluice"),
        "the browser sent its message:\n{page}"
    );
    assert!(
        page.contains("&lt; hello through sluice"),
        "the echo came back through sluice:\n{page}"
    );

    // Some traffic for the charts.
    for _ in 0..20 {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        use std::io::{Read, Write};
        c.write_all(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut out = Vec::new();
        let _ = c.read_to_end(&mut out);
        assert!(
            out.starts_with(b"HTTP/1.1 200"),
            "{:?}",
            String::from_utf8_lossy(&out)
        );
    }

    // The status page: its script fetched /status.json and drew each group's servers
    // and charts. It is served with a Content-Security-Policy that allows nothing
    // from elsewhere, and shows in #csp what the browser blocked: nothing.
    let status = rendered(&format!("http://{admin}/status"), "[websocket]");
    assert!(
        status.contains("<div id=\"csp\"></div>"),
        "the status page tried to load something from elsewhere:\n{status}"
    );
    for want in [
        "[http] round-robin",
        "[websocket] least-connections",
        &http[0].to_string(),
        &wss[1].to_string(),
    ] {
        assert!(status.contains(want), "status page lacks {want}:\n{status}");
    }
    assert!(
        status.contains("class=\"up\">up<"),
        "servers rendered as up:\n{status}"
    );
    assert!(
        status.contains("<div id=\"err\"></div>"),
        "status page could not fetch status.json:\n{status}"
    );
    // Charts: per group (a row) and per server (a table cell), each an inline SVG; the
    // HTTP group's requests/s chart has a drawn line after the traffic above.
    let http_row = status
        .split("data-group=\"http\"")
        .nth(1)
        .and_then(|rest| rest.split("</div></div>").next())
        .unwrap_or("");
    let line = http_row
        .split("data-metric=\"rps\"")
        .nth(1)
        .and_then(|svg| svg.split("</svg>").next())
        .unwrap_or("");
    let points = line
        .split("class=\"s0\" points=\"")
        .nth(1)
        .and_then(|p| p.split('"').next())
        .unwrap_or("");
    assert!(
        points.split(' ').filter(|p| p.contains(',')).count() >= 2,
        "the http group's requests/s chart has no line:\n{status}"
    );
    let heights: Vec<f64> = points
        .split(' ')
        .filter_map(|p| p.split(',').nth(1)?.parse().ok())
        .collect();
    assert!(
        heights.iter().any(|&y| y < 59.0),
        "the requests/s line stays at zero after traffic: {points}"
    );
    let svgs = status.matches("<svg").count();
    // http: 3 group charts + 3 per server (2); websocket: 4 + 4 per server (2).
    assert!(svgs >= 3 + 6 + 4 + 8, "{svgs} charts:\n{status}");
    assert!(status.contains("data-metric=\"tunnels\""), "{status}");

    stop.stop();
    thread.join().unwrap();
}
