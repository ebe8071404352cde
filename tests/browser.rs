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

    // The status page: its script fetched /status.json and drew each group's servers.
    let status = rendered(&format!("http://{admin}/status"), "[websocket]");
    for want in [
        "[http] RoundRobin",
        "[websocket] LeastConnections",
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

    stop.stop();
    thread.join().unwrap();
}
