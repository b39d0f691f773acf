"""uvicorn contender: an ASGI app that responds to every request with the
bytes of one file and a fixed Content-Type.

The file and the type come from the environment, BENCH_BODY_FILE and
BENCH_CONTENT_TYPE. Run it with
    uvicorn asgi_app:app --loop uvloop --http httptools --workers 1
"""
import os

with open(os.environ["BENCH_BODY_FILE"], "rb") as _file:
    _BODY = _file.read()

_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", os.environ["BENCH_CONTENT_TYPE"].encode("latin-1")),
        (b"content-length", str(len(_BODY)).encode("ascii")),
    ],
}
_BODY_MESSAGE = {"type": "http.response.body", "body": _BODY}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    await send(_START)
    await send(_BODY_MESSAGE)
