//! Line formats (exact bytes), the clock, batching, dropping and reopening.

use super::*;
use std::path::PathBuf;
use std::time::Duration;

/// A file path of this test's own, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> TempFile {
        let p = std::env::temp_dir().join(format!("sluice-access-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&p);
        TempFile(p)
    }
    fn path(&self) -> String {
        self.0.to_string_lossy().into_owned()
    }
    fn read(&self) -> String {
        std::fs::read_to_string(&self.0).unwrap_or_default()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn log_to(f: &TempFile, format: AccessLogFormat) -> AccessLog {
    AccessLog::open(&AccessLogDest::File(f.path()), format).expect("temp file opens")
}

/// 2023-11-14T22:13:20.042Z
fn wall() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_700_000_000_042)
}

fn request(path: &[u8]) -> Request<'_> {
    Request {
        client: b"10.1.2.3",
        method: "GET",
        path,
        status: 200,
        bytes_in: 78,
        bytes_out: 1234,
        server: "server1",
        connect_us: Some(0),
        response_us: Some(412),
        total_us: 1_501_007,
    }
}

fn tunnel() -> Tunnel<'static> {
    Tunnel {
        client: b"10.1.2.3",
        path: b"/chat?room=1",
        server: "server2",
        duration_us: 61_000_250,
        bytes_in: 300,
        bytes_out: 4000,
        messages_in: 3,
        messages_out: 40,
        close_code: Some(1000),
        close_by: Some("client"),
    }
}

#[test]
fn dates_are_rfc3339_utc() {
    for (secs, text) in [
        (0, "1970-01-01T00:00:00"),
        (951_782_400, "2000-02-29T00:00:00"),
        (951_868_799, "2000-02-29T23:59:59"),
        (1_700_000_000, "2023-11-14T22:13:20"),
        (1_709_164_800, "2024-02-29T00:00:00"),
        (4_102_444_799, "2099-12-31T23:59:59"),
        (4_107_542_400, "2100-03-01T00:00:00"),
    ] {
        assert_eq!(
            std::str::from_utf8(&date_time(secs)).unwrap(),
            text,
            "{secs}"
        );
    }
}

#[test]
fn common_lines() {
    let f = TempFile::new("common");
    let mut log = log_to(&f, AccessLogFormat::Common);
    log.request(wall(), &request(b"/a b\"c\\\x01\xff?q=1"));
    log.tunnel(wall(), &tunnel());
    let mut t = tunnel();
    (t.close_code, t.close_by) = (None, None);
    log.tunnel(wall() + Duration::from_millis(1005), &t);
    assert_eq!(f.read(), "", "nothing is written before the flush");
    log.flush();
    assert_eq!(
        f.read(),
        "2023-11-14T22:13:20.042Z 10.1.2.3 \"GET /a\\x20b\\x22c\\x5C\\x01\\xFF?q=1\" 200 78 1234 server1 0.000ms 0.412ms 1501.007ms\n\
         2023-11-14T22:13:20.042Z 10.1.2.3 \"GET /chat?room=1\" 101 300 4000 server2 - - 61000.250ms messages=3/40 close=1000 by=client\n\
         2023-11-14T22:13:21.047Z 10.1.2.3 \"GET /chat?room=1\" 101 300 4000 server2 - - 61000.250ms messages=3/40 close=- by=-\n"
    );
    assert_eq!(
        log.stats(),
        Stats {
            lines: 3,
            dropped: 0
        }
    );
}

#[test]
fn json_lines() {
    let f = TempFile::new("json");
    let mut log = log_to(&f, AccessLogFormat::Json);
    // Quote, backslash, control bytes, a valid two-byte character, invalid UTF-8
    // (a lone continuation byte, a sequence cut short at the end).
    log.request(wall(), &request(b"/\"\\\n\x01\x7f\xc3\xa9\x80x\xe2\x82"));
    log.tunnel(wall(), &tunnel());
    let mut t = tunnel();
    (t.close_code, t.close_by) = (None, Some("sluice"));
    log.tunnel(wall(), &t);
    log.flush();
    assert_eq!(
        f.read(),
        "{\"time\":\"2023-11-14T22:13:20.042Z\",\"type\":\"http\",\"client\":\"10.1.2.3\",\"method\":\"GET\",\
         \"path\":\"/\\\"\\\\\\n\\u0001\x7f\u{e9}%80x%E2%82\",\"status\":200,\"bytes_in\":78,\"bytes_out\":1234,\
         \"server\":\"server1\",\"upstream_connect_ms\":0.000,\"upstream_response_ms\":0.412,\"total_ms\":1501.007}\n\
         {\"time\":\"2023-11-14T22:13:20.042Z\",\"type\":\"websocket\",\"client\":\"10.1.2.3\",\"method\":\"GET\",\
         \"path\":\"/chat?room=1\",\"status\":101,\"bytes_in\":300,\"bytes_out\":4000,\"server\":\"server2\",\
         \"duration_ms\":61000.250,\"messages_in\":3,\"messages_out\":40,\"close_code\":1000,\"close_by\":\"client\"}\n\
         {\"time\":\"2023-11-14T22:13:20.042Z\",\"type\":\"websocket\",\"client\":\"10.1.2.3\",\"method\":\"GET\",\
         \"path\":\"/chat?room=1\",\"status\":101,\"bytes_in\":300,\"bytes_out\":4000,\"server\":\"server2\",\
         \"duration_ms\":61000.250,\"messages_in\":3,\"messages_out\":40,\"close_code\":null,\"close_by\":\"sluice\"}\n"
    );
}

/// A request sluice answered itself (a 503, a 400): no upstream times, `-` / `null`.
#[test]
fn answers_of_sluice_itself_have_no_upstream_times() {
    let lines = |format| {
        let f = TempFile::new("own");
        let mut log = log_to(&f, format);
        let mut r = request(b"-");
        (r.method, r.status, r.server) = ("-", 400, "-");
        (r.connect_us, r.response_us) = (None, None);
        log.request(wall(), &r);
        log.flush();
        f.read()
    };
    assert_eq!(
        lines(AccessLogFormat::Common),
        "2023-11-14T22:13:20.042Z 10.1.2.3 \"- -\" 400 78 1234 - - - 1501.007ms\n"
    );
    assert_eq!(
        lines(AccessLogFormat::Json),
        "{\"time\":\"2023-11-14T22:13:20.042Z\",\"type\":\"http\",\"client\":\"10.1.2.3\",\"method\":\"-\",\
         \"path\":\"-\",\"status\":400,\"bytes_in\":78,\"bytes_out\":1234,\"server\":\"-\",\
         \"upstream_connect_ms\":null,\"upstream_response_ms\":null,\"total_ms\":1501.007}\n"
    );
}

#[test]
fn a_full_buffer_is_written_before_the_next_line_and_never_grows() {
    let f = TempFile::new("full");
    let mut log = log_to(&f, AccessLogFormat::Json);
    let path = [b'x'; 60];
    let n = 2000; // about 4 buffers of lines
    for _ in 0..n {
        log.request(wall(), &request(&path));
        assert_eq!(log.buf.capacity(), BUF_BYTES);
    }
    let written = f.read().lines().count() as u64;
    assert!(
        written > 0 && written < n,
        "{written}: written when full, not per line"
    );
    log.flush();
    assert_eq!(f.read().lines().count() as u64, n);
    assert_eq!(
        log.stats(),
        Stats {
            lines: n,
            dropped: 0
        }
    );
}

#[test]
fn a_failed_write_drops_the_buffered_lines_and_counts_them() {
    let f = TempFile::new("fail");
    let mut log = log_to(&f, AccessLogFormat::Common);
    log.request(wall(), &request(b"/"));
    log.flush();
    // A descriptor that refuses writes, as a full disk or a closed pipe would.
    let read_only = File::open(&f.0).expect("opens for reading");
    log.sink = Sink::Std(read_only);
    log.request(wall(), &request(b"/"));
    log.request(wall(), &request(b"/"));
    log.flush();
    assert_eq!(
        log.stats(),
        Stats {
            lines: 1,
            dropped: 2
        }
    );
    assert!(
        log.buf.is_empty(),
        "nothing kept for a destination that fails"
    );
    log.request(wall(), &request(b"/"));
    log.flush();
    assert_eq!(
        log.stats(),
        Stats {
            lines: 1,
            dropped: 3
        }
    );
}

#[test]
fn reopen_follows_a_renamed_file() {
    let f = TempFile::new("rotate");
    let rotated = TempFile::new("rotate.1");
    let mut log = log_to(&f, AccessLogFormat::Common);
    log.request(wall(), &request(b"/before"));
    log.flush();
    std::fs::rename(&f.0, &rotated.0).expect("rename");
    log.request(wall(), &request(b"/buffered"));
    log.reopen();
    log.request(wall(), &request(b"/after"));
    log.flush();
    let (old, new) = (rotated.read(), f.read());
    assert!(
        old.contains("/before") && old.contains("/buffered"),
        "{old}"
    );
    assert!(new.contains("/after") && !new.contains("/before"), "{new}");
    assert_eq!(log.stats().lines, 3);
}

#[test]
fn off_keeps_nothing() {
    let mut log = AccessLog::off();
    log.request(wall(), &request(b"/"));
    log.flush();
    assert!(!log.is_on());
    assert_eq!(log.buf.capacity(), 0);
    assert_eq!(log.stats(), Stats::default());
}
