//! The access log: one line per HTTP exchange and per WebSocket tunnel, in batches.
//!
//! Lines are formatted straight into a fixed buffer owned by the reactor (no `format!`,
//! no allocation per line: integers and times are written digit by digit) and the
//! buffer goes out with one `write` per loop turn (`flush`, called by the reactor at the
//! end of each turn), or earlier when it fills: nginx's `access_log ... buffer=`.
//!
//! Bounded, never growing, never waiting on a reader: the buffer holds `BUF_BYTES`.
//! When stdout or stderr is a pipe (a container's log stream, `sluice | tee`), the log
//! opens the pipe anew through `/proc/self/fd/N` (a description of its own: nothing
//! changes for the other writers of that descriptor, the `log` messages included) and
//! makes it non-blocking: a reader that falls behind costs lines, not the proxy. A
//! regular file is written blocking (the page cache takes it at once, as nginx's
//! buffered log does), and so is anything that cannot be reopened (a terminal, a socket,
//! a pipe of another user). What a write did not take (a short write, `WouldBlock`)
//! stays for the next turn; a line that finds no room even after a write is dropped and
//! counted; a failed write (disk full) drops what was buffered, counts those lines and
//! logs the error once until a write succeeds again. Nothing grows without bound and the
//! loop never spins on a log that cannot keep up. The counters are in `/metrics`.
//!
//! Formats (`[log] access_log_format`):
//! - `common`: `TIME CLIENT "METHOD PATH" STATUS BYTES_IN BYTES_OUT SERVER CONNECT_MS
//!   RESPONSE_MS TOTAL_MS`; a tunnel line has the same columns (status 101, bytes each
//!   way, `-` for the upstream times, the tunnel's duration) and then `messages=IN/OUT
//!   close=CODE by=WHO`. Bytes of the path outside printable ASCII, `"` and `\` are
//!   written `\xHH`.
//! - `json`: one object per line and nothing else (no timestamp or level in front), so
//!   log shippers parse it as it is. The path is a JSON string: `"`, `\` and control
//!   bytes are escaped, and bytes that are not UTF-8 are percent-encoded (`%FF`: the
//!   same URL to any server), so the line is always valid UTF-8 JSON.
//!
//! Times: `TIME` is RFC 3339 UTC with milliseconds, computed from the wall clock the
//! reactor reads once per turn (no date crate: days to civil date, Hinnant's
//! algorithm); durations are milliseconds with three decimals.

use crate::config::{AccessLogDest, AccessLogFormat};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::time::{SystemTime, UNIX_EPOCH};

/// Bytes buffered before a write is forced (at the latest, the end of the turn writes).
pub const BUF_BYTES: usize = 64 * 1024;

/// One finished HTTP exchange. Times are microseconds from the request head.
pub struct Request<'a> {
    /// The client's IP address (ASCII).
    pub client: &'a [u8],
    pub method: &'a str,
    /// The request target (possibly truncated: `exchange::LOG_TARGET`).
    pub path: &'a [u8],
    pub status: u16,
    /// Request bytes read from the client (head and body).
    pub bytes_in: u64,
    /// Response bytes sent to the client (head and body).
    pub bytes_out: u64,
    /// The server's name.
    pub server: &'a str,
    /// Until a backend connection took the request (queue wait and connect; 0 when an
    /// idle pooled connection was ready). `None` (`-`): no backend took it.
    pub connect_us: Option<u64>,
    /// From then until the response head arrived. `None` (`-`): no backend answered
    /// (sluice answered itself: 400, 408, 429, 502, 503, 504 ...).
    pub response_us: Option<u64>,
    /// From the request head to the end of the response.
    pub total_us: u64,
}

/// One ended WebSocket tunnel.
pub struct Tunnel<'a> {
    pub client: &'a [u8],
    pub path: &'a [u8],
    pub server: &'a str,
    /// From the 101 to the end of the tunnel.
    pub duration_us: u64,
    /// Client to backend.
    pub bytes_in: u64,
    /// Backend to client.
    pub bytes_out: u64,
    /// Complete data messages, client to backend.
    pub messages_in: u64,
    /// Complete data messages, backend to client.
    pub messages_out: u64,
    /// The code of the first Close frame, when one carried a code.
    pub close_code: Option<u16>,
    /// Who sent the first Close frame (`client`, `backend`, `sluice`), if any.
    pub close_by: Option<&'static str>,
}

/// Counters for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Lines written (handed to the destination).
    pub lines: u64,
    /// Lines dropped: no room in the buffer, or a failed write.
    pub dropped: u64,
}

enum Sink {
    Off,
    /// stdout or stderr, written unbuffered (`std_sink`).
    Std(File),
    File {
        path: String,
        file: File,
    },
}

/// The access log of one reactor (see the module docs).
pub struct AccessLog {
    format: AccessLogFormat,
    sink: Sink,
    /// Capacity `BUF_BYTES`, never grown; only whole lines (and the unwritten rest of
    /// the last write).
    buf: Vec<u8>,
    /// Lines in `buf` (for `lines` when written, `dropped` when lost).
    pending: u64,
    stats: Stats,
    /// The last write failed (logged once until one succeeds).
    failing: bool,
    /// `YYYY-MM-DDTHH:MM:SS` of `date_secs` (seconds since the epoch).
    date: [u8; 19],
    date_secs: u64,
}

impl AccessLog {
    /// Opens the destination (a file is created if needed, and appended to).
    pub fn open(dest: &AccessLogDest, format: AccessLogFormat) -> io::Result<AccessLog> {
        let sink = match dest {
            AccessLogDest::Off => Sink::Off,
            AccessLogDest::Stderr => Sink::Std(std_sink(io::stderr().as_fd(), 2)?),
            AccessLogDest::Stdout => Sink::Std(std_sink(io::stdout().as_fd(), 1)?),
            AccessLogDest::File(path) => Sink::File {
                file: open_append(path)?,
                path: path.clone(),
            },
        };
        let buf = match sink {
            Sink::Off => Vec::new(),
            _ => Vec::with_capacity(BUF_BYTES),
        };
        Ok(AccessLog {
            format,
            sink,
            buf,
            pending: 0,
            stats: Stats::default(),
            failing: false,
            date: *b"1970-01-01T00:00:00",
            date_secs: 0,
        })
    }

    /// An access log that writes nothing.
    pub fn off() -> AccessLog {
        AccessLog {
            format: AccessLogFormat::Common,
            sink: Sink::Off,
            buf: Vec::new(),
            pending: 0,
            stats: Stats::default(),
            failing: false,
            date: *b"1970-01-01T00:00:00",
            date_secs: 0,
        }
    }

    /// False for `off`: the caller need not gather a line's fields.
    pub fn is_on(&self) -> bool {
        !matches!(self.sink, Sink::Off)
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Buffers the line of a finished exchange; `wall` is the turn's wall-clock time.
    pub fn request(&mut self, wall: SystemTime, r: &Request) {
        let json = self.format == AccessLogFormat::Json;
        self.line(wall, |o, time| {
            if json {
                o.put(b"{\"time\":\"");
                o.put(time);
                o.put(b"\",\"type\":\"http\",\"client\":\"");
                o.json_str(r.client);
                o.put(b"\",\"method\":\"");
                o.json_str(r.method.as_bytes());
                o.put(b"\",\"path\":\"");
                o.json_str(r.path);
                o.put(b"\",\"status\":");
                o.num(r.status.into());
                o.put(b",\"bytes_in\":");
                o.num(r.bytes_in);
                o.put(b",\"bytes_out\":");
                o.num(r.bytes_out);
                o.put(b",\"server\":\"");
                o.json_str(r.server.as_bytes());
                o.put(b"\",\"upstream_connect_ms\":");
                o.ms_or(r.connect_us, b"", b"null");
                o.put(b",\"upstream_response_ms\":");
                o.ms_or(r.response_us, b"", b"null");
                o.put(b",\"total_ms\":");
                o.ms(r.total_us);
                o.put(b"}\n");
            } else {
                o.put(time);
                o.put(b" ");
                o.put(r.client);
                o.put(b" \"");
                o.put(r.method.as_bytes());
                o.put(b" ");
                o.text_str(r.path);
                o.put(b"\" ");
                o.num(r.status.into());
                o.put(b" ");
                o.num(r.bytes_in);
                o.put(b" ");
                o.num(r.bytes_out);
                o.put(b" ");
                o.text_str(r.server.as_bytes());
                o.put(b" ");
                o.ms_or(r.connect_us, b"ms", b"-");
                o.put(b" ");
                o.ms_or(r.response_us, b"ms", b"-");
                o.put(b" ");
                o.ms(r.total_us);
                o.put(b"ms\n");
            }
        });
    }

    /// Buffers the line of an ended tunnel.
    pub fn tunnel(&mut self, wall: SystemTime, t: &Tunnel) {
        let json = self.format == AccessLogFormat::Json;
        self.line(wall, |o, time| {
            if json {
                o.put(b"{\"time\":\"");
                o.put(time);
                o.put(b"\",\"type\":\"websocket\",\"client\":\"");
                o.json_str(t.client);
                o.put(b"\",\"method\":\"GET\",\"path\":\"");
                o.json_str(t.path);
                o.put(b"\",\"status\":101,\"bytes_in\":");
                o.num(t.bytes_in);
                o.put(b",\"bytes_out\":");
                o.num(t.bytes_out);
                o.put(b",\"server\":\"");
                o.json_str(t.server.as_bytes());
                o.put(b"\",\"duration_ms\":");
                o.ms(t.duration_us);
                o.put(b",\"messages_in\":");
                o.num(t.messages_in);
                o.put(b",\"messages_out\":");
                o.num(t.messages_out);
                o.put(b",\"close_code\":");
                match t.close_code {
                    Some(c) => o.num(c.into()),
                    None => o.put(b"null"),
                }
                o.put(b",\"close_by\":");
                match t.close_by {
                    Some(by) => {
                        o.put(b"\"");
                        o.put(by.as_bytes());
                        o.put(b"\"");
                    }
                    None => o.put(b"null"),
                }
                o.put(b"}\n");
            } else {
                o.put(time);
                o.put(b" ");
                o.put(t.client);
                o.put(b" \"GET ");
                o.text_str(t.path);
                o.put(b"\" 101 ");
                o.num(t.bytes_in);
                o.put(b" ");
                o.num(t.bytes_out);
                o.put(b" ");
                o.text_str(t.server.as_bytes());
                o.put(b" - - ");
                o.ms(t.duration_us);
                o.put(b"ms messages=");
                o.num(t.messages_in);
                o.put(b"/");
                o.num(t.messages_out);
                o.put(b" close=");
                match t.close_code {
                    Some(c) => o.num(c.into()),
                    None => o.put(b"-"),
                }
                o.put(b" by=");
                o.put(t.close_by.unwrap_or("-").as_bytes());
                o.put(b"\n");
            }
        });
    }

    /// Formats one line at the end of the buffer; when it does not fit, writes the
    /// buffer and tries once more; then drops it.
    fn line(&mut self, wall: SystemTime, f: impl Fn(&mut Out, &[u8])) {
        if !self.is_on() {
            return;
        }
        let mut time = [0u8; 24];
        self.time(wall, &mut time);
        for attempt in 0..2 {
            let start = self.buf.len();
            let mut out = Out {
                buf: &mut self.buf,
                full: false,
            };
            f(&mut out, &time);
            if !out.full {
                self.pending += 1;
                return;
            }
            self.buf.truncate(start);
            if attempt == 0 {
                self.flush();
            }
        }
        self.stats.dropped += 1;
    }

    /// Writes what is buffered, with one `write`. Called at the end of every loop turn
    /// (and when the buffer fills).
    pub fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let res = match &mut self.sink {
            Sink::Off => return,
            Sink::Std(f) | Sink::File { file: f, .. } => write_once(f, &self.buf),
        };
        match res {
            Ok(n) if n == self.buf.len() => {
                self.stats.lines += self.pending;
                self.pending = 0;
                self.buf.clear();
                self.failing = false;
            }
            Ok(n) => {
                // Keep the rest; the lines it ends are counted when they go.
                let done = count_lines(&self.buf[..n]);
                self.stats.lines += done;
                self.pending -= done;
                self.buf.drain(..n);
                self.failing = false;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                if !self.failing {
                    log::error!(
                        "access log: write failed, dropping {} lines: {e}",
                        self.pending
                    );
                }
                self.failing = true;
                self.stats.dropped += self.pending;
                self.pending = 0;
                self.buf.clear();
            }
        }
    }

    /// Writes what is buffered, then reopens a file destination by its path (SIGUSR1,
    /// after logrotate renamed it). On failure the old file stays in use.
    pub fn reopen(&mut self) {
        self.flush();
        if let Sink::File { path, file } = &mut self.sink {
            match open_append(path) {
                Ok(f) => {
                    *file = f;
                    log::info!("access log reopened: {path}");
                }
                Err(e) => {
                    log::error!("access log: cannot reopen {path}, keeping the old file: {e}")
                }
            }
        }
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ` of `wall` into `out`; the date part is recomputed
    /// once per second.
    fn time(&mut self, wall: SystemTime, out: &mut [u8; 24]) {
        let since = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        if secs != self.date_secs {
            self.date = date_time(secs);
            self.date_secs = secs;
        }
        out[..19].copy_from_slice(&self.date);
        let ms = since.subsec_millis();
        out[19] = b'.';
        out[20..23].copy_from_slice(&three_digits(ms));
        out[23] = b'Z';
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        self.flush();
    }
}

/// The access log's own descriptor for stdout (`n` = 1) or stderr (2): a pipe opened
/// anew, non-blocking, else a duplicate of `fd` (same open file, blocking). Read-write,
/// because opening a pipe's write end alone blocks while it has no reader.
fn std_sink(fd: BorrowedFd, n: u8) -> io::Result<File> {
    let path = format!("/proc/self/fd/{n}");
    let fifo = std::fs::metadata(&path).is_ok_and(|m| m.file_type().is_fifo());
    if fifo {
        if let Ok(f) = OpenOptions::new().read(true).write(true).open(&path) {
            let pipe = mio::unix::pipe::Sender::from(OwnedFd::from(f));
            if pipe.set_nonblocking(true).is_ok() {
                return Ok(File::from(OwnedFd::from(pipe)));
            }
        }
    }
    Ok(File::from(fd.try_clone_to_owned()?))
}

fn open_append(path: &str) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// One `write` call, retried only when interrupted by a signal.
fn write_once(f: &mut File, bytes: &[u8]) -> io::Result<usize> {
    loop {
        match f.write(bytes) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

fn count_lines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// The tail of the buffer a line is formatted into; `full` once something did not fit
/// (the caller then discards the partial line).
struct Out<'a> {
    buf: &'a mut Vec<u8>,
    full: bool,
}

impl Out<'_> {
    #[inline]
    fn put(&mut self, b: &[u8]) {
        if self.buf.capacity() - self.buf.len() < b.len() {
            self.full = true;
            return;
        }
        self.buf.extend_from_slice(b);
    }

    fn num(&mut self, mut n: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.put(&digits[i..]);
    }

    /// Microseconds as milliseconds with three decimals.
    fn ms(&mut self, us: u64) {
        self.num(us / 1000);
        let mut frac = [b'.'; 4];
        frac[1..].copy_from_slice(&three_digits((us % 1000) as u32));
        self.put(&frac);
    }

    /// [`Out::ms`] and `unit`, or `none` when there is no time.
    fn ms_or(&mut self, us: Option<u64>, unit: &[u8], none: &[u8]) {
        match us {
            Some(us) => {
                self.ms(us);
                self.put(unit);
            }
            None => self.put(none),
        }
    }

    /// Printable ASCII as is, the rest (and `"`, `\`) as `\xHH`.
    fn text_str(&mut self, s: &[u8]) {
        if s.iter().all(|&b| plain_text(b)) {
            self.put(s);
            return;
        }
        for chunk in s.split_inclusive(|&b| !plain_text(b)) {
            match chunk.split_last() {
                Some((&last, head)) if !plain_text(last) => {
                    self.put(head);
                    self.put(&[
                        b'\\',
                        b'x',
                        HEX[usize::from(last >> 4)],
                        HEX[usize::from(last & 15)],
                    ]);
                }
                _ => self.put(chunk),
            }
        }
    }

    /// The contents of a JSON string (RFC 8259 §7): `"`, `\` and control characters
    /// escaped; bytes that are not UTF-8 percent-encoded.
    fn json_str(&mut self, s: &[u8]) {
        for chunk in s.utf8_chunks() {
            let valid = chunk.valid().as_bytes();
            let mut from = 0;
            for (i, &b) in valid.iter().enumerate() {
                if b < 0x20 || b == b'"' || b == b'\\' {
                    self.put(&valid[from..i]);
                    match b {
                        b'"' => self.put(b"\\\""),
                        b'\\' => self.put(b"\\\\"),
                        b'\n' => self.put(b"\\n"),
                        b'\r' => self.put(b"\\r"),
                        b'\t' => self.put(b"\\t"),
                        _ => self.put(&[
                            b'\\',
                            b'u',
                            b'0',
                            b'0',
                            HEX[usize::from(b >> 4)],
                            HEX[usize::from(b & 15)],
                        ]),
                    }
                    from = i + 1;
                }
            }
            self.put(&valid[from..]);
            for &b in chunk.invalid() {
                self.put(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
            }
        }
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn plain_text(b: u8) -> bool {
    (0x21..0x7f).contains(&b) && b != b'"' && b != b'\\'
}

fn three_digits(n: u32) -> [u8; 3] {
    [
        b'0' + (n / 100 % 10) as u8,
        b'0' + (n / 10 % 10) as u8,
        b'0' + (n % 10) as u8,
    ]
}

fn two(out: &mut [u8], n: u64) {
    out[0] = b'0' + (n / 10 % 10) as u8;
    out[1] = b'0' + (n % 10) as u8;
}

/// `YYYY-MM-DDTHH:MM:SS` (UTC) of a time in seconds since the epoch. Days to a civil
/// date: H. Hinnant, "chrono-Compatible Low-Level Date Algorithms", `civil_from_days`.
fn date_time(secs: u64) -> [u8; 19] {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = (yoe + era * 400 + i64::from(month <= 2)).clamp(0, 9999) as u64;
    let mut out = *b"0000-00-00T00:00:00";
    two(&mut out[0..2], year / 100);
    two(&mut out[2..4], year % 100);
    two(&mut out[5..7], month as u64);
    two(&mut out[8..10], day as u64);
    two(&mut out[11..13], rem / 3600);
    two(&mut out[14..16], rem / 60 % 60);
    two(&mut out[17..19], rem % 60);
    out
}

#[cfg(test)]
mod tests;
