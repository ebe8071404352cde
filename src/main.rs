#![forbid(unsafe_code)]
//! The `sluice` command: parse arguments, load the configuration, run the reactor.

use std::process::ExitCode;

/// The seed's configuration path, used when `--config` is not given and it exists.
const SEED_CONFIG_PATH: &str = "/prod/reverse-proxy-config.ini";

const USAGE: &str = "\
sluice: a tiny reverse proxy and load balancer for HTTP/1.1 and WebSocket

usage:
  sluice demo [--port N]         try it: demo servers + sluice + admin page on loopback
  sluice --config PATH           run in the foreground with this INI configuration
  sluice --check --config PATH   validate the configuration and exit
  sluice --version | --help

With no --config, sluice reads /prod/reverse-proxy-config.ini when it exists.
";

enum Command {
    Run { config: String, check: bool },
    Demo { port: u16 },
    Version,
    Help,
}

fn parse_args(args: &[String]) -> Result<Command, String> {
    let mut config = None;
    let mut check = false;
    if args.first().map(String::as_str) == Some("demo") {
        let port = match args.get(1).map(String::as_str) {
            Some("--port") => args
                .get(2)
                .and_then(|p| p.parse().ok())
                .ok_or("--port needs a number")?,
            Some(other) => return Err(format!("unknown demo argument '{other}'")),
            None => 8080,
        };
        return Ok(Command::Demo { port });
    }
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--config" | "-c" => {
                config = Some(it.next().ok_or("--config needs a path")?.clone());
            }
            s if s.starts_with("--config=") => config = Some(s["--config=".len()..].to_string()),
            "--check" => check = true,
            "--version" | "-V" => return Ok(Command::Version),
            "--help" | "-h" => return Ok(Command::Help),
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    let config = match config {
        Some(c) => c,
        None if std::path::Path::new(SEED_CONFIG_PATH).exists() => SEED_CONFIG_PATH.to_string(),
        None => return Err("no configuration: pass --config PATH".to_string()),
    };
    Ok(Command::Run { config, check })
}

/// The error log on stderr. With several workers each line names the thread that wrote
/// it, `(main)` for the first reactor and `(sluice-worker-N)` for the others (as nginx
/// prefixes its lines with the worker's pid): every reactor logs its own start-up, reloads,
/// health and pool changes, and a line must say whose view it is.
fn init_logging(level: log::LevelFilter, workers: usize) {
    // "At this level and more verbose": Error is every line.
    let threads = if workers > 1 {
        log::LevelFilter::Error
    } else {
        log::LevelFilter::Off
    };
    let cfg = simplelog::ConfigBuilder::new()
        .set_time_format_rfc3339()
        .set_target_level(log::LevelFilter::Off)
        .set_thread_level(threads)
        .set_thread_mode(simplelog::ThreadLogMode::Names)
        .build();
    let _ = simplelog::WriteLogger::init(level, cfg, std::io::stderr());
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (path, check) = match parse_args(&args) {
        Ok(Command::Version) => {
            println!("sluice {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Command::Run { config, check }) => (config, check),
        Ok(Command::Demo { port }) => return demo(port),
        Err(e) => {
            eprintln!("sluice: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let cfg = match sluice::config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    if check {
        // With `tls`, every certificate pair is loaded, matched and test-served, and every
        // backend CA bundle loaded (without it, TLS keys were already refused above).
        #[cfg(feature = "tls")]
        match sluice::tls::check(&cfg, std::time::Instant::now()) {
            Ok(warnings) => warnings.iter().for_each(|w| eprintln!("warning: {w}")),
            Err(e) => {
                eprintln!("{path}: {e}");
                return ExitCode::from(1);
            }
        }
        println!("configuration OK");
        return ExitCode::SUCCESS;
    }
    init_logging(cfg.log.level, cfg.frontend.workers);
    run(cfg, Some(path))
}

/// Builds the reactors (`[frontend] workers`, default 1) and runs them in the
/// foreground; the first one, on this thread, receives the signals and forwards them.
fn run(cfg: sluice::config::Config, path: Option<String>) -> ExitCode {
    let mut first = match sluice::Reactor::new(cfg.clone()) {
        Ok(r) => r,
        Err(e) => {
            // Once, on stderr (the logger writes there too).
            eprintln!("sluice: {}", start_error(&e));
            return ExitCode::from(1);
        }
    };
    let mut workers = Vec::new();
    let mut peers = Vec::new();
    if cfg.frontend.workers > 1 {
        // One resolver for all: the first reactor queries, the others follow its data.
        let feed = first.lead_discovery();
        // The others bind the address the first one got (port 0 picks one port once).
        let mut cfg = cfg;
        if let Ok(addr) = first.local_addr() {
            cfg.frontend.listen = addr;
        }
        // The admin endpoint is served by the first reactor only: its port cannot be
        // shared, and one scrape should not land on a random worker.
        cfg.admin = None;
        for w in 1..cfg.frontend.workers {
            let mut r = match sluice::Reactor::new(cfg.clone()) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("sluice: worker {w}: {}", start_error(&e));
                    return ExitCode::from(1);
                }
            };
            r.set_config_path(path.clone());
            r.follow_discovery(feed.clone());
            peers.push(r.stop_handle());
            let spawned = std::thread::Builder::new()
                .name(format!("sluice-worker-{w}"))
                .spawn(move || r.run());
            match spawned {
                Ok(t) => workers.push(t),
                Err(e) => {
                    eprintln!("sluice: cannot start worker {w}: {e}");
                    return ExitCode::from(1);
                }
            }
        }
        log::info!(
            "{} workers (independent reactors sharing the port with SO_REUSEPORT)",
            workers.len() + 1
        );
    }
    first.set_peers(peers.clone());
    let mut code = run_reactor(first, path);
    // The first reactor returns when it has drained (the others got the signal too and
    // finish their own in-flight work within their own drain_timeout), when a second
    // signal stopped everyone, or when it failed: only then are the others stopped.
    if code != ExitCode::SUCCESS {
        for p in &peers {
            p.stop();
        }
    }
    for (w, t) in workers.into_iter().enumerate() {
        match t.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                log::error!("worker {} failed: {e}", w + 1);
                code = ExitCode::from(1);
            }
            Err(_) => code = ExitCode::from(1),
        }
    }
    code
}

fn run_reactor(mut reactor: sluice::Reactor, path: Option<String>) -> ExitCode {
    if let Err(e) = reactor.enable_signals(path) {
        log::warn!("signals unavailable ({e}): SIGTERM will not drain");
    }
    match reactor.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("reactor failed: {e}");
            ExitCode::from(1)
        }
    }
}

/// Why the reactor could not start: a bind error already names the listener and its
/// keys (`cannot listen on ...`); anything else is prefixed.
fn start_error(e: &std::io::Error) -> String {
    match e.get_ref() {
        Some(named) => named.to_string(),
        None => format!("cannot start: {e}"),
    }
}

/// The demo's frontend and admin ports: `port` and the next one when they are free on
/// 127.0.0.1; a taken one becomes 0 (the system picks), and when the frontend port is
/// taken or 0, so is the admin port (never `0 + 1`).
fn demo_ports(port: u16) -> (u16, u16) {
    let free = |p: u16| p != 0 && std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    if !free(port) {
        return (0, 0);
    }
    match port.checked_add(1).filter(|&a| free(a)) {
        Some(admin) => (port, admin),
        None => (port, 0),
    }
}

fn demo(port: u16) -> ExitCode {
    let (http, wss) = match sluice::demo::start_backends() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("sluice demo: cannot start the demo servers: {e}");
            return ExitCode::from(1);
        }
    };
    let (port, admin_port) = demo_ports(port);
    let text = sluice::demo::config_text(&http, &wss, port, admin_port);
    let cfg = match sluice::config::parse(&text, "demo", &sluice::config::resolve_system) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sluice demo: {e}");
            return ExitCode::from(1);
        }
    };
    init_logging(cfg.log.level, cfg.frontend.workers);
    let reactor = match sluice::Reactor::new(cfg) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sluice demo: {}", start_error(&e));
            return ExitCode::from(1);
        }
    };
    let (Ok(addr), Some(admin)) = (reactor.local_addr(), reactor.admin_addr()) else {
        eprintln!("sluice demo: listeners not bound");
        return ExitCode::from(1);
    };
    println!(
        "sluice demo: two HTTP servers {} {}, two WebSocket echo servers {} {}\n\n  \
         curl http://{addr}/hello          (run it twice: round-robin)\n  \
         open http://{addr}/?admin={}      (a page that talks WebSocket through sluice)\n  \
         open http://{admin}/status        (status page; /metrics, /status.json)\n\n\
         Ctrl-C drains and exits.",
        http[0],
        http[1],
        wss[0],
        wss[1],
        admin.port()
    );
    run_reactor(reactor, None)
}
