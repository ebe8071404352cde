#!/usr/bin/env python3
"""TLS termination figures (issue 17): sluice (`--features tls`) side by side with HAProxy
(`ssl crt` on its bind line, OpenSSL), same nginx backends as benches/harness.py.

    python3 benches/harness.py --only tls [--quick]        (the `tls` figure: latest.md, README)
    python3 benches/tls.py [--sluice target/rel-tls/release/sluice] [--seconds 10] [--idle 2000]
                           [--certs ecdsa,rsa]             (standalone: prints a Markdown table)

Certificates: ECDSA P-256 and RSA 2048, self-signed, made with `openssl` in the scratch
directory; each proxy serves one of them at a time, both proxies the same file.
Both proxies offer TLS 1.2 and 1.3 and ALPN http/1.1; wrk and Python negotiate TLS 1.3.
Figures, for each certificate and proxy:
  ka     keep-alive HTTPS: `wrk -t1 -c50 -d<seconds>s https://...` req/s, and proxy CPU
         us/request = (utime+stime delta of the proxy's process tree) / requests
  full   full handshakes/s with one request each: 8 `openssl s_time -new -www /` at once (a new
         session every time: no resumption), and proxy CPU us/handshake
  hs     new connections/s with one request each: the same wrk with `Connection: close`; wrk
         reconnects with SSL_clear, which offers the previous session, so a server that
         resumes (rustls's default session cache does) mostly skips the certificate signature
  idle   RSS per idle TLS keep-alive connection: N connections each handshake and complete
         one request, then stay open; (VmRSS after - before) / N, 2 s after the last one
In the harness: ka, full and hs are medians of 3 runs interleaved over the proxies (--quick: 1 run
of 3 s, 500 idle connections); sluice is built with
`cargo build --release --features tls --target-dir target/rel-tls`.
Everything on 127.0.0.1; every process started is stopped by PID. Python 3 standard library
only (the process helpers come from benches/common.py).
"""

import argparse
import os
import re
import resource
import socket
import ssl
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (benches/common.py)

REQ = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


CERTS = {"ecdsa": ("ECDSA P-256", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
         "rsa": ("RSA 2048", ["-newkey", "rsa:2048"])}


def make_cert(d, kind="ecdsa"):
    key, pem = os.path.join(d, f"{kind}-key.pem"), os.path.join(d, f"{kind}-cert.pem")
    subprocess.run(["openssl", "req", "-x509"] + CERTS[kind][1] + ["-nodes",
                    "-keyout", key, "-out", pem, "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    both = os.path.join(d, f"{kind}-both.pem")
    with open(both, "w") as f:
        f.write(open(pem).read() + open(key).read())
    return pem, key, both


def start_backends(procs, ports, d):
    b = [ports.get(9001), ports.get(9002)]
    conf = common.read_peer("backend-nginx.conf").replace("/tmp/bench-run/backend", d)
    conf = conf.replace("listen 127.0.0.1:9001", f"listen 127.0.0.1:{b[0]}")
    conf = conf.replace("listen 127.0.0.1:9002", f"listen 127.0.0.1:{b[1]}")
    path = os.path.join(d, "backend-nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    p = procs.start("backend-nginx", ["nginx", "-p", d, "-e", os.path.join(d, "error.log"), "-c", path,
                                      "-g", f"daemon off; pid {d}/nginx.pid;"])
    common.wait_listening(p, b)
    return b


def start_sluice(procs, ports, d, binary, backends, pem, key, tag="sluice-tls"):
    port, plain = ports.get(8443), ports.get(8080)
    conf = (f"[frontend]\nhost=127.0.0.1\nport={plain}\nmax_connections=10000\n"
            f"[http]\nalgorithm=round-robin\nenable_health_check=false\n"
            f"server1=127.0.0.1:{backends[0]}\nserver1_min_workers=25\nserver1_max_workers=256\n"
            f"server2=127.0.0.1:{backends[1]}\nserver2_min_workers=25\nserver2_max_workers=256\n"
            f"[tls]\nport={port}\ncert={pem}\nkey={key}\n[log]\nlevel=warn\naccess_log=false\n")
    path = os.path.join(d, f"{tag}.ini")
    with open(path, "w") as f:
        f.write(conf)
    p = procs.start(tag, [binary, "--config", path])
    common.wait_listening(p, [port])
    return p, port


def start_haproxy(procs, ports, d, backends, both, tag="haproxy-tls"):
    hp, wp, tp = ports.get(8081), ports.get(8091), ports.get(8444)
    conf = common.rewrite_ports(common.read_peer("haproxy.cfg"), {8081: hp, 8091: wp, 9001: backends[0], 9002: backends[1]})
    conf += (f"\nfrontend fe_https\n    bind 127.0.0.1:{tp} ssl crt {both} alpn http/1.1\n"
             f"    default_backend be_http\n")
    path = os.path.join(d, f"{tag}.cfg")
    with open(path, "w") as f:
        f.write(conf)
    p = procs.start(tag, ["haproxy", "-f", path])
    common.wait_listening(p, [tp])
    return p, tp


def wrk(port, seconds, pid, close):
    argv = common.wrk_cmd() + ["-t1", "-c50", f"-d{seconds}s", "--latency"]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append(f"https://127.0.0.1:{port}/")
    t0 = common.tree_ticks(pid)
    out = subprocess.run(argv, capture_output=True, text=True).stdout
    ticks = common.tree_ticks(pid) - t0
    w = common.parse_wrk(out)
    n = max(w["requests"], 1)
    return w["rps"], ticks * 1e6 / common.CLK_TCK / n, w["errors"] + w["non2xx"]


def full_handshakes(port, seconds, pid, clients=8):
    """Full handshakes only: `openssl s_time -new` (a new session for every connection, no
    resumption; wrk's reconnects resume the previous session when the server allows it), one
    `GET /` each, `clients` processes at once. Returns (handshakes/s, proxy CPU us/handshake,
    failed processes)."""
    argv = (["taskset", "-c", "1"] if common.PIN else []) + ["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new",
                                                        "-time", str(seconds), "-www", "/"]
    t0, w0 = common.tree_ticks(pid), time.time()
    ps = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for _ in range(clients)]
    outs = [p.communicate()[0] for p in ps]
    ticks, wall = common.tree_ticks(pid) - t0, time.time() - w0
    n, bad = 0, 0
    for out in outs:
        m = re.search(r"(\d+) connections in [\d.]+ real seconds", out)
        if m:
            n += int(m.group(1))
        else:
            bad += 1
    return n / wall, ticks * 1e6 / common.CLK_TCK / max(n, 1), bad


def idle_rss(port, pid, n):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    time.sleep(1)
    before = common.status_kb(pid)
    socks = []
    try:
        for _ in range(n):
            s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10))
            s.sendall(REQ)
            buf = b""
            while b"\r\n\r\n" not in buf or not buf.endswith(b"hello\n"):
                chunk = s.recv(4096)
                if not chunk:
                    raise RuntimeError("closed before the response")
                buf += chunk
            socks.append(s)
        time.sleep(2)
        after = common.status_kb(pid)
        return (after - before) * 1024 / n
    finally:
        for s in socks:
            s.close()


def measure(d, binary, targets, kinds, seconds, idle, runs, log=print):
    """Every figure for every certificate kind and target, side by side: one proxy of each
    target per kind running at once, ka and hs runs interleaved over the targets, medians."""
    procs, ports = common.Procs(d), common.Ports()
    res = {}
    try:
        backends = start_backends(procs, ports, d)
        for kind in kinds:
            pem, key, both = make_cert(d, kind)
            started = {}
            for t in targets:
                if t == "sluice":
                    started[t] = start_sluice(procs, ports, d, binary, backends, pem, key, f"sluice-tls-{kind}")
                else:
                    started[t] = start_haproxy(procs, ports, d, backends, both, f"haproxy-tls-{kind}")
            for t, (p, port) in started.items():
                wrk(port, 2, p.pid, False)  # warm-up: pools filled, code paged in
            data = {t: {"ka": [], "hs": [], "full": []} for t in targets}
            for r in range(runs):
                for what in ("ka", "hs", "full"):
                    for t, (p, port) in started.items():
                        x = full_handshakes(port, seconds, p.pid) if what == "full" else wrk(port, seconds, p.pid, what == "hs")
                        data[t][what].append(x)
                        log(f"  tls {kind:5s} {t:8s} {what} run {r + 1}: {x[0]:8.0f}/s  cpu {x[1]:7.1f} us  errors {x[2]}")
            res[kind] = {}
            for t, (p, port) in started.items():
                rss = idle_rss(port, p.pid, idle)
                log(f"  tls {kind:5s} {t:8s} idle: {rss / 1024:.1f} KiB per connection ({idle})")
                med = lambda what, i: statistics.median(x[i] for x in data[t][what])
                res[kind][t] = {"ka_rps": med("ka", 0), "ka_cpu_us": med("ka", 1), "hs_rps": med("hs", 0),
                                "hs_cpu_us": med("hs", 1), "full_rps": med("full", 0), "full_cpu_us": med("full", 1),
                                "idle_bytes_per_conn": rss, "idle_conns": idle,
                                "errors": sum(x[2] for w in ("ka", "hs", "full") for x in data[t][w]),
                                "runs": {w: [list(x) for x in data[t][w]] for w in ("ka", "hs", "full")}}
            for p, _ in started.values():
                procs.stop(p)
    finally:
        procs.stop_all()
    return res


def build(log=print):
    argv = ["cargo", "build", "--release", "--features", "tls", "--bin", "sluice", "--target-dir", "target/rel-tls"]
    log("$ " + " ".join(argv))
    r = subprocess.run(argv, cwd=common.ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=1800)
    if r.returncode != 0:
        sys.stdout.write(r.stdout.decode("utf-8", "replace")[-4000:])
        raise RuntimeError("cargo build --features tls failed")
    return os.path.join(common.ROOT, "target", "rel-tls", "release", "sluice")


def fig_tls(bench):
    """The harness's `tls` figure (`bench` is harness.Bench): results in bench.results["tls"]."""
    targets = ["sluice"] + (["haproxy"] if bench.have_haproxy and "haproxy" in bench.targets else [])
    seconds, idle, runs = (3, 500, 1) if bench.quick else (10, 2000, 3)
    binary = build(common.log)
    d = os.path.join(bench.tmp, "tls")
    os.makedirs(d, exist_ok=True)
    res = measure(d, binary, targets, list(CERTS), seconds, idle, runs, common.log)
    bench.results["tls"] = {"date": bench.iso_date(), "seconds": seconds, "runs": runs, "idle_conns": idle,
                            "method": f"wrk -t1 -c50 -d{seconds}s over HTTPS (keep-alive, and `Connection: close`), "
                                      f"8 × `openssl s_time -new -time {seconds}` for full handshakes, "
                                      f"median of {runs} run(s) interleaved over the proxies; TLS 1.3",
                            "targets": res}
    for kind, byt in res.items():
        for t, r in byt.items():
            if r["errors"]:
                bench.note(f"tls {kind} {t}: {r['errors']} wrk errors/non-2xx")


def render_tls(doc):
    """Markdown for the `tls` figure (latest.md and the README), or "" when it was not run."""
    fig = doc.get("figures", {}).get("tls")
    if not fig:
        return ""
    res = fig["targets"]

    def ratio(a, b):
        return f"{a / b:.2f}×" if a is not None and b else "—"

    def check(ok):
        return "" if ok is None else (" ✓" if ok else " ✗")

    rows = []
    for kind, (label, _) in CERTS.items():
        if kind not in res:
            continue
        s, ha = res.get(kind, {}).get("sluice", {}), res.get(kind, {}).get("haproxy", {})

        def row(name, key, digits, scale=1.0, unit=""):
            a, b = s.get(key), ha.get(key)
            text, ok = GOALS.get(key, ("", None))
            met = ok(a / b) if ok and a is not None and b else None
            vals = ["—" if v is None else f"{v * scale:,.{digits}f}{unit}" for v in (a, b)]
            rows.append(f"| {label}: {name} | " + " | ".join(vals) + f" | {ratio(a, b)} | {text}{check(met)} |")

        row("keep-alive HTTPS req/s, c=50", "ka_rps", 0)
        row("proxy CPU µs/request, c=50", "ka_cpu_us", 2)
        row("full handshakes/s, one request each (8 × `openssl s_time -new`)", "full_rps", 0)
        row("proxy CPU µs/full handshake", "full_cpu_us", 0)
        row("new connections/s, one request each (wrk c=50, `Connection: close`; may resume)", "hs_rps", 0)
        row("proxy CPU µs/new connection", "hs_cpu_us", 0)
        n = s.get("idle_conns") or ha.get("idle_conns") or 0
        row(f"RSS per idle TLS keep-alive connection, {n:,} conns", "idle_bytes_per_conn", 1, 1 / 1024, " KiB")
    return "\n".join([
        "### TLS termination (issue 17)", "",
        f"Measured {fig['date']} in the same run: {fig['method']}; CPU = utime+stime of the proxy over the wrk run "
        "/ requests (or handshakes); RSS per idle connection = VmRSS growth / N after N connections each "
        "handshook and answered once. sluice built with `--features tls` (rustls + ring); HAProxy with "
        "`ssl crt` on its bind line (OpenSSL); each serves the same self-signed certificate.", "",
        "| figure | sluice | HAProxy | sluice ÷ HAProxy | issue 17 goal |",
        "|---|---|---|---|---|"] + rows) + "\n"


# The goals, as sluice ÷ HAProxy.
GOALS = {"ka_cpu_us": ("≤ 0.9×", lambda r: r <= 0.9), "full_rps": ("≥ 1×", lambda r: r >= 1.0),
         "idle_bytes_per_conn": ("≤ 0.5×", lambda r: r <= 0.5)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sluice", default=os.path.join(common.ROOT, "target", "rel-tls", "release", "sluice"))
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--idle", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--targets", default="sluice,haproxy")
    ap.add_argument("--certs", default="ecdsa,rsa")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    d = os.path.join(common.TMP_ROOT, "tls")
    os.makedirs(d, exist_ok=True)
    res = measure(d, args.sluice, args.targets.split(","), args.certs.split(","), args.seconds, args.idle, args.runs)
    doc = {"figures": {"tls": {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "targets": res,
                               "method": f"wrk -t1 -c50 -d{args.seconds}s, median of {args.runs} run(s); TLS 1.3"}}}
    print(render_tls(doc))


if __name__ == "__main__":
    main()
