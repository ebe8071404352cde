//! The proxy as a child process: a sluice binary started with a config, and what
//! /proc says about it (RSS, descriptors), for leak and memory checks.

use super::*;

/// VmRSS of a process in KiB (Linux).
pub fn rss_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Open file descriptors of a process.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The process's descriptors once their count held still over three samples: the
/// links of its sockets and pipes ("socket:[inode]", "pipe:[inode]", one per
/// descriptor). Panics if a pipe still holds bytes then: nobody will drain it, a leak.
/// (Empty pipes are the splice pool's, kept for reuse: bounded, not leaked.)
pub fn steady_fds(pid: u32) -> (Vec<String>, Vec<String>) {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let mut counts = vec![];
    wait_until(|| {
        counts.push(fd_count(pid));
        std::thread::sleep(Duration::from_millis(40));
        counts.len() >= 3
            && counts[counts.len() - 3..]
                .iter()
                .all(|&n| n == counts[counts.len() - 1])
    });
    let all: Vec<(std::path::PathBuf, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(|e| {
                let path = e.ok()?.path();
                let link = std::fs::read_link(&path).ok()?.display().to_string();
                Some((path, link))
            })
            .collect()
        })
        .unwrap_or_default();
    let of = |kind: &str| -> Vec<String> {
        all.iter()
            .filter(|(_, l)| l.starts_with(kind))
            .map(|(_, l)| l.clone())
            .collect()
    };
    // Opening /proc/PID/fd/N of a pipe opens that pipe; FIONREAD says what it holds.
    for (path, link) in all.iter().filter(|(_, l)| l.starts_with("pipe:")) {
        let Ok(f) = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
        else {
            continue;
        };
        let mut held: libc::c_int = 0;
        // SAFETY: FIONREAD writes one c_int through the pointer, which is valid.
        let rc = unsafe { libc::ioctl(f.as_raw_fd(), libc::FIONREAD, &mut held) };
        assert!(rc != 0 || held == 0, "{link} still holds {held} bytes");
    }
    (of("socket:"), of("pipe:"))
}

/// A sluice binary running as a child process (for RSS and fd measurements), killed on drop.
pub struct ProxyProcess {
    pub child: std::process::Child,
    pub addr: SocketAddr,
    pub dir: std::path::PathBuf,
}

/// A loopback port nothing listens on now, never given before to a caller in this test
/// process. Tests run on parallel threads: without the record, two tests could be handed
/// the same just-released port, start two children on it (one of them fails to bind) and
/// read each other's logs (a CI failure: one test's drop removed the other's directory).
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Whether process `pid` itself holds a socket listening on 127.0.0.1:`port` (read from
/// /proc/net/tcp and the process's descriptors: a connect could reach another listener).
pub fn listens_on(pid: u32, port: u16) -> bool {
    let want = format!("0100007F:{port:04X}");
    let tcp = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let Some(inode) = tcp.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        // local_address, st (0A: LISTEN), inode.
        (f.len() > 9 && f[1] == want && f[3] == "0A").then(|| f[9].to_string())
    }) else {
        return false;
    };
    let link = format!("socket:[{inode}]");
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .any(|l| l.as_os_str() == link.as_str())
        })
        .unwrap_or(false)
}

impl ProxyProcess {
    /// Writes the INI (with `{b0}`… substituted and a free frontend port) and starts
    /// the release or debug `sluice` binary Cargo built for this test run.
    #[track_caller]
    pub fn start(ini: &str, backends: &[SocketAddr]) -> ProxyProcess {
        let port = free_port();
        let mut text = ini.to_string();
        for (i, b) in backends.iter().enumerate() {
            text = text.replace(&format!("{{b{i}}}"), &b.to_string());
        }
        let text = format!("[frontend]\nhost=127.0.0.1\nport={port}\n\n{text}\n[log]\nlevel=warn\naccess_log=false\n");
        ProxyProcess::launch(&text, port)
    }

    /// Starts the binary with a complete INI text: `{port}` becomes a free port, and
    /// `{admin}` another one (returned as `admin`).
    #[track_caller]
    pub fn start_raw(ini: &str) -> (ProxyProcess, SocketAddr) {
        let (port, admin) = (free_port(), free_port());
        let text = ini
            .replace("{port}", &port.to_string())
            .replace("{admin}", &admin.to_string());
        let admin: SocketAddr = format!("127.0.0.1:{admin}").parse().unwrap();
        (ProxyProcess::launch(&text, port), admin)
    }

    /// Writes `text` as sluice.ini in a directory of its own, starts the binary on it
    /// (stdout and stderr to files there) and waits until the child listens on `port`.
    #[track_caller]
    fn launch(text: &str, port: u16) -> ProxyProcess {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("sluice-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("sluice.ini"), text).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("--config")
            .arg(dir.join("sluice.ini"))
            .stdout(std::fs::File::create(dir.join("stdout.log")).unwrap())
            .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
            .spawn()
            .expect("start sluice");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut p = ProxyProcess { child, addr, dir };
        let listening = wait_until(|| {
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!("sluice exited ({status}) before listening:\n{}", p.stderr());
            }
            listens_on(p.pid(), port)
        });
        assert!(listening, "sluice did not start listening:\n{}", p.stderr());
        p
    }

    /// Sends a signal (`TERM`, `HUP`, `INT`, `KILL`, `USR1`) to the process (with libc: no
    /// external `kill` program is needed).
    #[track_caller]
    pub fn signal(&self, sig: &str) {
        let n = match sig {
            "TERM" => libc::SIGTERM,
            "HUP" => libc::SIGHUP,
            "INT" => libc::SIGINT,
            "KILL" => libc::SIGKILL,
            "USR1" => libc::SIGUSR1,
            other => panic!("unknown signal {other}"),
        };
        // SAFETY: kill(2) with a live child's pid and a valid signal number.
        let rc = unsafe { libc::kill(self.pid() as libc::pid_t, n) };
        assert_eq!(
            rc,
            0,
            "kill -{sig} failed: {}",
            std::io::Error::last_os_error()
        );
    }

    /// Waits (bounded) for the process to exit; its exit code, or None if it did not.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr.log")).unwrap_or_default()
    }

    /// What the process wrote to stdout (`start_raw` only).
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.join("stdout.log")).unwrap_or_default()
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
