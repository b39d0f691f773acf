"""plex-api-client, the Speakeasy-generated Python SDK, against pmsd.

The SDK requests JSON, mints transient tokens with POST, calls /identity
without a token and validates each body against pydantic models generated
from the published API description. A body that does not fit the model
raises ResponseValidationError.
"""

import re

import pytest
from plex_api_client import PlexAPI
from plex_api_client.models import operations
from plex_api_client.utils import BackoffStrategy, RetryConfig

TRANSIENT_TOKEN = re.compile(r"transient-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
COMMA_LIST_ATTRIBUTES = {
    "diagnostics",
    "ownerFeatures",
    "transcoderVideoBitrates",
    "transcoderVideoQualities",
    "transcoderVideoResolutions",
}
TIMEOUT_MILLISECONDS = 5000
# plex-api-client 0.36.3 retries connection errors for up to five minutes by
# default, which would turn a crashed server into a long hang.
NO_RETRIES = RetryConfig("none", BackoffStrategy(1, 1, 1, 1), False)


def sdk(server, token):
    return PlexAPI(token=token, server_url=server.url, retry_config=NO_RETRIES, timeout_ms=TIMEOUT_MILLISECONDS)


@pytest.fixture(scope="module")
def owner_sdk(server):
    with sdk(server, server.owner_token) as client:
        yield client


@pytest.fixture(scope="module")
def server_info(owner_sdk):
    return owner_sdk.general.get_server_info(request={})


def test_server_info_parses(server_info):
    assert server_info.status_code == 200
    assert server_info.content_type == "application/json"


def test_server_info_container_fits_model(server_info, server):
    # NOTE: plex-api-client 0.36.3 models the body of GET / as the bare
    # container, without the MediaContainer wrapper that real servers send,
    # so its parsed object has every field unset. Validating the container
    # itself against that model still checks each attribute's type. The model
    # also declares the comma lists as arrays, while servers send them as
    # strings, so those attributes are left out of the check.
    container = server_info.raw_response.json()["MediaContainer"]
    checked = {name: value for name, value in container.items() if name not in COMMA_LIST_ATTRIBUTES}
    model = operations.GetServerInfoResponseBody.model_validate(checked)
    assert model.machine_identifier == server.stored_machine_identifier()
    assert model.friendly_name == server.friendly_name
    assert model.size == len(container["Directory"])


def test_identity_without_token(server):
    with sdk(server, None) as client:
        response = client.general.get_identity()
    assert response.status_code == 200
    assert response.object.media_container.machine_identifier == server.stored_machine_identifier()
    assert response.object.media_container.claimed is True
    assert response.object.media_container.version == server.version


def test_create_transient_token(owner_sdk):
    response = owner_sdk.general.create_transient_token(request={"type": "delegation", "scope": "all"})
    assert response.status_code == 200
    assert TRANSIENT_TOKEN.fullmatch(response.object.media_container.token)


def test_transient_token_works_in_sdk(owner_sdk, server):
    token = owner_sdk.general.create_transient_token(
        request={"type": "delegation", "scope": "all"}
    ).object.media_container.token
    with sdk(server, token) as client:
        assert client.general.get_server_info(request={}).status_code == 200


@pytest.fixture(scope="module")
def own_device(owner_sdk, server):
    source = f"server://{server.stored_machine_identifier()}"
    response = owner_sdk.general.get_source_connection_information(request={"source": source})
    assert response.status_code == 200
    return response.object.media_container.device


def test_resources_device_parses(own_device, server):
    assert own_device.client_identifier == server.stored_machine_identifier()


def test_resources_access_token_works(own_device, server):
    assert TRANSIENT_TOKEN.fullmatch(own_device.access_token)
    assert server.get("/", token=own_device.access_token).status_code == 200


def test_resources_connection_parses(own_device, server):
    assert [connection.uri for connection in own_device.connection] == [server.url]
    assert own_device.connection[0].local is True


def test_resources_catalogue_source(owner_sdk, server):
    response = owner_sdk.general.get_source_connection_information(
        request={"source": server.catalogue_source, "refresh": 1}
    )
    assert response.object.media_container.device.client_identifier == server.catalogue_client_identifier
    assert response.object.media_container.device.access_token == server.catalogue_access_token
