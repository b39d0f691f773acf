/*
 * libFuzzer target for the shim's read path. Each input opens a connection
 * without a socket (uvh__test_conn_open), feeds it HTTP bytes cut into chunks,
 * ends the input and checks the shim's contract on every callback and after
 * the connection is freed. Each input runs twice: once cut at the points the
 * input encodes, and once as a single chunk. Both runs must make the same
 * callbacks with the same requests, errors and output, because how TCP
 * splits the bytes must not change what the server does.
 *
 * Input format (Tests/Fuzz/make_corpus.py writes seeds in it):
 *
 *   byte 0   stride: when nonzero, chunks are also cut every `stride` bytes.
 *   byte 1   limit profile:
 *              bits 0-2  max_requests_per_connection (0: unlimited)
 *              bits 3-4  output_high_water: 4096, 512, 64 or 1 MiB
 *              bit 5     no on_expect_continue callback
 *              bit 6     max_header_count 40 instead of 10, past the
 *                        16 fields the shim first allocates room for
 *   byte 2   length of the decision tape, modulo 16.
 *   tape     one byte per embedder decision, used in turn and cyclically;
 *            an empty tape means every decision byte is 0.
 *   rest     the bytes sent. Each "\xff\xfe" ends a chunk and is not sent.
 *
 * A decision byte means, for on_request:
 *   bits 0-1  0 or 1: respond at once. 2: return UVH_DEFERRED, then respond
 *             and call uvh_conn_resume() before the next chunk. 3: return
 *             UVH_DEFERRED, then close the connection without a response.
 *   bits 2-3  response size: 38, 0, 600 or 5000 bytes.
 *   bit 4     call uvh_conn_close_after_output() after the response.
 * for on_expect_continue:
 *   bit 0     0: continue; 1: append a final response and return its status.
 *   bit 1     the final status: 417 or 404.
 *   bit 2     call uvh_conn_close_after_output() after the final response.
 * for on_error:
 *   bit 0     call uvh_conn_close_after_output() after the error response.
 *
 * Set UVH_FUZZ_VERBOSE=1 to print each callback, for triage of one input.
 */
#define _GNU_SOURCE

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum {
    MAX_HEAD_BYTES = 1024,
    MAX_HEADER_COUNT = 10,
    LARGE_HEADER_COUNT = 40,
    MAX_TARGET_BYTES = 256,
    MAX_BODY_BYTES = 4096,
    MAX_CHUNK_EXTENSION_BYTES = 64,
    /* Long enough that no timer fires while an input runs. */
    TIMEOUT_MS = 600000,
    /* Size of the interim response the shim appends for 100-continue. */
    CONTINUE_RESPONSE_BYTES = 25,
    MAX_EVENTS = 64,
};

static const char separator[] = "\xff\xfe";
#define SEPARATOR_LENGTH 2

static const uint32_t high_water_options[4] = {4096, 512, 64, 1u << 20};

typedef enum event_kind {
    EVENT_REQUEST = 1,
    EVENT_EXPECT_CONTINUE,
    EVENT_ERROR,
    EVENT_DEFERRED_CLOSE,
} event_kind_t;

typedef struct event {
    event_kind_t kind;
    int status;
    uint64_t hash;
} event_t;

/* What one run of an input did, compared between the two runs. */
typedef struct run_record {
    event_t events[MAX_EVENTS];
    uint32_t event_count;
    uint64_t hash;
    uint64_t output_bytes;
} run_record_t;

/* State of the connection the current run feeds. */
typedef struct run_state {
    uvh_conn_t *conn;
    uint64_t connection_id;
    const uint8_t *tape;
    size_t tape_length;
    size_t tape_position;
    /* The chunk being fed, for the span checks. NULL outside a feed. */
    const char *chunk;
    size_t chunk_length;
    /* A deferred request is waiting for its response. With `abandon` set, the
     * connection is closed instead. */
    int deferred;
    int abandon;
    int deferred_decision;
    int abandoned;
    int deferred_close_calls;
    /* No callback may come once the connection is ending: after a rejection,
     * a final response to Expect, uvh_conn_close_after_output(), or a request
     * that does not keep the connection alive. */
    int finished;
    const char *finished_by;
    uint64_t appended_bytes;
    uint64_t continue_count;
    int expect_callback;
    /* Header fields the current request had when its head was complete.
     * Fields after them are trailer fields of a chunked body. */
    uint32_t head_field_count;
    uint64_t requests;
    uint64_t errors;
    run_record_t *record;
} run_state_t;

static uvh_server_t *server;
/* The shim's on_headers_complete, which on_headers_complete_hook calls. */
static llhttp_cb shim_on_headers_complete;
static run_state_t *run;
static int verbose;
static int baseline_handles;

/* ---- Failure reporting ---- */

__attribute__((noreturn, format(printf, 1, 2))) static void
violation(const char *format, ...) {
    va_list arguments;

    fprintf(stderr, "\nfuzz_http: invariant violated: ");
    va_start(arguments, format);
    vfprintf(stderr, format, arguments);
    va_end(arguments);
    fprintf(stderr, "\n");
    abort();
}

__attribute__((format(printf, 1, 2))) static void trace(const char *format,
                                                        ...) {
    va_list arguments;

    if (!verbose)
        return;
    va_start(arguments, format);
    vfprintf(stderr, format, arguments);
    va_end(arguments);
}

/* ---- Hashing and events ---- */

static uint64_t hash_bytes(uint64_t hash, const void *bytes, size_t length) {
    const unsigned char *byte = bytes;
    size_t index;

    for (index = 0; index < length; index++) {
        hash ^= byte[index];
        hash *= 0x100000001b3ull;
    }
    return hash;
}

static uint64_t hash_u64(uint64_t hash, uint64_t value) {
    return hash_bytes(hash, &value, sizeof(value));
}

static void record_event(event_kind_t kind, int status, uint64_t hash) {
    run_record_t *record = run->record;

    if (record->event_count < MAX_EVENTS) {
        event_t *event = &record->events[record->event_count];
        event->kind = kind;
        event->status = status;
        event->hash = hash;
    }
    record->event_count++;
    record->hash = hash_u64(hash_u64(record->hash, kind), hash);
}

static uint8_t next_decision(void) {
    uint8_t decision;

    if (run->tape_length == 0)
        return 0;
    decision = run->tape[run->tape_position % run->tape_length];
    run->tape_position++;
    return decision;
}

/* ---- Output ---- */

static void append(uvh_conn_t *conn, const char *bytes, size_t length) {
    char *space = uvh_conn_reserve(conn, length);

    if (space == NULL)
        violation("uvh_conn_reserve(%zu) returned NULL", length);
    memcpy(space, bytes, length);
    uvh_conn_commit(conn, length);
    run->appended_bytes += length;
}

static void append_response(uvh_conn_t *conn, int size_class) {
    static const char small[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    static char large[5000];

    if (large[0] == 0)
        memset(large, 'x', sizeof(large));
    switch (size_class & 3) {
    case 0: append(conn, small, sizeof(small) - 1); break;
    case 1: break;
    case 2: append(conn, large, 600); break;
    case 3: append(conn, large, sizeof(large)); break;
    }
}

static void append_status(uvh_conn_t *conn, int status) {
    char line[96];
    int length = snprintf(line, sizeof(line),
                          "HTTP/1.1 %d Error\r\nContent-Length: 0\r\n"
                          "Connection: close\r\n\r\n",
                          status);

    append(conn, line, (size_t)length);
}

/* ---- Request checks ---- */

static int lower(int c) {
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int span_equals(const uvh_request_t *request, uvh_span_t span,
                       const char *literal) {
    size_t length = strlen(literal);
    size_t index;

    if (span.length != length)
        return 0;
    for (index = 0; index < length; index++)
        if (lower((unsigned char)request->base[span.offset + index]) !=
            lower((unsigned char)literal[index]))
            return 0;
    return 1;
}

/* RFC 9110 section 5.6.2 token characters. */
static int is_tchar(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || (c != 0 && strchr("!#$%&'*+-.^_`|~", c));
}

/* Counts the elements of the comma-separated list in `span` that equal
 * `token`, ignoring case and whitespace around elements. Adds the number of
 * non-empty elements to `*elements` when it is not NULL. */
static int list_count(const uvh_request_t *request, uvh_span_t span,
                      const char *token, int *elements) {
    uint32_t start = 0;
    int matches = 0;

    while (start <= span.length) {
        uint32_t end = start;
        uint32_t first;
        uint32_t last;

        while (end < span.length && request->base[span.offset + end] != ',')
            end++;
        first = start;
        last = end;
        while (first < last && (request->base[span.offset + first] == ' ' ||
                                request->base[span.offset + first] == '\t'))
            first++;
        while (last > first && (request->base[span.offset + last - 1] == ' ' ||
                                request->base[span.offset + last - 1] == '\t'))
            last--;
        if (last > first) {
            uvh_span_t element = {span.offset + first, last - first};
            if (elements != NULL)
                (*elements)++;
            matches += span_equals(request, element, token);
        }
        start = end + 1;
    }
    return matches;
}

/* Parses a Content-Length value: digits only, trailing whitespace allowed.
 * Returns 0 on success. */
static int parse_length(const uvh_request_t *request, uvh_span_t span,
                        uint64_t *value) {
    uint32_t index;
    uint32_t end = span.length;

    while (end > 0 && (request->base[span.offset + end - 1] == ' ' ||
                       request->base[span.offset + end - 1] == '\t'))
        end--;
    if (end == 0)
        return -1;
    *value = 0;
    for (index = 0; index < end; index++) {
        unsigned char c = (unsigned char)request->base[span.offset + index];
        if (c < '0' || c > '9' || *value > (UINT64_MAX - 9) / 10)
            return -1;
        *value = *value * 10 + (c - '0');
    }
    return 0;
}

/*
 * Checks that every span of `request` lies inside the bytes the shim is
 * parsing (the chunk being fed, or the connection's pending buffer), and that
 * the spans follow each other in wire order. Returns the offset, from
 * request->base, just past the last span of the head.
 */
static uint32_t check_spans(uvh_conn_t *conn, const uvh_request_t *request,
                            const char *callback) {
    const char *region;
    size_t region_length;
    size_t available;
    uint32_t index;
    uint32_t head_end = 0;
    uint32_t previous_end;

    if (conn->parse_buffer == conn->pending && conn->pending != NULL) {
        region = conn->pending;
        region_length = conn->pending_length;
    } else if (run->chunk != NULL && conn->parse_buffer == run->chunk) {
        region = run->chunk;
        region_length = run->chunk_length;
    } else {
        violation("%s: the parse buffer is neither the fed chunk nor pending",
                  callback);
    }
    if (request->base < region || request->base > region + region_length)
        violation("%s: request base outside the parse buffer", callback);
    available = (size_t)(region + region_length - request->base);

#define CHECK_SPAN(span, name)                                                  \
    do {                                                                        \
        if ((uint64_t)(span).offset + (span).length > available)                \
            violation("%s: %s span %u+%u beyond the %zu bytes handed over",     \
                      callback, name, (span).offset, (span).length, available); \
    } while (0)

    CHECK_SPAN(request->method, "method");
    CHECK_SPAN(request->target, "target");
    CHECK_SPAN(request->body, "body");
    if (request->header_count > server->limits.max_header_count)
        violation("%s: %u header fields, limit %u", callback,
                  request->header_count, server->limits.max_header_count);
    for (index = 0; index < request->header_count; index++) {
        CHECK_SPAN(request->headers[index].name, "header name");
        CHECK_SPAN(request->headers[index].value, "header value");
    }
#undef CHECK_SPAN

    if (request->method.offset != 0 || request->method.length == 0)
        violation("%s: method span %u+%u", callback, request->method.offset,
                  request->method.length);
    {
        const char *name = llhttp_method_name(llhttp_get_method(&conn->parser));
        if (!span_equals(request, request->method, name) ||
            memcmp(request->base, name, request->method.length) != 0)
            violation("%s: method span \"%.*s\" but llhttp parsed %s", callback,
                      (int)request->method.length, request->base, name);
    }
    if (request->target.length == 0 ||
        request->target.length > MAX_TARGET_BYTES ||
        request->target.offset < request->method.length)
        violation("%s: target span %u+%u", callback, request->target.offset,
                  request->target.length);
    for (index = 0; index < request->target.length; index++) {
        unsigned char c =
            (unsigned char)request->base[request->target.offset + index];
        if (c <= ' ' || c == 0x7f)
            violation("%s: target contains byte 0x%02x", callback, c);
    }

    if (run->head_field_count > request->header_count)
        violation("%s: %u header fields, but the head had %u", callback,
                  request->header_count, run->head_field_count);
    /* Between reads the shim keeps only the bytes that spans cover, so the
     * offsets are positions in that compacted copy. They still follow the
     * order of the bytes on the wire. */
    previous_end = request->target.offset + request->target.length;
    for (index = 0; index < request->header_count; index++) {
        const uvh_header_t *header = &request->headers[index];
        uint32_t character;

        if (index == run->head_field_count)
            head_end = previous_end;
        if (header->name.length == 0)
            violation("%s: header %u has an empty name", callback, index);
        if (header->name.offset < previous_end)
            violation("%s: header %u starts at %u, before the end %u of the "
                      "previous field",
                      callback, index, header->name.offset, previous_end);
        for (character = 0; character < header->name.length; character++)
            if (!is_tchar((unsigned char)
                              request->base[header->name.offset + character]))
                violation("%s: header %u name has byte 0x%02x", callback, index,
                          (unsigned char)
                              request->base[header->name.offset + character]);
        previous_end = header->name.offset + header->name.length;
        if (header->value.length > 0) {
            if (header->value.offset < previous_end)
                violation("%s: header %u value precedes its name", callback,
                          index);
            for (character = 0; character < header->value.length; character++) {
                unsigned char c = (unsigned char)
                    request->base[header->value.offset + character];
                if (c == '\r' || c == '\n' || c == 0)
                    violation("%s: header %u value has byte 0x%02x", callback,
                              index, c);
            }
            previous_end = header->value.offset + header->value.length;
        }
    }
    if (run->head_field_count == request->header_count)
        head_end = previous_end;
    return head_end;
}

/* Checks the framing rules of RFC 9112 on the head fields of a request the
 * shim let through. Sets `*declared_length` to the Content-Length value, or
 * UINT64_MAX when there is none, and `*chunked`. */
static void check_framing(const uvh_request_t *request, const char *callback,
                          uint64_t *declared_length, int *chunked) {
    uint32_t index;
    int hosts = 0;
    int content_lengths = 0;
    int transfer_encodings = 0;
    int codings = 0;
    int chunked_codings = 0;
    int closes = 0;
    int keep_alives = 0;

    *declared_length = UINT64_MAX;
    *chunked = 0;
    if (request->http_major != 1 || request->http_minor > 1)
        violation("%s: HTTP/%u.%u routed", callback, request->http_major,
                  request->http_minor);
    /* NOTE: trailer fields are left out. The shim appends them to the
     * header fields after its own checks ran on the head. */
    for (index = 0; index < run->head_field_count; index++) {
        const uvh_header_t *header = &request->headers[index];

        if (span_equals(request, header->name, "host")) {
            hosts++;
        } else if (span_equals(request, header->name, "content-length")) {
            uint64_t value;
            if (parse_length(request, header->value, &value) != 0)
                violation("%s: malformed Content-Length \"%.*s\" routed",
                          callback, (int)header->value.length,
                          request->base + header->value.offset);
            if (content_lengths > 0 && value != *declared_length)
                violation("%s: differing Content-Length values routed",
                          callback);
            *declared_length = value;
            content_lengths++;
        } else if (span_equals(request, header->name, "transfer-encoding")) {
            transfer_encodings++;
            chunked_codings +=
                list_count(request, header->value, "chunked", &codings);
        } else if (span_equals(request, header->name, "expect")) {
            if (!span_equals(request, header->value, "100-continue"))
                violation("%s: Expect \"%.*s\" routed", callback,
                          (int)header->value.length,
                          request->base + header->value.offset);
        } else if (span_equals(request, header->name, "connection")) {
            closes += list_count(request, header->value, "close", NULL);
            keep_alives +=
                list_count(request, header->value, "keep-alive", NULL);
        }
    }
    if (request->http_minor == 1 ? hosts != 1 : hosts > 1)
        violation("%s: %d Host fields in an HTTP/1.%u request routed",
                  callback, hosts, request->http_minor);
    /* The only transfer coding the shim accepts is a single chunked. */
    if (transfer_encodings > 0 && (codings != 1 || chunked_codings != 1))
        violation("%s: Transfer-Encoding with %d codings, %d of them chunked, "
                  "routed",
                  callback, codings, chunked_codings);
    *chunked = transfer_encodings > 0;
    if (transfer_encodings > 0 &&
        (content_lengths > 0 || request->http_minor == 0))
        violation("%s: Transfer-Encoding with Content-Length or in HTTP/1.0 "
                  "routed",
                  callback);
    if (content_lengths > 0 && *declared_length > MAX_BODY_BYTES)
        violation("%s: Content-Length %llu over the limit routed", callback,
                  (unsigned long long)*declared_length);
    if (request->keep_alive &&
        (closes > 0 || (request->http_minor == 0 && keep_alives == 0)))
        violation("%s: keep_alive set on a request that asked to close",
                  callback);
}

static uvh_conn_t *expect_conn(uvh_conn_t *conn, const char *callback) {
    if (run == NULL || conn != run->conn)
        violation("%s: called for a connection the run did not open",
                  callback);
    if (run->finished)
        violation("%s: called after %s", callback, run->finished_by);
    if (run->deferred)
        violation("%s: called while a request is deferred", callback);
    return conn;
}

static void finish(const char *reason) {
    if (!run->finished) {
        run->finished = 1;
        run->finished_by = reason;
    }
}

static uint64_t hash_request(const uvh_request_t *request, uint64_t hash) {
    uint32_t index;

    hash = hash_bytes(hash, request->base, request->method.length);
    hash = hash_bytes(hash, request->base + request->target.offset,
                      request->target.length);
    for (index = 0; index < request->header_count; index++) {
        const uvh_header_t *header = &request->headers[index];
        hash = hash_bytes(hash, request->base + header->name.offset,
                          header->name.length);
        hash = hash_u64(hash, header->name.length);
        hash = hash_bytes(hash, request->base + header->value.offset,
                          header->value.length);
        hash = hash_u64(hash, header->value.length);
    }
    hash = hash_bytes(hash, request->base + request->body.offset,
                      request->body.length);
    hash = hash_u64(hash, request->body.length);
    hash = hash_u64(hash, (uint64_t)request->http_minor << 8 |
                              request->keep_alive);
    return hash;
}

/* ---- Callbacks ---- */

static int on_request(void *context, uvh_conn_t *conn,
                      const uvh_request_t *request) {
    uint32_t head_end;
    uint64_t declared_length;
    int chunked;
    uint8_t decision;
    uint32_t limit = server->limits.max_requests_per_connection;

    (void)context;
    trace("  on_request for target \"%.*s\"\n",
          (int)(request->target.length < 80 ? request->target.length : 80),
          request->base + request->target.offset);
    expect_conn(conn, "on_request");
    head_end = check_spans(conn, request, "on_request");
    check_framing(request, "on_request", &declared_length, &chunked);
    if (request->connection_id != run->connection_id)
        violation("on_request: connection_id %llu, expected %llu",
                  (unsigned long long)request->connection_id,
                  (unsigned long long)run->connection_id);
    if (request->peer == NULL || request->peer->sa_family != AF_INET)
        violation("on_request: no IPv4 peer address");
    if (request->body.length > MAX_BODY_BYTES)
        violation("on_request: body of %u bytes, limit %d",
                  request->body.length, MAX_BODY_BYTES);
    /* llhttp treats the bytes after an upgrade or CONNECT request's head as
     * another protocol, so those requests reach on_request without a body
     * whatever their Content-Length is. */
    if (!chunked && !llhttp_get_upgrade(&conn->parser) &&
        request->body.length !=
            (declared_length == UINT64_MAX ? 0 : declared_length))
        violation("on_request: body of %u bytes, Content-Length %llu",
                  request->body.length, (unsigned long long)declared_length);
    if (request->body.length > 0 && request->body.offset < head_end)
        violation("on_request: body starts at %u inside the head ending at %u",
                  request->body.offset, head_end);
    if (request->body.length > 0 &&
        run->head_field_count < request->header_count &&
        request->headers[run->head_field_count].name.offset <
            request->body.offset + request->body.length)
        violation("on_request: a trailer field starts inside the body");
    if (limit > 0 && run->requests + 1 > limit)
        violation("on_request: request %llu routed past the limit of %u",
                  (unsigned long long)run->requests + 1, limit);
    if (limit > 0 && run->requests + 1 == limit && request->keep_alive)
        violation("on_request: the last allowed request keeps the "
                  "connection alive");
    run->requests++;

    decision = next_decision();
    trace("  on_request %.*s %.*s HTTP/1.%u keep_alive=%u headers=%u body=%u "
          "decision=0x%02x\n",
          (int)request->method.length, request->base,
          (int)request->target.length, request->base + request->target.offset,
          request->http_minor, request->keep_alive, request->header_count,
          request->body.length, decision);
    record_event(EVENT_REQUEST, 0, hash_request(request, 0xcbf29ce484222325ull));

    if (!request->keep_alive)
        finish("a request without keep-alive");
    if (llhttp_get_upgrade(&conn->parser))
        finish("an upgrade request");
    if ((decision & 3) >= 2) {
        run->deferred = 1;
        run->abandon = (decision & 3) == 3;
        run->deferred_decision = decision;
        return UVH_DEFERRED;
    }
    append_response(conn, decision >> 2);
    if (decision & 0x10) {
        uvh_conn_close_after_output(conn);
        finish("uvh_conn_close_after_output");
    }
    return UVH_RESPONDED;
}

static int on_expect_continue(void *context, uvh_conn_t *conn,
                              const uvh_request_t *request) {
    uint64_t declared_length;
    int chunked;
    uint8_t decision;
    int expects = 0;
    uint32_t index;

    (void)context;
    expect_conn(conn, "on_expect_continue");
    check_spans(conn, request, "on_expect_continue");
    check_framing(request, "on_expect_continue", &declared_length, &chunked);
    for (index = 0; index < request->header_count; index++)
        if (span_equals(request, request->headers[index].name, "expect"))
            expects++;
    if (expects == 0 || request->http_minor != 1)
        violation("on_expect_continue: called for a request without "
                  "Expect: 100-continue in HTTP/1.1");
    if (request->body.length != 0)
        violation("on_expect_continue: body span of %u bytes",
                  request->body.length);
    if (!chunked && (declared_length == UINT64_MAX || declared_length == 0))
        violation("on_expect_continue: called for a request without a body");

    decision = next_decision();
    trace("  on_expect_continue %.*s decision=0x%02x\n",
          (int)request->target.length, request->base + request->target.offset,
          decision);
    record_event(EVENT_EXPECT_CONTINUE, decision & 1,
                 hash_request(request, 0xcbf29ce484222325ull));
    if ((decision & 1) == 0) {
        run->continue_count++;
        return UVH_CONTINUE;
    }
    {
        int status = decision & 2 ? 404 : 417;
        append_status(conn, status);
        if (decision & 4)
            uvh_conn_close_after_output(conn);
        finish("a final response to Expect: 100-continue");
        return status;
    }
}

static void on_error(void *context, uvh_conn_t *conn, int status,
                     const char *reason) {
    static const int known[] = {400, 408, 413, 414, 417, 431, 501, 503, 505};
    size_t index;
    uint8_t decision;

    (void)context;
    expect_conn(conn, "on_error");
    for (index = 0; index < sizeof(known) / sizeof(known[0]); index++)
        if (known[index] == status)
            break;
    if (index == sizeof(known) / sizeof(known[0]))
        violation("on_error: unexpected status %d (%s)", status,
                  reason != NULL ? reason : "no reason");
    if (reason == NULL || reason[0] == '\0')
        violation("on_error: status %d without a reason", status);
    run->errors++;
    decision = next_decision();
    trace("  on_error %d %s decision=0x%02x\n", status, reason, decision);
    /* The two runs are compared without the status of a rejection. When an
     * input breaks two rules, the one reported depends on where the reads
     * end. llhttp reports a span only when the span or the buffer ends, so a
     * span's length limit can trip before or after an invalid byte further
     * on: 414 byte by byte, 400 in one read. */
    record_event(EVENT_ERROR, status, 0);
    append_status(conn, status);
    if (decision & 1)
        uvh_conn_close_after_output(conn);
    finish("on_error");
}

static void on_deferred_close(void *context, uint64_t connection_id) {
    (void)context;
    if (run == NULL || connection_id != run->connection_id)
        violation("on_deferred_close: unknown connection %llu",
                  (unsigned long long)connection_id);
    if (!run->abandoned)
        violation("on_deferred_close: the request was not left deferred");
    run->deferred_close_calls++;
    trace("  on_deferred_close\n");
    record_event(EVENT_DEFERRED_CLOSE, 0, 0);
}

static void on_log(void *context, int level, const char *message,
                   const char *detail) {
    (void)context;
    trace("  log %d %s %s\n", level, message, detail != NULL ? detail : "");
}

/* Records how many header fields the head had, then runs the shim's
 * on_headers_complete. Installed in the server's llhttp settings. */
static int on_headers_complete_hook(llhttp_t *parser) {
    uvh_conn_t *conn = (uvh_conn_t *)parser->data;

    if (run != NULL && conn == run->conn)
        run->head_field_count = conn->request.header_count;
    return shim_on_headers_complete(parser);
}

/* ---- Running an input ---- */

static void count_handle(uv_handle_t *handle, void *argument) {
    (void)handle;
    (*(int *)argument)++;
}

static int loop_handles(void) {
    int count = 0;

    uv_walk(&server->loop, count_handle, &count);
    return count;
}

/* Sends the response to the deferred request and resumes the connection, or
 * closes the connection, as the request's decision byte selects. Resuming may
 * defer the next request, so this repeats until none is deferred. */
static void settle_deferred(void) {
    while (run->deferred && !run->abandoned) {
        uvh_conn_t *conn = run->conn;
        int decision = run->deferred_decision;

        if (conn->state != CONN_PAUSED || conn->pause != PAUSE_DEFERRED)
            violation("a deferred connection is in state %d, pause %d",
                      conn->state, conn->pause);
        if (run->abandon) {
            trace("  abandon the deferred request\n");
            run->abandoned = 1;
            uvh__conn_close(conn);
            return;
        }
        run->deferred = 0;
        trace("  answer the deferred request\n");
        append_response(conn, decision >> 2);
        if (decision & 0x10) {
            uvh_conn_close_after_output(conn);
            finish("uvh_conn_close_after_output");
        }
        uvh_conn_resume(conn);
    }
}

static void feed(const uint8_t *data, size_t length) {
    char *chunk;

    if (length == 0 || run->abandoned || run->conn->state == CONN_CLOSED)
        return;
    /* An exactly sized copy, so that AddressSanitizer reports any read past
     * the chunk. The shim also writes into it when it joins the chunks of a
     * chunked body. */
    chunk = malloc(length);
    if (chunk == NULL)
        abort();
    memcpy(chunk, data, length);
    run->chunk = chunk;
    run->chunk_length = length;
    trace(" feed %zu bytes\n", length);
    uvh__test_conn_feed(run->conn, chunk, length);
    run->chunk = NULL;
    run->chunk_length = 0;
    free(chunk);
    trace("   pending %zu bytes, state %d\n", run->conn->pending_length,
          run->conn->state);
    if (run->conn->state != CONN_CLOSED && run->conn->out_length != 0)
        violation("%zu output bytes left unflushed after a read",
                  run->conn->out_length);
    settle_deferred();
}

/* Feeds `data`, cut at each separator and, with a nonzero stride, every
 * `stride` bytes. With `split` 0 it feeds `data` whole. */
static void feed_all(const uint8_t *data, size_t length, size_t stride,
                     int split) {
    size_t start = 0;

    if (!split) {
        feed(data, length);
        return;
    }
    while (start < length && !run->abandoned &&
           run->conn->state != CONN_CLOSED) {
        const uint8_t *mark = memmem(data + start, length - start, separator,
                                     SEPARATOR_LENGTH);
        size_t end = mark != NULL ? (size_t)(mark - data) : length;
        size_t position = start;

        while (position < end && !run->abandoned &&
               run->conn->state != CONN_CLOSED) {
            size_t piece = end - position;
            if (stride > 0 && piece > stride)
                piece = stride;
            feed(data + position, piece);
            position += piece;
        }
        start = mark != NULL ? end + SEPARATOR_LENGTH : length;
    }
}

/* Removes the separators, for the run that feeds the input whole. */
static size_t strip_separators(const uint8_t *data, size_t length,
                               uint8_t *out) {
    size_t in = 0;
    size_t written = 0;

    while (in < length) {
        if (in + SEPARATOR_LENGTH <= length &&
            memcmp(data + in, separator, SEPARATOR_LENGTH) == 0) {
            in += SEPARATOR_LENGTH;
            continue;
        }
        out[written++] = data[in++];
    }
    return written;
}

static void run_once(const uint8_t *tape, size_t tape_length,
                     const uint8_t *data, size_t length, size_t stride,
                     int split, int expect_callback, run_record_t *record) {
    run_state_t state;
    uvh_stats_t before;
    uvh_stats_t after;
    int pass;

    memset(&state, 0, sizeof(state));
    memset(record, 0, sizeof(*record));
    state.tape = tape;
    state.tape_length = tape_length;
    state.expect_callback = expect_callback;
    state.record = record;
    run = &state;

    uvh_server_stats(server, &before);
    state.conn = uvh__test_conn_open(server);
    if (state.conn == NULL)
        abort();
    state.connection_id = state.conn->id;
    uvh_server_stats(server, &after);
    if (after.connections_open != 1)
        violation("%llu connections open with one detached connection",
                  (unsigned long long)after.connections_open);
    trace("run: %s, stride %zu\n", split ? "split" : "whole", stride);

    feed_all(data, length, stride, split);
    settle_deferred();
    if (!state.abandoned && state.conn->state != CONN_CLOSED) {
        uvh__test_conn_end(state.conn);
        if (state.conn->state != CONN_CLOSED)
            violation("the connection is in state %d after the end of input",
                      state.conn->state);
    }
    record->output_bytes = state.conn->detached_output_bytes;
    if (state.conn->state != CONN_CLOSED)
        uvh__conn_close(state.conn);

    /* The connection is freed in the close callbacks of its handles. */
    for (pass = 0; pass < 4 && loop_handles() != baseline_handles; pass++)
        uv_run(&server->loop, UV_RUN_NOWAIT);
    if (loop_handles() != baseline_handles)
        violation("%d loop handles remain after the connection closed, "
                  "expected %d",
                  loop_handles(), baseline_handles);
    if (server->connections != NULL)
        violation("the server still lists a connection");
    uvh_server_stats(server, &after);
    if (after.connections_open != 0)
        violation("connections_open is %llu after the connection closed",
                  (unsigned long long)after.connections_open);
    if (after.requests - before.requests != state.requests)
        violation("stats count %llu requests, on_request ran %llu times",
                  (unsigned long long)(after.requests - before.requests),
                  (unsigned long long)state.requests);
    if (after.parse_errors - before.parse_errors != state.errors)
        violation("stats count %llu parse errors, on_error ran %llu times",
                  (unsigned long long)(after.parse_errors - before.parse_errors),
                  (unsigned long long)state.errors);
    if (state.abandoned != state.deferred_close_calls)
        violation("on_deferred_close ran %d times for %d abandoned requests",
                  state.deferred_close_calls, state.abandoned);
    if (expect_callback &&
        record->output_bytes !=
            state.appended_bytes + state.continue_count * CONTINUE_RESPONSE_BYTES)
        violation("%llu bytes written, but the embedder appended %llu and "
                  "the shim %llu interim responses",
                  (unsigned long long)record->output_bytes,
                  (unsigned long long)state.appended_bytes,
                  (unsigned long long)state.continue_count);
    run = NULL;
}

static const char *event_name(event_kind_t kind) {
    switch (kind) {
    case EVENT_REQUEST: return "on_request";
    case EVENT_EXPECT_CONTINUE: return "on_expect_continue";
    case EVENT_ERROR: return "on_error";
    case EVENT_DEFERRED_CLOSE: return "on_deferred_close";
    }
    return "?";
}

static void compare_runs(const run_record_t *split, const run_record_t *whole) {
    uint32_t index;

    if (split->hash == whole->hash && split->event_count == whole->event_count &&
        split->output_bytes == whole->output_bytes)
        return;
    fprintf(stderr, "\nfuzz_http: the split and whole runs differ: %u and %u "
                    "callbacks, %llu and %llu output bytes\n",
            split->event_count, whole->event_count,
            (unsigned long long)split->output_bytes,
            (unsigned long long)whole->output_bytes);
    for (index = 0; index < MAX_EVENTS &&
                    (index < split->event_count || index < whole->event_count);
         index++) {
        const event_t *left =
            index < split->event_count ? &split->events[index] : NULL;
        const event_t *right =
            index < whole->event_count ? &whole->events[index] : NULL;

        fprintf(stderr,
                "  %2u split: %-18s %3d %016llx | "
                "whole: %-18s %3d %016llx%s\n",
                index, left ? event_name(left->kind) : "-",
                left ? left->status : 0,
                (unsigned long long)(left ? left->hash : 0),
                right ? event_name(right->kind) : "-",
                right ? right->status : 0,
                (unsigned long long)(right ? right->hash : 0),
                left && right && left->kind == right->kind &&
                        left->hash == right->hash
                    ? ""
                    : "  <--");
    }
    violation("splitting the input changed what the server did");
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    uvh_callbacks_t callbacks;
    uvh_limits_t limits;

    (void)argc;
    (void)argv;
    verbose = getenv("UVH_FUZZ_VERBOSE") != NULL &&
              strcmp(getenv("UVH_FUZZ_VERBOSE"), "0") != 0;
    memset(&callbacks, 0, sizeof(callbacks));
    callbacks.on_request = on_request;
    callbacks.on_error = on_error;
    callbacks.on_expect_continue = on_expect_continue;
    callbacks.on_deferred_close = on_deferred_close;
    callbacks.on_log = on_log;
    uvh_limits_init(&limits);
    limits.max_head_bytes = MAX_HEAD_BYTES;
    limits.max_header_count = MAX_HEADER_COUNT;
    limits.max_target_bytes = MAX_TARGET_BYTES;
    limits.max_body_bytes = MAX_BODY_BYTES;
    limits.max_chunk_extension_bytes = MAX_CHUNK_EXTENSION_BYTES;
    limits.output_high_water = high_water_options[0];
    limits.keep_alive_timeout_ms = TIMEOUT_MS;
    limits.header_timeout_ms = TIMEOUT_MS;
    limits.body_timeout_ms = TIMEOUT_MS;
    limits.write_timeout_ms = TIMEOUT_MS;
    server = uvh_server_create(&callbacks, NULL, &limits);
    if (server == NULL) {
        fprintf(stderr, "fuzz_http: uvh_server_create failed\n");
        exit(1);
    }
    shim_on_headers_complete = server->settings.on_headers_complete;
    server->settings.on_headers_complete = on_headers_complete_hook;
    baseline_handles = loop_handles();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static uint8_t *stripped;
    static size_t stripped_capacity;
    run_record_t *split_record;
    run_record_t *whole_record;
    size_t stride;
    uint8_t profile;
    size_t tape_length;
    const uint8_t *tape;
    const uint8_t *body;
    size_t body_length;
    size_t stripped_length;
    int expect_callback;

    if (size < 3)
        return -1;
    stride = data[0];
    profile = data[1];
    tape_length = data[2] % 16;
    if (size < 3 + tape_length)
        return -1;
    tape = data + 3;
    body = tape + tape_length;
    body_length = size - 3 - tape_length;

    /* The limits are read when used, so changing them between connections
     * is the same as a server configured with them. */
    server->limits.max_requests_per_connection = profile & 7;
    server->limits.output_high_water = high_water_options[(profile >> 3) & 3];
    server->limits.max_header_count =
        profile & 0x40 ? LARGE_HEADER_COUNT : MAX_HEADER_COUNT;
    expect_callback = (profile & 0x20) == 0;
    server->callbacks.on_expect_continue =
        expect_callback ? on_expect_continue : NULL;

    if (stripped_capacity < body_length + 1) {
        free(stripped);
        stripped_capacity = body_length + 1;
        stripped = malloc(stripped_capacity);
        if (stripped == NULL)
            abort();
    }
    stripped_length = strip_separators(body, body_length, stripped);

    split_record = malloc(sizeof(*split_record));
    whole_record = malloc(sizeof(*whole_record));
    if (split_record == NULL || whole_record == NULL)
        abort();
    run_once(tape, tape_length, body, body_length, stride, 1, expect_callback,
             split_record);
    run_once(tape, tape_length, stripped, stripped_length, 0, 0,
             expect_callback, whole_record);
    compare_runs(split_record, whole_record);
    free(split_record);
    free(whole_record);
    return 0;
}
