"""Helpers for the daemon tests: a pmsd process on loopback, raw HTTP/1.1 over
sockets, and a datagram socket that receives systemd notifications.

Every process started here listens on 127.0.0.1 with `--port 0`, and its port
is read from the `ready` line of its log. Every connection goes to that port.
"""

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"

OWNER_TOKEN = "daemon-owner-token-58d1e0"
SHARED_USER_NAME = "visitor"
SHARED_TOKEN = "daemon-shared-token-a94c77"
VERSION = "1.41.3.9314-a0bfb8370"

START_TIMEOUT_SECONDS = 10.0
EXIT_TIMEOUT_SECONDS = 10.0
SOCKET_TIMEOUT_SECONDS = 5.0

# Environment variables that would change how pmsd starts: the settings
# overrides, the configuration path and the systemd interface.
_INHERITED_VARIABLES_TO_DROP = (
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "STATE_DIRECTORY",
    "JOURNAL_STREAM",
)

_READY_LINE = re.compile(r"^\S+ info ready .*\bport=(\d+)\s*$", re.MULTILINE)


def daemon_configuration(friendly_name="Daemon test server", **keys):
    """Return a configuration with the owner and shared tokens, plus `keys`."""
    configuration = {
        "friendlyName": friendly_name,
        "adminToken": OWNER_TOKEN,
        "sharedTokens": [{"name": SHARED_USER_NAME, "token": SHARED_TOKEN}],
        "version": VERSION,
    }
    configuration.update(keys)
    return configuration


def clean_environment(extra=None):
    """Return this process's environment without pmsd's variables, plus `extra`."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("PMSD_") and name not in _INHERITED_VARIABLES_TO_DROP
    }
    environment.update(extra or {})
    return environment


def run_pmsd(binary, arguments, environment=None, timeout=EXIT_TIMEOUT_SECONDS):
    """Run pmsd to completion, as for `--check-config` or `--help`, and return the CompletedProcess."""
    return subprocess.run(
        [binary, *arguments],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=clean_environment(environment),
        timeout=timeout,
    )


class StartFailed(Exception):
    """pmsd exited, or wrote no `ready` line, during start-up."""


class DaemonProcess:
    """A pmsd process with its own directory, configuration file, state directory and log.

    Standard error goes to `log_path`. `configuration` is written to
    `config_path` as JSON, or `--config` is left out when it is None.
    """

    def __init__(self, binary, directory, configuration=None, arguments=(), environment=None):
        self.binary = binary
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.state_directory = self.directory / "state"
        self.config_path = self.directory / "pmsd.json"
        self.log_path = self.directory / "pmsd.log"
        self.arguments = list(arguments)
        self.environment = dict(environment or {})
        self.has_configuration = configuration is not None
        if configuration is not None:
            self.write_configuration(configuration)
        self.process = None
        self.port = None
        self.exit_status = None
        self.exit_time = None
        self._ready_lines_before = 0

    def write_configuration(self, configuration):
        """Replace the configuration file with `configuration`, a dict or raw text."""
        text = configuration if isinstance(configuration, str) else json.dumps(configuration, ensure_ascii=False)
        # Write and rename, so a reload never reads a half-written file.
        temporary = self.config_path.with_suffix(".tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(self.config_path)

    def command(self):
        command = [self.binary, "--bind", HOST, "--port", "0", "--state-dir", str(self.state_directory)]
        if self.has_configuration:
            command += ["--config", str(self.config_path)]
        return command + self.arguments

    def start(self, wait=True):
        """Start pmsd. With `wait`, return once its log has a `ready` line and its port is known."""
        # A restart appends to the same log, so only a ready line after these counts.
        self._ready_lines_before = len(_READY_LINE.findall(self.log_text()))
        log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=clean_environment(self.environment),
            )
        finally:
            log.close()
        self.exit_status = None
        self.exit_time = None
        self.port = None
        if wait:
            self.wait_until_ready()
        return self

    def wait_until_ready(self, timeout=START_TIMEOUT_SECONDS):
        """Wait for the `ready` line of the current run and set `port` from it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            matches = _READY_LINE.findall(self.log_text())
            if len(matches) > self._ready_lines_before:
                self.port = int(matches[-1])
                return self.port
            if self.process.poll() is not None:
                status = self.process.returncode
                raise StartFailed(f"pmsd exited with status {status} during start-up. Log:\n{self.log_tail()}")
            time.sleep(0.01)
        self.kill()
        raise StartFailed(f"pmsd wrote no ready line within {timeout} s. Log:\n{self.log_tail()}")

    def restart(self):
        """Stop with SIGTERM, start again with the same files, and return the stop's exit status."""
        status = self.stop()
        self.start()
        return status

    @property
    def pid(self):
        return self.process.pid

    def is_running(self):
        return self.process is not None and self.process.poll() is None

    def send_signal(self, signal_number):
        self.process.send_signal(signal_number)

    def wait_exit(self, timeout=EXIT_TIMEOUT_SECONDS):
        """Wait for pmsd to exit and return its status, or None if it still runs after `timeout`."""
        try:
            self.exit_status = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        if self.exit_time is None:
            self.exit_time = time.monotonic()
        return self.exit_status

    def watch_exit(self):
        """Record the moment pmsd exits from a background thread, so `exit_time` is exact."""
        process = self.process

        def watch():
            process.wait()
            self.exit_time = time.monotonic()

        threading.Thread(target=watch, daemon=True).start()

    def stop(self, timeout=EXIT_TIMEOUT_SECONDS):
        """Send SIGTERM and return the exit status, or send SIGKILL after `timeout` and return None."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        status = self.wait_exit(timeout)
        if status is None:
            self.kill()
        return status

    def kill(self):
        """SIGKILL pmsd if it still runs, and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def log_text(self):
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=20):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wait_for_log(self, pattern, timeout=5.0, count=1):
        """Wait until `count` log lines match the regular expression `pattern` and return them, or [] on timeout."""
        expression = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            lines = [line for line in self.log_text().splitlines() if expression.search(line)]
            if len(lines) >= count:
                return lines
            if time.monotonic() >= deadline:
                return []
            time.sleep(0.01)

    def connect(self):
        return RawConnection(self.port)

    def get(self, path, token=None, headers=None):
        """Send one GET on a new connection and return the Response."""
        with self.connect() as connection:
            return connection.request("GET", path, token=token, headers=headers, close=True)


# ---- Raw HTTP/1.1 ----


class ConnectionClosedEarly(Exception):
    """The server ended the connection before a complete response.

    `received` is the part of the response that arrived. `reset` is True for
    a reset (RST) and False for an orderly end (FIN).
    """

    def __init__(self, received, reset):
        kind = "reset" if reset else "closed"
        super().__init__(f"connection {kind} after {len(received)} bytes of the response: {received[:200]!r}")
        self.received = received
        self.reset = reset


@dataclass
class Response:
    status: int
    headers: dict
    body: bytes
    raw_head: bytes = field(repr=False, default=b"")

    def header(self, name):
        return self.headers.get(name.lower())

    @property
    def closes_connection(self):
        return (self.header("connection") or "").lower() == "close"

    @property
    def text(self):
        return self.body.decode("utf-8", errors="replace")


def request_bytes(method, path, token=None, headers=None, close=False):
    """Return an HTTP/1.1 request head for `path`, with the token in the `X-Plex-Token` header."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}"]
    if token is not None:
        lines.append(f"X-Plex-Token: {token}")
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


class RawConnection:
    """One TCP connection to pmsd on loopback, read and written by hand.

    Reading a response insists on a complete one: a status line, header
    fields, and exactly Content-Length bytes of body.
    """

    def __init__(self, port, timeout=SOCKET_TIMEOUT_SECONDS):
        self.socket = socket.create_connection((HOST, port), timeout=timeout)
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        self.close()

    @property
    def local_address(self):
        host, port = self.socket.getsockname()[:2]
        return f"{host}:{port}"

    def close(self):
        self.socket.close()

    def send(self, data):
        self.socket.sendall(data)

    def request(self, method, path, token=None, headers=None, close=False):
        self.send(request_bytes(method, path, token=token, headers=headers, close=close))
        return self.read_response(head_only=method == "HEAD")

    def _receive(self):
        """Return the next bytes, or b"" at FIN. Raise ConnectionClosedEarly at a reset."""
        try:
            return self.socket.recv(65536)
        except ConnectionResetError:
            raise ConnectionClosedEarly(self.buffer, reset=True) from None

    def read_response(self, head_only=False):
        """Read one complete response, or raise ConnectionClosedEarly when the connection ends first."""
        while b"\r\n\r\n" not in self.buffer:
            chunk = self._receive()
            if not chunk:
                raise ConnectionClosedEarly(self.buffer, reset=False)
            self.buffer += chunk
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *field_lines = head.decode("latin-1").split("\r\n")
        version, status, _ = (status_line.split(" ", 2) + [""])[:3]
        if not version.startswith("HTTP/1."):
            raise ValueError(f"not an HTTP/1.x status line: {status_line!r}")
        headers = {}
        for line in field_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "transfer-encoding" in headers:
            raise ValueError(f"unexpected Transfer-Encoding in a pmsd response: {headers['transfer-encoding']!r}")
        length = 0 if head_only else int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            chunk = self._receive()
            if not chunk:
                raise ConnectionClosedEarly(head + b"\r\n\r\n" + self.buffer, reset=False)
            self.buffer += chunk
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return Response(int(status), headers, body, raw_head=head)

    def wait_closed(self, timeout):
        """Wait for the server to end the connection: return "closed" (FIN), "reset" (RST), or None if still open.

        Response bytes that arrive meanwhile are kept in the buffer.
        """
        self.socket.settimeout(timeout)
        try:
            while True:
                chunk = self.socket.recv(65536)
                if not chunk:
                    return "closed"
                self.buffer += chunk
        except ConnectionResetError:
            return "reset"
        except TimeoutError:
            return None
        finally:
            self.socket.settimeout(SOCKET_TIMEOUT_SECONDS)


def xml_attribute(body, name):
    """Return attribute `name` of the first XML element that has it, unescaped, or None."""
    match = re.search(rf'\b{re.escape(name)}="([^"]*)"', body)
    if match is None:
        return None
    value = match.group(1)
    for escaped, plain in (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"), ("&amp;", "&")):
        value = value.replace(escaped, plain)
    return value


# ---- systemd notifications ----


def parse_notification(message):
    """Return the `NAME=value` lines of an sd_notify datagram as a dict."""
    fields = {}
    for line in message.split("\n"):
        if line:
            name, _, value = line.partition("=")
            fields[name] = value
    return fields


@dataclass
class Notification:
    received_at: float
    text: str

    @property
    def fields(self):
        return parse_notification(self.text)


class NotifyReceiver:
    """A datagram socket that receives sd_notify messages, as systemd's `NOTIFY_SOCKET` does.

    `address` is a file path, or a name starting with `@` for an abstract
    socket. The value to give pmsd as `NOTIFY_SOCKET` is `address` itself.
    """

    def __init__(self, address):
        self.address = str(address)
        bind_name = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        if len(bind_name.encode()) >= 108:
            raise ValueError(f"socket name too long for sockaddr_un: {self.address}")
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(bind_name)
        self.socket.settimeout(0.1)
        self.notifications = []
        self._lock = threading.Lock()
        self._running = True
        self._thread = threading.Thread(target=self._receive_loop, daemon=True)
        self._thread.start()

    def _receive_loop(self):
        while self._running:
            try:
                data = self.socket.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.notifications.append(Notification(time.monotonic(), data.decode("utf-8", errors="replace")))

    def snapshot(self):
        with self._lock:
            return list(self.notifications)

    def wait_for(self, name, value=None, after=0, timeout=5.0):
        """Wait for a notification, from index `after` on, with field `name` (and `value`).

        Return (index, Notification), or (None, None) on timeout.
        """
        deadline = time.monotonic() + timeout
        while True:
            notifications = self.snapshot()
            for index in range(after, len(notifications)):
                fields = notifications[index].fields
                if name in fields and (value is None or fields[name] == value):
                    return index, notifications[index]
            if time.monotonic() >= deadline:
                return None, None
            time.sleep(0.005)

    def close(self):
        self._running = False
        self._thread.join(timeout=1)
        self.socket.close()
        if not self.address.startswith("@"):
            try:
                os.unlink(self.address)
            except FileNotFoundError:
                pass
