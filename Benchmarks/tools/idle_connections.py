"""Open keep-alive connections to a server on loopback and hold them idle.

    python3 idle_connections.py HOST PORT COUNT HOLD_SECONDS

Each connection sends one GET /identity and reads its whole response, so the
server has accepted it and served a request on it. When all are open, prints
"ready COUNT" on standard output and keeps them open and idle until
HOLD_SECONDS have passed or standard input closes, then closes them. Exits
non-zero if a connection fails or a response is not 200.
"""
import resource
import select
import socket
import sys
import time


def read_response(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    if not lines[0].startswith(b"HTTP/1.1 200"):
        raise ConnectionError("unexpected status line %r" % lines[0])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        rest += chunk


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        return 64
    host, port, count, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    if host not in ("127.0.0.1", "::1", "localhost"):
        print("idle_connections: only loopback addresses are allowed", file=sys.stderr)
        return 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 64), hard))
    request = ("GET /identity HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (host, port)).encode("ascii")
    sockets = []
    try:
        for _ in range(count):
            sock = socket.create_connection((host, port), timeout=10)
            sock.sendall(request)
            read_response(sock)
            sockets.append(sock)
        print("ready %d" % len(sockets), flush=True)
        deadline = time.monotonic() + hold
        while time.monotonic() < deadline:
            readable, _, _ = select.select([sys.stdin], [], [], max(0.0, deadline - time.monotonic()))
            if readable and not sys.stdin.readline():
                break
        # A connection that the server closed meanwhile reads as end of file,
        # so count those before closing.
        closed = 0
        for sock in sockets:
            sock.setblocking(False)
            try:
                if sock.recv(1) == b"":
                    closed += 1
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
        print("closed_by_server %d" % closed, flush=True)
    except (OSError, ConnectionError) as error:
        print("idle_connections: failed after %d connections were open: %s" % (len(sockets), error), file=sys.stderr)
        return 1
    finally:
        for sock in sockets:
            sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
