"""pmsd as a daemon, checked from outside against real processes on loopback.

Covers the graceful stop on SIGTERM, reloads on SIGHUP (accepted and
rejected), systemd notifications, the state directory across restarts, the
access log's token redaction, configuration errors and exit statuses, and
SIGHUP and SIGTERM under load.

Each scenario fixture runs its steps once and records what it observed, and
the tests below it check one condition each.
"""

import json
import os
import re
import signal
import socket
import stat
import time
import uuid
from dataclasses import dataclass, field
from urllib.parse import quote

import pytest

import load_stop
from daemon_support import (
    HOST,
    OWNER_TOKEN,
    SHARED_TOKEN,
    ConnectionClosedEarly,
    DaemonProcess,
    NotifyReceiver,
    Response,
    daemon_configuration,
    request_bytes,
    run_pmsd,
    xml_attribute,
)

TOKEN_QUERY = "type=delegation&scope=all"
MACHINE_IDENTIFIER = re.compile(r"[0-9a-f]{40}")
# The sysexits(3) statuses that docs/configuration.md lists.
EXIT_USAGE = 64
EXIT_UNAVAILABLE = 69
EXIT_CANNOT_CREATE = 73
EXIT_CONFIGURATION = 78


def binary():
    return os.environ["PMSD_BINARY"]


class DaemonSet:
    """Start pmsd processes in directories of their own, and SIGKILL every one still running at the end."""

    def __init__(self, make_directory):
        self.make_directory = make_directory
        self.started = []

    def create(self, configuration=None, arguments=(), environment=None):
        """Return a DaemonProcess with its files written but not started."""
        daemon = DaemonProcess(binary(), self.make_directory(), configuration, arguments, environment)
        self.started.append(daemon)
        return daemon

    def start(self, configuration=None, arguments=(), environment=None):
        """Start pmsd and return it once it is ready."""
        return self.create(configuration, arguments, environment).start()

    def kill_all(self):
        for daemon in self.started:
            daemon.kill()


@pytest.fixture
def daemons(tmp_path_factory):
    started = DaemonSet(lambda: tmp_path_factory.mktemp("pmsd"))
    yield started
    started.kill_all()


@pytest.fixture(scope="module")
def module_daemons(tmp_path_factory):
    started = DaemonSet(lambda: tmp_path_factory.mktemp("pmsd"))
    yield started
    started.kill_all()


def outcome_of(connection, send=None):
    """Send `send` if given, then return the next Response, or the ConnectionClosedEarly or timeout instead."""
    try:
        if send is not None:
            connection.send(send)
        return connection.read_response()
    except (ConnectionClosedEarly, OSError) as error:
        return error


def describe(outcome):
    if isinstance(outcome, Response):
        return f"{outcome.status} Connection={outcome.header('connection')!r} body={len(outcome.body)} bytes"
    return f"{type(outcome).__name__}: {outcome}"


def is_connection_refused(port):
    try:
        probe = socket.create_connection((HOST, port), timeout=1)
    except ConnectionRefusedError:
        return True
    probe.close()
    return False


# ---- SIGTERM with requests in progress ----

IN_FLIGHT_REQUESTS = 4
GRACE_PERIOD_SECONDS = 5
SHORT_GRACE_PERIOD_SECONDS = 1
# A connection pmsd closes "at once" must end within this time of SIGTERM.
PROMPT_SECONDS = 1.0
# Time given to pmsd to read the partial request heads before the signal.
SETTLE_SECONDS = 0.2
# Time the requests in progress stay unfinished after SIGTERM.
HOLD_SECONDS = 0.5


def split_head(head):
    """Split a request head in the middle of its header fields, so it is a request in progress."""
    middle = head.index(b"X-Plex-Token:") + len(b"X-Plex-")
    return head[:middle], head[middle:]


@dataclass
class GracefulStop:
    idle_end: str | None
    idle_end_seconds: float
    refused_after_signal: bool
    running_before_finish: bool
    responses: list
    ends_after_response: list
    exit_status: int | None
    seconds_to_exit: float
    seconds_from_last_response_to_exit: float


@pytest.fixture(scope="module")
def graceful_stop(module_daemons):
    """Hold an idle keep-alive connection and requests whose heads are half sent, then SIGTERM."""
    daemon = module_daemons.start(daemon_configuration(), ["--stop-grace-period", str(GRACE_PERIOD_SECONDS)])
    idle = daemon.connect()
    warm_up = idle.request("GET", "/identity")
    assert warm_up.status == 200, describe(warm_up)
    assert not warm_up.closes_connection, describe(warm_up)

    head = request_bytes("GET", "/", token=OWNER_TOKEN)
    first_part, rest = split_head(head)
    in_flight = [daemon.connect() for _ in range(IN_FLIGHT_REQUESTS)]
    for connection in in_flight:
        connection.send(first_part)
    time.sleep(SETTLE_SECONDS)

    daemon.watch_exit()
    signalled = time.monotonic()
    daemon.send_signal(signal.SIGTERM)
    idle_end = idle.wait_closed(PROMPT_SECONDS)
    idle_end_seconds = time.monotonic() - signalled
    refused = is_connection_refused(daemon.port)
    # A stop that ignored the requests in progress would have ended the process by now.
    time.sleep(max(0.0, signalled + HOLD_SECONDS - time.monotonic()))
    running = daemon.is_running()

    for connection in in_flight:
        try:
            connection.send(rest)
        except OSError:
            pass
    responses = [outcome_of(connection) for connection in in_flight]
    last_response = time.monotonic()
    ends = [connection.wait_closed(PROMPT_SECONDS) for connection in in_flight]
    status = daemon.wait_exit(GRACE_PERIOD_SECONDS + 2)
    exit_time = daemon.exit_time or time.monotonic()
    for connection in [idle, *in_flight]:
        connection.close()
    return GracefulStop(
        idle_end, idle_end_seconds, refused, running, responses, ends, status,
        exit_time - signalled, exit_time - last_response,
    )


def test_stop_closes_idle_connection_at_once(graceful_stop):
    assert graceful_stop.idle_end == "closed", (
        f"idle keep-alive connection after SIGTERM: expected a FIN within {PROMPT_SECONDS} s, "
        f"got {graceful_stop.idle_end!r} after {graceful_stop.idle_end_seconds:.2f} s"
    )


def test_stop_refuses_new_connections(graceful_stop):
    assert graceful_stop.refused_after_signal


def test_stop_waits_for_requests_in_progress(graceful_stop):
    assert graceful_stop.running_before_finish, "pmsd exited before the requests in progress were complete"


def test_stop_completes_requests_in_progress(graceful_stop):
    statuses = [r.status if isinstance(r, Response) else describe(r) for r in graceful_stop.responses]
    assert statuses == [200] * IN_FLIGHT_REQUESTS


def test_stop_responses_close_connection(graceful_stop):
    closes = [r.closes_connection if isinstance(r, Response) else describe(r) for r in graceful_stop.responses]
    assert closes == [True] * IN_FLIGHT_REQUESTS


def test_stop_responses_have_complete_bodies(graceful_stop):
    names = [xml_attribute(r.text, "friendlyName") if isinstance(r, Response) else describe(r)
             for r in graceful_stop.responses]
    assert names == [daemon_configuration()["friendlyName"]] * IN_FLIGHT_REQUESTS


def test_stop_closes_connection_after_response(graceful_stop):
    assert graceful_stop.ends_after_response == ["closed"] * IN_FLIGHT_REQUESTS


def test_stop_exit_status_zero(graceful_stop):
    assert graceful_stop.exit_status == 0


def test_stop_exits_before_grace_period(graceful_stop):
    assert graceful_stop.seconds_to_exit < GRACE_PERIOD_SECONDS


def test_stop_exits_once_requests_finish(graceful_stop):
    assert graceful_stop.seconds_from_last_response_to_exit < PROMPT_SECONDS


@dataclass
class StopDeadline:
    connection_end: str | None
    connection_end_seconds: float
    partial_response: bytes
    exit_status: int | None
    seconds_to_exit: float


@pytest.fixture(scope="module")
def stop_deadline(module_daemons):
    """Leave a request half sent across a SIGTERM with a one-second grace period."""
    daemon = module_daemons.start(daemon_configuration(), ["--stop-grace-period", str(SHORT_GRACE_PERIOD_SECONDS)])
    connection = daemon.connect()
    first_part, _ = split_head(request_bytes("GET", "/", token=OWNER_TOKEN))
    connection.send(first_part)
    time.sleep(SETTLE_SECONDS)

    daemon.watch_exit()
    signalled = time.monotonic()
    daemon.send_signal(signal.SIGTERM)
    end = connection.wait_closed(SHORT_GRACE_PERIOD_SECONDS + 3)
    end_seconds = time.monotonic() - signalled
    status = daemon.wait_exit(5)
    exit_time = daemon.exit_time or time.monotonic()
    connection.close()
    return StopDeadline(end, end_seconds, connection.buffer, status, exit_time - signalled)


def test_stop_deadline_cuts_unfinished_request(stop_deadline):
    assert stop_deadline.connection_end in ("closed", "reset")


def test_stop_deadline_sends_no_partial_response(stop_deadline):
    assert stop_deadline.partial_response == b""


def test_stop_deadline_not_before_grace_period(stop_deadline):
    # 0.1 s of slack for timer granularity.
    assert stop_deadline.connection_end_seconds >= SHORT_GRACE_PERIOD_SECONDS - 0.1


def test_stop_deadline_cut_on_time(stop_deadline):
    assert stop_deadline.connection_end_seconds < SHORT_GRACE_PERIOD_SECONDS + PROMPT_SECONDS


def test_stop_deadline_exit_status_zero(stop_deadline):
    assert stop_deadline.exit_status == 0


def test_stop_deadline_exits_on_time(stop_deadline):
    assert stop_deadline.seconds_to_exit < SHORT_GRACE_PERIOD_SECONDS + PROMPT_SECONDS


# ---- SIGHUP ----

RELOAD_TIMEOUT_SECONDS = 5.0


@dataclass
class KeepAliveReload:
    name_before: str | None
    reloaded_lines: list
    names_after: list = field(default_factory=list)
    socket_error: Exception | None = None
    closing_responses: int = 0
    transient_status_after: int | None = None
    open_at_end: bool = False
    running: bool = False


@pytest.fixture(scope="module")
def keep_alive_reload(module_daemons):
    """Change friendlyName and SIGHUP while one keep-alive connection keeps sending requests."""
    daemon = module_daemons.start(daemon_configuration("Before reload"))
    connection = daemon.connect()
    before = connection.request("GET", "/", token=OWNER_TOKEN)
    minted = connection.request("GET", "/security/token?" + TOKEN_QUERY, token=OWNER_TOKEN)
    transient = xml_attribute(minted.text, "token")

    daemon.write_configuration(daemon_configuration("After reload"))
    daemon.send_signal(signal.SIGHUP)
    result = KeepAliveReload(xml_attribute(before.text, "friendlyName"),
                             daemon.wait_for_log(r" info reloaded\b", RELOAD_TIMEOUT_SECONDS))
    responses = [before, minted]
    try:
        # Requests on the same socket repeat until the new name appears or the time is up.
        deadline = time.monotonic() + RELOAD_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            response = connection.request("GET", "/", token=OWNER_TOKEN)
            responses.append(response)
            result.names_after.append(xml_attribute(response.text, "friendlyName"))
            if result.names_after[-1] == "After reload":
                break
            time.sleep(0.05)
        after_transient = connection.request("GET", "/", token=transient)
        responses.append(after_transient)
        result.transient_status_after = after_transient.status
    except (ConnectionClosedEarly, OSError) as error:
        result.socket_error = error
    result.closing_responses = sum(response.closes_connection for response in responses)
    result.open_at_end = result.socket_error is None and connection.wait_closed(0.2) is None
    result.running = daemon.is_running()
    connection.close()
    return result


def test_reload_name_before(keep_alive_reload):
    assert keep_alive_reload.name_before == "Before reload"


def test_reload_logged(keep_alive_reload):
    assert len(keep_alive_reload.reloaded_lines) == 1


def test_reload_changes_friendly_name(keep_alive_reload):
    assert keep_alive_reload.names_after[-1:] == ["After reload"]


def test_reload_keeps_socket_working(keep_alive_reload):
    assert keep_alive_reload.socket_error is None


def test_reload_keeps_keep_alive(keep_alive_reload):
    assert keep_alive_reload.closing_responses == 0


def test_reload_keeps_transient_tokens(keep_alive_reload):
    assert keep_alive_reload.transient_status_after == 200


def test_reload_leaves_connection_open(keep_alive_reload):
    assert keep_alive_reload.open_at_end


def test_reload_keeps_running(keep_alive_reload):
    assert keep_alive_reload.running


BROKEN_CONFIGURATIONS = {
    # A file cut off in the middle, as an editor crash could leave it.
    "invalid-json": ('{"friendlyName": "Broken reload", "adminToken": ', "JSON"),
    "port-string": ({"port": "x"}, "port"),
    "negative-max-body": ({"maxBodyBytes": -1}, "maxBodyBytes"),
}


@dataclass
class RejectedReload:
    expected_in_error: str
    rejected_lines: list
    name_after: str | None
    keep_alive_status: int | str
    running: bool
    name_after_repair: str | None


@pytest.fixture(scope="module", params=sorted(BROKEN_CONFIGURATIONS))
def rejected_reload(request, module_daemons):
    """SIGHUP with a broken file, then with a repaired one."""
    broken, expected_in_error = BROKEN_CONFIGURATIONS[request.param]
    if isinstance(broken, dict):
        # The broken file also renames the server, so a partial apply would show.
        broken = daemon_configuration("Broken reload", **broken)
    daemon = module_daemons.start(daemon_configuration("Original"))
    connection = daemon.connect()
    connection.request("GET", "/identity")

    daemon.write_configuration(broken)
    daemon.send_signal(signal.SIGHUP)
    rejected = daemon.wait_for_log(r"reload rejected", RELOAD_TIMEOUT_SECONDS)
    after = daemon.get("/", token=OWNER_TOKEN)
    keep_alive = outcome_of(connection, request_bytes("GET", "/identity"))
    running = daemon.is_running()

    daemon.write_configuration(daemon_configuration("Repaired"))
    daemon.send_signal(signal.SIGHUP)
    daemon.wait_for_log(r" info reloaded\b", RELOAD_TIMEOUT_SECONDS)
    repaired = daemon.get("/", token=OWNER_TOKEN) if daemon.is_running() else None
    connection.close()
    return RejectedReload(
        expected_in_error,
        rejected,
        xml_attribute(after.text, "friendlyName"),
        keep_alive.status if isinstance(keep_alive, Response) else describe(keep_alive),
        running,
        xml_attribute(repaired.text, "friendlyName") if repaired else None,
    )


def test_rejected_reload_logs_error(rejected_reload):
    assert len(rejected_reload.rejected_lines) == 1


def test_rejected_reload_error_level(rejected_reload):
    assert [line.split()[1] for line in rejected_reload.rejected_lines] == ["error"]


def test_rejected_reload_names_problem(rejected_reload):
    assert rejected_reload.expected_in_error in "".join(rejected_reload.rejected_lines)


def test_rejected_reload_keeps_old_configuration(rejected_reload):
    assert rejected_reload.name_after == "Original"


def test_rejected_reload_keeps_connection(rejected_reload):
    assert rejected_reload.keep_alive_status == 200


def test_rejected_reload_keeps_running(rejected_reload):
    assert rejected_reload.running


def test_reload_after_rejection_applies(rejected_reload):
    assert rejected_reload.name_after_repair == "Repaired"


# ---- systemd notifications ----

WATCHDOG_MICROSECONDS = 200_000
WATCHDOG_WINDOW_SECONDS = 1.2


@pytest.fixture(scope="module")
def notify_receiver_factory():
    receivers = []

    def create(address):
        receiver = NotifyReceiver(address)
        receivers.append(receiver)
        return receiver

    yield create
    for receiver in receivers:
        receiver.close()


def notify_socket_path(tmp_path_factory):
    """Return a short socket path, because sockaddr_un allows 107 bytes."""
    return tmp_path_factory.mktemp("notify") / "notify.sock"


@dataclass
class NotifyRun:
    pid: int
    ready: object
    listening_at_ready: bool
    reloading: object
    reload_signalled_us: int
    reload_acknowledged_us: int
    ready_after_reload: object
    stopping: object
    exit_status: int | None


@pytest.fixture(scope="module")
def notify_run(module_daemons, tmp_path_factory, notify_receiver_factory):
    """Start pmsd with NOTIFY_SOCKET, reload it with SIGHUP, stop it with SIGTERM."""
    receiver = notify_receiver_factory(notify_socket_path(tmp_path_factory))
    daemon = module_daemons.create(daemon_configuration("Notified"), environment={"NOTIFY_SOCKET": receiver.address})
    daemon.start(wait=False)
    ready_index, ready = receiver.wait_for("READY", "1")
    daemon.wait_until_ready()
    listening = ready is not None and not is_connection_refused(daemon.port)

    after = 0 if ready_index is None else ready_index + 1
    daemon.write_configuration(daemon_configuration("Notified again"))
    signalled_us = time.monotonic_ns() // 1000
    daemon.send_signal(signal.SIGHUP)
    reloading_index, reloading = receiver.wait_for("RELOADING", "1", after=after)
    acknowledged_us = time.monotonic_ns() // 1000
    after = after if reloading_index is None else reloading_index + 1
    _, ready_again = receiver.wait_for("READY", "1", after=after)

    daemon.send_signal(signal.SIGTERM)
    _, stopping = receiver.wait_for("STOPPING", "1", after=after)
    status = daemon.wait_exit()
    return NotifyRun(daemon.pid, ready, listening, reloading, signalled_us, acknowledged_us, ready_again, stopping,
                     status)


def test_notify_ready_sent(notify_run):
    assert notify_run.ready is not None


def test_notify_ready_once_listening(notify_run):
    assert notify_run.listening_at_ready


def test_notify_ready_names_main_pid(notify_run):
    assert notify_run.ready is not None, "no READY=1"
    assert notify_run.ready.fields.get("MAINPID") == str(notify_run.pid)


def test_notify_reloading_sent(notify_run):
    assert notify_run.reloading is not None


def test_notify_reloading_has_monotonic_time(notify_run):
    assert notify_run.reloading is not None, "no RELOADING=1"
    value = notify_run.reloading.fields.get("MONOTONIC_USEC", "")
    assert value.isdigit(), f"RELOADING=1 message: {notify_run.reloading.text!r}"


def test_notify_reloading_monotonic_time_current(notify_run):
    assert notify_run.reloading is not None, "no RELOADING=1"
    # CLOCK_MONOTONIC, as time.monotonic_ns reads it on Linux.
    value = int(notify_run.reloading.fields.get("MONOTONIC_USEC", "-1"))
    assert notify_run.reload_signalled_us <= value <= notify_run.reload_acknowledged_us


def test_notify_ready_after_reload(notify_run):
    assert notify_run.ready_after_reload is not None


def test_notify_stopping_sent(notify_run):
    assert notify_run.stopping is not None


def test_notify_exit_status_zero(notify_run):
    assert notify_run.exit_status == 0


@pytest.fixture(scope="module")
def watchdog_pings(module_daemons, tmp_path_factory, notify_receiver_factory):
    """Collect WATCHDOG=1 for WATCHDOG_WINDOW_SECONDS after READY=1 and return the receive times."""
    receiver = notify_receiver_factory(notify_socket_path(tmp_path_factory))
    daemon = module_daemons.start(
        daemon_configuration(),
        environment={"NOTIFY_SOCKET": receiver.address, "WATCHDOG_USEC": str(WATCHDOG_MICROSECONDS)},
    )
    _, ready = receiver.wait_for("READY", "1")
    assert ready is not None, "no READY=1"
    time.sleep(WATCHDOG_WINDOW_SECONDS)
    window_end = time.monotonic()
    daemon.stop()
    return [n.received_at for n in receiver.snapshot()
            if n.fields.get("WATCHDOG") == "1" and ready.received_at <= n.received_at <= window_end]


def test_watchdog_ping_count(watchdog_pings):
    # Half of WATCHDOG_USEC, 100 ms, gives 12 pings in 1.2 s.
    assert 9 <= len(watchdog_pings) <= 14


def test_watchdog_ping_interval(watchdog_pings):
    intervals = sorted(later - earlier for earlier, later in zip(watchdog_pings, watchdog_pings[1:]))
    median = intervals[len(intervals) // 2]
    assert 0.08 <= median <= 0.13


def test_watchdog_no_gap_beyond_timeout(watchdog_pings):
    intervals = [later - earlier for earlier, later in zip(watchdog_pings, watchdog_pings[1:])]
    assert max(intervals) < WATCHDOG_MICROSECONDS / 1_000_000


def test_watchdog_for_other_pid_silent(daemons, tmp_path_factory, notify_receiver_factory):
    receiver = notify_receiver_factory(notify_socket_path(tmp_path_factory))
    daemon = daemons.start(
        daemon_configuration(),
        environment={"NOTIFY_SOCKET": receiver.address, "WATCHDOG_USEC": str(WATCHDOG_MICROSECONDS),
                     "WATCHDOG_PID": "1"},
    )
    receiver.wait_for("READY", "1")
    time.sleep(0.3)
    daemon.stop()
    assert [n.text for n in receiver.snapshot() if "WATCHDOG=1" in n.text.split("\n")] == []


def test_notify_abstract_socket(daemons, notify_receiver_factory):
    receiver = notify_receiver_factory(f"@pmsd-test-{os.getpid()}-{uuid.uuid4().hex[:12]}")
    daemons.start(daemon_configuration(), environment={"NOTIFY_SOCKET": receiver.address})
    _, ready = receiver.wait_for("READY", "1")
    assert ready is not None


# ---- State directory ----


@dataclass
class StateRun:
    identifier_first: str
    identifier_second: str
    identifier_file_first: str
    identifier_file_second: str
    token_first: str
    token_second: str
    token_modes: list
    directory_modes: list
    owner_status: int
    stop_status: int | None
    log: str
    token_path: str


@pytest.fixture(scope="module")
def state_run(module_daemons):
    """Start pmsd with no adminToken on a missing state directory, then restart it."""
    configuration = daemon_configuration()
    del configuration["adminToken"]
    daemon = module_daemons.create(configuration)
    token_path = daemon.state_directory / "admin-token"
    identifier_path = daemon.state_directory / "machine-identifier"
    # An empty umask must not loosen the modes.
    previous_umask = os.umask(0)
    try:
        daemon.start()
    finally:
        os.umask(previous_umask)

    def observe():
        return (
            xml_attribute(daemon.get("/identity").text, "machineIdentifier"),
            identifier_path.read_text(encoding="ascii").rstrip("\n"),
            token_path.read_text(encoding="ascii").rstrip("\n"),
            stat.S_IMODE(token_path.stat().st_mode),
            stat.S_IMODE(daemon.state_directory.stat().st_mode),
        )

    identifier_first, file_first, token_first, token_mode_first, directory_mode_first = observe()
    stop_status = daemon.restart()
    identifier_second, file_second, token_second, token_mode_second, directory_mode_second = observe()
    owner_status = daemon.get("/", token=token_second).status
    daemon.stop()
    return StateRun(identifier_first, identifier_second, file_first, file_second, token_first, token_second,
                    [token_mode_first, token_mode_second], [directory_mode_first, directory_mode_second],
                    owner_status, stop_status, daemon.log_text(), str(token_path))


def test_state_machine_identifier_format(state_run):
    assert MACHINE_IDENTIFIER.fullmatch(state_run.identifier_first)


def test_state_machine_identifier_matches_file(state_run):
    assert state_run.identifier_file_first == state_run.identifier_first


def test_state_machine_identifier_survives_restart(state_run):
    assert state_run.identifier_second == state_run.identifier_first


def test_state_file_survives_restart(state_run):
    assert state_run.identifier_file_second == state_run.identifier_file_first


def test_state_admin_token_survives_restart(state_run):
    assert state_run.token_second == state_run.token_first


def test_state_admin_token_grants_owner(state_run):
    assert state_run.owner_status == 200


def test_state_admin_token_mode(state_run):
    assert [oct(mode) for mode in state_run.token_modes] == ["0o600", "0o600"]


def test_state_directory_mode(state_run):
    assert [oct(mode) for mode in state_run.directory_modes] == ["0o700", "0o700"]


def test_state_restart_stop_status_zero(state_run):
    assert state_run.stop_status == 0


def test_state_log_names_token_file(state_run):
    assert state_run.token_path in state_run.log


def test_state_log_omits_token(state_run):
    assert state_run.token_first not in state_run.log


CORRUPT_IDENTIFIERS = {
    "text": b"not a machine identifier\n",
    "uppercase": b"ABCDEF0123456789ABCDEF0123456789ABCDEF01\n",
    "short": b"0123456789abcdef0123456789abcdef0123456\n",
    "empty": b"",
}


@dataclass
class CorruptStart:
    status: int | None
    output: str
    file_path: str
    content_before: bytes
    content_after: bytes
    ready_lines: list


@pytest.fixture(scope="module", params=sorted(CORRUPT_IDENTIFIERS))
def corrupt_start(request, module_daemons):
    """Start pmsd on a state directory whose machine-identifier file is invalid."""
    daemon = module_daemons.create(daemon_configuration())
    daemon.state_directory.mkdir(mode=0o700)
    identifier_path = daemon.state_directory / "machine-identifier"
    identifier_path.write_bytes(CORRUPT_IDENTIFIERS[request.param])
    daemon.start(wait=False)
    status = daemon.wait_exit(5)
    daemon.kill()
    log = daemon.log_text()
    ready_lines = [line for line in log.splitlines() if " ready " in line]
    return CorruptStart(status, log, str(identifier_path), CORRUPT_IDENTIFIERS[request.param],
                        identifier_path.read_bytes(), ready_lines)


def test_corrupt_identifier_exit_status(corrupt_start):
    assert corrupt_start.status == EXIT_CANNOT_CREATE


def test_corrupt_identifier_names_file(corrupt_start):
    assert corrupt_start.file_path in corrupt_start.output


def test_corrupt_identifier_says_invalid(corrupt_start):
    assert "invalid machine identifier" in corrupt_start.output


def test_corrupt_identifier_file_kept(corrupt_start):
    assert corrupt_start.content_after == corrupt_start.content_before


def test_corrupt_identifier_never_ready(corrupt_start):
    assert corrupt_start.ready_lines == []


# ---- Access log ----

WRONG_TOKEN = "daemon-wrong-token-6e02b9"
# Sent under a parameter name with an invalid percent escape, which no other
# request uses, so a leak of it points at that one request.
ESCAPE_CASE_TOKEN = "daemon-escape-case-token-0c5f3a"


def percent_encode_all(text):
    return "".join(f"%{byte:02X}" for byte in text.encode())


@dataclass
class AccessLogRun:
    sent: list
    lines: list
    text: str
    error_log: str
    tokens: dict


@pytest.fixture(scope="module")
def access_log_run(module_daemons):
    """Send requests with tokens in every place a client might put them, stop pmsd, read its access log."""
    daemon = module_daemons.create(daemon_configuration())
    access_log = daemon.directory / "access.log"
    daemon.arguments = ["--access-log", str(access_log)]
    daemon.start()
    sent = []

    def send(method, target, token=None):
        with daemon.connect() as connection:
            response = connection.request(method, target, token=token, close=True)
            sent.append((method, target, response.status, len(response.body), connection.local_address))
            return response

    send("GET", "/identity")
    send("GET", "/", token=OWNER_TOKEN)
    send("GET", "/?X-Plex-Token=" + OWNER_TOKEN)
    send("GET", "/?x-plex-token=" + OWNER_TOKEN)
    send("GET", "/?X%2DPlex%2DToken=" + OWNER_TOKEN)
    send("GET", "/?X-Plex-To%6Ben=" + SHARED_TOKEN)
    send("GET", "/?X-Plex-Token=" + percent_encode_all(OWNER_TOKEN))
    send("GET", "/?X-Plex-Token=" + SHARED_TOKEN)
    send("GET", "/?X-PLEX-TOKEN=" + SHARED_TOKEN + "&includeDetails=1")
    send("GET", "/identity?X-Plex-Token=" + SHARED_TOKEN + "&X-Plex-Token=" + OWNER_TOKEN)
    send("GET", "/?X-Plex-Token=" + WRONG_TOKEN)
    send("GET", "/library/sections?X-Plex-Token=" + OWNER_TOKEN)
    # A name the server reads as "X-Plex-Token%zz": it contains "token" once
    # decoded, though "%zz" is not a valid escape.
    send("GET", "/?X-Plex-To%6Ben%zz=" + ESCAPE_CASE_TOKEN)
    owner_transient = xml_attribute(
        send("POST", f"/security/token?{TOKEN_QUERY}&X-Plex-Token={OWNER_TOKEN}").text, "token")
    shared_transient = xml_attribute(send("GET", f"/security/token?{TOKEN_QUERY}", token=SHARED_TOKEN).text, "token")
    send("GET", "/?X-Plex-Token=" + owner_transient)
    send("GET", "/", token=shared_transient)
    send("GET", "/?x-plex-token=" + shared_transient)
    identifier = xml_attribute(send("GET", "/identity").text, "machineIdentifier")
    source = quote(f"server://{identifier}", safe="")
    send("GET", f"/security/resources?source={source}&X-Plex-Token={owner_transient}")
    daemon.stop()

    text = access_log.read_text(encoding="utf-8") if access_log.exists() else ""
    tokens = {
        "owner": OWNER_TOKEN,
        "owner-percent-encoded": percent_encode_all(OWNER_TOKEN),
        "shared": SHARED_TOKEN,
        "wrong": WRONG_TOKEN,
        "invalid-escape-name": ESCAPE_CASE_TOKEN,
        "owner-transient": owner_transient,
        "shared-transient": shared_transient,
    }
    return AccessLogRun(sent, text.splitlines(), text, daemon.log_text(), tokens)


ACCESS_LINE = re.compile(
    r'^(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) method=(?P<method>[A-Z]+|-) '
    r'path=(?P<path>"(?:[^"\\]|\\.)*"|\S+) status=(?P<status>\d{3}) bytes=(?P<bytes>\d+) '
    r'us=(?P<us>\d+) peer=(?P<peer>\S+)$'
)


def test_access_log_line_per_request(access_log_run):
    assert len(access_log_run.lines) == len(access_log_run.sent)


def test_access_log_line_format(access_log_run):
    assert [line for line in access_log_run.lines if not ACCESS_LINE.match(line)] == []


def test_access_log_records_each_request(access_log_run):
    logged = []
    for line in access_log_run.lines:
        match = ACCESS_LINE.match(line)
        if match:
            logged.append((match["method"], int(match["status"]), int(match["bytes"]), match["peer"]))
    expected = [(method, status, length, peer) for method, _, status, length, peer in access_log_run.sent]
    assert logged == expected


def logged_path(run, target):
    """Return the path field of the access log line for the first request sent to `target`, or None.

    Each request went on a connection of its own, so the peer address finds its line.
    """
    peer = next(peer for _, sent_target, _, _, peer in run.sent if sent_target == target)
    for line in run.lines:
        match = ACCESS_LINE.match(line)
        if match and match["peer"] == peer:
            return match["path"]
    return None


def test_access_log_path_without_query(access_log_run):
    assert logged_path(access_log_run, "/identity") == "/identity"


def test_access_log_marks_redaction(access_log_run):
    assert logged_path(access_log_run, "/?X-Plex-Token=" + OWNER_TOKEN) == '"/?X-Plex-Token=<redacted>"'


def test_access_log_keeps_other_parameters(access_log_run):
    target = "/?X-PLEX-TOKEN=" + SHARED_TOKEN + "&includeDetails=1"
    assert logged_path(access_log_run, target) == '"/?X-PLEX-TOKEN=<redacted>&includeDetails=1"'


TOKEN_NAMES = [
    "owner", "owner-percent-encoded", "shared", "wrong", "invalid-escape-name", "owner-transient", "shared-transient",
]


@pytest.mark.parametrize("token_name", TOKEN_NAMES)
def test_access_log_omits_token(access_log_run, token_name):
    token = access_log_run.tokens[token_name]
    assert token, f"no {token_name} token to look for"
    assert token not in access_log_run.text, [line for line in access_log_run.lines if token in line]


@pytest.mark.parametrize("token_name", TOKEN_NAMES)
def test_error_log_omits_token(access_log_run, token_name):
    token = access_log_run.tokens[token_name]
    assert token, f"no {token_name} token to look for"
    assert token not in access_log_run.error_log


# Requests that the HTTP layer rejects once their head is complete, so their
# method and path are known.
REJECTED_REQUESTS = {
    "body-too-large": (413, "Content-Length: 99999999\r\n"),
    "too-many-fields": (431, "X-Filler: 1\r\n" * 150),
}


@dataclass
class RejectedRequestLog:
    outcomes: dict
    lines: list
    text: str


@pytest.fixture(scope="module")
def rejected_request_log(module_daemons):
    """Send requests that pmsd rejects, each with the owner token in the query, and read the access log."""
    daemon = module_daemons.create(daemon_configuration())
    access_log = daemon.directory / "access.log"
    daemon.arguments = ["--access-log", str(access_log)]
    daemon.start()
    outcomes = {}
    for name, (_, fields) in REJECTED_REQUESTS.items():
        head = f"GET /?X-Plex-Token={OWNER_TOKEN}&case={name} HTTP/1.1\r\nHost: {HOST}\r\n{fields}\r\n"
        with daemon.connect() as connection:
            outcome = outcome_of(connection, head.encode())
            outcomes[name] = (outcome.status if isinstance(outcome, Response) else describe(outcome),
                              connection.local_address)
    daemon.stop()
    text = access_log.read_text(encoding="utf-8") if access_log.exists() else ""
    return RejectedRequestLog(outcomes, text.splitlines(), text)


@pytest.mark.parametrize("case", sorted(REJECTED_REQUESTS))
def test_rejected_request_status(rejected_request_log, case):
    assert rejected_request_log.outcomes[case][0] == REJECTED_REQUESTS[case][0]


@pytest.mark.parametrize("case", sorted(REJECTED_REQUESTS))
def test_rejected_request_logged(rejected_request_log, case):
    peer = rejected_request_log.outcomes[case][1]
    statuses = [int(match["status"]) for match in map(ACCESS_LINE.match, rejected_request_log.lines)
                if match and match["peer"] == peer]
    message = f"statuses logged for peer {peer}. Whole access log: {rejected_request_log.text!r}"
    assert statuses == [REJECTED_REQUESTS[case][0]], message


def test_rejected_request_log_omits_token(rejected_request_log):
    assert OWNER_TOKEN not in rejected_request_log.text


# ---- Configuration errors and exit statuses ----


def check_config(tmp_path, content, environment=None, arguments=()):
    path = tmp_path / "pmsd.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return run_pmsd(binary(), ["--config", str(path), "--check-config", *arguments], environment)


def test_check_config_valid(tmp_path):
    result = check_config(tmp_path, daemon_configuration())
    assert result.returncode == 0, result.stderr


def test_check_config_empty_object(tmp_path):
    assert check_config(tmp_path, {}).returncode == 0


INVALID_FILES = {
    "unknown-key": ({"friendlyNmae": "Typo"}, "friendlyNmae"),
    "wrong-type": ({"port": "x"}, "port"),
    "negative-limit": ({"maxBodyBytes": -1}, "maxBodyBytes"),
    "nested-missing": ({"sharedTokens": [{"name": "nobody"}]}, "sharedTokens[0]"),
    "bad-log-level": ({"logLevel": "loud"}, "logLevel"),
}


@pytest.mark.parametrize("case", sorted(INVALID_FILES))
def test_check_config_invalid_status(tmp_path, case):
    content, _ = INVALID_FILES[case]
    assert check_config(tmp_path, content).returncode == EXIT_CONFIGURATION


@pytest.mark.parametrize("case", sorted(INVALID_FILES))
def test_check_config_names_key(tmp_path, case):
    content, key = INVALID_FILES[case]
    assert key in check_config(tmp_path, content).stderr


def test_check_config_invalid_json(tmp_path):
    assert check_config(tmp_path, '{"friendlyName": ').returncode == EXIT_CONFIGURATION


ENVIRONMENT_ERRORS = {
    "not-a-number": ({"PMSD_MAX_BODY_BYTES": "abc"}, "PMSD_MAX_BODY_BYTES"),
    "out-of-range": ({"PMSD_MAX_BODY_BYTES": "-1"}, "PMSD_MAX_BODY_BYTES"),
    "bad-json": ({"PMSD_SHARED_TOKENS": "[{"}, "PMSD_SHARED_TOKENS"),
}


@pytest.mark.parametrize("case", sorted(ENVIRONMENT_ERRORS))
def test_environment_error_status(tmp_path, case):
    environment, _ = ENVIRONMENT_ERRORS[case]
    assert check_config(tmp_path, {}, environment).returncode == EXIT_CONFIGURATION


@pytest.mark.parametrize("case", sorted(ENVIRONMENT_ERRORS))
def test_environment_error_names_variable(tmp_path, case):
    environment, variable = ENVIRONMENT_ERRORS[case]
    assert variable in check_config(tmp_path, {}, environment).stderr


def test_flag_value_error_status(tmp_path):
    assert check_config(tmp_path, {}, arguments=["--stop-grace-period", "soon"]).returncode == EXIT_CONFIGURATION


def test_flag_value_error_names_flag(tmp_path):
    assert "--stop-grace-period" in check_config(tmp_path, {}, arguments=["--stop-grace-period", "soon"]).stderr


PRECEDENCE_CASES = {
    "flag-over-environment-and-file": (["--friendly-name", "From flag"], {"PMSD_FRIENDLY_NAME": "From environment"},
                                       "From flag"),
    "flag-over-file": (["--friendly-name", "From flag"], {}, "From flag"),
    "environment-over-file": ([], {"PMSD_FRIENDLY_NAME": "From environment"}, "From environment"),
    "file-alone": ([], {}, "From file"),
}


@pytest.mark.parametrize("case", sorted(PRECEDENCE_CASES))
def test_settings_precedence(daemons, case):
    arguments, environment, expected = PRECEDENCE_CASES[case]
    daemon = daemons.start(daemon_configuration("From file"), arguments, environment)
    assert xml_attribute(daemon.get("/", token=OWNER_TOKEN).text, "friendlyName") == expected


BAD_COMMAND_LINES = {
    "unknown-option": (["--frobnicate"], "--frobnicate"),
    "missing-value": (["--port"], "--port"),
    "positional": (["extra"], "extra"),
    "flag-with-value": (["--check-config=yes"], "--check-config"),
}


@pytest.mark.parametrize("case", sorted(BAD_COMMAND_LINES))
def test_bad_command_line_status(case):
    arguments, _ = BAD_COMMAND_LINES[case]
    assert run_pmsd(binary(), arguments).returncode == EXIT_USAGE


@pytest.mark.parametrize("case", sorted(BAD_COMMAND_LINES))
def test_bad_command_line_names_argument(case):
    arguments, named = BAD_COMMAND_LINES[case]
    assert named in run_pmsd(binary(), arguments).stderr


@dataclass
class PortInUse:
    status: int | None
    output: str


@pytest.fixture(scope="module")
def port_in_use(module_daemons):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind((HOST, 0))
        holder.listen()
        port = holder.getsockname()[1]
        daemon = module_daemons.create(daemon_configuration())
        daemon.arguments = ["--port", str(port)]
        daemon.start(wait=False)
        status = daemon.wait_exit(5)
        daemon.kill()
    return PortInUse(status, daemon.log_text())


def test_port_in_use_exit_status(port_in_use):
    assert port_in_use.status == EXIT_UNAVAILABLE


def test_port_in_use_message_once(port_in_use):
    lines = [line for line in port_in_use.output.splitlines() if "already in use" in line]
    assert len(lines) == 1, "\n".join(lines)


EVERY_FLAG = [
    "--config", "--port", "--bind", "--state-dir", "--friendly-name", "--log-level", "--access-log",
    "--stop-grace-period", "--allowed-networks", "--check-config", "--help", "--version",
]


@pytest.fixture(scope="module")
def help_result():
    return run_pmsd(binary(), ["--help"])


def test_help_exit_status(help_result):
    assert help_result.returncode == 0


@pytest.mark.parametrize("flag", EVERY_FLAG)
def test_help_lists_flag(help_result, flag):
    assert re.search(rf"^\s+{re.escape(flag)}\b", help_result.stdout, re.MULTILINE)


def test_help_lists_only_known_flags(help_result):
    listed = re.findall(r"^\s+(--[a-z-]+)", help_result.stdout, re.MULTILINE)
    assert sorted(listed) == sorted(EVERY_FLAG)


@pytest.fixture(scope="module")
def version_result():
    return run_pmsd(binary(), ["--version"])


def test_version_exit_status(version_result):
    assert version_result.returncode == 0


def test_version_output(version_result):
    assert re.fullmatch(r"pmsd \S+\n", version_result.stdout)


# ---- Under load ----

LOAD_THREADS = 12


@pytest.fixture(scope="module")
def reload_under_load(tmp_path_factory):
    phase = load_stop.run_reload_phase(binary(), tmp_path_factory.mktemp("load"), LOAD_THREADS, seconds=2.0, reloads=3)
    print("reload under load:", phase.counts.summary())
    return phase


@pytest.fixture(scope="module")
def stop_under_load(tmp_path_factory):
    phase = load_stop.run_stop_phase(binary(), tmp_path_factory.mktemp("load"), LOAD_THREADS, seconds_before_stop=1.5)
    print("stop under load:", phase.counts.summary())
    return phase


def test_load_reload_all_complete(reload_under_load):
    counts = reload_under_load.counts
    assert counts.complete == counts.requests_sent, counts.first_problem


def test_load_reload_no_truncation(reload_under_load):
    assert reload_under_load.counts.truncated == 0


def test_load_reload_no_reconnect(reload_under_load):
    assert reload_under_load.counts.connections_opened == LOAD_THREADS


def test_load_reload_applied(reload_under_load):
    assert reload_under_load.reloads_logged == reload_under_load.reloads_sent


def test_load_reload_names_seen(reload_under_load):
    assert len(reload_under_load.counts.friendly_names) >= 2


def test_load_reload_server_count_matches(reload_under_load):
    assert reload_under_load.server_requests == reload_under_load.counts.complete


def test_load_stop_no_truncation(stop_under_load):
    assert stop_under_load.counts.truncated == 0


def test_load_stop_no_malformed(stop_under_load):
    assert stop_under_load.counts.malformed == 0, stop_under_load.counts.first_problem


def test_load_stop_early_requests_get_responses(stop_under_load):
    assert stop_under_load.counts.unanswered == 0, stop_under_load.counts.first_problem


def test_load_stop_closes_after_close(stop_under_load):
    assert stop_under_load.counts.left_open_after_close == 0


def test_load_stop_server_count_matches(stop_under_load):
    # Every request that pmsd counted reached a client as a complete response.
    assert stop_under_load.server_requests == stop_under_load.counts.complete


def test_load_stop_exit_status_zero(stop_under_load):
    assert stop_under_load.exit_status == 0


def test_load_stop_exits_within_grace(stop_under_load):
    assert stop_under_load.seconds_to_exit < stop_under_load.grace_period_seconds
