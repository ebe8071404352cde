//! Decoding fuzzer bytes: a cursor over the input, and the configuration its first
//! bytes choose (pool sizes, queue, algorithm, limits, health checks, retries, ping).

use super::MARK;
use crate::config::{self, Config};

/// Reads the input a byte at a time (zeros once it runs out).
pub(super) struct Input<'a> {
    pub(super) data: &'a [u8],
    pub(super) pos: usize,
}

impl Input<'_> {
    pub(super) fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    pub(super) fn done(&self) -> bool {
        self.pos >= self.data.len()
    }
    /// Up to `n` raw bytes, with the marker byte replaced.
    pub(super) fn bytes(&mut self, n: usize) -> Vec<u8> {
        let end = (self.pos + n).min(self.data.len());
        let v = self.data[self.pos.min(end)..end]
            .iter()
            .map(|&b| if b == MARK { b'-' } else { b })
            .collect();
        self.pos = end;
        v
    }
}

pub(super) fn knob_config(input: &mut Input) -> (Config, usize) {
    let b = [
        input.byte(),
        input.byte(),
        input.byte(),
        input.byte(),
        input.byte(),
    ];
    let cap = [256usize, 1024, 4096, 65536][(b[0] & 3) as usize];
    let algorithm = [
        "random",
        "round-robin",
        "weighted-round-robin",
        "least-connections",
        "power-of-two",
    ][(b[0] >> 2) as usize % 5];
    let health = b[1] & 1 != 0;
    let fail_5xx = b[1] & 2 != 0;
    let min_workers = (b[1] >> 2) % 3;
    let max_workers = min_workers.max(1) + (b[1] >> 4) % 3;
    let queue = 1 + b[2] % 3;
    let max_conn = 2 + (b[2] >> 2) % 7;
    let body_limit = if b[3] & 1 != 0 {
        "max_body_bytes=64\n"
    } else {
        ""
    };
    let head_limit = if b[3] & 2 != 0 {
        "max_header_bytes=1024\n"
    } else {
        ""
    };
    let retries = (b[3] >> 2) % 3;
    let ping = if b[4] & 1 != 0 {
        "ping_interval=2s\nping_timeout=1s\n"
    } else {
        ""
    };
    let msg = if b[4] & 2 != 0 {
        "max_message_bytes=64\n"
    } else {
        ""
    };
    let servers = 1 + (b[4] >> 2) % 2;
    let mut http = String::new();
    for s in 1..=servers {
        http.push_str(&format!(
            "server{s}_addr=127.0.0.1:900{s}\nserver{s}_min_workers={min_workers}\n\
             server{s}_max_workers={max_workers}\nserver{s}_buffer_size={queue}\n\
             server{s}_worker_timeout=3s\nserver{s}_weight={s}\n"
        ));
    }
    let health_keys = format!(
        "enable_health_check={health}\nhealth_check_interval=1s\nhealth_check_timeout=500ms\n\
         rise=2\nfall=2\nmax_fails=2\nfail_timeout=2s\nfail_on_5xx={fail_5xx}\n\
         connect_timeout=1s\nresponse_timeout=3s\nqueue_timeout=2s\nretries={retries}\n"
    );
    let text = format!(
        "[frontend]\nhost=127.0.0.1\nport=8080\nmax_connections={max_conn}\n\
         request_header_timeout=2s\nclient_idle_timeout=5s\ndrain_timeout=4s\n\
         {body_limit}{head_limit}\n\
         [http]\nalgorithm={algorithm}\n{health_keys}{http}\n\
         [websocket]\nalgorithm={algorithm}\n{health_keys}idle_timeout=10s\n{ping}{msg}\
         server1=127.0.0.1:9101\n\n[log]\nlevel=off\naccess_log=false\n"
    );
    let cfg = config::parse(&text, "sim.ini", &|h, _| Err(format!("no DNS for {h}")))
        .unwrap_or_else(|e| panic!("scenario config rejected: {e}\n{text}"));
    (cfg, cap)
}
