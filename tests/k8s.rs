//! The Kubernetes lifecycle against the real binary: `/livez` and `/readyz` on the admin
//! port, `shutdown_delay` (readiness fails first, serving goes on, then the drain), and
//! `reload_on_change` with a ConfigMap-style `..data` symlink swap.

mod util;

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use util::*;

/// A backend whose `/healthCheck` fails while `down` is set.
fn flappable(down: Arc<AtomicBool>) -> Backend {
    Backend::start(move |r| {
        if r.target == "/healthCheck" && down.load(Ordering::SeqCst) {
            Reply::Raw(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n".to_vec())
        } else {
            ok("{\"status\":\"200\"}")
        }
    })
}

#[test]
fn livez_and_readyz_follow_the_servers_health() {
    let down = Arc::new(AtomicBool::new(false));
    let a = flappable(down.clone());
    let ini = format!(
        "[frontend]\nhost=127.0.0.1\nport={{port}}\n\n[http]\nserver1_addr={}\nenable_health_check=true\nhealth_check_interval=200ms\nrise=1\nfall=1\n\n[admin]\nhost=127.0.0.1\nport={{admin}}\n\n[log]\nlevel=info\naccess_log=false\n",
        a.addr
    );
    let (p, admin) = ProxyProcess::start_raw(&ini);
    let live = get(admin, "/livez");
    assert_eq!((live.status, live.text().as_str()), (200, "ok\n"));
    let ready = get(admin, "/readyz");
    assert_eq!((ready.status, ready.text().as_str()), (200, "ready\n"));

    down.store(true, Ordering::SeqCst);
    assert!(
        wait_until(|| get(admin, "/readyz").status == 503),
        "{}",
        p.stderr()
    );
    let r = get(admin, "/readyz");
    assert_eq!(
        r.text(),
        "not ready: no usable server in group [http] (1 down, 0 ejected)\n"
    );
    assert_eq!(get(admin, "/livez").status, 200, "alive all the same");

    down.store(false, Ordering::SeqCst);
    assert!(wait_until(|| get(admin, "/readyz").status == 200));
}

#[test]
fn shutdown_delay_fails_readiness_first_keeps_serving_then_drains() {
    let a = Backend::hello("a");
    let ini = format!(
        "[frontend]\nhost=127.0.0.1\nport={{port}}\nshutdown_delay=1500ms\ndrain_timeout=5s\n\n[http]\nserver1_addr={}\n\n[admin]\nhost=127.0.0.1\nport={{admin}}\n\n[log]\nlevel=info\naccess_log=false\n",
        a.addr
    );
    let (mut p, admin) = ProxyProcess::start_raw(&ini);
    let mut kept = Client::connect(p.addr);
    assert_eq!(kept.get("/").status, 200);
    assert_eq!(get(admin, "/readyz").status, 200);

    let t0 = Instant::now();
    p.signal("TERM");
    assert!(
        wait_until(|| get(admin, "/readyz").status == 503),
        "readiness fails at once:\n{}",
        p.stderr()
    );
    let r = get(admin, "/readyz");
    assert!(
        r.text().starts_with("not ready: shutting down"),
        "{}",
        r.text()
    );
    // Still serving: the kept-alive connection and new ones, without Connection: close.
    let r = kept.get("/");
    assert_eq!((r.status, r.header("connection")), (200, None));
    let fresh = get(p.addr, "/");
    assert_eq!(fresh.text(), "hello from a");
    assert!(
        t0.elapsed() < Duration::from_millis(1500),
        "checked within the delay"
    );
    let log = p.stderr();
    assert!(log.contains("shutting down: /readyz answers 503"), "{log}");
    assert!(!log.contains("draining:"), "no drain yet:\n{log}");

    // Then the drain: listener closed, the idle keep-alive client closed, exit 0.
    assert!(
        wait_until(|| TcpStream::connect(p.addr).is_err()),
        "listener closed"
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(1500),
        "the drain waited for shutdown_delay"
    );
    assert!(kept.closed(), "idle client closed by the drain");
    assert_eq!(p.wait_exit(Duration::from_secs(8)), Some(0));
    let log = p.stderr();
    assert_eq!(log.matches("shutting down:").count(), 1, "{log}");
    assert_eq!(log.matches("draining:").count(), 1, "{log}");
}

/// Writes `text` as a new ConfigMap version in `dir` the way kubelet does: a new
/// timestamped directory, a `..data_tmp` symlink to it renamed over `..data`.
fn configmap_version(dir: &Path, n: u32, text: &str) {
    let version = format!("..2026_12_05_09_00_0{n}.00000000{n}");
    std::fs::create_dir_all(dir.join(&version)).unwrap();
    std::fs::write(dir.join(&version).join("sluice.ini"), text).unwrap();
    std::os::unix::fs::symlink(&version, dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    if n > 1 {
        let old = format!("..2026_12_05_09_00_0{}.00000000{}", n - 1, n - 1);
        std::fs::remove_dir_all(dir.join(old)).unwrap();
    }
}

#[test]
fn reload_on_change_applies_a_configmap_symlink_swap() {
    let a = Backend::hello("a");
    let b = Backend::hello("b");
    let port = free_port();
    let base = format!(
        "[frontend]\nhost=127.0.0.1\nport={port}\nreload_on_change=true\n\n[log]\nlevel=info\naccess_log=false\n"
    );
    let dir = std::env::temp_dir().join(format!("sluice-k8s-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    configmap_version(
        &dir,
        1,
        &format!("{base}\n[http]\nserver1_addr={}\n", a.addr),
    );
    std::os::unix::fs::symlink("..data/sluice.ini", dir.join("sluice.ini")).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--config")
        .arg(dir.join("sluice.ini"))
        .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
        .spawn()
        .expect("start sluice");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let p = ProxyProcess { child, addr, dir };
    assert!(wait_until(|| listens_on(p.pid(), port)), "{}", p.stderr());
    assert_eq!(get(addr, "/").text(), "hello from a");

    configmap_version(
        &p.dir,
        2,
        &format!("{base}\n[http]\nserver1_addr={}\n", b.addr),
    );
    assert!(
        wait_until(|| get(addr, "/").text() == "hello from b"),
        "the new version is applied without SIGHUP:\n{}",
        p.stderr()
    );
    assert!(p.stderr().contains("changed: reloading"), "{}", p.stderr());

    // An invalid version is logged and ignored; the running configuration stays.
    configmap_version(&p.dir, 3, &format!("{base}\n[http]\nbogus_key=1\n"));
    assert!(
        wait_until(|| p.stderr().contains("reload failed")),
        "{}",
        p.stderr()
    );
    assert_eq!(get(addr, "/").text(), "hello from b");
    assert_eq!(
        p.stderr().matches("reload failed").count(),
        1,
        "logged once"
    );
}
