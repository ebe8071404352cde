#!/usr/bin/env python3
"""TLS termination figures (issue 17): sluice (`--features tls`) side by side with HAProxy
(`ssl crt` on its bind line, OpenSSL), same nginx backends as benches/harness.py.

    python3 benches/tls.py [--sluice target/rel-tls/release/sluice] [--seconds 10] [--idle 2000]

Certificate: ECDSA P-256, self-signed, made with `openssl` in bench-results/tmp/tls/.
Both proxies offer TLS 1.2 and 1.3 and ALPN http/1.1; wrk and Python negotiate TLS 1.3.
Figures, for each proxy:
  ka     keep-alive HTTPS: `wrk -t1 -c50 -d<seconds>s https://...` req/s, and proxy CPU
         us/request = (utime+stime delta of the proxy's process tree) / requests
  hs     full handshakes/s with one request each: the same wrk with `Connection: close`
         (every request a new TLS connection), and proxy CPU us/handshake
  idle   RSS per idle TLS keep-alive connection: N connections each handshake and complete
         one request, then stay open; (VmRSS after - before) / N, 2 s after the last one
Everything on 127.0.0.1; every process started is stopped by PID. Prints a Markdown table.
Python 3 standard library only (the process helpers come from benches/harness.py).
"""

import argparse
import os
import resource
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

REQ = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def make_cert(d):
    key, pem = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", pem, "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    both = os.path.join(d, "both.pem")
    with open(both, "w") as f:
        f.write(open(pem).read() + open(key).read())
    return pem, key, both


def start_backends(procs, ports, d):
    b = [ports.get(9001), ports.get(9002)]
    conf = h.read_peer("backend-nginx.conf").replace("/tmp/bench-run/backend", d)
    conf = conf.replace("listen 127.0.0.1:9001", f"listen 127.0.0.1:{b[0]}")
    conf = conf.replace("listen 127.0.0.1:9002", f"listen 127.0.0.1:{b[1]}")
    path = os.path.join(d, "backend-nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    p = procs.start("backend-nginx", ["nginx", "-p", d, "-e", os.path.join(d, "error.log"), "-c", path,
                                      "-g", f"daemon off; pid {d}/nginx.pid;"])
    h.wait_listening(p, b)
    return b


def start_sluice(procs, ports, d, binary, backends, pem, key):
    port, plain = ports.get(8443), ports.get(8080)
    conf = (f"[frontend]\nhost=127.0.0.1\nport={plain}\nmax_connections=10000\n"
            f"[http]\nalgorithm=round-robin\nenable_health_check=false\n"
            f"server1=127.0.0.1:{backends[0]}\nserver1_min_workers=25\nserver1_max_workers=256\n"
            f"server2=127.0.0.1:{backends[1]}\nserver2_min_workers=25\nserver2_max_workers=256\n"
            f"[tls]\nport={port}\ncert={pem}\nkey={key}\n[log]\nlevel=warn\naccess_log=false\n")
    path = os.path.join(d, "sluice-tls.ini")
    with open(path, "w") as f:
        f.write(conf)
    p = procs.start("sluice-tls", [binary, "--config", path])
    h.wait_listening(p, [port])
    return p, port


def start_haproxy(procs, ports, d, backends, both):
    hp, wp, tp = ports.get(8081), ports.get(8091), ports.get(8444)
    conf = h.rewrite_ports(h.read_peer("haproxy.cfg"), {8081: hp, 8091: wp, 9001: backends[0], 9002: backends[1]})
    conf += (f"\nfrontend fe_https\n    bind 127.0.0.1:{tp} ssl crt {both} alpn http/1.1\n"
             f"    default_backend be_http\n")
    path = os.path.join(d, "haproxy-tls.cfg")
    with open(path, "w") as f:
        f.write(conf)
    p = procs.start("haproxy-tls", ["haproxy", "-f", path])
    h.wait_listening(p, [tp])
    return p, tp


def wrk(port, seconds, pid, close):
    argv = h.wrk_cmd() + ["-t1", "-c50", f"-d{seconds}s", "--latency"]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append(f"https://127.0.0.1:{port}/")
    t0 = h.tree_ticks(pid)
    out = subprocess.run(argv, capture_output=True, text=True).stdout
    ticks = h.tree_ticks(pid) - t0
    w = h.parse_wrk(out)
    n = max(w["requests"], 1)
    return w["rps"], ticks * 1e6 / h.CLK_TCK / n, w["errors"] + w["non2xx"]


def idle_rss(port, pid, n):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    time.sleep(1)
    before = h.status_kb(pid)
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
        after = h.status_kb(pid)
        return (after - before) * 1024 / n
    finally:
        for s in socks:
            s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sluice", default=os.path.join(h.ROOT, "target", "rel-tls", "release", "sluice"))
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--idle", type=int, default=2000)
    ap.add_argument("--targets", default="sluice,haproxy")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    d = os.path.join(h.TMP_ROOT, "tls")
    os.makedirs(d, exist_ok=True)
    pem, key, both = make_cert(d)
    procs, ports = h.Procs(d), h.Ports()
    rows = []
    try:
        backends = start_backends(procs, ports, d)
        for target in args.targets.split(","):
            if target == "sluice":
                p, port = start_sluice(procs, ports, d, args.sluice, backends, pem, key)
            else:
                p, port = start_haproxy(procs, ports, d, backends, both)
            wrk(port, 2, p.pid, False)  # warm-up: pools filled, code paged in
            ka = wrk(port, args.seconds, p.pid, False)
            hs = wrk(port, args.seconds, p.pid, True)
            rss = idle_rss(port, p.pid, args.idle)
            rows.append((target, ka, hs, rss))
            procs.stop(p)
    finally:
        procs.stop_all()
    print("| proxy | keep-alive HTTPS req/s (c=50) | CPU us/req | handshakes/s (1 req each) | CPU us/handshake "
          f"| RSS/idle TLS conn ({args.idle}) | errors |")
    print("|---|---|---|---|---|---|---|")
    for target, ka, hs, rss in rows:
        print(f"| {target} | {ka[0]:.0f} | {ka[1]:.1f} | {hs[0]:.0f} | {hs[1]:.0f} | {rss / 1024:.1f} KiB "
              f"| {ka[2]}/{hs[2]} |")


if __name__ == "__main__":
    main()
