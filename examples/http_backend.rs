//! A demo HTTP backend with the seed's `/healthCheck` contract.
//!
//! `cargo run --example http_backend -- 127.0.0.1:9001 [name]`
//! `GET /healthCheck` answers `{"status":"200",...}`, `GET /` a page that opens a
//! WebSocket through the proxy, anything else `hello from <name>: <path>`.

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:9001".to_string());
    let name: &'static str = Box::leak(
        args.next()
            .unwrap_or_else(|| format!("backend-{addr}"))
            .into_boxed_str(),
    );
    let listener = std::net::TcpListener::bind(&addr)?;
    println!("{name}: HTTP on {}", listener.local_addr()?);
    sluice::demo::serve_http(name, listener);
    Ok(())
}
