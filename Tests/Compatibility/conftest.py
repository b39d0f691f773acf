"""Fixtures that run a real pmsd on loopback for the client compatibility suite.

The binary comes from the PMSD_BINARY environment variable, which run.sh sets.
Each server gets its own configuration file, state directory and free port on
127.0.0.1, and every request in this suite goes to that address only.
"""

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

# python-plexapi reads ~/.config/plexapi/config.ini when it is imported.
# Pointing it at an empty file keeps a developer's own settings out of the
# suite.
os.environ["PLEXAPI_CONFIG_PATH"] = os.devnull

HOST = "127.0.0.1"

OWNER_TOKEN = "compat-owner-token-3f9a"
SHARED_USER_NAME = "guest"
SHARED_TOKEN = "compat-shared-token-7c21"
# Markup characters and non-ASCII text check escaping in both XML and JSON.
FRIENDLY_NAME = "Caf\u00e9 <&\"'> \u6771\u4eac \U0001f3ac"
VERSION = "1.41.3.9314-a0bfb8370"

CATALOGUE_SOURCE = "provider://tv.plex.provider.compat"
CATALOGUE_NAME = "Compat Provider"
CATALOGUE_CLIENT_IDENTIFIER = "compat-provider-client"
CATALOGUE_ACCESS_TOKEN = "compat-provider-access-token"
# The catalogue connection is data that pmsd returns, never an address the
# suite connects to. It points at loopback so that no client could follow it
# off this machine.
CATALOGUE_CONNECTION_PORT = 9

START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 5.0
REQUEST_TIMEOUT_SECONDS = 5.0


def pytest_configure(config):
    binary = os.environ.get("PMSD_BINARY", "")
    if not binary:
        raise pytest.UsageError("PMSD_BINARY is not set. Set it to the path of the pmsd binary, or use run.sh.")
    if not os.access(binary, os.X_OK):
        raise pytest.UsageError(f"PMSD_BINARY={binary} is not an executable file. Build pmsd first.")


def find_free_port():
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def server_configuration(port):
    """Return the configuration for a server that listens on `port`."""
    loopback = {"protocol": "http", "address": HOST, "port": port, "local": True}
    return {
        "friendlyName": FRIENDLY_NAME,
        "adminToken": OWNER_TOKEN,
        "sharedTokens": [{"name": SHARED_USER_NAME, "token": SHARED_TOKEN}],
        "advertisedConnections": [loopback],
        "sources": [
            {
                "source": CATALOGUE_SOURCE,
                "name": CATALOGUE_NAME,
                "clientIdentifier": CATALOGUE_CLIENT_IDENTIFIER,
                "accessToken": CATALOGUE_ACCESS_TOKEN,
                "connections": [
                    {"protocol": "http", "address": HOST, "port": CATALOGUE_CONNECTION_PORT, "local": True}
                ],
            }
        ],
        "version": VERSION,
    }


class PmsdServer:
    """A pmsd subprocess with its own configuration file, state directory and port.

    `restart()` stops the process and starts a new one on the same state
    directory and port, as an administrator restarting the service would.
    """

    owner_token = OWNER_TOKEN
    shared_token = SHARED_TOKEN
    friendly_name = FRIENDLY_NAME
    version = VERSION
    catalogue_source = CATALOGUE_SOURCE
    catalogue_name = CATALOGUE_NAME
    catalogue_client_identifier = CATALOGUE_CLIENT_IDENTIFIER
    catalogue_access_token = CATALOGUE_ACCESS_TOKEN

    def __init__(self, binary, directory):
        self.binary = binary
        self.directory = Path(directory)
        self.state_directory = self.directory / "state"
        self.config_path = self.directory / "pmsd.json"
        self.log_path = self.directory / "pmsd.log"
        self.port = find_free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.process = None
        self.config_path.write_text(json.dumps(server_configuration(self.port), ensure_ascii=False), encoding="utf-8")

    @property
    def machine_identifier_file(self):
        return self.state_directory / "machine-identifier"

    def stored_machine_identifier(self):
        """Return the machine identifier that pmsd wrote to its state directory."""
        return self.machine_identifier_file.read_text(encoding="ascii").rstrip("\n")

    def start(self):
        """Start pmsd and wait until GET /identity returns 200."""
        log = open(self.log_path, "ab")
        try:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    "--config", str(self.config_path),
                    "--port", str(self.port),
                    "--bind", HOST,
                    "--state-dir", str(self.state_directory),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=self._environment(),
            )
        finally:
            log.close()
        self._wait_until_ready()

    def stop(self):
        """Stop pmsd with SIGTERM, or SIGKILL after a timeout, and return its exit status."""
        if self.process is None:
            return None
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def restart(self):
        """Stop pmsd and start it again on the same state directory and port."""
        status = self.stop()
        self.start()
        return status

    def request(self, method, path, token=None, accept=None, headers=None, **options):
        """Send one request to this server with requests, on a new connection.

        `token` goes in the X-Plex-Token header and `accept` in the Accept
        header. A new connection per request keeps a restart from leaving a
        stale pooled connection behind.
        """
        fields = dict(headers or {})
        if token is not None:
            fields["X-Plex-Token"] = token
        if accept is not None:
            fields["Accept"] = accept
        options.setdefault("timeout", REQUEST_TIMEOUT_SECONDS)
        options.setdefault("allow_redirects", False)
        return requests.request(method, self.url + path, headers=fields, **options)

    def get(self, path, **options):
        return self.request("GET", path, **options)

    def log_tail(self, lines=20):
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    @staticmethod
    def _environment():
        # PMSD_ADMIN_TOKEN would override the configured owner token.
        environment = dict(os.environ)
        environment.pop("PMSD_ADMIN_TOKEN", None)
        return environment

    def _wait_until_ready(self):
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        last_error = None
        while time.monotonic() < deadline:
            status = self.process.poll()
            if status is not None:
                self.process = None
                raise RuntimeError(f"pmsd exited with status {status} during start-up. Log:\n{self.log_tail()}")
            try:
                response = requests.get(self.url + "/identity", timeout=1)
                if response.status_code == 200:
                    return
                last_error = f"GET /identity returned {response.status_code}"
            except requests.RequestException as error:
                last_error = str(error)
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"pmsd start-up timed out: GET /identity on {self.url} returned no 200 within {START_TIMEOUT_SECONDS} s "
            f"(last error: {last_error}). Log:\n{self.log_tail()}"
        )


def _started_server(tmp_path_factory, name):
    server = PmsdServer(os.environ["PMSD_BINARY"], tmp_path_factory.mktemp(name))
    server.start()
    return server


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """A pmsd shared by the tests that do not restart it."""
    server = _started_server(tmp_path_factory, "pmsd")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def own_server(tmp_path_factory):
    """A pmsd for one test module alone, which that module may restart."""
    server = _started_server(tmp_path_factory, "pmsd-own")
    yield server
    server.stop()
