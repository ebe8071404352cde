"""What the benchmark scripts share (harness.py, bulk.py, tls.py, servers.py, report.py): paths,
the process supervisor (`Procs`: start, stop with the whole tree, `--pin` placement), /proc
readings (CPU ticks, RSS), port helpers, the anchor configurations in benches/peers, wrk's
output parser, number and date formats, and the WebSocket frame codec of the test backends.

It imports none of them; harness.py imports the others (tls.py lazily, for the `tls` figure):
no import runs back up.
"""

import base64
import hashlib
import os
import re
import signal
import socket
import struct
import shutil
import subprocess
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.path.join(ROOT, "benches", "peers")
RESULTS = os.path.join(ROOT, "bench-results")
TMP_ROOT = os.path.join(RESULTS, "tmp")
CLK_TCK = os.sysconf("SC_CLK_TCK")
# --pin: the proxy under test gets core 0 to itself; wrk and the backends share core 1.
# On a 2-core box this measures the proxy rather than the scheduler (every proxy is
# pinned the same way, so ratios stay side by side).
PIN = False


def wrk_cmd():
    return (["taskset", "-c", "1"] if PIN else []) + ["wrk"]


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --------------------------------------------------------------------------------------------
# /proc helpers
# --------------------------------------------------------------------------------------------


def children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        for c in children(todo.pop()):
            out.append(c)
            todo.append(c)
    return out


def cpu_ticks(pid):
    """utime+stime of pid (all its threads), in clock ticks; 0 if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return int(rest[11]) + int(rest[12])
    except (OSError, IndexError):
        return 0


def tree_ticks(pid):
    return sum(cpu_ticks(p) for p in [pid] + descendants(pid))


def status_kb(pid, field="VmRSS"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def listening(port):
    want = f":{port:04X}"
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    if parts[1].endswith(want) and parts[3] == "0A":
                        return True
        except OSError:
            pass
    return False


def port_free(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


class Ports:
    """Preferred port if free, else a free one; never the same port twice."""

    def __init__(self):
        self.used = set()

    def get(self, preferred):
        if preferred not in self.used and port_free(preferred) and not listening(preferred):
            self.used.add(preferred)
            return preferred
        while True:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
            s.close()
            if p not in self.used:
                self.used.add(p)
                return p


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------


class Proc:
    def __init__(self, name, popen, logpath):
        self.name, self.popen, self.logpath = name, popen, logpath
        self.pid = popen.pid
        self.work_pid = popen.pid  # the process doing the work, measured (nginx worker, tracee)
        self.signal_pid = popen.pid  # the process to stop (nginx master, tracee under strace)

    def alive(self):
        return self.popen.poll() is None


class Procs:
    def __init__(self, tmp):
        self.tmp = tmp
        self.all = []

    def start(self, name, argv, env=None):
        if PIN:
            core = "0" if name.split("-")[0] in ("sluice", "haproxy", "nginx") else "1"
            argv = ["taskset", "-c", core] + list(argv)
        logpath = os.path.join(self.tmp, f"{name}.log")
        logf = open(logpath, "ab")
        logf.write(f"$ {' '.join(argv)}\n".encode())
        logf.flush()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                             env=env, cwd=ROOT)
        logf.close()
        proc = Proc(name, p, logpath)
        self.all.append(proc)
        return proc

    def stop(self, proc, sig=signal.SIGTERM, grace=15.0, target_pid=None):
        """Signal the work pid (or target_pid), wait for the started process, SIGKILL after
        `grace` seconds; then SIGKILL any of its descendants still alive (by PID)."""
        if proc not in self.all:
            return proc.popen.returncode
        tree = descendants(proc.pid)
        if proc.alive():
            try:
                os.kill(target_pid or proc.signal_pid, sig)
            except ProcessLookupError:
                pass
            try:
                proc.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                log(f"  {proc.name} (pid {proc.pid}) did not stop in {grace:.0f}s: SIGKILL")
                tree = sorted(set(tree) | set(descendants(proc.pid)))
                for p in [proc.pid] + tree:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                proc.popen.wait(timeout=10)
        for p in tree:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.all.remove(proc)
        return proc.popen.returncode

    def stop_all(self):
        for proc in list(reversed(self.all)):
            try:
                self.stop(proc, grace=5.0)
            except Exception as e:  # keep going: every process must be stopped
                log(f"  stopping {proc.name}: {e}")


def wait_listening(proc, ports, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}: {tail(proc.logpath)}")
        if all(listening(p) for p in ports):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{proc.name} not listening on {ports} after {timeout:.0f}s: {tail(proc.logpath)}")


def wait_child(pid, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        c = children(pid)
        if c:
            return c[0]
        time.sleep(0.02)
    raise RuntimeError(f"no child of pid {pid} after {timeout}s")


def tail(path, n=15):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:])
    except OSError:
        return ""


# --------------------------------------------------------------------------------------------
# The bench: configuration, peers
# --------------------------------------------------------------------------------------------


def read_peer(name):
    """benches/peers/NAME: the anchor configs, copied verbatim from shared/anchors."""
    path = os.path.join(PEERS, name)
    with open(path) as f:
        text = f.read()
    shared = os.path.join(os.path.dirname(ROOT), "shared", "anchors", name)
    if os.path.exists(shared):
        with open(shared) as f:
            if f.read() != text:
                log(f"  note: benches/peers/{name} differs from shared/anchors/{name}")
    return text


def rewrite_ports(text, mapping):
    return re.sub(r"127\.0\.0\.1:(\d+)", lambda m: f"127.0.0.1:{mapping.get(int(m.group(1)), int(m.group(1)))}", text)


UNIT_US = {"us": 1.0, "ms": 1000.0, "s": 1e6, "m": 60e6}


def to_us(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    return float(m.group(1)) * UNIT_US[m.group(2)] if m else None


def parse_wrk(text):
    w = {"rps": 0.0, "requests": 0, "p50_us": None, "p99_us": None, "errors": 0, "non2xx": 0}
    m = re.search(r"Requests/sec:\s*([\d.]+)", text)
    if m:
        w["rps"] = float(m.group(1))
    m = re.search(r"(\d+) requests in", text)
    if m:
        w["requests"] = int(m.group(1))
    for pct, key in (("50", "p50_us"), ("99", "p99_us")):
        m = re.search(rf"^\s*{pct}(?:\.000)?%\s+(\S+)", text, re.M)
        if m:
            w[key] = to_us(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        w["errors"] = sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        w["non2xx"] = int(m.group(1))
    return w


def iso(d):
    return d.strftime("%Y-%m-%d %H:%M UTC")


def fmt(v, digits=1, unit=""):
    if v is None:
        return "—"
    if digits == 0:
        return f"{v:,.0f}{unit}"
    return f"{v:,.{digits}f}{unit}"


def build_static(features, tmp):
    """Builds scripts/build-static's binary with FEATURES=`features` and returns a copy of it
    in `tmp` (the plain and the `tls` build share one output path), or None if it failed."""
    argv = [os.path.join(ROOT, "scripts", "build-static")]
    log(f"$ FEATURES={features} " + " ".join(argv))
    r = subprocess.run(argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                       env=dict(os.environ, FEATURES=features), timeout=1800, text=True)
    found = os.path.join(ROOT, r.stdout.strip()) if r.returncode == 0 else ""
    if not (found and os.path.exists(found)):
        return None
    path = os.path.join(tmp, f"sluice-static-{features or 'plain'}")
    shutil.copy2(found, path)
    return path


def listen(port, backlog=1024):
    """A listening TCP socket on 127.0.0.1:port (SO_REUSEADDR), for the test backends."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(backlog)
    return ls


def serve_threads(ports, handle):
    """Listens on every port and serves each accepted connection with `handle(sock)` on a
    thread of its own; never returns."""
    listeners = [listen(p) for p in ports]

    def accept_loop(ls):
        while True:
            s, _ = ls.accept()
            threading.Thread(target=handle, args=(s,), daemon=True).start()

    for ls in listeners[1:]:
        threading.Thread(target=accept_loop, args=(ls,), daemon=True).start()
    accept_loop(listeners[0])


# --------------------------------------------------------------------------------------------
# WebSocket frames, for the benchmark backends (harness.py's ws server, bulk.py's echo)
# --------------------------------------------------------------------------------------------


WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_accept(key):
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 section 4.2.2)."""
    return base64.b64encode(hashlib.sha1(key + WS_GUID).digest())


def ws_frame(b0, payload, mask=None):
    """One frame: first header byte `b0`, the payload masked with `mask` (4 bytes) if given."""
    n = len(payload)
    if n < 126:
        head = bytes([b0, n | (0x80 if mask else 0)])
    elif n < 65536:
        head = bytes([b0, 126 | (0x80 if mask else 0)]) + struct.pack("!H", n)
    else:
        head = bytes([b0, 127 | (0x80 if mask else 0)]) + struct.pack("!Q", n)
    if mask:
        m = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
        payload = (int.from_bytes(payload, "big") ^ m).to_bytes(n, "big") if n else b""
        head += mask
    return head + payload


def take_ws_frame(buf):
    """The whole frame at the front of `buf` (a bytearray), removed from it: (first header
    byte, unmasked payload); None while the frame is incomplete (`buf` is left as it was)."""
    if len(buf) < 2:
        return None
    b0, b1 = buf[0], buf[1]
    n, h = b1 & 0x7F, 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, h = struct.unpack_from("!H", buf, 2)[0], 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, h = struct.unpack_from("!Q", buf, 2)[0], 10
    mask = None
    if b1 & 0x80:
        mask, h = bytes(buf[h:h + 4]), h + 4
    if len(buf) < h + n:
        return None
    payload = bytes(buf[h:h + n])
    del buf[: h + n]
    if mask and n:
        m = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
        payload = (int.from_bytes(payload, "big") ^ m).to_bytes(n, "big")
    return b0, payload
