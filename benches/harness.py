#!/usr/bin/env python3
"""sluice benchmark harness: sluice side by side with a direct connection, HAProxy and nginx.

    python3 benches/harness.py [--quick] [--only rps,cpu,instr,syscalls,wsmem,idle,size,stream,
                                                  bulk,bulksys,wsbulk,wssmall,wsinstr]
                               [--targets sluice,haproxy,nginx,direct] [--update-readme]
    cargo bench --bench harness [-- --quick ...]      (the same, through benches/harness.rs)

Python 3 standard library only. Everything runs on 127.0.0.1 and every process it starts is
started and stopped by PID (try/finally, SIGKILL after a grace period).

What it starts (the method and configurations of shared/anchors, copied verbatim to
benches/peers/ and rewritten only in ports and temp paths):
  - backends: nginx with 1 worker on :9001/:9002 (`/` -> "hello\\n") from backend-nginx.conf;
    a WebSocket echo server (this file, `--serve ws`, selectors-based) on :9003/:9004;
    a discard server for the streaming test (this file, `--serve discard`).
  - sluice (`cargo build --release`, 1 reactor, round-robin, pools min 25 / max 256 per server,
    no access log, level warn); "sluice-log": the same with the defaults of [log] (level info,
    the access log on, `common`) and the access log written to a file, as in production
    (rps, cpu, instr and syscalls only; the file is checked for one line per request); HAProxy (haproxy.cfg: 1 thread, http-reuse safe) and the nginx
    proxy (nginx-proxy.conf: 1 worker, upstream keepalive 256 on the "ka256" port; keepalive 32 on
    the "ka32" port) when installed. Ports that are taken are replaced by free ones.

Figures (each a function; `--only` picks a subset; rps and cpu come from the same wrk runs):
  rps       wrk -t1 -c50/-c200 -d10s --latency, 3 runs interleaved over the targets, median
            (req/s, p50, p99); --quick: 1 run of 3 s.
  cpu       proxy CPU us/request = (utime+stime delta of the proxy's process tree over the wrk
            run, /proc/PID/stat) / requests; for "direct" the backend's.
  instr     user-space instructions/request under valgrind --tool=callgrind:
            (Ir(2N) - Ir(N)) / N, N = 2000 keep-alive requests over 50 connections, one in flight
            each (and over 1 connection); sluice from a release build with debug symbols
            (target/bench-debug). callgrind_annotate top functions saved, plus a per-request
            per-function difference.
  syscalls  the same subtraction under `strace -f -c`, N = 1000, c=50 and c=1, with breakdown.
  wsmem     RSS growth per idle WebSocket: (VmRSS after - before) / N, N = 2000 and 5000, each
            handshake checked and one message echoed per connection, 3 s wait; fresh proxy per N.
  idle      VmRSS 1 s after start.
  size      stripped release binary, and the static musl ones (plain and with `tls`, the image's) from scripts/build-static.
  stream    peak VmRSS of sluice (and HAProxy) while a 1 GiB Content-Length upload streams
            through it to a backend that discards.
  bulk, bulksys, wsbulk, wssmall, wsinstr
            bulk transfer (issue 18), see benches/bulk.py: 1 GiB upload/download (Content-Length
            and chunked) MB/s and proxy CPU per GiB; syscalls per MiB and bytes per I/O call
            under strace; 1 MiB WebSocket messages each way; 64 B WebSocket messages at 50
            connections, CPU per echoed message. sluice vs HAProxy, HAProxy `option splice-auto`
            and HAProxy with splicing forced.
  tls       HTTPS termination (issue 17), see benches/tls.py: ECDSA P-256 and RSA 2048, keep-alive
            req/s and proxy CPU us/request at c=50, full handshakes/s (one request each) and CPU per
            handshake, RSS per idle TLS connection at 2,000; sluice (built with --features tls in
            target/rel-tls) vs HAProxy `ssl crt`.

Output: bench-results/latest.md, bench-results/latest.json, raw outputs in bench-results/<date>/
(full runs) -- or bench-results/tmp/quick/ for --quick so quick numbers never replace real ones
(override with --out DIR). Scratch files live in bench-results/tmp/ (gitignored).
"""

import argparse
import base64
import datetime
import json
import os
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bulk  # noqa: E402  (benches/bulk.py: the bulk-transfer figures, issue 18)
import common  # noqa: E402  (benches/common.py: what harness.py and tls.py share)
from common import (  # noqa: E402
    CLK_TCK, RESULTS, ROOT, TMP_ROOT, Ports, Procs, log, parse_wrk, read_peer, rewrite_ports, status_kb, tail,
    tree_ticks, wait_child, wait_listening, wrk_cmd, ws_accept, fmt, iso, build_static,
)
from report import ANCHOR, render_details, render_md, update_readme  # noqa: E402  (benches/report.py)
import servers  # noqa: E402  (benches/servers.py: the ws and discard backends)

FIGURES = ["rps", "cpu", "instr", "syscalls", "wsmem", "idle", "size", "stream", "bulk", "bulksys", "wsbulk", "wssmall",
           "wsinstr"]
FIGURES += ["tls"]  # benches/tls.py (issue 17)
TARGETS = ["direct", "sluice", "sluice-log", "haproxy", "nginx"]
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


class Bench(bulk.BulkFigures):
    def iso_date(self):
        return iso(self.date)

    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.date = datetime.datetime.now(datetime.timezone.utc)
        stamp = self.date.strftime("%Y%m%d-%H%M%S")
        self.tmp = os.path.join(TMP_ROOT, f"run-{stamp}")
        os.makedirs(self.tmp, exist_ok=True)
        if args.out:
            self.out = os.path.abspath(args.out)
        elif self.quick:
            self.out = os.path.join(TMP_ROOT, "quick")
        else:
            self.out = RESULTS
        self.raw = os.path.join(self.out, "raw" if self.quick or args.out else self.date.strftime("%Y-%m-%d"))
        os.makedirs(self.raw, exist_ok=True)
        self.procs = Procs(self.tmp)
        self.ports = Ports()
        self.results = {}
        self.notes = []  # anything odd: errors, crashes, non-2xx
        self.have_haproxy = shutil.which("haproxy") is not None
        self.have_nginx = shutil.which("nginx") is not None
        self.have_wrk = shutil.which("wrk") is not None
        want = args.targets.split(",") if args.targets else TARGETS
        self.targets = [t for t in TARGETS if t in want
                        and (t != "haproxy" or self.have_haproxy) and (t != "nginx" or self.have_nginx)]
        self.backends = None
        self.sluice_bin = os.path.join(ROOT, "target", "release", "sluice")
        self.sluice_dbg = os.path.join(ROOT, "target", "bench-debug", "release", "sluice")
        self.logs = {}  # sluice stderr excerpts by instance

    # ---- raw outputs
    def save(self, name, text):
        with open(os.path.join(self.raw, name), "w") as f:
            f.write(text)

    # ---- build
    def build(self, debug_symbols=False):
        if debug_symbols:
            env = dict(os.environ, CARGO_PROFILE_RELEASE_DEBUG="1", CARGO_PROFILE_RELEASE_STRIP="false")
            argv = ["cargo", "build", "--release", "--bin", "sluice", "--target-dir", "target/bench-debug"]
        else:
            env, argv = None, ["cargo", "build", "--release", "--bin", "sluice"]
        log("$ " + ("CARGO_PROFILE_RELEASE_DEBUG=1 CARGO_PROFILE_RELEASE_STRIP=false " if debug_symbols else "") + " ".join(argv))
        t = time.time()
        r = subprocess.run(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=1200)
        if r.returncode != 0:
            sys.stdout.write(r.stdout.decode("utf-8", "replace")[-4000:])
            raise RuntimeError("cargo build failed")
        log(f"  built in {time.time() - t:.0f}s")

    # ---- backends (shared by every figure)
    def start_backends(self):
        if self.backends:
            return self.backends
        b = {"http": [self.ports.get(9001), self.ports.get(9002)], "ws": [self.ports.get(9003), self.ports.get(9004)]}
        d = os.path.join(self.tmp, "backend")
        os.makedirs(d, exist_ok=True)
        conf = read_peer("backend-nginx.conf").replace("/tmp/bench-run/backend", d)
        conf = re.sub(r"listen 127\.0\.0\.1:9001", f"listen 127.0.0.1:{b['http'][0]}", conf)
        conf = re.sub(r"listen 127\.0\.0\.1:9002", f"listen 127.0.0.1:{b['http'][1]}", conf)
        path = os.path.join(d, "backend-nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        if not self.have_nginx:
            raise RuntimeError("nginx is needed for the HTTP backends (apt-get install nginx-light)")
        p = self.procs.start("backend-nginx", ["nginx", "-p", d, "-e", os.path.join(d, "error.log"), "-c", path,
                                               "-g", f"daemon off; pid {d}/nginx.pid;"])
        wait_listening(p, b["http"])
        p.work_pid = wait_child(p.pid)
        b["http_proc"] = p
        w = self.procs.start("ws-echo", [sys.executable, os.path.abspath(__file__), "--serve", "ws"] + [str(x) for x in b["ws"]])
        wait_listening(w, b["ws"])
        b["ws_proc"] = w
        self.backends = b
        log(f"  backends: nginx http {b['http']} (worker pid {p.work_pid}), ws echo {b['ws']}")
        return b

    # ---- proxies
    def sluice_config(self, port, http, ws, pool=(25, 256), workers=1, access_log=None):
        lo, hi = pool if pool != "default" else (None, None)
        lines = ["[frontend]", "host=127.0.0.1", f"port={port}", "max_connections=9000",
                 "client_idle_timeout=300s", "drain_timeout=5s", f"workers={workers}", ""]
        if http:
            lines += ["[http]", "algorithm=round-robin"]
            for i, hp in enumerate(http, 1):
                lines += [f"server{i}_addr=127.0.0.1:{hp}"]
                if pool != "default":
                    lines += [f"server{i}_min_workers={lo}", f"server{i}_max_workers={hi}",
                              f"server{i}_worker_timeout=300s", f"server{i}_buffer_size=1024"]
            lines.append("")
        if ws:
            lines += ["[websocket]", "algorithm=round-robin"] + [f"server{i}=127.0.0.1:{p}" for i, p in enumerate(ws, 1)] + [""]
        if access_log:
            lines += ["[log]", f"access_log={access_log}", ""]  # level and format: the defaults
        else:
            lines += ["[log]", "level=warn", "access_log=false", ""]
        return "\n".join(lines)

    def start_sluice(self, tag, wrapper=(), binary=None, http=None, ws=None, pool=(25, 256), access_log=False):
        b = self.start_backends() if http is None or ws is None else {}
        port = self.ports.get(8080)
        log_path = os.path.join(self.tmp, f"access-{tag}.log") if access_log else None
        conf = self.sluice_config(port, b["http"] if http is None else http, b["ws"] if ws is None else ws,
                                  pool=pool, workers=self.args.sluice_workers, access_log=log_path)
        path = os.path.join(self.tmp, f"sluice-{tag}.ini")
        with open(path, "w") as f:
            f.write(conf)
        if tag == "rps":
            shutil.copy(path, os.path.join(self.raw, "sluice.ini"))
        p = self.procs.start(f"sluice-{tag}", list(wrapper) + [binary or self.sluice_bin, "--config", path])
        wait_listening(p, [port], timeout=90 if wrapper else 30)
        if wrapper and wrapper[0] == "strace":
            p.work_pid = p.signal_pid = wait_child(p.pid)
        p.http_port = p.ws_port = port
        p.access_log = log_path
        return p

    def start_haproxy(self, tag, wrapper=(), http=None, ws=None, splice=None):
        """`splice`: "auto" adds `option splice-auto` to the defaults (the second bulk anchor),
        "forced" `option splice-request` and `option splice-response`."""
        b = self.start_backends() if http is None or ws is None else {}
        hp, wp = self.ports.get(8081), self.ports.get(8091)
        http = b["http"] if http is None else http
        ws = b["ws"] if ws is None else ws
        mapping = {8081: hp, 8091: wp, 9001: http[0], 9002: http[1] if len(http) > 1 else http[0],
                   9003: ws[0], 9004: ws[1] if len(ws) > 1 else ws[0]}
        conf = rewrite_ports(read_peer("haproxy.cfg"), mapping)
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        if hard < 22600 and "maxconn 9000" in conf:
            # HAProxy 2.6 asks for 2 fds per connection plus 2 per pipe (maxpipes = maxconn/4):
            # 22,515 for maxconn 9000. Keep it inside a lower hard limit.
            conf = conf.replace("maxconn 9000", f"maxconn {int((hard - 600) / 2.5)}", 1)
        if splice:
            opts = {"auto": "    option splice-auto\n",
                    "forced": "    option splice-request\n    option splice-response\n"}[splice]
            conf = conf.replace("\ndefaults\n", "\ndefaults\n" + opts, 1)
            assert "splice" in conf
        path = os.path.join(self.tmp, f"haproxy-{tag}.cfg")
        with open(path, "w") as f:
            f.write(conf)
        p = self.procs.start(f"haproxy-{tag}", list(wrapper) + ["haproxy", "-f", path, "-db"])
        wait_listening(p, [hp, wp], timeout=90 if wrapper else 30)
        if wrapper and wrapper[0] == "strace":
            p.work_pid = p.signal_pid = wait_child(p.pid)
        p.http_port, p.ws_port = hp, wp
        return p

    def start_nginx(self, tag, wrapper=()):
        """nginx proxy: master + 1 worker normally; `master_process off` (one process doing the
        same work) under valgrind / strace so the tracee is the process doing the work."""
        b = self.start_backends()
        p32, p256, pws = self.ports.get(8082), self.ports.get(8083), self.ports.get(8092)
        d = os.path.join(self.tmp, f"nginx-proxy-{tag}")
        os.makedirs(d, exist_ok=True)
        mapping = {8082: p32, 8083: p256, 8092: pws, 9001: b["http"][0], 9002: b["http"][1],
                   9003: b["ws"][0], 9004: b["ws"][1]}
        conf = read_peer("nginx-proxy.conf").replace("/tmp/nginx-proxy", d)
        conf = re.sub(r"listen 127\.0\.0\.1:(\d+)", lambda m: f"listen 127.0.0.1:{mapping[int(m.group(1))]}", conf)
        conf = rewrite_ports(conf, mapping)
        path = os.path.join(d, "nginx-proxy.conf")
        with open(path, "w") as f:
            f.write(conf)
        g = f"daemon off; pid {d}/nginx.pid;" + (" master_process off;" if wrapper else "")
        p = self.procs.start(f"nginx-{tag}", list(wrapper) + ["nginx", "-p", d, "-e", os.path.join(d, "error.log"),
                                                              "-c", path, "-g", g])
        wait_listening(p, [p32, p256, pws], timeout=90 if wrapper else 30)
        if not wrapper or wrapper[0] == "strace":
            p.work_pid = wait_child(p.pid)
        if wrapper and wrapper[0] == "strace":
            p.signal_pid = p.work_pid
        p.http_port, p.http_port_ka32, p.ws_port = p256, p32, pws
        return p

    def start_target(self, name, tag, wrapper=(), binary=None):
        if name == "sluice":
            return self.start_sluice(tag, wrapper, binary)
        if name == "sluice-log":
            return self.start_sluice(f"log-{tag}", wrapper, binary, access_log=True)
        if name == "haproxy":
            return self.start_haproxy(tag, wrapper)
        if name == "nginx":
            return self.start_nginx(tag, wrapper)
        raise ValueError(name)

    def stop(self, proc, sig=signal.SIGTERM, grace=15.0):
        rc = self.procs.stop(proc, sig=sig, grace=grace)
        if proc.name.startswith("sluice"):
            text = tail(proc.logpath, 200)
            lines = [l for l in text.splitlines() if not l.startswith("$ ") and not re.match(r"==\d+==", l)]
            if getattr(proc, "access_log", None):
                # Level info (the default): start-up and stop lines are expected.
                lines = [l for l in lines if "[INFO]" not in l]
                proc.access_lines = count_lines(proc.access_log)
                if os.path.exists(proc.access_log):
                    os.remove(proc.access_log)
                log(f"  {proc.name}: {proc.access_lines} access-log lines written")
            if lines:
                self.logs[proc.name] = lines[:40]
                self.note(f"{proc.name} wrote {len(lines)} line(s) on stderr, first: {lines[0][:200]}")
            if rc not in (0, None) and sig != signal.SIGKILL:
                self.note(f"{proc.name} exited with status {rc}")
        return rc

    def note(self, msg):
        log("  NOTE: " + msg)
        self.notes.append(msg)

    # ================================================================================ figures

    def fig_rps(self):
        """wrk -t1 --latency at c=50 and c=200, runs interleaved over the targets; median;
        CPU per request of the proxy's process tree (and the backend's) over each run."""
        if not self.have_wrk:
            self.note("wrk not installed: rps/cpu skipped")
            return
        b = self.start_backends()
        runs, dur = (1, 3) if self.quick else (3, 10)
        procs = {}
        try:
            for t in self.targets:
                if t != "direct":
                    procs[t] = self.start_target(t, "rps")
            url = {t: f"http://127.0.0.1:{procs[t].http_port if t in procs else b['http'][0]}/" for t in self.targets}
            backend_pid = b["http_proc"].pid
            log(f"  wrk warm-up {url}")
            for t in self.targets:
                subprocess.run(wrk_cmd() + ["-t1", "-c200", f"-d{1 if self.quick else 2}s", url[t]],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
            data = {t: {c: [] for c in (50, 200)} for t in self.targets}
            for r in range(runs):
                for c in (50, 200):
                    for t in self.targets:
                        pid = procs[t].pid if t in procs else backend_pid
                        ticks0, bticks0 = tree_ticks(pid), tree_ticks(backend_pid)
                        out = subprocess.run(wrk_cmd() + ["-t1", f"-c{c}", f"-d{dur}s", "--latency", url[t]],
                                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=dur + 60)
                        ticks1, bticks1 = tree_ticks(pid), tree_ticks(backend_pid)
                        text = out.stdout.decode("utf-8", "replace")
                        self.save(f"wrk-{t}-c{c}-run{r + 1}.txt", text)
                        w = parse_wrk(text)
                        w["cpu_us_per_req"] = (ticks1 - ticks0) * 1e6 / CLK_TCK / w["requests"] if w["requests"] else None
                        w["backend_cpu_us_per_req"] = (bticks1 - bticks0) * 1e6 / CLK_TCK / w["requests"] if w["requests"] else None
                        data[t][c].append(w)
                        log(f"  {t:8s} c={c:<3d} run {r + 1}: {w['rps']:>9.0f} req/s  p50 {w['p50_us']:.0f}us  "
                            f"p99 {w['p99_us']:.0f}us  cpu {fmt(w['cpu_us_per_req'], 2)}us/req"
                            + (f"  ERRORS {w['errors']}" if w["errors"] else "")
                            + (f"  NON-2xx {w['non2xx']}" if w["non2xx"] else ""))
                        if w["errors"] or w["non2xx"]:
                            self.note(f"wrk -t1 -c{c} -d{dur}s against {t}: socket errors {w['errors']}, non-2xx {w['non2xx']} "
                                      f"of {w['requests']} requests (raw: wrk-{t}-c{c}-run{r + 1}.txt)")
                        if t in procs and not procs[t].alive():
                            self.note(f"{t} DIED during wrk c={c} run {r + 1}: status {procs[t].popen.returncode}; "
                                      f"log tail: {tail(procs[t].logpath)}")
                            raise RuntimeError(f"{t} died")
            res = {}
            for t in self.targets:
                res[t] = {}
                for c in (50, 200):
                    ws = data[t][c]
                    med = lambda k: statistics.median([w[k] for w in ws if w[k] is not None]) if any(w[k] is not None for w in ws) else None
                    res[t][f"c{c}"] = {
                        "rps": med("rps"), "p50_us": med("p50_us"), "p99_us": med("p99_us"),
                        "cpu_us_per_req": med("cpu_us_per_req"), "backend_cpu_us_per_req": med("backend_cpu_us_per_req"),
                        "errors": sum(w["errors"] for w in ws), "non2xx": sum(w["non2xx"] for w in ws),
                        "runs": [{k: w[k] for k in ("rps", "p50_us", "p99_us", "cpu_us_per_req", "requests", "errors", "non2xx")} for w in ws],
                    }
            self.results["rps"] = {"date": iso(self.date), "method": f"wrk -t1 -c50 and -c200 -d{dur}s --latency, {runs} run{'s' if runs > 1 else ''} "
                                   "interleaved over the targets, median",
                                   "targets": res}
        finally:
            for p in procs.values():
                self.stop(p)

    def load_exact(self, port, n, conns):
        return exact_load(port, n, conns)

    def fig_instr(self):
        """(Ir(2N) - Ir(N)) / N under callgrind; c=50 and c=1."""
        if not shutil.which("valgrind"):
            self.note("valgrind not installed: instr skipped")
            return
        self.build(debug_symbols=True)
        n = 2000
        res = {}
        variants = []
        for t in self.targets:
            if t == "direct":
                continue
            variants.append((t, t, "http_port"))
            if t == "nginx":
                variants.append(("nginx-ka32", t, "http_port_ka32"))
        for label, t, port_attr in variants:
            res[label] = {}
            for c in (50, 1):
                irs, files = {}, {}
                for k in (n, 2 * n):
                    out = os.path.join(self.tmp, f"callgrind-{label}-c{c}-{k}.out")
                    wrapper = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
                    p = self.start_target(t, f"callgrind-{label}-c{c}-{k}", wrapper,
                                          binary=self.sluice_dbg if t.startswith("sluice") else None)
                    try:
                        time.sleep(0.5)
                        ok = self.load_exact(getattr(p, port_attr), k, c)
                        self.check_load(ok, f"{label} under callgrind, {k} requests over {c} connection(s)")
                        time.sleep(0.5)
                    finally:
                        self.stop(p, sig=signal.SIGTERM, grace=60)
                    self.check_access_log(p, k)
                    irs[k] = callgrind_total(out)
                    files[k] = out
                per = (irs[2 * n] - irs[n]) / n if irs[n] and irs[2 * n] else None
                res[label][f"c{c}"] = {"ir_n": irs[n], "ir_2n": irs[2 * n], "n": n, "instr_per_req": per}
                log(f"  {label:10s} c={c:<2d}: Ir({n})={irs[n]:,} Ir({2 * n})={irs[2 * n]:,} -> {fmt(per, 0)} instructions/request")
                if c == 50:
                    self.annotate(label, files[n], files[2 * n], n)
        self.results["instr"] = {"date": iso(self.date), "method": f"valgrind --tool=callgrind, (Ir(2N)-Ir(N))/N, N={n}",
                                 "targets": res}

    def annotate(self, label, f_n, f_2n, n):
        argv = ["callgrind_annotate", "--inclusive=no", "--threshold=100", "--auto=no"]
        a2 = run_text(argv + [f_2n])
        a1 = run_text(argv + [f_n])
        top = []
        head_lines, count = [], 0
        for line in a2.splitlines():
            head_lines.append(line)
            if CG_LINE.match(line) and "PROGRAM TOTALS" not in line:
                count += 1
                if count >= 30:
                    break
        f1, f2 = parse_annotate(a1), parse_annotate(a2)
        diff = sorted(((f2.get(k, 0) - f1.get(k, 0)) / n, k) for k in set(f1) | set(f2))
        diff.reverse()
        top = [(round(v, 1), k) for v, k in diff[:30]]
        text = ("\n".join(head_lines) + "\n\n# per request: (Ir_2N(fn) - Ir_N(fn)) / N, self cost, inlined code "
                "counted in the function it was inlined into; top 30\n")
        text += "\n".join(f"{v:>10.1f}  {k}" for v, k in top) + "\n"
        self.save(f"callgrind-{label}-c50-top30.txt", text)
        self.results.setdefault("hot", {"date": iso(self.date)})[label] = [{"instr_per_req": v, "function": k} for v, k in top[:15]]

    def fig_syscalls(self):
        """(calls(2N) - calls(N)) / N under strace -f -c; c=50 and c=1; per-syscall breakdown."""
        if not shutil.which("strace"):
            self.note("strace not installed: syscalls skipped")
            return
        n = 1000
        res = {}
        variants = []
        for t in self.targets:
            if t == "direct":
                continue
            variants.append((t, t, "http_port"))
            if t == "nginx":
                variants.append(("nginx-ka32", t, "http_port_ka32"))
        for label, t, port_attr in variants:
            res[label] = {}
            for c in (50, 1):
                tables = {}
                for k in (n, 2 * n):
                    out = os.path.join(self.tmp, f"strace-{label}-c{c}-{k}.txt")
                    p = self.start_target(t, f"strace-{label}-c{c}-{k}", ["strace", "-f", "-c", "-o", out])
                    try:
                        time.sleep(0.3)
                        ok = self.load_exact(getattr(p, port_attr), k, c)
                        self.check_load(ok, f"{label} under strace, {k} requests over {c} connection(s)")
                        time.sleep(0.3)
                    finally:
                        self.stop(p, sig=signal.SIGTERM, grace=30)
                    self.check_access_log(p, k)
                    with open(out) as f:
                        text = f.read()
                    self.save(f"strace-{label}-c{c}-{k}.txt", text)
                    tables[k] = parse_strace(text)
                t1, t2 = tables[n], tables[2 * n]
                per = (t2.get("total", 0) - t1.get("total", 0)) / n
                breakdown = {s: round((t2.get(s, 0) - t1.get(s, 0)) / n, 3) for s in set(t1) | set(t2) if s != "total"}
                breakdown = dict(sorted(((s, v) for s, v in breakdown.items() if abs(v) >= 0.005), key=lambda x: -x[1]))
                res[label][f"c{c}"] = {"per_req": per, "n": n, "breakdown": breakdown}
                log(f"  {label:10s} c={c:<2d}: {per:.2f} syscalls/request  {breakdown}")
        self.results["syscalls"] = {"date": iso(self.date), "method": f"strace -f -c, (calls(2N)-calls(N))/N, N={n}",
                                    "targets": res}

    def check_access_log(self, p, n):
        """sluice-log under an exact load of n requests: one line each, none dropped."""
        if getattr(p, "access_log", None) and p.access_lines != n:
            self.note(f"{p.name}: {p.access_lines} access-log lines for {n} requests")

    def check_load(self, ok, what):
        if ok["errors"] or ok["non200"]:
            self.note(f"{what}: {ok['errors']} errors, non-200 {ok['statuses']}, {ok['ok']} ok")

    def fig_wsmem(self):
        """(VmRSS after - before) / N idle WebSockets, fresh proxy per N."""
        sizes = (2000,) if self.quick else (2000, 5000)
        res = {}
        for t in self.targets:
            if t in ("direct", "sluice-log"):
                continue
            res[t] = {}
            for n in sizes:
                p = self.start_target(t, f"wsmem-{n}")
                conns = []
                try:
                    time.sleep(1.0)
                    before = status_kb(p.work_pid)
                    t0 = time.time()
                    failed = 0
                    for i in range(n):
                        try:
                            conns.append(ws_connect_echo(p.ws_port, i))
                        except Exception as e:
                            failed += 1
                            if failed <= 3:
                                self.note(f"{t}: WebSocket {i + 1}/{n} failed: {e!r}")
                            if failed >= 20:
                                break
                    opened = time.time() - t0
                    time.sleep(3.0)
                    after = status_kb(p.work_pid)
                    alive = p.alive()
                    if not alive:
                        self.note(f"{t} DIED holding {len(conns)} WebSockets: {tail(p.logpath)}")
                    per = (after - before) * 1024 / len(conns) if conns and after and before else None
                    res[t][f"n{n}"] = {"rss_before_kb": before, "rss_after_kb": after, "opened": len(conns),
                                       "failed": failed, "bytes_per_conn": per, "open_seconds": round(opened, 2)}
                    log(f"  {t:8s} N={n}: RSS {before} -> {after} kB, {fmt(per, 0)} bytes/conn "
                        f"({len(conns)} open, {failed} failed, {opened:.1f}s)")
                finally:
                    for s in conns:
                        s.close()
                    self.stop(p)
        self.results["wsmem"] = {"date": iso(self.date), "method": "fresh proxy, N WebSockets (101 + accept key checked, "
                                 "one message echoed each), 3 s idle, (VmRSS after - before)/N", "targets": res}

    def fig_idle(self):
        res = {}
        for t in self.targets:
            if t in ("direct", "sluice-log"):
                continue
            pools = [("bench", (25, 256)), ("default", "default")] if t == "sluice" else [("bench", None)]
            musl = self.static_binary("tls") if t == "sluice" else None
            if musl:
                # The artefact the scratch container ships: no shared libc pages in its RSS.
                pools.append(("static", "default"))
            for label, pool in pools:
                if t == "sluice":
                    p = self.start_sluice(f"idle-{label}", pool=pool, binary=musl if label == "static" else None)
                else:
                    p = self.start_target(t, f"idle-{label}")
                try:
                    time.sleep(1.0)
                    rss = status_kb(p.work_pid)
                    entry = {"rss_kb": rss}
                    if t == "nginx":
                        entry["master_rss_kb"] = status_kb(p.pid)
                    key = t if label == "bench" else (f"{t}-static-musl" if label == "static" else f"{t}-{label}-pool")
                    res[key] = entry
                    log(f"  {key:20s} idle RSS {rss} kB" + (f" (+ master {entry['master_rss_kb']} kB)" if t == "nginx" else ""))
                finally:
                    self.stop(p)
        self.results["idle"] = {"date": iso(self.date), "method": "VmRSS 1 s after start (sluice: bench config with "
                                "pools of 25 per server pre-opened; 'default-pool': min_workers=1)", "targets": res}

    def static_binary(self, features="tls"):
        """scripts/build-static's binary (with `tls`: the image's), built once per run; None
        with --quick or --no-musl, or when the build fails."""
        cache = self.__dict__.setdefault("_static", {})
        if features not in cache:
            quick = self.quick or self.args.no_musl
            cache[features] = None if quick else build_static(features, self.tmp)
        return cache[features]

    def fig_size(self):
        res = {"sluice": {"bytes": os.path.getsize(self.sluice_bin), "file": run_text(["file", "-b", self.sluice_bin]).strip()}}
        log(f"  sluice release: {res['sluice']['bytes']:,} bytes ({res['sluice']['file'][:60]})")
        # The static musl binaries, built by scripts/build-static as the Dockerfile builds its
        # image (that one with `tls`), plain and with `tls`.
        for key, features in (("sluice-musl-static", ""), ("sluice-musl-static-tls", "tls")):
            path = self.static_binary(features)
            if path:
                res[key] = {"bytes": os.path.getsize(path), "file": run_text(["file", "-b", path]).strip()}
                log(f"  {key}: {res[key]['bytes']:,} bytes")
        for name in ("haproxy", "nginx"):
            path = shutil.which(name)
            if path and name in self.targets:
                res[name] = {"bytes": os.path.getsize(os.path.realpath(path)), "file": "(Debian package, dynamically linked)"}
        self.results["size"] = {"date": iso(self.date), "method": "file size of the stripped release binary", "targets": res}

    def fig_stream(self):
        """Peak VmRSS while a 1 GiB Content-Length upload streams through to a discard backend."""
        size = 1 << 30
        dport = self.ports.get(9005)
        d = self.procs.start("discard", [sys.executable, os.path.abspath(__file__), "--serve", "discard", str(dport)])
        res = {}
        try:
            wait_listening(d, [dport])
            for t in [x for x in self.targets if x in ("sluice", "haproxy")]:
                if t == "sluice":
                    p = self.start_sluice("stream", http=[dport], ws=[], pool=(1, 4))
                else:
                    p = self.start_haproxy("stream", http=[dport])
                try:
                    time.sleep(0.5)
                    r = stream_upload(p.http_port, size, p.work_pid)
                    res[t] = r
                    log(f"  {t:8s} 1 GiB upload: status {r['status']}, {r['seconds']:.1f}s ({r['mb_per_s']:.0f} MB/s), "
                        f"RSS before {r['rss_before_kb']} kB, max sampled {r['rss_max_kb']} kB, VmHWM {r['vmhwm_kb']} kB, "
                        f"cpu {r['cpu_s']:.2f}s")
                    if r["status"] != 200:
                        self.note(f"{t}: 1 GiB upload answered {r['status']!r} ({r.get('error')})")
                finally:
                    self.stop(p)
        finally:
            self.procs.stop(d)
        self.results["stream"] = {"date": iso(self.date), "method": "POST with Content-Length: 1 GiB sent in 1 MiB "
                                  "writes through the proxy to a discarding backend; VmRSS sampled every 10 ms, and VmHWM",
                                  "targets": res}

    # ================================================================================ report

    def fig_tls(self):
        tls_figures().fig_tls(self)

    def machine(self):
        model = ""
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        rev = run_text(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]).strip()
        dirty = run_text(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"]).strip()
        ver = lambda argv, pat: (re.search(pat, run_text(argv)) or [None, "?"])[1]
        return {
            "nproc": int(run_text(["nproc"]).strip() or 0), "cpu_model": model, "kernel": os.uname().release,
            "loadavg": open("/proc/loadavg").read().split()[:3], "sluice_commit": rev + ("+dirty" if dirty else ""),
            "haproxy": ver(["haproxy", "-v"], r"version (\S+)") if self.have_haproxy else None,
            "nginx": ver(["nginx", "-v"], r"nginx/(\S+)") if self.have_nginx else None,
            "wrk": ver(["wrk", "-v"], r"wrk (\S+)") if self.have_wrk else None,
            "valgrind": run_text(["valgrind", "--version"]).strip() if shutil.which("valgrind") else None,
            "rustc": run_text(["rustc", "--version"]).strip(),
            "sluice_workers": self.args.sluice_workers,
        }

    def write(self, machine, figures_run):
        latest_json = os.path.join(self.out, "latest.json")
        doc = {"figures": {}}
        if self.args.only and os.path.exists(latest_json):  # keep the figures not re-measured
            try:
                with open(latest_json) as f:
                    doc = json.load(f)
            except (OSError, ValueError):
                pass
        doc.setdefault("figures", {})
        doc["date"] = iso(self.date)
        doc["machine"] = machine
        doc["quick"] = self.quick
        doc["pinned"] = common.PIN
        doc["figures"].update(self.results)
        doc["notes"] = self.notes
        doc["sluice_stderr"] = self.logs
        doc["anchor"] = ANCHOR
        with open(latest_json, "w") as f:
            json.dump(doc, f, indent=1, sort_keys=False)
        md = render_md(doc)
        details = render_details(doc)
        with open(os.path.join(self.out, "latest.md"), "w") as f:
            f.write(md + ("\n" + details if details else ""))
        self.save("results.json", json.dumps(doc, indent=1))
        self.save("results.md", md + ("\n" + details if details else ""))
        return md


# --------------------------------------------------------------------------------------------
# Load generation and parsing
# --------------------------------------------------------------------------------------------


def exact_load(port, n, conns, timeout=600.0):
    """Exactly n keep-alive GET / requests spread over `conns` connections, one in flight on
    each; returns counts. Connections are opened first and closed after the last response."""
    sel = selectors.DefaultSelector()
    share = [n // conns + (1 if i < n % conns else 0) for i in range(conns)]
    socks = []
    for i in range(conns):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        socks.append(s)
    state = {}
    res = {"ok": 0, "non200": 0, "errors": 0, "statuses": {}}
    for s, k in zip(socks, share):
        if k:
            state[s] = [k, bytearray()]
            s.send(REQUEST)
            sel.register(s, selectors.EVENT_READ)
    deadline = time.time() + timeout
    active = len(state)
    while active and time.time() < deadline:
        for key, _ in sel.select(timeout=1.0):
            s = key.fileobj
            st = state[s]
            try:
                data = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                res["errors"] += st[0]
                sel.unregister(s)
                active -= 1
                continue
            st[1] += data
            while True:
                done = parse_response(st[1])
                if done is None:
                    break
                status, used, close = done
                del st[1][:used]
                res["statuses"][status] = res["statuses"].get(status, 0) + 1
                res["ok" if status == 200 else "non200"] += 1
                st[0] -= 1
                if st[0] == 0 or close:
                    if close and st[0]:
                        res["errors"] += st[0]
                    sel.unregister(s)
                    active -= 1
                    break
                s.send(REQUEST)
    if active:
        res["errors"] += sum(st[0] for st in state.values())
    for s in socks:
        s.close()
    sel.close()
    return res


def parse_response(buf):
    """(status, bytes used, connection close) for one complete response at the start of buf."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buf[:end]).lower()
    status = int(head[9:12])
    body_start = end + 4
    m = re.search(rb"\r\ncontent-length:\s*(\d+)", head)
    close = b"\r\nconnection: close" in head
    if m:
        total = body_start + int(m.group(1))
        return (status, total, close) if len(buf) >= total else None
    if b"transfer-encoding: chunked" in head:
        i = buf.find(b"\r\n0\r\n\r\n", body_start - 2)
        return (status, i + 7, close) if i >= 0 else None
    return status, body_start, close


def ws_connect_echo(port, i):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16))
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (port, key))
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            raise RuntimeError(f"closed during handshake: {buf[:200]!r}")
        buf += d
    end = buf.index(b"\r\n\r\n")
    head, rest = buf[:end].decode("latin-1"), buf[end + 4:]
    if not head.startswith("HTTP/1.1 101"):
        raise RuntimeError(f"handshake: {head.splitlines()[0]!r}")
    accept = re.search(r"(?im)^sec-websocket-accept:\s*(\S+)", head)
    if not accept or accept.group(1).encode() != ws_accept(key):
        raise RuntimeError("bad Sec-WebSocket-Accept")
    msg = b"hello %d" % i
    mask = os.urandom(4)
    s.sendall(bytes([0x81, 0x80 | len(msg)]) + mask + bytes(b ^ mask[j % 4] for j, b in enumerate(msg)))
    buf = rest
    while len(buf) < 2 + len(msg):
        d = s.recv(4096)
        if not d:
            raise RuntimeError("closed before the echo")
        buf += d
    if buf[0] != 0x81 or buf[1] != len(msg) or buf[2:2 + len(msg)] != msg:
        raise RuntimeError(f"bad echo {buf[:40]!r}")
    return s


def stream_upload(port, size, pid):
    samples = {"max": 0, "stop": False}

    def sampler():
        while not samples["stop"]:
            v = status_kb(pid) or 0
            samples["max"] = max(samples["max"], v)
            time.sleep(0.01)

    before = status_kb(pid)
    cpu0 = tree_ticks(pid)
    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    chunk = bytes(1 << 20)
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    t0 = time.time()
    status, err = None, None
    try:
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
                  b"Content-Length: %d\r\n\r\n" % size)
        left = size
        while left:
            k = min(left, len(chunk))
            s.sendall(chunk[:k] if k < len(chunk) else chunk)
            left -= k
            if time.time() - t0 > 180:
                raise RuntimeError("upload slower than 180 s")
        buf = b""
        while b"\r\n\r\n" not in buf:
            d = s.recv(4096)
            if not d:
                break
            buf += d
        status = int(buf[9:12]) if buf.startswith(b"HTTP/1.") else buf[:100]
    except Exception as e:
        err = repr(e)
    finally:
        s.close()
    secs = time.time() - t0
    samples["stop"] = True
    th.join()
    return {"status": status, "error": err, "seconds": round(secs, 2), "mb_per_s": size / 1e6 / secs,
            "rss_before_kb": before, "rss_max_kb": samples["max"], "vmhwm_kb": status_kb(pid, "VmHWM"),
            "cpu_s": (tree_ticks(pid) - cpu0) / CLK_TCK}


def callgrind_total(path):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(("summary:", "totals:")):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


CG_LINE = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)$")
CG_LINE_OLD = re.compile(r"^\s*([\d,]+)\s+(\S.*)$")


def parse_annotate(text):
    out = {}
    for line in text.splitlines():
        m = CG_LINE.match(line)
        if m and "PROGRAM TOTALS" not in m.group(2):
            name = re.sub(r"\s+\[.*\]$", "", m.group(2).strip())
            file, sep, fn = name.partition(":")
            if sep and fn and ("/" in file or "." in file or file == "???"):
                name = fn  # "file:function": inlined parts of one function come from many files
            out[name] = out.get(name, 0) + int(m.group(1).replace(",", ""))
    return out


def parse_strace(text):
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 5 or not parts[3].isdigit():
            continue
        name = parts[-1]
        out[name] = out.get(name, 0) + int(parts[3])
    return out


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    except OSError:
        return 0


def run_text(argv):
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300)
        return r.stdout.decode("utf-8", "replace")
    except (OSError, subprocess.TimeoutExpired):
        return ""


def tls_figures():
    """benches/tls.py, imported when first needed (only the `tls` figure uses it)."""
    import tls
    return tls


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 wrk run of 3 s, 2000 WebSockets only, no musl build; "
                    "results in bench-results/tmp/quick/")
    ap.add_argument("--only", help="comma list of: " + ",".join(FIGURES))
    ap.add_argument("--targets", help="comma list of: " + ",".join(TARGETS) + " (default: all installed)")
    ap.add_argument("--out", help="results directory (default bench-results/, or bench-results/tmp/quick with --quick)")
    ap.add_argument("--sluice-workers", type=int, default=1, help="[frontend] workers for sluice (default 1)")
    ap.add_argument("--runs", type=int, help="bulk and wssmall figures: runs per case, interleaved over the "
                    "targets (default 3; --quick 1); the median is reported")
    ap.add_argument("--relay", action="store_true", help="bulk figures: also a transparent C relay (benches/relay.c)")
    ap.add_argument("--pin", action="store_true", help="proxy on core 0, wrk and backends on core 1 (taskset)")
    ap.add_argument("--base-sluice", metavar="PATH", help="bulk figures: also measure this sluice binary "
                    "(\"sluice-base\", e.g. the previous commit's build) side by side")
    ap.add_argument("--no-musl", action="store_true", help="skip the static musl build for the size figure")
    ap.add_argument("--update-readme", action="store_true", help="replace the README's ## Benchmarks table with this run's")
    ap.add_argument("--keep", action="store_true", help="keep the scratch dir bench-results/tmp/run-*")
    ap.add_argument("--render", action="store_true", help="measure nothing: rewrite latest.md (and the README with "
                    "--update-readme) from latest.json")
    ap.add_argument("--serve", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--bench", action="store_true", help=argparse.SUPPRESS)  # passed by `cargo bench`
    args = ap.parse_args()
    common.PIN = bool(args.pin) and shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2

    if args.serve:
        kind, ports = args.serve[0], [int(p) for p in args.serve[1:]]
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        if kind == "bulk":
            return bulk.serve_bulk(ports)
        return servers.serve_ws(ports) if kind == "ws" else servers.serve_discard(ports)

    if args.render:
        out = os.path.abspath(args.out) if args.out else (os.path.join(TMP_ROOT, "quick") if args.quick else RESULTS)
        with open(os.path.join(out, "latest.json")) as f:
            doc = json.load(f)
        md, details = render_md(doc), render_details(doc)
        with open(os.path.join(out, "latest.md"), "w") as f:
            f.write(md + ("\n" + details if details else ""))
        if args.update_readme:
            update_readme(md)
        print(md)
        return 0

    only = FIGURES if not args.only else [x.strip() for x in args.only.split(",")]
    bad = [x for x in only if x not in FIGURES]
    if bad:
        ap.error(f"unknown figure(s) {bad}; choose from {FIGURES}")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    bench = Bench(args)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    t0 = time.time()
    log(f"sluice bench: figures {only}, targets {bench.targets}, scratch {bench.tmp}, raw {bench.raw}")
    machine = bench.machine()
    log(f"  machine: {machine['nproc']} × {machine['cpu_model']}, Linux {machine['kernel']}, load {machine['loadavg']}")
    failed = []
    try:
        bench.build()
        steps = [("rps", bench.fig_rps, ("rps", "cpu")), ("instr", bench.fig_instr, ("instr",)),
                 ("syscalls", bench.fig_syscalls, ("syscalls",)), ("wsmem", bench.fig_wsmem, ("wsmem",)),
                 ("idle", bench.fig_idle, ("idle",)), ("size", bench.fig_size, ("size",)),
                 ("stream", bench.fig_stream, ("stream",)), ("bulk", bench.fig_bulk, ("bulk",)),
                 ("wsbulk", bench.fig_wsbulk, ("wsbulk",)), ("wssmall", bench.fig_wssmall, ("wssmall",)),
                 ("bulksys", bench.fig_bulksys, ("bulksys",)), ("wsinstr", bench.fig_wsinstr, ("wsinstr",))]
        steps.append(("tls", bench.fig_tls, ("tls",)))
        for name, fn, keys in steps:
            if not any(k in only for k in keys):
                continue
            log(f"== {name}")
            t = time.time()
            try:
                fn()
            except KeyboardInterrupt:
                raise
            except Exception as e:
                bench.note(f"figure {name} failed: {e!r}")
                failed.append(name)
            log(f"   {name} took {time.time() - t:.0f}s")
    finally:
        bench.procs.stop_all()
        for p in os.listdir(bench.tmp):
            if p.endswith(".log") and p.startswith("sluice"):
                shutil.copy(os.path.join(bench.tmp, p), os.path.join(bench.raw, p)) if os.path.getsize(os.path.join(bench.tmp, p)) < 65536 else None
        if not args.keep:
            shutil.rmtree(bench.tmp, ignore_errors=True)
    machine["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    md = bench.write(machine, only)
    if args.update_readme:
        update_readme(md)
        log("README.md ## Benchmarks updated")
    print()
    print(md)
    log(f"done in {time.time() - t0:.0f}s; {os.path.relpath(bench.out, ROOT)}/latest.md, latest.json, raw in {os.path.relpath(bench.raw, ROOT)}/")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
