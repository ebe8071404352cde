//! `cargo bench --bench harness [-- --quick --only rps,cpu,...]`: runs the benchmark harness,
//! `benches/harness.py` (Python 3 standard library), with the same arguments. See that file's
//! docstring for what it measures and where it writes. `cargo bench` passes `--bench`, which the
//! script accepts and ignores.

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/harness.py");
    let args = std::env::args_os().skip(1).filter(|a| a != "--bench");
    let err = Command::new("python3")
        .arg(script)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .exec();
    eprintln!("cannot run python3 {script}: {err}");
    ExitCode::from(2)
}
