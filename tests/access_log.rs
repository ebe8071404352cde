//! Issue 14: the access log of the real binary. JSON lines to a file, parsed by an
//! independent parser (Python's `json`, strict), for HTTP exchanges and a WebSocket
//! tunnel; the file reopened on SIGUSR1 after a logrotate-style rename; `common`
//! lines on stdout.

mod util;
mod wsutil;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::Message;
use util::{free_port, get, listens_on, wait_until, Backend, Client, ProxyProcess};
use wsutil::{next_msg, ws_connect, EchoBackend};

/// A directory of this test's own, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("sluice-access-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// Each line parsed by Python's `json` (the bytes must be UTF-8, the line one JSON
/// object, `time` RFC 3339 UTC with milliseconds) and written back with sorted keys
/// and `": "` separators, for the assertions.
#[track_caller]
fn parse_json_lines(text: &str) -> Vec<String> {
    const SCRIPT: &str = r#"
import datetime, json, re, sys
for line in sys.stdin.buffer.read().decode("utf-8").split("\n")[:-1]:
    o = json.loads(line)
    assert type(o) is dict, line
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", o["time"]), o["time"]
    t = datetime.datetime.strptime(o["time"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert abs((datetime.datetime.utcnow() - t).total_seconds()) < 300, o["time"]
    print(json.dumps(o, sort_keys=True, ensure_ascii=False))
"#;
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed to parse the JSON lines");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "not JSON lines: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The one parsed line containing `needle`.
#[track_caller]
fn line_with<'a>(lines: &'a [String], needle: &str) -> &'a str {
    let found: Vec<&String> = lines.iter().filter(|l| l.contains(needle)).collect();
    assert_eq!(found.len(), 1, "{needle} in {lines:#?}");
    found[0]
}

#[track_caller]
fn has_all(line: &str, fields: &[&str]) {
    for f in fields {
        assert!(line.contains(f), "{f} missing in {line}");
    }
}

#[test]
fn json_lines_to_a_file_reopened_on_sigusr1_after_a_rename() {
    let dir = TempDir::new("json");
    let log = dir.0.join("access.log");
    let rotated = dir.0.join("access.log.1");
    let http = Backend::hello("a");
    let ws = EchoBackend::start();
    let ini = format!(
        "[frontend]\nhost=127.0.0.1\nport={{port}}\n\n[http]\nserver1_addr={}\n\n[websocket]\nserver1={}\n\n\
         [log]\nlevel=info\naccess_log={}\naccess_log_format=json\n",
        http.addr,
        ws.addr,
        log.display()
    );
    let (p, _) = ProxyProcess::start_raw(&ini);

    assert_eq!(get(p.addr, "/logged?q=1").status, 200);
    // A quote and a backslash in the target (non-ASCII targets are refused with a 400;
    // the unit tests cover control bytes and invalid UTF-8): still one valid line.
    let mut c = Client::connect(p.addr);
    c.send(b"GET /a\"b\\c{d} HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(c.read_response(false).expect("a response").status, 200);

    let (mut s, _) = ws_connect(p.addr, "/chat?room=1", &[]);
    for m in ["one", "two", "three"] {
        s.send(Message::text(m)).unwrap();
        assert_eq!(next_msg(&mut s), Message::text(m));
    }
    s.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .unwrap();
    while s.read().is_ok() {} // until the backend's Close came back and the end

    assert!(
        wait_until(|| read(&log).lines().count() == 3),
        "three lines: {}\nstderr: {}",
        read(&log),
        p.stderr()
    );
    let lines = parse_json_lines(&read(&log));
    has_all(
        line_with(&lines, "/logged"),
        &[
            "\"type\": \"http\"",
            "\"client\": \"127.0.0.1\"",
            "\"method\": \"GET\"",
            "\"path\": \"/logged?q=1\"",
            "\"status\": 200",
            "\"bytes_in\": 40",
            "\"server\": \"server1\"",
            "\"upstream_connect_ms\": ",
            "\"upstream_response_ms\": ",
            "\"total_ms\": ",
        ],
    );
    line_with(&lines, "\"path\": \"/a\\\"b\\\\c{d}\"");
    has_all(
        line_with(&lines, "websocket"),
        &[
            "\"client\": \"127.0.0.1\"",
            "\"path\": \"/chat?room=1\"",
            "\"status\": 101",
            "\"server\": \"server1\"",
            "\"messages_in\": 3",
            "\"messages_out\": 3",
            "\"close_code\": 1000",
            "\"close_by\": \"client\"",
            "\"duration_ms\": ",
        ],
    );
    assert!(
        !p.stderr().contains("/logged"),
        "access lines stay out of stderr"
    );

    // logrotate: rename, then SIGUSR1; lines keep going to the renamed file until the
    // signal is handled, then to a new file at the configured path. None is lost.
    std::fs::rename(&log, &rotated).unwrap();
    p.signal("USR1");
    let mut sent = 0;
    assert!(
        wait_until(|| {
            sent += 1;
            assert_eq!(get(p.addr, &format!("/after/{sent}")).status, 200);
            read(&log).contains("/after/")
        }),
        "no new file after SIGUSR1: {}",
        p.stderr()
    );
    let total = || read(&log).lines().count() + read(&rotated).lines().count();
    assert!(
        wait_until(|| total() == 3 + sent),
        "{} of {}",
        total(),
        3 + sent
    );
    assert!(read(&rotated).contains("/logged"));
    parse_json_lines(&read(&log));
    assert!(p.stderr().contains("access log reopened"), "{}", p.stderr());
}

#[test]
fn common_lines_on_stdout() {
    let a = Backend::hello("a");
    let ini = format!(
        "[frontend]\nhost=127.0.0.1\nport={{port}}\n\n[http]\nserver1_addr={}\n\n[log]\naccess_log=stdout\n",
        a.addr
    );
    let (p, _) = ProxyProcess::start_raw(&ini);
    assert_eq!(get(p.addr, "/out?x=1").status, 200);
    assert!(wait_until(|| p.stdout().contains("/out")), "{}", p.stderr());
    let out = p.stdout();
    let line = out.lines().next().unwrap();
    // TIME CLIENT "METHOD PATH" STATUS BYTES_IN BYTES_OUT SERVER CONNECT RESPONSE TOTAL
    let f: Vec<&str> = line.split(' ').collect();
    assert_eq!(f.len(), 11, "{line}");
    assert_eq!(f[0].len(), "2026-01-01T00:00:00.000Z".len(), "{line}");
    assert!(f[0].ends_with('Z') && f[0].as_bytes()[10] == b'T', "{line}");
    assert_eq!(
        &f[1..6],
        ["127.0.0.1", "\"GET", "/out?x=1\"", "200", "37"],
        "{line}"
    );
    assert!(f[6].parse::<u64>().unwrap() > 0, "{line}");
    assert_eq!(f[7], "server1");
    for ms in &f[8..] {
        let v = ms.strip_suffix("ms").expect("ms").parse::<f64>();
        assert!(v.is_ok(), "{line}");
    }
    assert!(!p.stderr().contains("/out"), "{}", p.stderr());
}

/// A `sluice` child whose stdout is a pipe nobody reads; killed when dropped.
struct Unread {
    child: std::process::Child,
    _stdout: std::process::ChildStdout,
    dir: TempDir,
}

impl Drop for Unread {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_stdout_pipe_nobody_reads_costs_lines_not_the_proxy() {
    let a = Backend::hello("a");
    let free = || SocketAddr::from(([127, 0, 0, 1], free_port()));
    let (addr, admin) = (free(), free());
    let dir = TempDir::new("unread");
    let ini = format!(
        "[frontend]\nhost=127.0.0.1\nport={}\n\n[http]\nserver1_addr={}\n\n[admin]\nhost=127.0.0.1\nport={}\n\n\
         [log]\nlevel=warn\naccess_log=stdout\n",
        addr.port(),
        a.addr,
        admin.port()
    );
    std::fs::write(dir.0.join("sluice.ini"), ini).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--config")
        .arg(dir.0.join("sluice.ini"))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.0.join("stderr.log")).unwrap())
        .spawn()
        .expect("start sluice");
    let stdout = child.stdout.take().unwrap();
    let p = Unread {
        child,
        _stdout: stdout,
        dir,
    };
    assert!(wait_until(|| listens_on(p.child.id(), addr.port())));
    // About 100 bytes a line: 3000 lines are more than the pipe (64 KiB) and the
    // buffer (64 KiB) hold. Every request is still answered at once (the client's
    // read timeout would fail it otherwise).
    let n = 3000;
    let mut c = Client::connect(addr);
    for i in 0..n {
        assert_eq!(c.get(&format!("/unread/{i}")).status, 200, "request {i}");
    }
    let metrics = get(admin, "/metrics");
    let text = String::from_utf8_lossy(&metrics.body).into_owned();
    let value = |name: &str| -> u64 {
        let line = text.lines().find(|l| l.starts_with(&format!("{name} ")));
        line.and_then(|l| l.split(' ').nth(1)?.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {text}"))
    };
    let (written, dropped) = (
        value("sluice_access_log_lines_total"),
        value("sluice_access_log_dropped_total"),
    );
    assert!(dropped > 0, "written {written}, dropped {dropped}");
    assert!(
        written > 0 && written + dropped <= n,
        "written {written}, dropped {dropped}"
    );
    let stderr = read(&p.dir.0.join("stderr.log"));
    assert!(!stderr.contains("access log: write failed"), "{stderr}");
}

#[test]
fn a_reload_moves_the_access_log_to_the_new_destination() {
    let dir = TempDir::new("reload");
    let (first, second) = (dir.0.join("first.log"), dir.0.join("second.log"));
    let a = Backend::hello("a");
    let ini = |path: &Path| {
        format!(
            "[frontend]\nhost=127.0.0.1\nport={{port}}\n\n[http]\nserver1_addr={}\n\n[log]\nlevel=info\naccess_log={}\n",
            a.addr,
            path.display()
        )
    };
    let (p, _) = ProxyProcess::start_raw(&ini(&first));
    assert_eq!(get(p.addr, "/one").status, 200);
    assert!(wait_until(|| read(&first).contains("/one")));
    let text = ini(&second).replace("{port}", &p.addr.port().to_string());
    std::fs::write(p.dir.join("sluice.ini"), text).unwrap();
    p.signal("HUP");
    assert!(
        wait_until(|| p.stderr().contains("configuration reloaded")),
        "{}",
        p.stderr()
    );
    assert_eq!(get(p.addr, "/two").status, 200);
    assert!(
        wait_until(|| read(&second).contains("/two")),
        "{}",
        p.stderr()
    );
    assert!(!read(&first).contains("/two"));
}

/// Requests sluice answers itself are logged too, as nginx and HAProxy log theirs: a
/// 502 after the only server refused the connection (with that server's name) and a
/// 400 for a head that does not parse (`-` for what is unknown), no upstream times.
#[test]
fn answers_of_sluice_itself_are_logged() {
    let dir = TempDir::new("own");
    let log = dir.0.join("access.log");
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let ini = format!(
        "[frontend]\nhost=127.0.0.1\nport={{port}}\n\n[http]\nenable_health_check=false\nserver1_addr={dead_addr}\n\n\
         [log]\naccess_log={}\naccess_log_format=json\n",
        log.display()
    );
    let (p, _) = ProxyProcess::start_raw(&ini);
    assert_eq!(get(p.addr, "/refused?x=1").status, 502);
    let mut c = Client::connect(p.addr);
    c.send(b"NOT A REQUEST\r\n\r\n");
    assert_eq!(c.read_response(false).expect("a response").status, 400);
    assert!(
        wait_until(|| read(&log).lines().count() == 2),
        "two lines: {}\nstderr: {}",
        read(&log),
        p.stderr()
    );
    let lines = parse_json_lines(&read(&log));
    has_all(
        line_with(&lines, "\"status\": 502"),
        &[
            "\"method\": \"GET\"",
            "\"path\": \"/refused?x=1\"",
            "\"server\": \"server1\"",
            "\"upstream_connect_ms\": null",
            "\"upstream_response_ms\": null",
            "\"total_ms\": ",
        ],
    );
    has_all(
        line_with(&lines, "\"status\": 400"),
        &["\"method\": \"-\"", "\"path\": \"-\"", "\"server\": \"-\""],
    );
}
