//! The `sluice` command: parse arguments, load the configuration, run the reactor.

use std::process::ExitCode;

/// The seed's configuration path, used when `--config` is not given and it exists.
const SEED_CONFIG_PATH: &str = "/prod/reverse-proxy-config.ini";

const USAGE: &str = "\
sluice: a tiny reverse proxy and load balancer for HTTP/1.1 and WebSocket

usage:
  sluice --config PATH           run in the foreground with this INI configuration
  sluice --check --config PATH   validate the configuration and exit
  sluice --version | --help

With no --config, sluice reads /prod/reverse-proxy-config.ini when it exists.
";

enum Command {
    Run { config: String, check: bool },
    Version,
    Help,
}

fn parse_args(args: &[String]) -> Result<Command, String> {
    let mut config = None;
    let mut check = false;
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

fn init_logging(level: log::LevelFilter) {
    let cfg = simplelog::ConfigBuilder::new()
        .set_time_format_rfc3339()
        .set_target_level(log::LevelFilter::Off)
        .set_thread_level(log::LevelFilter::Off)
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
        println!("configuration OK");
        return ExitCode::SUCCESS;
    }
    init_logging(cfg.log.level);
    let mut reactor = match sluice::Reactor::new(cfg) {
        Ok(r) => r,
        Err(e) => {
            log::error!("cannot start: {e}");
            eprintln!("sluice: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    match reactor.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("reactor failed: {e}");
            ExitCode::from(1)
        }
    }
}
