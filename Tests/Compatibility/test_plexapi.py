"""python-plexapi against pmsd: PlexServer, createToken and its error mapping."""

import re
import time
from datetime import datetime
from urllib.parse import quote

import pytest
from plexapi.exceptions import BadRequest, Unauthorized
from plexapi.server import PlexServer

MACHINE_IDENTIFIER = re.compile(r"[0-9a-f]{40}")
TRANSIENT_TOKEN = re.compile(r"transient-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
CLIENT_TIMEOUT_SECONDS = 5


def connect(server, token):
    return PlexServer(server.url, token, timeout=CLIENT_TIMEOUT_SECONDS)


@pytest.fixture(scope="module")
def owner(server):
    return connect(server, server.owner_token)


@pytest.fixture(scope="module")
def shared_user(server):
    return connect(server, server.shared_token)


def resources_path(machine_identifier):
    return "/security/resources?source=" + quote(f"server://{machine_identifier}", safe="")


def test_friendly_name_keeps_markup_and_non_ascii(owner, server):
    assert owner.friendlyName == server.friendly_name


def test_machine_identifier_is_40_lowercase_hex(owner):
    assert MACHINE_IDENTIFIER.fullmatch(owner.machineIdentifier)


def test_machine_identifier_matches_state_file(owner, server):
    assert owner.machineIdentifier == server.stored_machine_identifier()


def test_version_is_configured_version(owner, server):
    assert owner.version == server.version


def test_platform_is_reported(owner):
    assert owner.platform


def test_updated_at_is_past_datetime(owner):
    assert isinstance(owner.updatedAt, datetime)
    assert owner.updatedAt.timestamp() <= time.time() + 1


def test_transcoder_video_reported_off(owner):
    assert owner.transcoderVideo is False


def test_create_token_returns_transient_token(owner):
    assert TRANSIENT_TOKEN.fullmatch(owner.createToken())


def test_transient_token_works_as_server_token(owner, server):
    transient = connect(server, owner.createToken())
    assert transient.machineIdentifier == owner.machineIdentifier


def test_transient_token_cannot_create_token(owner, server):
    transient = connect(server, owner.createToken())
    with pytest.raises(BadRequest):
        transient.createToken()


def test_wrong_token_raises_unauthorized(server):
    with pytest.raises(Unauthorized):
        connect(server, "compat-wrong-token")


def test_shared_user_token_works(shared_user, owner):
    assert shared_user.machineIdentifier == owner.machineIdentifier


def test_shared_user_creates_transient_token(shared_user):
    assert TRANSIENT_TOKEN.fullmatch(shared_user.createToken())


def test_shared_user_transient_token_works(shared_user, server):
    transient = connect(server, shared_user.createToken())
    assert transient.machineIdentifier == shared_user.machineIdentifier


def test_shared_user_forbidden_on_resources(server, owner):
    response = server.get(resources_path(owner.machineIdentifier), token=server.shared_token)
    assert response.status_code == 403


def test_shared_user_transient_token_forbidden_on_resources(server, shared_user):
    response = server.get(resources_path(shared_user.machineIdentifier), token=shared_user.createToken())
    assert response.status_code == 403
