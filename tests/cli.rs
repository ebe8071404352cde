//! What a new user meets first, through the real binary: `sluice demo` when its port
//! is taken, a start-up that cannot listen, and `--check` on a seed configuration.

mod util;

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use util::*;

/// Kills the child when the test ends, passed or not.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the binary to its exit (bounded): exit code and stderr.
fn exit_and_stderr(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sluice");
    let mut child = Killed(child);
    let end = Instant::now() + WAIT;
    let status = loop {
        if let Some(st) = child.0.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < end, "sluice {args:?} did not exit");
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut err = String::new();
    let mut stderr = child.0.stderr.take().unwrap();
    stderr.read_to_string(&mut err).unwrap();
    (status.code(), err)
}

/// A configuration file in the temporary directory (the caller removes it).
fn temp_config(name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("sluice-cli-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

/// The address in `http://ADDR<suffix>` on one of the demo's banner lines.
fn url_before(line: &str, suffix: &str) -> Option<SocketAddr> {
    let end = line.find(suffix)?;
    let start = line[..end].rfind("http://")? + "http://".len();
    line[start..end].parse().ok()
}

#[test]
fn demo_with_its_port_taken_picks_free_ports_for_both_listeners() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["demo", "--port", &port.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sluice demo");
    let mut child = Killed(child);
    let (tx, rx) = mpsc::channel();
    let stdout = BufReader::new(child.0.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut front, mut admin) = (None, None);
    let end = Instant::now() + WAIT;
    while front.is_none() || admin.is_none() {
        let left = end.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).expect("the demo's banner");
        front = front.or(url_before(&line, "/hello"));
        admin = admin.or(url_before(&line, "/status"));
    }
    let (front, admin) = (front.unwrap(), admin.unwrap());
    // Port 0 + 1 was port 1: the admin page must be on a port the system picked.
    assert_ne!(admin.port(), 1, "admin on port 1");
    assert_ne!(
        front.port(),
        port,
        "the frontend cannot have the taken port"
    );
    assert_ne!(admin.port(), port);
    assert_eq!(get(admin, "/status").status, 200);
    assert_eq!(get(front, "/hello").status, 200);
}

#[test]
fn a_port_in_use_is_named_once_with_its_section() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let why = TcpListener::bind(addr).unwrap_err();
    let server = "[http]\nserver1_addr=127.0.0.1:2\n[log]\nlevel=info\n";
    let cases = [
        (
            format!("[frontend]\nhost=127.0.0.1\nport={}\n{server}", addr.port()),
            "frontend",
        ),
        (
            format!(
                "[frontend]\nhost=127.0.0.1\nport=0\n[admin]\nhost=127.0.0.1\nport={}\n{server}",
                addr.port()
            ),
            "admin",
        ),
    ];
    for (text, section) in cases {
        let path = temp_config(&format!("{section}.ini"), &text);
        let (code, err) = exit_and_stderr(&["--config".as_ref(), path.as_ref()]);
        let _ = std::fs::remove_file(&path);
        assert_eq!(code, Some(1), "{err}");
        assert_eq!(
            err,
            format!("sluice: cannot listen on {addr} ([{section}] host, port): {why}\n")
        );
    }
}

#[test]
fn check_accepts_a_short_health_check_interval_without_a_timeout() {
    // Valid in the seed: the 2 s default timeout shrinks to fit a 2 s interval.
    let seed =
        "[http]\nenable_health_check=true\nhealth_check_interval=2\nserver1_addr=127.0.0.1:2\n";
    let path = temp_config("seed.ini", seed);
    let (code, err) = exit_and_stderr(&["--check".as_ref(), "--config".as_ref(), path.as_ref()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!((code, err.as_str()), (Some(0), ""));
    // Written by the user, the same conflict is an error naming their line.
    let explicit = format!("{seed}health_check_timeout=2\n");
    let path = temp_config("explicit.ini", &explicit);
    let (code, err) = exit_and_stderr(&["--check".as_ref(), "--config".as_ref(), path.as_ref()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(
        err,
        format!(
            "{}:5: [http] health_check_timeout: 2s must be less than health_check_interval (2s)\n",
            path.display()
        )
    );
}

#[test]
fn check_validates_the_resolver_keys() {
    // Names are not looked up by --check: they are discovered in the loop at run time.
    let good = "[http]\nserver1_addr=backend.test:80\nserver1_resolve=all\nserver2_srv=_http._tcp.web.test\n\
                [resolver]\nnameservers=127.0.0.1:53\nmin_ttl=1s\nmax_ttl=5m\nhold_nx=30s\ninit=optional\nfamily=v6_preferred\n";
    let path = temp_config("resolver.ini", good);
    let (code, err) = exit_and_stderr(&["--check".as_ref(), "--config".as_ref(), path.as_ref()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!((code, err.as_str()), (Some(0), ""));
    let bad = "[http]\nserver1_addr=backend.test:80\n[resolver]\ninit=later\n";
    let path = temp_config("resolver-bad.ini", bad);
    let (code, err) = exit_and_stderr(&["--check".as_ref(), "--config".as_ref(), path.as_ref()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(
        err,
        format!(
            "{}:4: [resolver] init: expected required or optional, got \"later\"\n",
            path.display()
        )
    );
}

/// A build without `tls` refuses `[tls]` at its header (and does not parse it: a bad value
/// inside does not change the answer) and `serverN_tls = true` at its line.
#[cfg(not(feature = "tls"))]
#[test]
fn check_without_the_tls_feature_names_the_tls_lines() {
    let cases = [
        (
            "[http]\nserver1=127.0.0.1:1\n[tls]\nport=8443\ncert=c.pem\nkey=k.pem\nmin_version=9\n",
            "3: [tls]: this sluice was built without TLS support (cargo build --features tls)",
        ),
        (
            "[http]\nserver1=127.0.0.1:1\nserver1_tls=true\n",
            "3: [http] server1_tls: this sluice was built without TLS support (cargo build --features tls)",
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let path = temp_config(&format!("no-tls-{i}.ini"), text);
        let (code, err) =
            exit_and_stderr(&["--check".as_ref(), "--config".as_ref(), path.as_ref()]);
        let _ = std::fs::remove_file(&path);
        assert_eq!(code, Some(1), "{err}");
        assert_eq!(err, format!("{}:{want}\n", path.display()));
    }
}
