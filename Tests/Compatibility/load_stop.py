"""Drive pmsd with keep-alive client threads on loopback and signal it mid-load.

Two phases, each against its own pmsd on 127.0.0.1:

- reload: SIGHUP several times during the load, with a new friendly name
  each time. Every request must get a complete response, and no connection
  may end.
- stop: SIGTERM during the load. Every response must be complete, every
  request sent well before the signal must get a response, and pmsd must
  exit 0 within its grace period.

Each client thread sends `GET /identity` and `GET /` in turn on one
keep-alive connection, and reads each response in full (status line, header
fields, Content-Length bytes of body). The load is bounded by time
(`--seconds`) and by a request count per thread.

Run alone:   python Tests/Compatibility/load_stop.py PMSD_BINARY
test_daemon.py runs the same phases with smaller defaults.
"""

import argparse
import json
import re
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

from daemon_support import (
    OWNER_TOKEN,
    ConnectionClosedEarly,
    DaemonProcess,
    RawConnection,
    daemon_configuration,
    request_bytes,
    xml_attribute,
)

# A request sent this long before the signal had time to be read by pmsd, so
# it must get a response. A request sent later may race the close of an idle
# keep-alive connection, which HTTP/1.1 allows: the client sees the
# connection end before any byte of a response and may retry.
RACE_MARGIN_SECONDS = 1.0
MAX_REQUESTS_PER_THREAD = 50_000
MAX_THREADS = 64
MAX_SECONDS = 30.0
STOP_GRACE_PERIOD_SECONDS = 5
# After a response with `Connection: close`, the server must end the connection within this time.
CLOSE_AFTER_RESPONSE_SECONDS = 2.0

REQUESTS = (
    request_bytes("GET", "/identity"),
    request_bytes("GET", "/", token=OWNER_TOKEN),
)
BODY_END = b"</MediaContainer>\n"


@dataclass
class LoadCounts:
    """Outcomes of the requests of one phase, summed over the client threads."""

    requests_sent: int = 0
    complete: int = 0
    # A part of a response arrived, then the connection ended.
    truncated: int = 0
    # A complete response with an unexpected status or body.
    malformed: int = 0
    # The connection ended before any byte of a response, during the reload
    # phase, or for a request sent more than RACE_MARGIN_SECONDS before SIGTERM.
    unanswered: int = 0
    # The same, for a request sent later than that: a race with the close of
    # an idle keep-alive connection (or of the accept backlog) at stop.
    unanswered_at_stop: int = 0
    # Of the unanswered requests, how many ended with a reset (RST) rather than a FIN.
    unanswered_with_reset: int = 0
    # The maximum time from sending an unanswered request to the signal, in
    # milliseconds. It is negative when every such request was sent after the
    # signal.
    unanswered_max_lead_ms: float = float("-inf")
    # Sending failed (reset or broken pipe) before the request was written.
    send_failed: int = 0
    # Receiving failed with an error other than a reset.
    receive_failed: int = 0
    timeouts: int = 0
    close_announced: int = 0
    # `Connection: close` was sent, but the connection stayed open.
    left_open_after_close: int = 0
    connections_opened: int = 0
    connect_refused: int = 0
    connect_failed: int = 0
    threads: int = 0
    threads_still_running: int = 0
    first_problem: str = ""
    friendly_names: set = field(default_factory=set)

    def add(self, other):
        for item in fields(self):
            if item.name == "first_problem":
                self.first_problem = self.first_problem or other.first_problem
            elif item.name == "unanswered_max_lead_ms":
                self.unanswered_max_lead_ms = max(self.unanswered_max_lead_ms, other.unanswered_max_lead_ms)
            elif item.name == "friendly_names":
                self.friendly_names |= other.friendly_names
            else:
                setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))

    def note_problem(self, text):
        if not self.first_problem:
            self.first_problem = text

    def summary(self):
        values = {item.name: getattr(self, item.name) for item in fields(self)}
        values["friendly_names"] = sorted(self.friendly_names)
        if values["unanswered_max_lead_ms"] == float("-inf"):
            values["unanswered_max_lead_ms"] = None
        return values


class SignalClock:
    """The moment the phase's signal was sent, shared with the client threads."""

    def __init__(self):
        self.sent_at = None
        self.stop_sent = threading.Event()

    def mark(self, stopping):
        self.sent_at = time.monotonic()
        if stopping:
            self.stop_sent.set()


def _check_response(response, counts):
    if response.status != 200:
        counts.malformed += 1
        counts.note_problem(f"status {response.status}: {response.raw_head[:200]!r}")
        return
    if not response.body.endswith(BODY_END):
        counts.malformed += 1
        counts.note_problem(f"body does not end with {BODY_END!r}: {response.body[-80:]!r}")
        return
    name = xml_attribute(response.text, "friendlyName")
    if name is not None:
        counts.friendly_names.add(name)


def _client(port, deadline, clock, counts):
    """Send requests on a keep-alive connection until `deadline`, reconnecting after each close."""
    connection = None
    index = 0
    while time.monotonic() < deadline and counts.requests_sent < MAX_REQUESTS_PER_THREAD:
        if connection is None:
            try:
                connection = RawConnection(port)
            except ConnectionRefusedError:
                counts.connect_refused += 1
                if clock.stop_sent.is_set():
                    return
                counts.note_problem("connection refused before the stop signal")
                time.sleep(0.01)
                continue
            except OSError as error:
                counts.connect_failed += 1
                counts.note_problem(f"connect failed: {error!r}")
                time.sleep(0.01)
                continue
            counts.connections_opened += 1
        request = REQUESTS[index % len(REQUESTS)]
        index += 1
        sent_at = time.monotonic()
        try:
            connection.send(request)
        except (BrokenPipeError, ConnectionResetError) as error:
            counts.send_failed += 1
            if not clock.stop_sent.is_set():
                counts.note_problem(f"send failed: {error!r}")
            connection.close()
            connection = None
            continue
        counts.requests_sent += 1
        try:
            response = connection.read_response()
        except ConnectionClosedEarly as error:
            if error.received:
                counts.truncated += 1
                counts.note_problem(f"truncated response: {error}")
            else:
                if error.reset:
                    counts.unanswered_with_reset += 1
                if clock.sent_at is not None:
                    lead = (clock.sent_at - sent_at) * 1000
                    counts.unanswered_max_lead_ms = max(counts.unanswered_max_lead_ms, round(lead, 3))
                if clock.stop_sent.is_set() and sent_at >= clock.sent_at - RACE_MARGIN_SECONDS:
                    counts.unanswered_at_stop += 1
                else:
                    counts.unanswered += 1
                    counts.note_problem(f"request unanswered: {error}")
            connection.close()
            connection = None
            continue
        except TimeoutError:
            counts.timeouts += 1
            counts.note_problem(f"no response within {connection.socket.gettimeout()} s")
            connection.close()
            connection = None
            continue
        except OSError as error:
            counts.receive_failed += 1
            counts.note_problem(f"receive failed: {error!r}")
            connection.close()
            connection = None
            continue
        counts.complete += 1
        _check_response(response, counts)
        if response.closes_connection:
            counts.close_announced += 1
            if connection.wait_closed(CLOSE_AFTER_RESPONSE_SECONDS) is None:
                counts.left_open_after_close += 1
                counts.note_problem("connection left open after Connection: close")
            connection.close()
            connection = None
    if connection is not None:
        connection.close()


def _run_clients(port, threads, seconds, clock, schedule):
    """Run `threads` clients for `seconds`, and meanwhile call each (delay, action) of `schedule`."""
    started = time.monotonic()
    deadline = started + seconds
    per_thread = [LoadCounts() for _ in range(threads)]
    workers = [
        threading.Thread(target=_client, args=(port, deadline, clock, counts), daemon=True)
        for counts in per_thread
    ]
    for worker in workers:
        worker.start()
    for delay, action in schedule:
        time.sleep(max(0.0, started + delay - time.monotonic()))
        action()
    for worker in workers:
        worker.join(timeout=max(0.0, deadline - time.monotonic()) + 15)
    total = LoadCounts()
    for counts in per_thread:
        total.add(counts)
    total.threads = threads
    total.threads_still_running = sum(worker.is_alive() for worker in workers)
    return total


def _server_request_count(daemon):
    """Return the `requests=` count of pmsd's `stopped` line, or None without one."""
    match = re.search(r" info stopped .*\brequests=(\d+)", daemon.log_text())
    return int(match.group(1)) if match else None


@dataclass
class ReloadPhase:
    counts: LoadCounts
    reloads_sent: int
    reloads_logged: int
    running_after_load: bool
    server_requests: int
    exit_status: int


@dataclass
class StopPhase:
    counts: LoadCounts
    exit_status: int
    seconds_to_exit: float
    server_requests: int
    grace_period_seconds: int


def run_reload_phase(binary, directory, threads=12, seconds=2.5, reloads=4):
    """Send `reloads` SIGHUPs, each with a new friendly name, while `threads` clients load pmsd."""
    daemon = DaemonProcess(binary, Path(directory) / "reload", daemon_configuration("Load name 0"))
    try:
        daemon.start()
        clock = SignalClock()

        def reload_with(number):
            def action():
                daemon.write_configuration(daemon_configuration(f"Load name {number}"))
                clock.mark(stopping=False)
                daemon.send_signal(signal.SIGHUP)

            return action

        interval = seconds / (reloads + 1)
        schedule = [(interval * number, reload_with(number)) for number in range(1, reloads + 1)]
        counts = _run_clients(daemon.port, threads, seconds, clock, schedule)
        reloads_logged = len(daemon.wait_for_log(r" info reloaded\b", timeout=2.0, count=reloads))
        running = daemon.is_running()
        status = daemon.stop()
        return ReloadPhase(counts, reloads, reloads_logged, running, _server_request_count(daemon), status)
    finally:
        daemon.kill()


def run_stop_phase(binary, directory, threads=12, seconds_before_stop=1.5):
    """Send SIGTERM after `seconds_before_stop` of load and let the clients run into the stop."""
    grace = STOP_GRACE_PERIOD_SECONDS
    daemon = DaemonProcess(
        binary, Path(directory) / "stop", daemon_configuration(), arguments=["--stop-grace-period", str(grace)]
    )
    try:
        daemon.start()
        daemon.watch_exit()
        clock = SignalClock()

        def stop():
            clock.mark(stopping=True)
            daemon.send_signal(signal.SIGTERM)

        load_seconds = seconds_before_stop + grace + 1
        counts = _run_clients(daemon.port, threads, load_seconds, clock, [(seconds_before_stop, stop)])
        status = daemon.wait_exit(timeout=grace + 5)
        seconds_to_exit = (daemon.exit_time or time.monotonic()) - clock.sent_at
        return StopPhase(counts, status, seconds_to_exit, _server_request_count(daemon), grace)
    finally:
        daemon.kill()


def reload_problems(phase):
    """Return what went wrong in the reload phase, or [] when nothing did."""
    counts = phase.counts
    problems = [
        f"{name}={getattr(counts, name)}"
        for name in ("truncated", "malformed", "unanswered", "unanswered_at_stop", "send_failed", "receive_failed",
                     "timeouts", "close_announced", "connect_refused", "connect_failed", "threads_still_running")
        if getattr(counts, name)
    ]
    if counts.connections_opened != counts.threads:
        problems.append(f"{counts.connections_opened} connections opened by {counts.threads} threads")
    if phase.reloads_logged != phase.reloads_sent:
        problems.append(f"{phase.reloads_logged} reloaded lines for {phase.reloads_sent} SIGHUPs")
    if not phase.running_after_load:
        problems.append("pmsd exited during the load")
    if phase.server_requests != counts.complete:
        problems.append(f"pmsd counted {phase.server_requests} requests, the clients received {counts.complete}")
    return problems


def stop_problems(phase):
    """Return what went wrong in the stop phase, or [] when nothing did."""
    counts = phase.counts
    problems = [
        f"{name}={getattr(counts, name)}"
        for name in ("truncated", "malformed", "unanswered", "receive_failed", "timeouts", "left_open_after_close",
                     "connect_failed", "threads_still_running")
        if getattr(counts, name)
    ]
    if phase.exit_status != 0:
        problems.append(f"exit status {phase.exit_status}")
    if phase.seconds_to_exit >= phase.grace_period_seconds:
        problems.append(
            f"exit {phase.seconds_to_exit:.2f} s after SIGTERM, grace period {phase.grace_period_seconds} s"
        )
    if phase.server_requests != counts.complete:
        problems.append(f"pmsd counted {phase.server_requests} requests, the clients received {counts.complete}")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binary", help="the pmsd binary")
    parser.add_argument("--threads", type=int, default=16, help=f"client threads, at most {MAX_THREADS} (default: 16)")
    parser.add_argument(
        "--seconds", type=float, default=2.5,
        help=f"seconds of load in each phase before its end or SIGTERM, at most {MAX_SECONDS} (default: 2.5)",
    )
    arguments = parser.parse_args()
    if not 1 <= arguments.threads <= MAX_THREADS:
        parser.error(f"--threads must be 1 to {MAX_THREADS}")
    if not 0.5 <= arguments.seconds <= MAX_SECONDS:
        parser.error(f"--seconds must be 0.5 to {MAX_SECONDS}")

    with tempfile.TemporaryDirectory(prefix="pmsd-load-") as directory:
        reload_phase = run_reload_phase(arguments.binary, directory, arguments.threads, arguments.seconds)
        stop_phase = run_stop_phase(arguments.binary, directory, arguments.threads, arguments.seconds)

    report = {
        "reload": {
            **reload_phase.counts.summary(),
            "reloads_sent": reload_phase.reloads_sent,
            "reloads_logged": reload_phase.reloads_logged,
            "server_requests": reload_phase.server_requests,
            "exit_status": reload_phase.exit_status,
        },
        "stop": {
            **stop_phase.counts.summary(),
            "exit_status": stop_phase.exit_status,
            "seconds_to_exit": round(stop_phase.seconds_to_exit, 3),
            "server_requests": stop_phase.server_requests,
        },
    }
    problems = [f"reload: {problem}" for problem in reload_problems(reload_phase)]
    problems += [f"stop: {problem}" for problem in stop_problems(stop_phase)]
    report["problems"] = problems
    print(json.dumps(report, indent=2))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
