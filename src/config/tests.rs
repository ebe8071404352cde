//! Unit tests for what tests/config.rs (the file-level tables) leaves open.

use super::*;

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn ok(text: &str) -> Config {
    parse(text, "t.ini", &|_, port| Ok(local(port))).unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> String {
    match parse(text, "t.ini", &|_, port| Ok(local(port))) {
        Ok(c) => panic!("accepted {text:?}: {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn min_workers_may_equal_max_workers() {
    let c = ok("[http]\nserver1=a:1\nserver1_min_workers=5\nserver1_max_workers=5\n");
    let s = &c.http.servers[0];
    assert_eq!((s.min_workers, s.max_workers), (5, 5));
    assert_eq!(
        err("[http]\nserver1=a:1\nserver1_min_workers=6\nserver1_max_workers=5\n"),
        "t.ini:3: [http] server1_min_workers: 6 is greater than server1_max_workers (5)"
    );
}

#[test]
fn access_log_formats() {
    for (text, format) in [
        ("common", AccessLogFormat::Common),
        ("COMMON", AccessLogFormat::Common),
        ("json", AccessLogFormat::Json),
        ("Json", AccessLogFormat::Json),
    ] {
        let c = ok(&format!(
            "[http]\nserver1=a:1\n[log]\naccess_log_format={text}\n"
        ));
        assert_eq!(c.log.access_log_format, format, "{text}");
    }
}

#[test]
fn server_address_needs_a_host_without_spaces() {
    for addr in [":80", "a b:80", " :80"] {
        let text = format!("[http]\nserver1={addr}\n");
        let e = err(&text);
        assert!(
            e.starts_with("t.ini:2: [http] server1: expected host:port, got"),
            "{addr}: {e}"
        );
    }
    assert_eq!(ok("[http]\nserver1=a:80\n").http.servers[0].addr, local(80));
}

#[test]
fn an_unset_health_check_timeout_fits_the_interval() {
    let timeout = |extra: &str| {
        ok(&format!("[http]\nserver1=a:1\n{extra}"))
            .http
            .health_check_timeout
    };
    let ms = Duration::from_millis;
    // The seed's `health_check_interval=2` alone is valid: the 2 s default halves.
    assert_eq!(timeout("health_check_interval=2\n"), ms(1000));
    assert_eq!(timeout("health_check_interval=3\n"), ms(1500));
    assert_eq!(
        timeout("health_check_interval=1ms\n"),
        Duration::from_micros(500)
    );
    // Long intervals keep the 2 s default; an explicit value is kept as written.
    assert_eq!(timeout("health_check_interval=4\n"), ms(2000));
    assert_eq!(timeout(""), ms(2000));
    assert_eq!(
        timeout("health_check_interval=2\nhealth_check_timeout=1500ms\n"),
        ms(1500)
    );
    // Only an explicit conflict is rejected, naming the line the user wrote.
    assert_eq!(
        err("[http]\nserver1=a:1\nhealth_check_timeout=2s\nhealth_check_interval=2\n"),
        "t.ini:3: [http] health_check_timeout: 2s must be less than health_check_interval (2s)"
    );
    // The same rule in [websocket].
    let c = ok("[websocket]\nserver1=a:1\nhealth_check_interval=2\n");
    assert_eq!(c.websocket.health_check_timeout, ms(1000));
}
