"""A pmsd restart on the same state directory and port.

Transient tokens live in memory only, so each one minted before the restart
must stop working, while the machine identifier must stay the same.
"""

from dataclasses import dataclass

import pytest
from plexapi.exceptions import Unauthorized
from plexapi.server import PlexServer

CLIENT_TIMEOUT_SECONDS = 5


@dataclass
class BeforeRestart:
    machine_identifier: str
    owner_transient_token: str
    shared_transient_token: str
    stop_status: int


def connect(server, token):
    return PlexServer(server.url, token, timeout=CLIENT_TIMEOUT_SECONDS)


@pytest.fixture(scope="module")
def before_restart(own_server):
    """Mint transient tokens, check that they work, then restart pmsd."""
    owner = connect(own_server, own_server.owner_token)
    shared_user = connect(own_server, own_server.shared_token)
    owner_transient = owner.createToken()
    shared_transient = shared_user.createToken()
    for token in (owner_transient, shared_transient):
        response = own_server.get("/", token=token)
        assert response.status_code == 200, "a fresh transient token must work before the restart"
    status = own_server.restart()
    return BeforeRestart(owner.machineIdentifier, owner_transient, shared_transient, status)


def test_stop_on_sigterm_exits_zero(before_restart):
    assert before_restart.stop_status == 0


def test_owner_transient_token_rejected_after_restart(own_server, before_restart):
    response = own_server.get("/", token=before_restart.owner_transient_token)
    assert response.status_code == 401


def test_shared_transient_token_rejected_after_restart(own_server, before_restart):
    response = own_server.get("/", token=before_restart.shared_transient_token)
    assert response.status_code == 401


def test_plexapi_transient_token_unauthorized_after_restart(own_server, before_restart):
    with pytest.raises(Unauthorized):
        connect(own_server, before_restart.owner_transient_token)


def test_machine_identifier_unchanged_after_restart(own_server, before_restart):
    assert connect(own_server, own_server.owner_token).machineIdentifier == before_restart.machine_identifier


def test_state_file_unchanged_after_restart(own_server, before_restart):
    assert own_server.stored_machine_identifier() == before_restart.machine_identifier


def test_owner_mints_working_token_after_restart(own_server, before_restart):
    token = connect(own_server, own_server.owner_token).createToken()
    assert own_server.get("/", token=token).status_code == 200
