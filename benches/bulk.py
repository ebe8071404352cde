"""Bulk-transfer figures for benches/harness.py (issue 18): large bodies and WebSocket streams.

    python3 benches/harness.py --only bulk,bulksys,wsbulk,wssmall [--quick]

Targets: sluice, HAProxy (the anchor haproxy.cfg), HAProxy with `option splice-auto` added to
its defaults ("haproxy-splice") and with `option splice-request` + `option splice-response`
("haproxy-splice-forced": on loopback splice-auto never decides to splice, strace shows no splice
call; forced, HAProxy moves every body and tunnel byte with splice(2) and no recv/send), all
against one backend started from this file
(`harness.py --serve bulk PORT`, one thread per connection):
  - POST/PUT: the body (Content-Length or chunked, any chunk sizes) is read and dropped, `200 ok`.
  - GET /cl/N, GET /chunked/N: N zero bytes, Content-Length or 64 KiB chunks.
  - any other GET: `200 {"status":"200"}` (the health-check shape).
  - a WebSocket upgrade to /sink/N: N raw stream bytes are read and dropped, then one Text frame
    "done"; /source/COUNT/SIZE: COUNT unmasked Binary frames of SIZE bytes; /echo: every data
    frame is echoed, and everything one read brought is echoed in ONE write (a backend that writes
    frame by frame measures itself, not the proxy).

`--relay` adds "relay-copy" and "relay-splice" to the MB/s figures (bulk, wsbulk): benches/relay.c, a
transparent TCP relay with no proxy logic at all (recv/send through 16 KiB, or splice through a
64 KiB pipe), built with `cc -O2`: what moving the bytes alone costs on this machine.

`--base-sluice PATH` adds another sluice binary ("sluice-base", e.g. a build of the previous
commit) to every figure, interleaved with the others: before and after side by side.

Figures (medians of 3 runs interleaved over the targets; --quick: 1 run, smaller sizes):
  bulk     1 GiB upload and download, Content-Length and chunked (64 KiB chunks): MB/s, proxy
           CPU seconds per GiB (on-CPU time of the proxy from /proc/PID/task/*/schedstat, the
           same quantity as utime+stime at ns resolution), and the whole machine's busy CPU
           seconds per GiB with the share of its cores busy (/proc/stat): what the transfer
           cost everyone (client, proxy, backend, loopback TCP), and how much stayed idle.
  bulksys  the same transfers, 256 MiB, under `strace -f -s 0` (a fresh proxy per case):
           syscalls per MiB (every call of the proxy, start-up included: < 1%) and, per I/O call
           (read, recvfrom, write, sendto, readv, writev, splice), count and mean / median bytes.
  wsbulk   1 MiB WebSocket messages through a tunnel: client -> backend (/sink) and
           backend -> client (/source), 1 GiB each way: MB/s and proxy CPU s/GiB.
  wssmall  64-byte messages on 50 WebSockets, bursts of 16 per connection (16 masked frames in one
           write, wait for the 16 echoes, repeat): proxy CPU µs per echoed message and messages/s.
  wsinstr  sluice's user instructions per echoed 64 B message under callgrind, (Ir(2N) - Ir(N)) / N,
           with the top functions per message (raw/callgrind-ws64-*-c50-top30.txt).
"""

import os
import re
import sys
import signal
import socket
import statistics
import subprocess
import time
import base64
import selectors

from common import serve_threads, take_ws_frame, wait_listening, ws_accept, ws_frame  # benches/common.py

MiB = 1 << 20
GiB = 1 << 30
CHUNK = 64 * 1024
BLOCK = bytes(MiB)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def cpu_s(pid):
    """On-CPU seconds of every thread of pid (schedstat, ns); utime+stime ticks if unavailable.
    0 for no process (the "direct" bulk variant)."""
    if pid is None:
        return 0.0
    total, ok = 0, False
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
                ok = True
    except OSError:
        pass
    if ok:
        return total / 1e9
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError):
        return 0.0


def machine_busy_s():
    """CPU seconds the whole machine spent busy so far (/proc/stat: every process, the kernel's
    softirq work included; idle and iowait excluded). 10 ms resolution."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------------------------
# Chunked bodies
# --------------------------------------------------------------------------------------------


def chunked_block(chunk=CHUNK, total=MiB):
    """`total` payload bytes as chunks of `chunk` bytes, with their framing."""
    one = b"%x\r\n" % chunk + bytes(chunk) + b"\r\n"
    return one * (total // chunk)


CHUNKED_BLOCK = chunked_block()


class ChunkSkipper:
    """Counts a chunked body's payload without copying it; `done` after the last chunk and the
    (empty or not) trailer section. Any chunk size, extensions ignored."""

    def __init__(self):
        self.left = 0  # payload bytes of the current chunk still to come
        self.crlf = 0  # CRLF bytes after a chunk's payload still to come
        self.line = bytearray()
        self.last = False  # the 0-size chunk was seen: lines are trailers until an empty one
        self.done = False
        self.payload = 0

    def feed(self, mv):
        """Consumes from memoryview mv; returns bytes used (less than len(mv) only when done)."""
        i, n = 0, len(mv)
        while i < n and not self.done:
            if self.left:
                k = min(self.left, n - i)
                self.left -= k
                self.payload += k
                i += k
                if not self.left:
                    self.crlf = 2
                continue
            if self.crlf:
                k = min(self.crlf, n - i)
                self.crlf -= k
                i += k
                continue
            j = bytes(mv[i:min(n, i + 512)]).find(b"\n")
            if j < 0:
                self.line += mv[i:min(n, i + 512)]
                i = min(n, i + 512)
                if len(self.line) > 4096:
                    raise ValueError("chunk line too long")
                continue
            self.line += mv[i:i + j]
            i += j + 1
            line = bytes(self.line).rstrip(b"\r")
            self.line.clear()
            if self.last:
                if not line:
                    self.done = True
                continue
            size = int(line.split(b";")[0], 16)
            if size == 0:
                self.last = True
            else:
                self.left = size
        return i


# --------------------------------------------------------------------------------------------
# The backend (`harness.py --serve bulk PORT`)
# --------------------------------------------------------------------------------------------


def read_head(s, buf):
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            return None
        buf += d
    end = buf.find(b"\r\n\r\n")
    head = bytes(buf[:end]).decode("latin-1")
    del buf[: end + 4]
    return head


def header(head, name):
    m = re.search(r"(?im)^" + name + r":\s*([^\r\n]*)", head)
    return m.group(1).strip() if m else None


def drain(s, buf, n):
    """Reads and drops n bytes, buf's first."""
    take = min(n, len(buf))
    del buf[:take]
    n -= take
    sink = bytearray(MiB)
    while n > 0:
        k = s.recv_into(sink, min(n, MiB))
        if k == 0:
            raise ConnectionError("EOF in body")
        n -= k


def drain_chunked(s, buf):
    sk = ChunkSkipper()
    used = sk.feed(memoryview(buf))
    del buf[:used]
    sink = bytearray(MiB)
    mv = memoryview(sink)
    while not sk.done:
        k = s.recv_into(sink)
        if k == 0:
            raise ConnectionError("EOF in chunked body")
        used = sk.feed(mv[:k])
        if used < k:
            buf += mv[used:k]
    return sk.payload


def ws_echo(s, buf):
    """Echoes data frames; everything one read completed goes out in one sendall."""
    while True:
        out = bytearray()
        while (f := take_ws_frame(buf)) is not None:
            b0, payload = f
            op = b0 & 0x0F
            if op == 8:
                s.sendall(bytes(out) + ws_frame(0x88, payload[:2]))
                return
            if op == 9:
                out += ws_frame(0x8A, payload)
            elif op != 10:
                out += ws_frame(b0, payload)
        if out:
            s.sendall(out)
        d = s.recv(65536)
        if not d:
            return
        buf += d


def serve_bulk_conn(s):
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf = bytearray()
    try:
        while True:
            head = read_head(s, buf)
            if head is None:
                return
            method, path = head.split(" ", 2)[:2]
            key = header(head, "sec-websocket-key")
            if key:
                accept = ws_accept(key.encode())
                s.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
                parts = path.strip("/").split("/")
                if parts[0] == "sink":
                    drain(s, buf, int(parts[1]))
                    s.sendall(ws_frame(0x81, b"done"))
                elif parts[0] == "source":
                    count, size = int(parts[1]), int(parts[2])
                    frame = ws_frame(0x82, bytes(size))
                    for _ in range(count):
                        s.sendall(frame)
                else:
                    ws_echo(s, buf)
                while s.recv(65536):
                    pass
                return
            te = (header(head, "transfer-encoding") or "").lower()
            cl = header(head, "content-length")
            if "chunked" in te:
                drain_chunked(s, buf)
            elif cl:
                drain(s, buf, int(cl))
            m = re.match(r"/(cl|chunked)/(\d+)$", path)
            if method == "GET" and m:
                n = int(m.group(2))
                if m.group(1) == "cl":
                    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % n)
                    while n:
                        k = min(n, MiB)
                        s.sendall(BLOCK if k == MiB else BLOCK[:k])
                        n -= k
                else:
                    s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
                    while n >= MiB:
                        s.sendall(CHUNKED_BLOCK)
                        n -= MiB
                    if n:
                        s.sendall(b"%x\r\n" % n + bytes(n) + b"\r\n")
                    s.sendall(b"0\r\n\r\n")
            elif method == "GET":
                body = b'{"status":"200"}'
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            else:
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nok\n")
    except (OSError, ValueError, ConnectionError):
        pass
    finally:
        s.close()


def serve_bulk(ports):
    serve_threads(ports, serve_bulk_conn)


# --------------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------------


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def upload(port, size, chunked):
    """POST `size` bytes; returns the response status."""
    s = connect(port)
    try:
        framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % size
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
                  + framing + b"\r\n\r\n")
        left = size
        block = CHUNKED_BLOCK if chunked else BLOCK
        while left >= MiB:
            s.sendall(block)
            left -= MiB
        if left:
            s.sendall((b"%x\r\n" % left + bytes(left) + b"\r\n") if chunked else bytes(left))
        if chunked:
            s.sendall(b"0\r\n\r\n")
        buf = bytearray()
        head = read_head(s, buf)
        return int(head[9:12]) if head and head.startswith("HTTP/1.") else head
    finally:
        s.close()


def download(port, size, chunked):
    """GET `size` bytes; returns the status, or an error text if the body is short."""
    s = connect(port)
    try:
        s.sendall(b"GET /%s/%d HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % (b"chunked" if chunked else b"cl", size))
        buf = bytearray()
        head = read_head(s, buf)
        if not head or not head.startswith("HTTP/1."):
            return f"bad head {head!r:.100}"
        status = int(head[9:12])
        te = (header(head, "transfer-encoding") or "").lower()
        sink = bytearray(MiB)
        mv = memoryview(sink)
        if "chunked" in te:
            sk = ChunkSkipper()
            sk.feed(memoryview(buf))
            while not sk.done:
                k = s.recv_into(sink)
                if k == 0:
                    return "EOF in chunked body"
                sk.feed(mv[:k])
            got = sk.payload
        else:
            n = int(header(head, "content-length"))
            got = min(n, len(buf))
            while got < n:
                k = s.recv_into(sink, min(MiB, n - got))
                if k == 0:
                    break
                got += k
        return status if got == size else f"body {got} of {size}"
    finally:
        s.close()


def ws_open(port, path):
    s = connect(port)
    key = base64.b64encode(os.urandom(16))
    s.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path.encode(), port, key))
    buf = bytearray()
    head = read_head(s, buf)
    if not head or not head.startswith("HTTP/1.1 101"):
        raise RuntimeError(f"handshake: {head!r:.100}")
    return s, buf


def ws_up(port, count, size):
    """`count` masked Binary frames of `size` bytes to /sink; waits for its "done"."""
    frame = ws_frame(0x82, bytes(size), mask=b"\x11\x22\x33\x44")
    s, buf = ws_open(port, f"/sink/{count * len(frame)}")
    try:
        for _ in range(count):
            s.sendall(frame)
        while len(buf) < 6:
            d = s.recv(4096)
            if not d:
                return "EOF before done"
            buf += d
        return "ok" if bytes(buf[:6]) == b"\x81\x04done" else f"bad reply {bytes(buf[:10])!r}"
    finally:
        s.close()


def ws_down(port, count, size):
    s, buf = ws_open(port, f"/source/{count}/{size}")
    try:
        want = count * ((10 if size > 65535 else 4 if size > 125 else 2) + size)
        got = len(buf)
        sink = bytearray(MiB)
        while got < want:
            k = s.recv_into(sink)
            if k == 0:
                return f"EOF after {got} of {want}"
            got += k
        return "ok" if got == want else f"{got} of {want}"
    finally:
        s.close()


def ws_small(socks, bursts, burst=16, size=64):
    """Each socket: `bursts` times, 16 masked frames in one write, then their 16 echoes."""
    frame = ws_frame(0x82, bytes(range(size)), mask=b"\x01\x02\x03\x04")
    out = frame * burst
    want = (2 + size) * burst
    sel = selectors.DefaultSelector()
    state = {}
    for s in socks:
        s.setblocking(False)
        state[s] = [bursts, 0]
        s.send(out)
        sel.register(s, selectors.EVENT_READ)
    active, errors = len(socks), 0
    deadline = time.time() + 300
    while active and time.time() < deadline:
        for key, _ in sel.select(timeout=1.0):
            s = key.fileobj
            st = state[s]
            try:
                d = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            if not d:
                errors += 1
                sel.unregister(s)
                active -= 1
                continue
            st[1] += len(d)
            if st[1] >= want:
                st[1] -= want
                st[0] -= 1
                if st[0] == 0:
                    sel.unregister(s)
                    active -= 1
                else:
                    s.send(out)
    sel.close()
    return errors + active


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------

CASES = [("up-cl", "upload, Content-Length"), ("up-chunked", "upload, chunked"),
         ("down-cl", "download, Content-Length"), ("down-chunked", "download, chunked")]
VARIANTS = ["sluice", "haproxy", "haproxy-splice", "haproxy-splice-forced"]
RELAYS = ["relay-copy", "relay-splice"]


class Direct:
    """The "direct" bulk variant: the client talks to the backend itself, no proxy between
    them; its MB/s is the ceiling the client and backend allow on this machine."""

    work_pid = None

    def __init__(self, port):
        self.http_port = self.ws_port = port

    def alive(self):
        return True


class BulkFigures:
    """Mixed into harness.Bench (uses its procs, ports, start_sluice, start_haproxy, save, note)."""

    def bulk_backend(self):
        if getattr(self, "_bulk", None):
            return self._bulk
        port = self.ports.get(9006)
        p = self.procs.start("bulk-backend", [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "harness.py"),
                                              "--serve", "bulk", str(port)])
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if not p.alive() or time.time() > deadline:
                    raise RuntimeError("bulk backend did not start")
                time.sleep(0.05)
        self._bulk = (p, port)
        return self._bulk

    def bulk_variants(self, proxies_only=False):
        """The targets of a bulk figure; "direct" (no proxy) and the relays only for MB/s figures."""
        base = ["sluice-base"] if getattr(self.args, "base_sluice", None) else []
        direct = ["direct"] if "direct" in self.targets and not proxies_only else []
        relays = RELAYS if getattr(self.args, "relay", False) and not proxies_only else []
        return direct + relays + base + [v for v in VARIANTS if v == "sluice" or (self.have_haproxy and "haproxy" in self.targets)]

    def start_relay(self, v, backend_port):
        """benches/relay.c, built once per run into the scratch directory."""
        binary = os.path.join(self.tmp, "relay")
        if not os.path.exists(binary):
            src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "relay.c")
            subprocess.run(["cc", "-O2", "-o", binary, src], check=True)
        port = self.ports.get({"relay-copy": 9107, "relay-splice": 9108}[v])
        p = self.procs.start(v, [binary, str(port), str(backend_port), v.split("-")[1]])
        wait_listening(p, [port])
        p.http_port = p.ws_port = port
        return p

    def start_bulk_target(self, v, tag, wrapper=()):
        _, port = self.bulk_backend()
        if v == "direct":
            return Direct(port)
        if v in RELAYS:
            return self.start_relay(v, port)
        if v in ("sluice", "sluice-base"):
            binary = os.path.abspath(self.args.base_sluice) if v == "sluice-base" else None
            return self.start_sluice(tag if v == "sluice" else tag + "-base", wrapper, binary=binary,
                                     http=[port], ws=[port], pool=(1, 4))
        splice = {"haproxy-splice": "auto", "haproxy-splice-forced": "forced"}.get(v)
        return self.start_haproxy(tag, wrapper, http=[port], ws=[port], splice=splice)

    def run_case(self, case, port, size):
        if case == "up-cl":
            return upload(port, size, False)
        if case == "up-chunked":
            return upload(port, size, True)
        if case == "down-cl":
            return download(port, size, False)
        if case == "down-chunked":
            return download(port, size, True)
        if case == "ws-up":
            return ws_up(port, size // MiB, MiB)
        if case == "ws-down":
            return ws_down(port, size // MiB, MiB)
        raise ValueError(case)

    def runs(self):
        """Runs per case: --runs, else 3 (1 with --quick)."""
        return getattr(self.args, "runs", None) or (1 if self.quick else 3)

    def measure_mb(self, cases, size, fig, ok_value):
        runs = self.runs()
        procs = {}
        data = {v: {c: [] for c, _ in cases} for v in self.bulk_variants()}
        try:
            for v in data:
                procs[v] = self.start_bulk_target(v, fig)
            time.sleep(0.5)
            for v in data:  # warm-up: 16 MiB each way
                for c, _ in cases:
                    self.run_case(c, procs[v].http_port if not c.startswith("ws") else procs[v].ws_port, 16 * MiB)
            for r in range(runs):
                for c, _ in cases:
                    for v in data:
                        p = procs[v]
                        port = p.ws_port if c.startswith("ws") else p.http_port
                        c0, m0, t0 = cpu_s(p.work_pid), machine_busy_s(), time.time()
                        st = self.run_case(c, port, size)
                        secs, cpu = time.time() - t0, cpu_s(p.work_pid) - c0
                        machine = machine_busy_s() - m0
                        rss = self.status_hwm(p.work_pid)
                        d = {"status": st, "mb_per_s": size / 1e6 / secs, "cpu_s_per_gib": cpu * GiB / size,
                             "machine_s_per_gib": machine * GiB / size,
                             "machine_busy": machine / (secs * (os.cpu_count() or 1)),
                             "seconds": round(secs, 3), "vmhwm_kb": rss}
                        data[v][c].append(d)
                        log(f"  {v:15s} {c:12s} run {r + 1}: {d['mb_per_s']:7.0f} MB/s  cpu {d['cpu_s_per_gib']:.3f} s/GiB  "
                            f"machine {d['machine_s_per_gib']:.3f} s/GiB, {100 * d['machine_busy']:.0f}% busy  VmHWM {rss} kB  {st}")
                        if st != ok_value:
                            self.note(f"{fig} {v} {c} run {r + 1}: {st!r}")
                        if not p.alive():
                            raise RuntimeError(f"{v} died: {p.popen.returncode}")
        finally:
            for p in procs.values():
                if not isinstance(p, Direct):
                    self.stop(p)
        res = {}
        for v, byc in data.items():
            res[v] = {}
            for c, runs_ in byc.items():
                med = lambda k: statistics.median(x[k] for x in runs_) if runs_ else None
                res[v][c] = {"mb_per_s": med("mb_per_s"), "cpu_s_per_gib": med("cpu_s_per_gib"),
                             "machine_s_per_gib": med("machine_s_per_gib"), "machine_busy": med("machine_busy"),
                             "vmhwm_kb": max((x["vmhwm_kb"] or 0) for x in runs_) if runs_ else None,
                             "runs": [{k: x[k] for k in ("mb_per_s", "cpu_s_per_gib", "machine_s_per_gib", "machine_busy",
                                                         "status")} for x in runs_]}
        return res, runs

    @staticmethod
    def status_hwm(pid):
        if pid is None:
            return None
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return None

    def fig_bulk(self):
        size = 256 * MiB if self.quick else GiB
        res, runs = self.measure_mb(CASES, size, "bulk", 200)
        self.results["bulk"] = {"date": self.iso_date(), "size": size, "method":
                                f"{size >> 20} MiB per transfer through one connection, client and backend in Python "
                                f"(1 MiB writes, 64 KiB chunks), median of {runs} run(s) interleaved over the targets; "
                                "CPU = proxy on-CPU time (schedstat) per GiB; machine CPU = busy time of the whole machine "
                                "(/proc/stat: client, proxy, backend and the kernel's network work) per GiB, and how busy "
                                "its cores were during the transfer", "targets": res}

    def fig_wsbulk(self):
        size = 256 * MiB if self.quick else GiB
        res, runs = self.measure_mb([("ws-up", "WebSocket up"), ("ws-down", "WebSocket down")], size, "wsbulk", "ok")
        self.results["wsbulk"] = {"date": self.iso_date(), "size": size, "method":
                                  f"1 MiB Binary messages, {size >> 20} MiB per direction through one tunnel, median of "
                                  f"{runs} run(s) interleaved; CPU = proxy on-CPU time per GiB; machine CPU as for bulk",
                                  "targets": res}

    def fig_bulksys(self):
        size = 64 * MiB if self.quick else 256 * MiB
        res = {}
        for v in self.bulk_variants(proxies_only=True):
            res[v] = {}
            for c, _ in CASES + [("ws-up", ""), ("ws-down", "")]:
                out = os.path.join(self.tmp, f"strace-bulk-{v}-{c}.txt")
                p = self.start_bulk_target(v, f"strace-{c}", ["strace", "-f", "-s", "0", "-o", out])
                try:
                    time.sleep(0.3)
                    port = p.ws_port if c.startswith("ws") else p.http_port
                    st = self.run_case(c, port, size)
                    time.sleep(0.3)
                finally:
                    self.stop(p, sig=signal.SIGTERM, grace=30)
                r = parse_trace(out)
                os.unlink(out)
                r["per_mib"] = r["total"] / (size / MiB)
                r["status"] = st
                res[v][c] = r
                io = ", ".join(f"{k} {x['count']} × {x['mean']:.0f} B" for k, x in r["io"].items())
                log(f"  {v:15s} {c:12s}: {r['per_mib']:.1f} syscalls/MiB ({io}) {st}")
        self.results["bulksys"] = {"date": self.iso_date(), "size": size, "method":
                                   f"{size >> 20} MiB per case under `strace -f -s 0`, fresh proxy per case; all calls "
                                   "of the proxy / MiB; I/O calls: count and mean bytes of calls that moved bytes",
                                   "targets": res}

    def fig_wssmall(self):
        conns, bursts = 50, (100 if self.quick else 400)
        runs = self.runs()
        msgs = conns * bursts * 16
        data = {v: [] for v in self.bulk_variants(proxies_only=True)}
        procs = {}
        try:
            for v in data:
                procs[v] = self.start_bulk_target(v, "wssmall")
            time.sleep(0.5)
            for r in range(runs + 1):  # run 0 is the warm-up
                for v in data:
                    p = procs[v]
                    socks = [ws_open(p.ws_port, "/echo")[0] for _ in range(conns)]
                    try:
                        c0, t0 = cpu_s(p.work_pid), time.time()
                        bad = ws_small(socks, bursts if r else 10)
                        secs, cpu = time.time() - t0, cpu_s(p.work_pid) - c0
                    finally:
                        for s in socks:
                            s.close()
                    if r == 0:
                        continue
                    d = {"us_per_msg": cpu * 1e6 / msgs, "msgs_per_s": msgs / secs, "failed_conns": bad}
                    data[v].append(d)
                    log(f"  {v:15s} run {r}: {d['us_per_msg']:.3f} µs/message, {d['msgs_per_s']:.0f} messages/s"
                        + (f", {bad} connections failed" if bad else ""))
                    if bad:
                        self.note(f"wssmall {v} run {r}: {bad} connections failed")
        finally:
            for p in procs.values():
                self.stop(p)
        res = {v: {"us_per_msg": statistics.median(x["us_per_msg"] for x in xs),
                   "msgs_per_s": statistics.median(x["msgs_per_s"] for x in xs),
                   "runs": xs} for v, xs in data.items() if xs}
        self.results["wssmall"] = {"date": self.iso_date(), "method":
                                   f"{conns} WebSockets, {bursts} bursts of 16 64-byte masked messages each ({msgs} "
                                   f"echoed messages), batching echo backend; proxy on-CPU time / echoed message; "
                                   f"median of {runs} run(s) interleaved", "targets": res}


    def fig_wsinstr(self):
        """User instructions per echoed 64 B message under callgrind: (Ir(2N) - Ir(N)) / messages(N),
        N = 50 connections x 20 bursts of 16; sluice with debug symbols (target/bench-debug), and
        --base-sluice when given (build it with symbols too). Per-function differences saved."""
        self.build(debug_symbols=True)
        _, port = self.bulk_backend()
        bins = [("sluice", self.sluice_dbg)]
        if getattr(self.args, "base_sluice", None):
            bins.insert(0, ("sluice-base", os.path.abspath(self.args.base_sluice)))
        conns, n = 50, 20
        res = {}
        for label, binary in bins:
            irs, files = {}, {}
            for k in (n, 2 * n):
                out = os.path.join(self.tmp, f"callgrind-ws64-{label}-{k}.out")
                p = self.start_sluice(f"cg-ws64-{label}-{k}", ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"],
                                      binary=binary, http=[port], ws=[port], pool=(1, 4))
                try:
                    socks = [ws_open(p.ws_port, "/echo")[0] for _ in range(conns)]
                    try:
                        bad = ws_small(socks, k)
                    finally:
                        for s in socks:
                            s.close()
                    if bad:
                        self.note(f"wsinstr {label}: {bad} connections failed")
                    time.sleep(0.5)
                finally:
                    self.stop(p, sig=signal.SIGTERM, grace=60)
                irs[k], files[k] = cg_total(out), out
            msgs = conns * n * 16
            per = (irs[2 * n] - irs[n]) / msgs if irs[n] and irs[2 * n] else None
            res[label] = {"instr_per_msg": per, "messages": msgs}
            log(f"  {label:12s}: {per:.0f} user instructions per echoed 64 B message")
            self.annotate(f"ws64-{label}", files[n], files[2 * n], msgs)
        self.results["wsinstr"] = {"date": self.iso_date(), "method": f"valgrind --tool=callgrind, (Ir(2N)-Ir(N)) / "
                                   f"messages(N), N = {conns} WebSockets x {n} bursts of 16 64-byte messages, batching echo",
                                   "targets": res}


def cg_total(path):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(("summary:", "totals:")):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


IO_CALLS = ("read", "recvfrom", "recvmsg", "readv", "write", "sendto", "sendmsg", "writev", "splice")
LINE = re.compile(r"^(?:\d+\s+)?(\w+)\(")
RET = re.compile(r"\)\s+=\s+(-?\d+)")


def parse_trace(path):
    counts, sizes = {}, {}
    with open(path, errors="replace") as f:
        for line in f:
            m = LINE.match(line)
            if not m:
                continue
            name = m.group(1)
            counts[name] = counts.get(name, 0) + 1
            if name in IO_CALLS:
                r = RET.search(line)
                if r and int(r.group(1)) > 0:
                    sizes.setdefault(name, []).append(int(r.group(1)))
    io = {}
    for name in IO_CALLS:
        if name in counts:
            xs = sizes.get(name, [])
            io[name] = {"count": counts[name], "moved": len(xs), "mean": statistics.mean(xs) if xs else 0,
                        "median": statistics.median(xs) if xs else 0}
    top = dict(sorted(counts.items(), key=lambda x: -x[1])[:8])
    return {"total": sum(counts.values()), "top": top, "io": io}


def render_bulk(doc):
    f = doc["figures"]
    base = any("sluice-base" in f.get(x, {}).get("targets", {}) for x in ("bulk", "bulksys", "wsbulk", "wssmall", "wsinstr"))
    direct = any("direct" in f.get(x, {}).get("targets", {}) for x in ("bulk", "wsbulk"))
    relays = any("relay-copy" in f.get(x, {}).get("targets", {}) for x in ("bulk", "wsbulk"))
    cols = (["direct"] if direct else []) + (RELAYS if relays else []) + (["sluice-base"] if base else []) + VARIANTS
    out = []

    def g(fig, v, *path):
        x = f.get(fig, {}).get("targets", {}).get(v)
        for p in path:
            x = x.get(p) if isinstance(x, dict) else None
        return x

    def fmtv(x, d):
        return "—" if x is None else f"{x:,.{d}f}"

    def ratio(a, b):
        return f"{a / b:.2f}×" if a is not None and b else "—"

    def goal(a, b, want, at_least):
        """The goal column: `want` with ✓ or ✗ for sluice ÷ HAProxy in this run."""
        if a is None or not b:
            return want
        ok = a / b >= float(want.split()[1].rstrip("×")) if at_least else a / b <= float(want.split()[1].rstrip("×"))
        return f"{want} {'✓' if ok else '✗'}"

    rows = []
    for fig, cases in (("bulk", CASES), ("wsbulk", [("ws-up", "WebSocket 1 MiB messages, client → backend"),
                                                    ("ws-down", "WebSocket 1 MiB messages, backend → client")])):
        if fig not in f:
            continue
        for c, label in cases:
            v = {x: g(fig, x, c, "mb_per_s") for x in cols}
            rows.append(f"| {label}: MB/s | " + " | ".join(fmtv(v[x], 0) for x in cols)
                        + f" | {ratio(v['sluice'], v['haproxy'])} | {goal(v['sluice'], v['haproxy'], '≥ 1.2×', True)} |")
            v = {x: g(fig, x, c, "cpu_s_per_gib") for x in cols}
            want = goal(v['sluice'], v['haproxy'], '≤ 0.7×', False) if fig == 'bulk' else ''
            rows.append(f"| {label}: proxy CPU s/GiB | " + " | ".join(fmtv(v[x], 3) for x in cols)
                        + f" | {ratio(v['sluice'], v['haproxy'])} | {want} |")
            v = {x: g(fig, x, c, "machine_s_per_gib") for x in cols}
            busy = {x: g(fig, x, c, "machine_busy") for x in cols}
            if any(v.values()):
                rows.append(f"| {label}: machine CPU s/GiB (all processes and the kernel), % busy | "
                            + " | ".join("—" if v[x] is None else f"{v[x]:.2f}, {100 * (busy[x] or 0):.0f}%" for x in cols)
                            + f" | {ratio(v['sluice'], v['haproxy'])} | |")
    if "bulksys" in f:
        for c, label in CASES + [("ws-up", "WebSocket up"), ("ws-down", "WebSocket down")]:
            v = {x: g("bulksys", x, c, "per_mib") for x in cols}
            rows.append(f"| {label}: syscalls/MiB | " + " | ".join(fmtv(v[x], 1) for x in cols)
                        + f" | {ratio(v['sluice'], v['haproxy'])} | |")
    if "wsinstr" in f:
        v = {x: g("wsinstr", x, "instr_per_msg") for x in cols}
        rows.append("| WebSocket 64 B: sluice user instructions/echoed message (callgrind) | "
                    + " | ".join(fmtv(v[x], 0) for x in cols) + " | — | |")
    if "wssmall" in f:
        v = {x: g("wssmall", x, "us_per_msg") for x in cols}
        rows.append("| WebSocket 64 B, 50 conns, bursts of 16: proxy CPU µs/echoed message | "
                    + " | ".join(fmtv(v[x], 3) for x in cols) + f" | {ratio(v['sluice'], v['haproxy'])} | "
                    f"{goal(v['sluice'], v['haproxy'], '≤ 0.7×', False)} |")
    if not rows:
        return ""
    out += ["### Bulk transfer (issue 18)", "",
            "| figure | " + ("direct (no proxy) | " if direct else "")
            + ("relay.c copy | relay.c splice | " if relays else "") + ("sluice (--base-sluice) | " if base else "")
            + "sluice | HAProxy | HAProxy splice-auto | "
            "HAProxy splice forced | sluice ÷ HAProxy | goal |",
            "|---|" + "---|" * (len(cols) + 2)]
    out += rows + [""]
    for fig in ("bulk", "wsbulk", "bulksys", "wssmall", "wsinstr"):
        if fig in f:
            out.append(f"- {fig}: {f[fig]['method']}.")
    out.append("- Reproduce: `python3 benches/harness.py --only bulk,bulksys,wsbulk,wssmall --targets direct,sluice,haproxy --relay --runs 5` "
               "(I/O calls per case, count and bytes: bench-results/latest.md).")
    return "\n".join(out) + "\n"


def render_bulk_io(doc):
    """The I/O calls of each bulksys case: for latest.md, not the README."""
    f = doc["figures"]
    if "bulksys" not in f:
        return ""
    out = ["### Bulk transfer: I/O calls per case (count × mean bytes moved)", ""]
    for v, cases in f["bulksys"]["targets"].items():
        for c, x in cases.items():
            io = ", ".join(f"{k} {y['count']} × {y['mean']:.0f} B (median {y['median']:.0f})" for k, y in x["io"].items())
            out.append(f"- {v} {c}: {io}")
    return "\n".join(out) + "\n"
