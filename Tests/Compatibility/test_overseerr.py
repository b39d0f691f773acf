"""Overseerr's server check through node-plex-api, and a monitor's identity
probe, emulated with requests.

node-plex-api (npm `plex-api`) sends `Accept: application/json` and decodes
the body as JSON only when Content-Type is exactly `application/json`.
Overseerr's Plex settings check then reads MediaContainer.machineIdentifier
and MediaContainer.friendlyName from GET /.
"""

import json
import xml.etree.ElementTree as ElementTree

# Headers of the kind node-plex-api sends with every request, besides the token.
NODE_PLEX_API_HEADERS = {
    "Accept": "application/json",
    "Accept-Encoding": "gzip, deflate",
    "X-Plex-Client-Identifier": "compat-overseerr-client",
    "X-Plex-Product": "Overseerr",
    "X-Plex-Version": "1.0",
    "X-Plex-Device": "linux",
    "X-Plex-Device-Name": "Overseerr",
    "X-Plex-Platform": "Node.js",
    "X-Plex-Platform-Version": "v20.0.0",
}


def node_plex_api_query(server, path, token):
    """Return the decoded JSON body, or None where node-plex-api would not decode it as JSON."""
    response = server.get(path, token=token, headers=NODE_PLEX_API_HEADERS)
    assert response.status_code == 200
    if response.headers.get("Content-Type") != "application/json":
        return None
    return json.loads(response.content.decode("utf-8"))


def test_root_json_has_machine_identifier(server):
    body = node_plex_api_query(server, "/", server.owner_token)
    assert body is not None, "Content-Type is not exactly application/json"
    assert body["MediaContainer"]["machineIdentifier"] == server.stored_machine_identifier()


def test_root_json_has_friendly_name(server):
    body = node_plex_api_query(server, "/", server.owner_token)
    assert body is not None, "Content-Type is not exactly application/json"
    assert body["MediaContainer"]["friendlyName"] == server.friendly_name


def test_root_json_has_version(server):
    body = node_plex_api_query(server, "/", server.owner_token)
    assert body is not None, "Content-Type is not exactly application/json"
    assert body["MediaContainer"]["version"] == server.version


def test_monitor_identity_without_token_xml(server):
    response = server.get("/identity")
    assert response.status_code == 200
    root = ElementTree.fromstring(response.content)
    assert root.get("machineIdentifier") == server.stored_machine_identifier()
