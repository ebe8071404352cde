"""The small backends the benchmarks run in child processes, started as
`harness.py --serve ws|discard PORT...` (bulk.py has the bulk one): a WebSocket echo and
health-check server, and a server that discards request bodies.
"""

import re
import selectors
import socket

from common import listen, serve_threads, take_ws_frame, ws_accept, ws_frame


def serve_ws(ports):
    """WebSocket echo on each port: 101 with a checked accept key, then every data frame is
    echoed with its own opcode; pings get pongs; close is answered and the socket closed.
    A plain GET gets `200 {"status":"200"}` (health check shape). Selectors, one thread."""
    sel = selectors.DefaultSelector()
    for p in ports:
        ls = listen(p, 4096)
        ls.setblocking(False)
        sel.register(ls, selectors.EVENT_READ, None)

    class Conn:
        __slots__ = ("sock", "rbuf", "wbuf", "up", "closing")

        def __init__(self, sock):
            self.sock, self.rbuf, self.wbuf, self.up, self.closing = sock, bytearray(), bytearray(), False, False

    def close(c):
        try:
            sel.unregister(c.sock)
        except Exception:
            pass
        c.sock.close()

    def send(c, data):
        if not c.wbuf:
            try:
                n = c.sock.send(data)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError:
                c.closing = True
                return
            data = data[n:]
            if not data:
                return
            c.wbuf += data
            sel.modify(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
        else:
            c.wbuf += data

    def on_data(c):
        if not c.up:
            end = c.rbuf.find(b"\r\n\r\n")
            if end < 0:
                if len(c.rbuf) > 65536:
                    c.closing = True
                return
            head = bytes(c.rbuf[:end]).decode("latin-1")
            del c.rbuf[: end + 4]
            key = None
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "sec-websocket-key":
                    key = value.strip().encode()
            if key is None:
                body = b'{"status":"200"}'
                send(c, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                return
            send(c, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    b"Sec-WebSocket-Accept: " + ws_accept(key) + b"\r\n\r\n")
            c.up = True
        buf = c.rbuf
        while (f := take_ws_frame(buf)) is not None:
            b0, payload = f
            op = b0 & 0x0F
            if op == 8:
                send(c, ws_frame(0x88, payload[:2]))
                c.closing = True
                return
            if op == 9:
                send(c, ws_frame(0x8A, payload))
            elif op != 10:
                send(c, ws_frame(b0, payload))

    while True:
        for key, ev in sel.select():
            if key.data is None:
                while True:
                    try:
                        s, _ = key.fileobj.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:
                        break
                    s.setblocking(False)
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    sel.register(s, selectors.EVENT_READ, Conn(s))
                continue
            c = key.data
            if ev & selectors.EVENT_WRITE and c.wbuf:
                try:
                    n = c.sock.send(c.wbuf)
                    del c.wbuf[:n]
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    close(c)
                    continue
                if not c.wbuf:
                    if c.closing:
                        close(c)
                        continue
                    sel.modify(c.sock, selectors.EVENT_READ, c)
            if ev & selectors.EVENT_READ:
                try:
                    data = c.sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    close(c)
                    continue
                if not data:
                    close(c)
                    continue
                c.rbuf += data
                on_data(c)
                if c.closing and not c.wbuf:
                    close(c)


def serve_discard(ports):
    """HTTP/1.1 keep-alive server that reads and drops request bodies (Content-Length or
    chunked) and answers `200 ok`. One thread per connection (only a few connections)."""

    def handle(s):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = bytearray()
        sink = bytearray(1 << 20)
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = s.recv(65536)
                    if not d:
                        return
                    buf += d
                end = buf.find(b"\r\n\r\n")
                head = bytes(buf[:end]).decode("latin-1").lower()
                del buf[: end + 4]
                m = re.search(r"\r\ncontent-length:\s*(\d+)", head)
                left = int(m.group(1)) if m else 0
                if "transfer-encoding: chunked" in head:
                    while True:  # chunked: simple and slow, only used if a proxy rechunks
                        while b"\r\n" not in buf:
                            buf += s.recv(65536)
                        i = buf.find(b"\r\n")
                        size = int(bytes(buf[:i]).split(b";")[0], 16)
                        del buf[: i + 2]
                        while len(buf) < size + 2:
                            buf += s.recv(1 << 20)
                        del buf[: size + 2]
                        if size == 0:
                            break
                    left = 0
                take = min(left, len(buf))
                del buf[:take]
                left -= take
                while left > 0:
                    n = s.recv_into(sink, min(left, len(sink)))
                    if n == 0:
                        return
                    left -= n
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nok\n")
        except OSError:
            pass
        finally:
            s.close()

    serve_threads(ports, handle)
