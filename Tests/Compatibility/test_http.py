"""The HTTP contract that Plex clients rely on, checked with requests.

Covers body formats and content types, the fields every response carries,
the token rules of each endpoint, /security/token, /security/resources and
CORS for browser clients.
"""

import json
import re
import xml.etree.ElementTree as ElementTree
from typing import NamedTuple
from urllib.parse import quote

import pytest
import requests

XML_PROLOG = b'<?xml version="1.0" encoding="UTF-8"?>\n'
XML_CONTENT_TYPE = "text/xml;charset=utf-8"
JSON_CONTENT_TYPE = "application/json"
TRANSIENT_TOKEN = re.compile(r"transient-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
TOKEN_QUERY = "type=delegation&scope=all"
ORIGIN = "http://app.example.test:32400"


class Call(NamedTuple):
    """One request: `path` may contain {own_source} and {catalogue_source}, and
    `caller` names the token to send (owner, shared, invalid, or None for no token)."""

    method: str
    path: str
    caller: str | None


SUCCESSES = {
    "root": Call("GET", "/", "owner"),
    "root-shared": Call("GET", "/", "shared"),
    "identity": Call("GET", "/identity", None),
    "token-get": Call("GET", "/security/token?" + TOKEN_QUERY, "owner"),
    "token-post": Call("POST", "/security/token?" + TOKEN_QUERY, "owner"),
    "resources-own": Call("GET", "/security/resources?source={own_source}", "owner"),
    "resources-catalogue": Call("GET", "/security/resources?source={catalogue_source}", "owner"),
}

ERRORS = {
    "400-token-type": (400, Call("GET", "/security/token?type=wrong&scope=all", "owner")),
    "401-root-no-token": (401, Call("GET", "/", None)),
    "401-root-invalid-token": (401, Call("GET", "/", "invalid")),
    "403-resources-shared": (403, Call("GET", "/security/resources?source={own_source}", "shared")),
    "403-token-no-token": (403, Call("POST", "/security/token?" + TOKEN_QUERY, None)),
    "404-unknown-path": (404, Call("GET", "/library/sections", "owner")),
    "405-identity-delete": (405, Call("DELETE", "/identity", None)),
}

ALL_CALLS = {name: (200, call) for name, call in SUCCESSES.items()} | ERRORS


def encoded_source(source):
    return quote(source, safe="")


def caller_token(server, caller):
    tokens = {
        None: None,
        "owner": server.owner_token,
        "shared": server.shared_token,
        "invalid": "compat-invalid-token",
    }
    return tokens[caller]


def send(server, call, accept=None, headers=None):
    path = call.path.format(
        own_source=encoded_source(f"server://{server.stored_machine_identifier()}"),
        catalogue_source=encoded_source(server.catalogue_source),
    )
    return server.request(call.method, path, token=caller_token(server, call.caller), accept=accept, headers=headers)


def own_resources_path(server, suffix=""):
    return "/security/resources?source=" + encoded_source(f"server://{server.stored_machine_identifier()}{suffix}")


def mint_token(server, token, method="GET"):
    response = server.request(method, "/security/token?" + TOKEN_QUERY, token=token, accept=JSON_CONTENT_TYPE)
    assert response.status_code == 200, f"minting a transient token returned {response.status_code}"
    return response.json()["MediaContainer"]["token"]


def vary_names(response):
    return {name.strip().lower() for name in response.headers.get("Vary", "").split(",")}


def header_names(value):
    return {name.strip().lower() for name in value.split(",")}


# Body formats


@pytest.mark.parametrize("name", SUCCESSES)
def test_json_content_type_is_exact(server, name):
    response = send(server, SUCCESSES[name], accept=JSON_CONTENT_TYPE)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == JSON_CONTENT_TYPE


@pytest.mark.parametrize("name", SUCCESSES)
def test_json_body_is_media_container(server, name):
    body = send(server, SUCCESSES[name], accept=JSON_CONTENT_TYPE).json()
    assert list(body) == ["MediaContainer"]
    assert isinstance(body["MediaContainer"], dict)


@pytest.mark.parametrize("name", SUCCESSES)
def test_xml_content_type(server, name):
    response = send(server, SUCCESSES[name])
    assert response.status_code == 200
    assert response.headers["Content-Type"] == XML_CONTENT_TYPE


@pytest.mark.parametrize("name", SUCCESSES)
def test_xml_starts_with_prolog(server, name):
    assert send(server, SUCCESSES[name]).content.startswith(XML_PROLOG)


@pytest.mark.parametrize("name", SUCCESSES)
def test_xml_parses_strictly(server, name):
    # ElementTree parses with expat, which rejects any document that is not well-formed.
    root = ElementTree.fromstring(send(server, SUCCESSES[name]).content)
    assert root.tag == "MediaContainer"


@pytest.mark.parametrize("name", SUCCESSES)
def test_xml_size_is_first_attribute(server, name):
    root = ElementTree.fromstring(send(server, SUCCESSES[name]).content)
    assert list(root.attrib)[0] == "size"


@pytest.mark.parametrize("accept", ["*/*", "application/xml", "text/html, */*;q=0.8"])
def test_accept_without_json_gets_xml(server, accept):
    response = server.get("/identity", accept=accept)
    assert response.headers["Content-Type"] == XML_CONTENT_TYPE


@pytest.mark.parametrize(
    "accept, content_type",
    [
        ("application/xml, application/json", JSON_CONTENT_TYPE),
        ("text/xml;q=0.9, application/json", JSON_CONTENT_TYPE),
        ("application/json;q=0.5, application/xml", XML_CONTENT_TYPE),
        ("application/json;q=0", XML_CONTENT_TYPE),
    ],
)
def test_mixed_accept_ranks_json_and_xml(server, accept, content_type):
    assert server.get("/identity", accept=accept).headers["Content-Type"] == content_type


def test_nonstandard_accepts_header_ignored(server):
    response = server.get("/identity", headers={"accepts": JSON_CONTENT_TYPE})
    assert response.headers["Content-Type"] == XML_CONTENT_TYPE


def test_xml_friendly_name_round_trips(server):
    root = ElementTree.fromstring(server.get("/", token=server.owner_token).content)
    assert root.get("friendlyName") == server.friendly_name


def test_json_friendly_name_round_trips(server):
    container = server.get("/", token=server.owner_token, accept=JSON_CONTENT_TYPE).json()["MediaContainer"]
    assert container["friendlyName"] == server.friendly_name


def test_json_body_decodes_as_utf8(server):
    raw = server.get("/", token=server.owner_token, accept=JSON_CONTENT_TYPE).content
    assert json.loads(raw.decode("utf-8"))["MediaContainer"]["friendlyName"] == server.friendly_name


def test_xml_root_size_counts_directories(server):
    root = ElementTree.fromstring(server.get("/", token=server.owner_token).content)
    assert int(root.get("size")) == len(root.findall("Directory"))


def test_json_root_size_counts_directories(server):
    container = server.get("/", token=server.owner_token, accept=JSON_CONTENT_TYPE).json()["MediaContainer"]
    assert container["size"] == len(container["Directory"])


def test_json_root_booleans_are_json_booleans(server):
    container = server.get("/", token=server.owner_token, accept=JSON_CONTENT_TYPE).json()["MediaContainer"]
    assert container["allowSync"] is False
    assert container["multiuser"] is True


@pytest.mark.parametrize(
    "attribute",
    ["diagnostics", "ownerFeatures", "transcoderVideoBitrates", "transcoderVideoQualities", "transcoderVideoResolutions"],
)
def test_json_comma_lists_are_strings(server, attribute):
    container = server.get("/", token=server.owner_token, accept=JSON_CONTENT_TYPE).json()["MediaContainer"]
    assert isinstance(container[attribute], str)


def test_json_identity_contents(server):
    container = server.get("/identity", accept=JSON_CONTENT_TYPE).json()["MediaContainer"]
    assert container["size"] == 0
    assert container["claimed"] is True
    assert container["machineIdentifier"] == server.stored_machine_identifier()
    assert container["version"] == server.version


def test_xml_identity_contents(server):
    root = ElementTree.fromstring(server.get("/identity").content)
    assert root.get("size") == "0"
    assert root.get("claimed") == "1"
    assert root.get("machineIdentifier") == server.stored_machine_identifier()
    assert root.get("version") == server.version


# Fields on every response


@pytest.mark.parametrize("name", ALL_CALLS)
def test_plex_protocol_field(server, name):
    status, call = ALL_CALLS[name]
    response = send(server, call)
    assert response.status_code == status
    assert response.headers.get("X-Plex-Protocol") == "1.0"


@pytest.mark.parametrize("name", ALL_CALLS)
def test_cache_control_field(server, name):
    status, call = ALL_CALLS[name]
    response = send(server, call)
    assert response.status_code == status
    assert response.headers.get("Cache-Control") == "no-cache"


def test_keep_alive_field_has_timeout(server):
    assert re.fullmatch(r"timeout=\d+", server.get("/identity").headers.get("Keep-Alive", ""))


def test_unauthorized_is_html_page(server):
    response = server.get("/")
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<title>Unauthorized</title>" in response.text


def test_forbidden_is_html_page(server):
    response = server.get(own_resources_path(server), token=server.shared_token)
    assert response.status_code == 403
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<title>Forbidden</title>" in response.text


# Paths and tokens


@pytest.mark.parametrize("accept", [None, JSON_CONTENT_TYPE])
def test_identity_trailing_slash_same_resource(server, accept):
    plain = server.get("/identity", accept=accept)
    slashed = server.get("/identity/", accept=accept)
    assert slashed.status_code == 200
    assert slashed.headers["Content-Type"] == plain.headers["Content-Type"]
    assert slashed.content == plain.content


def test_token_as_query_parameter(server):
    assert server.get("/?X-Plex-Token=" + quote(server.owner_token)).status_code == 200


def test_token_query_parameter_on_security_token(server):
    path = "/security/token?" + TOKEN_QUERY + "&X-Plex-Token=" + quote(server.owner_token)
    assert server.request("POST", path).status_code == 200


def test_token_query_parameter_on_resources(server):
    path = own_resources_path(server) + "&X-Plex-Token=" + quote(server.owner_token)
    assert server.get(path).status_code == 200


def test_requests_share_keep_alive_connection(server):
    with requests.Session() as session:
        statuses = [session.get(server.url + "/identity", timeout=5).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]


def test_token_header_name_is_case_insensitive(server):
    assert server.get("/", headers={"x-plex-token": server.owner_token}).status_code == 200


def test_empty_token_counts_as_absent(server):
    assert server.get("/", token="").status_code == 401


def test_identity_ignores_invalid_token(server):
    assert server.get("/identity", token="compat-invalid-token").status_code == 200


# /security/token


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_security_token_xml_has_transient_token(server, method):
    response = server.request(method, "/security/token?" + TOKEN_QUERY, token=server.owner_token)
    assert response.status_code == 200
    root = ElementTree.fromstring(response.content)
    assert root.get("size") == "0"
    assert TRANSIENT_TOKEN.fullmatch(root.get("token", ""))


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_security_token_json_has_transient_token(server, method):
    response = server.request(method, "/security/token?" + TOKEN_QUERY, token=server.owner_token, accept=JSON_CONTENT_TYPE)
    assert response.status_code == 200
    container = response.json()["MediaContainer"]
    assert container["size"] == 0
    assert TRANSIENT_TOKEN.fullmatch(container["token"])


@pytest.mark.parametrize("method", ["GET", "POST", "PUT"])
def test_security_token_works_on_root(server, method):
    token = mint_token(server, server.owner_token, method)
    assert server.get("/", token=token).status_code == 200


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_security_token_for_shared_user(server, method):
    token = mint_token(server, server.shared_token, method)
    assert server.get("/", token=token).status_code == 200


def test_security_tokens_are_distinct(server):
    assert mint_token(server, server.owner_token) != mint_token(server, server.owner_token)


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    "query",
    ["", "?scope=all", "?type=delegation", "?type=wrong&scope=all", "?type=delegation&scope=wrong", "?type=&scope="],
)
def test_security_token_bad_query_is_400(server, method, query):
    response = server.request(method, "/security/token" + query, token=server.owner_token)
    assert response.status_code == 400


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_security_token_without_token_is_403(server, method):
    assert server.request(method, "/security/token?" + TOKEN_QUERY).status_code == 403


def test_security_token_invalid_token_is_403(server):
    response = server.request("POST", "/security/token?" + TOKEN_QUERY, token="compat-invalid-token")
    assert response.status_code == 403


def test_security_token_from_transient_token_is_403(server):
    transient = mint_token(server, server.owner_token)
    response = server.request("POST", "/security/token?" + TOKEN_QUERY, token=transient)
    assert response.status_code == 403


# /security/resources


@pytest.fixture(scope="module")
def own_device_json(server):
    response = server.get(own_resources_path(server), token=server.owner_token, accept=JSON_CONTENT_TYPE)
    assert response.status_code == 200
    return response.json()["MediaContainer"]["Device"]


@pytest.fixture(scope="module")
def own_resources_xml(server):
    response = server.get(own_resources_path(server), token=server.owner_token)
    assert response.status_code == 200
    return ElementTree.fromstring(response.content)


def test_resources_json_device_is_object(own_device_json):
    assert isinstance(own_device_json, dict)


def test_resources_json_access_token_is_transient(own_device_json):
    assert TRANSIENT_TOKEN.fullmatch(own_device_json["accessToken"])


def test_resources_json_access_token_works(server, own_device_json):
    assert server.get("/", token=own_device_json["accessToken"]).status_code == 200


def test_resources_json_device_identity(server, own_device_json):
    assert own_device_json["clientIdentifier"] == server.stored_machine_identifier()
    assert own_device_json["name"] == server.friendly_name


def test_resources_json_connections(server, own_device_json):
    assert own_device_json["Connection"] == [
        {"protocol": "http", "address": "127.0.0.1", "port": server.port, "uri": server.url, "local": True}
    ]


def test_resources_xml_has_one_device(own_resources_xml):
    assert own_resources_xml.get("size") == "1"
    assert len(own_resources_xml.findall("Device")) == 1


def test_resources_xml_access_token_works(server, own_resources_xml):
    token = own_resources_xml.find("Device").get("accessToken")
    assert TRANSIENT_TOKEN.fullmatch(token)
    assert server.get("/", token=token).status_code == 200


def test_resources_xml_connection(server, own_resources_xml):
    connections = own_resources_xml.findall("Device/Connection")
    assert [connection.attrib for connection in connections] == [
        {"protocol": "http", "address": "127.0.0.1", "port": str(server.port), "uri": server.url, "local": "1"}
    ]


def test_resources_source_with_path(server):
    path = own_resources_path(server, "/com.plexapp.plugins.library")
    assert server.get(path, token=server.owner_token).status_code == 200


def test_resources_source_not_percent_encoded(server):
    path = f"/security/resources?source=server://{server.stored_machine_identifier()}"
    assert server.get(path, token=server.owner_token).status_code == 200


def test_resources_catalogue_source(server):
    path = "/security/resources?source=" + encoded_source(server.catalogue_source)
    device = server.get(path, token=server.owner_token, accept=JSON_CONTENT_TYPE).json()["MediaContainer"]["Device"]
    assert device["name"] == server.catalogue_name
    assert device["clientIdentifier"] == server.catalogue_client_identifier
    assert device["accessToken"] == server.catalogue_access_token


@pytest.mark.parametrize("refresh", ["0", "1"])
def test_resources_refresh_values(server, refresh):
    response = server.get(own_resources_path(server) + "&refresh=" + refresh, token=server.owner_token)
    assert response.status_code == 200


def test_resources_from_owner_transient_token(server):
    transient = mint_token(server, server.owner_token)
    assert server.get(own_resources_path(server), token=transient).status_code == 200


@pytest.mark.parametrize(
    "query, status",
    [
        ("", 400),
        ("?source=", 400),
        ("?source=" + encoded_source("http://example.test"), 400),
        ("?source=" + encoded_source("server://"), 400),
        ("?source=" + encoded_source("provider://tv.plex.provider.unknown"), 404),
        ("?source=" + encoded_source("server://" + "0" * 40), 404),
    ],
    ids=["missing", "empty", "no-prefix", "no-identifier", "unknown-provider", "unknown-server"],
)
def test_resources_bad_source(server, query, status):
    assert server.get("/security/resources" + query, token=server.owner_token).status_code == status


@pytest.mark.parametrize("refresh", ["2", "true", ""])
def test_resources_bad_refresh_is_400(server, refresh):
    response = server.get(own_resources_path(server) + "&refresh=" + refresh, token=server.owner_token)
    assert response.status_code == 400


@pytest.mark.parametrize("token", [None, "compat-invalid-token"], ids=["no-token", "invalid-token"])
def test_resources_without_valid_token_is_403(server, token):
    assert server.get(own_resources_path(server), token=token).status_code == 403


# CORS


@pytest.mark.parametrize("name", ["identity", "root", "resources-own"])
def test_cors_origin_reflected_on_success(server, name):
    response = send(server, SUCCESSES[name], headers={"Origin": ORIGIN})
    assert response.status_code == 200
    assert response.headers.get("Access-Control-Allow-Origin") == ORIGIN
    assert "origin" in vary_names(response)


@pytest.mark.parametrize("name", ["401-root-no-token", "403-resources-shared", "404-unknown-path"])
def test_cors_origin_reflected_on_error(server, name):
    status, call = ERRORS[name]
    response = send(server, call, headers={"Origin": ORIGIN})
    assert response.status_code == status
    assert response.headers.get("Access-Control-Allow-Origin") == ORIGIN
    assert "origin" in vary_names(response)


def test_cors_vary_names_token(server):
    response = server.get("/", token=server.owner_token, headers={"Origin": ORIGIN})
    assert "x-plex-token" in vary_names(response)


def test_no_cors_fields_without_origin(server):
    assert "Access-Control-Allow-Origin" not in server.get("/identity").headers


PREFLIGHT_HEADERS = {
    "Origin": ORIGIN,
    "Access-Control-Request-Method": "GET",
    "Access-Control-Request-Headers": "x-plex-token, x-plex-client-identifier, x-compat-extra",
}


@pytest.mark.parametrize("path", ["/", "/identity", "/security/token", "/security/resources", "/library/sections"])
def test_preflight_without_token(server, path):
    response = server.request("OPTIONS", path, headers=PREFLIGHT_HEADERS)
    assert response.status_code == 200
    assert response.headers.get("Access-Control-Allow-Origin") == ORIGIN
    assert "x-plex-token" in header_names(response.headers.get("Access-Control-Allow-Headers", ""))
    assert response.headers.get("Access-Control-Max-Age") == "1209600"


def test_preflight_allows_requested_headers(server):
    response = server.request("OPTIONS", "/", headers=PREFLIGHT_HEADERS)
    allowed = header_names(response.headers.get("Access-Control-Allow-Headers", ""))
    requested = header_names(PREFLIGHT_HEADERS["Access-Control-Request-Headers"])
    assert requested <= allowed


def test_preflight_allows_get_and_post(server):
    response = server.request("OPTIONS", "/security/token", headers=PREFLIGHT_HEADERS)
    methods = {method.strip() for method in response.headers.get("Access-Control-Allow-Methods", "").split(",")}
    assert {"GET", "POST"} <= methods


def test_preflight_has_common_fields(server):
    response = server.request("OPTIONS", "/", headers=PREFLIGHT_HEADERS)
    assert response.headers.get("X-Plex-Protocol") == "1.0"
    assert response.headers.get("Cache-Control") == "no-cache"
