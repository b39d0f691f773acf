"""Sends GET /identity requests to a pmsd on loopback in pipelined batches
of 16 over one connection and waits for every answer, so the server's
instruction count per request can be measured under callgrind."""
import socket
import sys

REQUEST = b"GET /identity HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: wrk\r\n\r\n"
BATCH = 16


def main() -> None:
    port, total = int(sys.argv[1]), int(sys.argv[2])
    connection = socket.create_connection(("127.0.0.1", port))
    for _ in range(total // BATCH):
        connection.sendall(REQUEST * BATCH)
        received = b""
        while received.count(b"HTTP/1.1 200") < BATCH or not received.endswith(b"</MediaContainer>\n"):
            chunk = connection.recv(65536)
            if not chunk:
                sys.exit("pipelined_client: the server closed the connection early")
            received += chunk
    print(f"pipelined_client: {total // BATCH * BATCH} requests answered")


if __name__ == "__main__":
    main()
