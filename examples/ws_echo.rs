//! A demo WebSocket echo backend with the seed's `/healthCheck` contract.
//!
//! `cargo run --example ws_echo -- 127.0.0.1:9003 [name]`
//! Upgrades are greeted with `connected to <name>`, then every message is echoed with
//! its own opcode; a plain `GET /healthCheck` answers `{"status":"200",...}`.

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9003".to_string());
    let name: &'static str = Box::leak(
        args.next()
            .unwrap_or_else(|| format!("ws-{addr}"))
            .into_boxed_str(),
    );
    let listener = std::net::TcpListener::bind(&addr)?;
    println!("{name}: WebSocket echo on {}", listener.local_addr()?);
    sluice::demo::serve_ws(name, listener);
    Ok(())
}
