#!/usr/bin/env python3
"""Write the seed corpus of fuzz_http.c into Tests/Fuzz/corpus/.

Each seed is one request sequence in the input format that fuzz_http.c
documents: a stride byte, a limit profile byte, the decision tape's length,
the tape, then the bytes sent, where SEP ends a chunk. The hardening cases use
stride 1, so the fuzzer's split run sends them one byte per write and its
whole run sends them in one write, and the two must agree.

Run it again after changing a case; it replaces the directory's contents.
"""

import pathlib
import shutil

SEP = b"\xff\xfe"

# Decision bytes (see fuzz_http.c).
ANSWER = 0x00
DEFER = 0x02
ABANDON = 0x03
LARGE = 0x0C
CLOSE_AFTER = 0x10
EXPECT_CONTINUE = 0x00
EXPECT_REFUSE = 0x01 | 0x04

# Limit profile bits.
HIGH_WATER_64 = 2 << 3
MANY_HEADERS = 0x40


def seed(data, stride=1, profile=0, tape=b""):
    assert len(tape) < 16
    return bytes([stride, profile, len(tape)]) + bytes(tape) + data


def get(target=b"/", extra=b""):
    return b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n" + extra + b"\r\n"


SMUGGLED = b"GET /admin HTTP/1.1\r\nHost: a\r\n\r\n"

CASES = {
    # The hardening cases, one file each.
    "cl_and_te": seed(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    "te_not_final_chunked": seed(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n"
        b"\r\n0\r\n\r\n"),
    "obs_fold": seed(b"GET / HTTP/1.1\r\nHost: a\r\nX: v1\r\n cont\r\n\r\n"),
    "bare_lf": seed(
        b"POST / HTTP/1.1\r\nHost: a\r\nx:x\nTransfer-Encoding: chunked\r\n"
        b"\r\n1\r\nA\r\n0\r\n\r\n"),
    "bare_cr": seed(
        b"POST / HTTP/1.1\r\nHost: a\r\nX-Abc: \rxTransfer-Encoding: chunked"
        b"\r\n\r\n1\r\nA\r\n0\r\n\r\n"),
    "space_before_colon": seed(
        b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length : 4\r\n\r\nabcd"),
    "empty_field_name": seed(b"GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n"),
    "differing_content_length": seed(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n"
        b"Content-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED),
    "content_length_overflow": seed(
        b"POST / HTTP/1.1\r\nHost: a\r\n"
        b"Content-Length: 18446744073709551616\r\n\r\nabcd"),
    "chunk_size_overflow": seed(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"FFFFFFFFFFFFFFFFF\r\nabcd\r\n0\r\n\r\n"),
    "runaway_chunk": seed(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4\r\nSEE-THIS\r\n0\r\n\r\n"),
    "long_chunk_extension": seed(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2;" + b"a" * 17000 + b"\r\nAA\r\n0\r\n\r\n"),
    "unknown_coding": seed(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n"),
    "te_in_http10": seed(
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    "missing_host": seed(b"GET / HTTP/1.1\r\n\r\n"),
    "repeated_host": seed(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
    "huge_header": seed(get(extra=b"X: " + b"a" * 20000 + b"\r\n")),
    "too_many_headers": seed(get(extra=b"h: v\r\n" * 1001)),
    "long_url": seed(get(b"/" + b"a" * 9000)),
    "body_too_large": seed(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999\r\n\r\nabcd"),
    # The first request is deferred, so its response follows the reading of
    # the second.
    "pipelining": seed(get(b"/slow") + get(b"/fast"), tape=[DEFER, ANSWER]),
    "connection_close_then_second": seed(
        get(extra=b"Connection: close\r\n") + get(b"/second")),
    "http10": seed(b"GET / HTTP/1.0\r\n\r\n"),
    "leading_crlf": seed(b"\r\n" + get()),
    # The body follows only after the interim response, in a second chunk.
    "expect_100_continue": seed(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
        b"Expect: 100-continue\r\n\r\n" + SEP + b"hello",
        tape=[EXPECT_CONTINUE, ANSWER]),
    "expect_100_refused": seed(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
        b"Expect: 100-continue\r\n\r\n" + SEP + b"hello",
        stride=0, tape=[EXPECT_REFUSE]),
    "head_then_get": seed(
        b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n" + get()),
}

for name, value in {
    "plus": b"+1", "hex": b"0x1", "negative": b"-1", "empty": b"",
    "two_numbers": b"1 1",
}.items():
    CASES["malformed_content_length_" + name] = seed(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: " + value +
        b"\r\n\r\nabcd")

CHUNKED_POST = (b"POST /upload HTTP/1.1\r\nHost: a\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
                b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
CL_POST = (b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n"
           b"hello world")

CASES.update({
    # Valid traffic.
    "valid_get": seed(get(b"/hello?name=shim", b"Accept: */*\r\n"), stride=0),
    "valid_pipelined": seed(get() + CL_POST + CHUNKED_POST + get(b"/last"),
                            stride=0),
    "valid_pipelined_split": seed(
        get()[:20] + SEP + get()[20:] + CL_POST[:50] + SEP + CL_POST[50:] +
        CHUNKED_POST[:70] + SEP + CHUNKED_POST[70:], stride=0),
    "valid_chunked_split_in_chunk": seed(
        CHUNKED_POST[:len(CHUNKED_POST) - 22] + SEP +
        CHUNKED_POST[len(CHUNKED_POST) - 22:], stride=0),
    "valid_chunked_extension": seed(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;name=value\r\nabc\r\n0\r\n\r\n", stride=0),
    "valid_chunked_trailer": seed(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n0\r\nX-Checksum: 1\r\n\r\n", stride=0),
    "valid_http10_keep_alive": seed(
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + get(), stride=0),
    "valid_deferred_pipelined": seed(
        get(b"/a") + CL_POST + get(b"/c"), stride=0,
        tape=[DEFER, DEFER | CLOSE_AFTER]),
    "valid_deferred_abandoned": seed(get(b"/a") + get(b"/b"), stride=0,
                                     tape=[ABANDON]),
    "valid_request_limit": seed(get(b"/1") + get(b"/2") + get(b"/3"),
                                stride=0, profile=2),
    # Many small pipelined requests with large responses, past the output
    # high-water mark, so reading pauses and resumes repeatedly.
    "valid_pipeline_flood": seed(get() * 200, stride=0,
                                 profile=HIGH_WATER_64, tape=[LARGE]),
    # More fields than the shim first allocates room for, split so that the
    # field array grows between reads.
    "valid_many_headers": seed(
        get(b"/", b"".join(b"h%d: v\r\n" % i for i in range(12)) + SEP +
            b"".join(b"h%d: v\r\n" % i for i in range(12, 30))),
        stride=0, profile=MANY_HEADERS),
    "valid_upgrade": seed(
        get(b"/ws", b"Connection: Upgrade\r\nUpgrade: websocket\r\n") + get(),
        stride=0),
})


def main():
    directory = pathlib.Path(__file__).resolve().parent / "corpus"
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir()
    for name, data in sorted(CASES.items()):
        (directory / name).write_bytes(data)
    print(f"wrote {len(CASES)} seeds to {directory}")


if __name__ == "__main__":
    main()
