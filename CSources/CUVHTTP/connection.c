/*
 * One connection: reading, parsing with llhttp, handing requests to the
 * embedder, writing its output, timers and closing. See uvhttp.h for the
 * contract and docs/architecture.md for the life of a request.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void conn_flush(uvh_conn_t *conn);
static void conn_drain(uvh_conn_t *conn);
static void conn_start_reading(uvh_conn_t *conn);
static void conn_timer_start(uvh_conn_t *conn, timer_kind_t kind);
static void conn_arm_request_timer(uvh_conn_t *conn);

void uvh__log(uvh_server_t *server, int level, const char *message,
              int error) {
    if (server->callbacks.on_log != NULL)
        server->callbacks.on_log(server->context, level, message,
                                 error == 0 ? NULL : uv_strerror(error));
}

/* ---- Buffers ---- */

static int grow(char **buffer, size_t *capacity, size_t needed) {
    size_t next;
    char *resized;

    if (needed <= *capacity)
        return 0;
    next = *capacity == 0 ? UVH_INITIAL_BUFFER_CAPACITY : *capacity;
    while (next < needed)
        next *= 2;
    resized = realloc(*buffer, next);
    if (resized == NULL)
        return -1;
    *buffer = resized;
    *capacity = next;
    return 0;
}

char *uvh_conn_reserve(uvh_conn_t *conn, size_t length) {
    if (grow(&conn->out, &conn->out_capacity, conn->out_length + length) != 0)
        return NULL;
    return conn->out + conn->out_length;
}

void uvh_conn_commit(uvh_conn_t *conn, size_t length) {
    conn->out_length += length;
}

static void conn_append(uvh_conn_t *conn, const char *bytes, size_t length) {
    char *space = uvh_conn_reserve(conn, length);

    if (space == NULL)
        return;
    memcpy(space, bytes, length);
    uvh_conn_commit(conn, length);
}

/* ---- Parser callbacks: each records a span of the current request ---- */

static uvh_conn_t *conn_of(llhttp_t *parser) {
    return (uvh_conn_t *)parser->data;
}

static uint32_t offset_of(uvh_conn_t *conn, const char *at) {
    return (uint32_t)(at - (conn->parse_buffer + conn->request_start));
}

/* Records that the request's spans reach `at` + `length`. */
static void note_span(uvh_conn_t *conn, const char *at, size_t length) {
    uint32_t end = offset_of(conn, at) + (uint32_t)length;

    if (end > conn->span_end)
        conn->span_end = end;
}

static int fail(uvh_conn_t *conn, int status, const char *reason) {
    conn->error_status = status;
    conn->error_reason = reason;
    return HPE_USER;
}

/* Counts request-line and header bytes against max_head_bytes. */
static int count_head(uvh_conn_t *conn, size_t length) {
    conn->head_bytes += (uint32_t)length;
    if (conn->head_bytes > conn->server->limits.max_head_bytes)
        return fail(conn, 431, "request header fields too large");
    return 0;
}

static int on_message_begin(llhttp_t *parser) {
    uvh_conn_t *conn = conn_of(parser);

    memset(&conn->request, 0, sizeof(conn->request));
    conn->request.headers = conn->headers;
    conn->in_request = 0;
    conn->in_header_field = 0;
    conn->in_trailers = 0;
    conn->message_complete = 0;
    conn->head_bytes = 0;
    conn->span_end = 0;
    conn->in_body = 0;
    /* The header deadline is armed only if the request is still incomplete
     * when the read is used up (conn_arm_request_timer), so requests that
     * arrive whole cost no timer operation. */
    conn->request_began_ms = uv_now(&conn->server->loop);
    return 0;
}

static int on_method(llhttp_t *parser, const char *at, size_t length) {
    uvh_conn_t *conn = conn_of(parser);

    if (!conn->in_request) {
        conn->in_request = 1;
        conn->request_start = (size_t)(at - conn->parse_buffer);
        conn->request.method.offset = 0;
    }
    conn->request.method.length += (uint32_t)length;
    note_span(conn, at, length);
    return count_head(conn, length);
}

static int on_url(llhttp_t *parser, const char *at, size_t length) {
    uvh_conn_t *conn = conn_of(parser);
    uvh_span_t *target = &conn->request.target;

    if (target->length == 0)
        target->offset = offset_of(conn, at);
    target->length += (uint32_t)length;
    note_span(conn, at, length);
    if (target->length > conn->server->limits.max_target_bytes)
        return fail(conn, 414, "URI too long");
    return count_head(conn, length);
}

static int on_version(llhttp_t *parser, const char *at, size_t length) {
    (void)at;
    return count_head(conn_of(parser), length);
}

static int on_header_field(llhttp_t *parser, const char *at, size_t length) {
    uvh_conn_t *conn = conn_of(parser);
    uvh_request_t *request = &conn->request;
    uvh_header_t *header;

    if (conn->in_trailers)
        return count_head(conn, length);
    if (!conn->in_header_field) {
        if (request->header_count >= conn->server->limits.max_header_count)
            return fail(conn, 431, "too many header fields");
        if (request->header_count == conn->header_capacity) {
            uint32_t capacity = conn->header_capacity * 2;
            uvh_header_t *resized =
                realloc(conn->headers, capacity * sizeof(uvh_header_t));
            if (resized == NULL)
                return fail(conn, 503, "out of memory");
            conn->headers = resized;
            conn->header_capacity = capacity;
            request->headers = resized;
        }
        header = &conn->headers[request->header_count++];
        header->name.offset = offset_of(conn, at);
        header->name.length = 0;
        header->value.offset = 0;
        header->value.length = 0;
        conn->in_header_field = 1;
    }
    header = &conn->headers[request->header_count - 1];
    header->name.length += (uint32_t)length;
    note_span(conn, at, length);
    /* The 4 covers ": " and CRLF, so the count tracks the bytes on the wire. */
    return count_head(conn, length + (header->name.length == length ? 4 : 0));
}

static int on_header_field_complete(llhttp_t *parser) {
    conn_of(parser)->in_header_field = 0;
    return 0;
}

static int on_header_value(llhttp_t *parser, const char *at, size_t length) {
    uvh_conn_t *conn = conn_of(parser);
    uvh_header_t *header;

    if (conn->in_trailers)
        return count_head(conn, length);
    header = &conn->headers[conn->request.header_count - 1];
    if (header->value.length == 0)
        header->value.offset = offset_of(conn, at);
    header->value.length += (uint32_t)length;
    note_span(conn, at, length);
    return count_head(conn, length);
}

/* llhttp skips the whitespace before a field value but keeps the whitespace
 * after it, which is not part of the value (RFC 9110 section 5.5). */
static int on_header_value_complete(llhttp_t *parser) {
    uvh_conn_t *conn = conn_of(parser);
    uvh_header_t *header;
    const char *value;

    if (conn->request.header_count == 0 || conn->in_trailers)
        return 0;
    header = &conn->headers[conn->request.header_count - 1];
    value = conn->parse_buffer + conn->request_start + header->value.offset;
    while (header->value.length > 0 &&
           (value[header->value.length - 1] == ' ' ||
            value[header->value.length - 1] == '\t'))
        header->value.length--;
    return 0;
}

/* Fills the parts of the request that the parser does not report as data. */
static void conn_fill_request(uvh_conn_t *conn) {
    uvh_request_t *request = &conn->request;
    uint32_t limit = conn->server->limits.max_requests_per_connection;

    request->base = conn->parse_buffer + conn->request_start;
    request->peer = (const struct sockaddr *)&conn->peer;
    request->connection_id = conn->id;
    request->http_major = llhttp_get_http_major(&conn->parser);
    request->http_minor = llhttp_get_http_minor(&conn->parser);
    request->keep_alive = (uint8_t)llhttp_should_keep_alive(&conn->parser);
    if (conn->server->stopping ||
        (limit > 0 && conn->requests_served + 1 >= limit))
        request->keep_alive = 0;
}

/* Answers `Expect: 100-continue` once the header is in: `100 Continue` when
 * the embedder will read the body, else its final status. */
static int conn_expect_continue(uvh_conn_t *conn) {
    static const char interim[] = "HTTP/1.1 100 Continue\r\n\r\n";
    uvh_server_t *server = conn->server;
    int status = UVH_CONTINUE;

    if (server->callbacks.on_expect_continue != NULL)
        status = server->callbacks.on_expect_continue(server->context, conn,
                                                      &conn->request);
    if (status != UVH_CONTINUE) {
        conn->error_answered = 1;
        return fail(conn, status, "expectation answered with a final status");
    }
    conn_append(conn, interim, sizeof(interim) - 1);
    conn_flush(conn);
    return 0;
}

static int on_headers_complete(llhttp_t *parser) {
    uvh_conn_t *conn = conn_of(parser);
    const char *reason = NULL;
    int expect_continue = 0;
    int has_body = (parser->flags & F_CHUNKED) ||
                   ((parser->flags & F_CONTENT_LENGTH) &&
                    parser->content_length > 0);
    int status;

    conn_fill_request(conn);
    /* The framing checks and the embedder see the header only: trailer
     * fields after a chunked body could otherwise add a Host or a
     * Connection after the checks ran (RFC 9110 section 6.5.1). */
    conn->in_trailers = 1;
    status = uvh__check_framing(&conn->request, &reason, &expect_continue);
    if (status != 0)
        return fail(conn, status, reason);
    /* A declared length over the limit is refused before any body byte is
     * read, so the client learns at once. */
    if ((parser->flags & F_CONTENT_LENGTH) &&
        parser->content_length > conn->server->limits.max_body_bytes)
        return fail(conn, 413, "content too large");
    if (!has_body)
        return 0;
    conn->in_body = 1;
    if (expect_continue)
        return conn_expect_continue(conn);
    return 0;
}

static int on_body(llhttp_t *parser, const char *at, size_t length) {
    uvh_conn_t *conn = conn_of(parser);
    uvh_span_t *body = &conn->request.body;
    char *base = (char *)conn->parse_buffer + conn->request_start;
    char *end;

    if ((uint64_t)body->length + length > conn->server->limits.max_body_bytes)
        return fail(conn, 413, "content too large");
    if (body->length == 0)
        body->offset = offset_of(conn, at);
    /* Chunked bodies arrive with framing between the chunks. The framing has
     * been parsed already, so each chunk moves down over it and the body ends
     * up contiguous. */
    end = base + body->offset + body->length;
    if (end != at)
        memmove(end, at, length);
    body->length += (uint32_t)length;
    conn->span_end = body->offset + body->length;
    return 0;
}

static int on_chunk_extension(llhttp_t *parser, const char *at,
                              size_t length) {
    uvh_conn_t *conn = conn_of(parser);

    (void)at;
    conn->chunk_extension_bytes += (uint32_t)length;
    if (conn->chunk_extension_bytes >
        conn->server->limits.max_chunk_extension_bytes)
        return fail(conn, 413, "chunk extensions too large");
    return 0;
}

static int on_chunk_complete(llhttp_t *parser) {
    conn_of(parser)->chunk_extension_bytes = 0;
    return 0;
}

static int on_message_complete(llhttp_t *parser) {
    uvh_conn_t *conn = conn_of(parser);

    conn->message_complete = 1;
    if (conn->timer_kind == TIMER_HEADER || conn->timer_kind == TIMER_BODY)
        conn_timer_start(conn, TIMER_NONE);
    /* Stop after every request, so the request is handled outside the parser
     * and the connection can decide whether to parse the next one. */
    return HPE_PAUSED;
}

void uvh__settings_init(llhttp_settings_t *settings) {
    llhttp_settings_init(settings);
    settings->on_message_begin = on_message_begin;
    settings->on_method = on_method;
    settings->on_url = on_url;
    settings->on_version = on_version;
    settings->on_header_field = on_header_field;
    settings->on_header_field_complete = on_header_field_complete;
    settings->on_header_value = on_header_value;
    settings->on_header_value_complete = on_header_value_complete;
    settings->on_headers_complete = on_headers_complete;
    settings->on_body = on_body;
    settings->on_chunk_extension_name = on_chunk_extension;
    settings->on_chunk_extension_value = on_chunk_extension;
    settings->on_chunk_complete = on_chunk_complete;
    settings->on_message_complete = on_message_complete;
}

/* ---- Requests ---- */

/* Hands the request the parser just completed to the embedder. */
static void conn_dispatch(uvh_conn_t *conn) {
    uvh_server_t *server = conn->server;
    uvh_request_t *request = &conn->request;
    int outcome;

    int ends;

    conn_fill_request(conn);
    conn->in_request = 0;
    conn->message_complete = 0;
    conn->requests_served++;
    server->stats.requests++;

    /* After an upgrade request llhttp parses no more HTTP, and this server
     * performs no upgrade, so the connection ends after the answer. */
    ends = !request->keep_alive || llhttp_get_upgrade(&conn->parser);
    outcome = server->callbacks.on_request(server->context, conn, request);
    if (conn->state == CONN_CLOSED)
        return;
    if (outcome == UVH_DEFERRED) {
        conn->pause = PAUSE_DEFERRED;
        conn->state = CONN_PAUSED;
        conn->end_after_deferred = ends;
    } else if (ends) {
        conn_drain(conn);
    }
}

/* Answers a request the parser or a limit rejected, then ends the
 * connection. Earlier pipelined responses are already complete in the
 * output, because handlers answer before the next request is parsed. */
static void conn_reject(uvh_conn_t *conn) {
    uvh_server_t *server = conn->server;
    int status = conn->error_status != 0 ? conn->error_status : 400;
    const char *reason = conn->error_reason != NULL
                             ? conn->error_reason
                             : llhttp_get_error_reason(&conn->parser);

    conn->in_request = 0;
    if (conn->error_answered) {
        conn_drain(conn);
        return;
    }
    server->stats.parse_errors++;
    server->callbacks.on_error(server->context, conn, status, reason);
    conn_drain(conn);
}

/* Copies the bytes from `from` to the end of the parse buffer into `pending`,
 * so they survive until the next read or until a pause ends. */
static int conn_keep(uvh_conn_t *conn, const char *from, const char *end) {
    size_t length = (size_t)(end - from);

    /* Nothing to keep: `pending` may never have been allocated. */
    if (length == 0) {
        conn->pending_length = 0;
        return 0;
    }
    if (conn->parse_buffer == conn->pending) {
        memmove(conn->pending, from, length);
    } else {
        if (grow(&conn->pending, &conn->pending_capacity, length) != 0)
            return -1;
        memcpy(conn->pending, from, length);
    }
    conn->pending_length = length;
    return 0;
}

/*
 * Parses the parse buffer from `from` to its end, answering each complete
 * request in turn, then keeps whatever the next read or the end of a pause
 * still needs.
 */
static void conn_parse(uvh_conn_t *conn, const char *buffer, size_t from,
                       size_t length) {
    const char *position = buffer + from;
    const char *end = buffer + length;
    llhttp_errno_t error;

    conn->parse_buffer = buffer;
    while (position < end && conn->state == CONN_ACTIVE) {
        error = llhttp_execute(&conn->parser, position, (size_t)(end - position));
        if (error == HPE_OK) {
            position = end;
            break;
        }
        if (error != HPE_PAUSED && error != HPE_PAUSED_UPGRADE) {
            if (conn->state != CONN_CLOSED)
                conn_reject(conn);
            return;
        }
        /* A callback may have closed the connection (a failed write of
         * 100 Continue), and only a pause from on_message_complete is a
         * request: llhttp repeats HPE_PAUSED_UPGRADE on every later call. */
        if (conn->state != CONN_ACTIVE || !conn->message_complete) {
            conn_drain(conn);
            break;
        }
        position = llhttp_get_error_pos(&conn->parser);
        llhttp_resume(&conn->parser);
        conn_dispatch(conn);
        if (conn->state == CONN_ACTIVE &&
            conn->out_length + conn->writing_length >
                conn->server->limits.output_high_water) {
            conn->pause = PAUSE_BACKPRESSURE;
            conn->state = CONN_PAUSED;
        }
    }

    if (conn->state == CONN_PAUSED) {
        uv_read_stop((uv_stream_t *)&conn->tcp);
        if (conn_keep(conn, position, end) != 0)
            goto out_of_memory;
        conn->pending_parsed = 0;
    } else if (conn->state == CONN_ACTIVE && conn->in_request) {
        /* The parser has consumed every byte up to `end`, so only the bytes
         * the request's spans cover are kept. Chunk framing therefore never
         * piles up: memory stays within the head and body limits. */
        const char *from = buffer + conn->request_start;

        if (conn_keep(conn, from, from + conn->span_end) != 0)
            goto out_of_memory;
        conn_arm_request_timer(conn);
        conn->request_start = 0;
        conn->pending_parsed = conn->pending_length;
    } else {
        conn->pending_length = 0;
        conn->pending_parsed = 0;
    }
    return;

out_of_memory:
    uvh__log(conn->server, UVH_LOG_ERROR, "out of memory for request", 0);
    uvh__conn_close(conn);
}

/* Parses `length` new bytes of input, appending them to `pending` first when
 * an unfinished request is kept there. */
static void conn_input(uvh_conn_t *conn, const char *data, size_t length) {
    size_t parsed;

    if (conn->pending_length == 0) {
        conn_parse(conn, data, 0, length);
        return;
    }
    if (grow(&conn->pending, &conn->pending_capacity,
             conn->pending_length + length) != 0) {
        uvh__log(conn->server, UVH_LOG_ERROR, "out of memory for request", 0);
        uvh__conn_close(conn);
        return;
    }
    memcpy(conn->pending + conn->pending_length, data, length);
    parsed = conn->pending_parsed;
    conn->pending_length += length;
    conn_parse(conn, conn->pending, parsed, conn->pending_length);
}

/* ---- Closing ---- */

static void on_close(uv_handle_t *handle) {
    uvh_conn_t *conn = (uvh_conn_t *)handle->data;
    uvh_server_t *server = conn->server;

    if (--conn->open_handles > 0)
        return;
    if (conn->pause == PAUSE_DEFERRED && server->callbacks.on_deferred_close)
        server->callbacks.on_deferred_close(server->context, conn->id);
    free(conn->pending);
    free(conn->headers);
    free(conn->out);
    free(conn->writing);
    free(conn);
}

void uvh__conn_close(uvh_conn_t *conn) {
    uvh_server_t *server = conn->server;

    if (conn->state == CONN_CLOSED)
        return;
    conn->state = CONN_CLOSED;
    if (conn->prev != NULL)
        conn->prev->next = conn->next;
    else if (server->connections == conn)
        server->connections = conn->next;
    if (conn->next != NULL)
        conn->next->prev = conn->prev;
    conn->prev = NULL;
    conn->next = NULL;
    if (!conn->rejected)
        server->stats.connections_open--;
    uv_close((uv_handle_t *)&conn->timer, on_close);
    uv_close((uv_handle_t *)&conn->write_timer, on_close);
    uv_close((uv_handle_t *)&conn->tcp, on_close);
    uvh__server_connection_closed(server);
}

/* Whether a graceful stop may close the connection at once: nothing is
 * buffered, in progress or waiting to be written. */
int uvh__conn_is_idle(const uvh_conn_t *conn) {
    if (conn->state == CONN_LINGERING)
        return 1;
    return conn->state == CONN_ACTIVE && !conn->in_request &&
           conn->pending_length == 0 && conn->out_length == 0 &&
           conn->writing_length == 0;
}

/* ---- Timers ---- */

static void on_timeout(uv_timer_t *timer) {
    uvh_conn_t *conn = (uvh_conn_t *)timer->data;
    uvh_server_t *server = conn->server;
    timer_kind_t kind = conn->timer_kind;

    conn->timer_kind = TIMER_NONE;
    switch (kind) {
    case TIMER_HEADER:
    case TIMER_BODY:
        if (kind == TIMER_HEADER)
            server->stats.header_timeouts++;
        else
            server->stats.body_timeouts++;
        uvh__log(server, UVH_LOG_DEBUG,
                 kind == TIMER_HEADER ? "request header timed out"
                                      : "request body timed out",
                 0);
        /* The parser stopped mid-request, so nothing after it is parsed;
         * 408 goes out after any earlier responses. */
        if (conn->state == CONN_ACTIVE) {
            conn->error_status = 408;
            conn->error_reason = "request timed out";
            conn_reject(conn);
            conn_flush(conn);
        } else {
            uvh__conn_close(conn);
        }
        break;
    case TIMER_IDLE:
        /* Activity since the timer started: a connection busy now is left
         * alone, one idle again waits out the rest of its period. */
        if (!uvh__conn_is_idle(conn))
            break;
        if (uv_now(&server->loop) - conn->idle_since_ms <
            server->limits.keep_alive_timeout_ms) {
            conn->timer_kind = TIMER_IDLE;
            uv_timer_start(&conn->timer, on_timeout,
                           server->limits.keep_alive_timeout_ms -
                               (uv_now(&server->loop) - conn->idle_since_ms),
                           0);
            break;
        }
        server->stats.idle_timeouts++;
        uvh__log(server, UVH_LOG_DEBUG, "idle connection closed", 0);
        uvh__conn_close(conn);
        break;
    case TIMER_LINGER:
    case TIMER_NONE:
        uvh__conn_close(conn);
        break;
    }
}

/* Starts the read-side timer for `kind`, replacing whatever it measured. */
static void conn_timer_start(uvh_conn_t *conn, timer_kind_t kind) {
    const uvh_limits_t *limits = &conn->server->limits;
    uint64_t timeout = 0;

    switch (kind) {
    case TIMER_HEADER: timeout = limits->header_timeout_ms; break;
    case TIMER_BODY: timeout = limits->body_timeout_ms; break;
    case TIMER_IDLE: timeout = limits->keep_alive_timeout_ms; break;
    case TIMER_LINGER: timeout = UVH_LINGER_MS; break;
    case TIMER_NONE: break;
    }
    if (timeout == 0) {
        if (conn->timer_kind != TIMER_NONE)
            uv_timer_stop(&conn->timer);
        conn->timer_kind = TIMER_NONE;
        return;
    }
    conn->timer_kind = kind;
    uv_timer_start(&conn->timer, on_timeout, timeout, 0);
}

/* Arms the header deadline, counted from the request's first byte, or the
 * body idle timer, for a request still incomplete after a read. */
static void conn_arm_request_timer(uvh_conn_t *conn) {
    uint64_t timeout = conn->server->limits.header_timeout_ms;
    uint64_t elapsed;

    if (conn->in_body) {
        if (conn->timer_kind != TIMER_BODY)
            conn_timer_start(conn, TIMER_BODY);
        return;
    }
    if (conn->timer_kind == TIMER_HEADER)
        return;
    if (timeout == 0) {
        conn_timer_start(conn, TIMER_NONE);
        return;
    }
    elapsed = uv_now(&conn->server->loop) - conn->request_began_ms;
    conn->timer_kind = TIMER_HEADER;
    uv_timer_start(&conn->timer, on_timeout,
                   elapsed >= timeout ? 1 : timeout - elapsed, 0);
}

static void on_write_timeout(uv_timer_t *timer) {
    uvh_conn_t *conn = (uvh_conn_t *)timer->data;
    size_t queued =
        uv_stream_get_write_queue_size((const uv_stream_t *)&conn->tcp);

    /* The timeout is for a write making no progress: a client that took
     * some of the queued bytes since the clock started gets a new period. */
    if (queued < conn->write_queue_mark) {
        conn->write_queue_mark = queued;
        uv_timer_start(&conn->write_timer, on_write_timeout,
                       conn->server->limits.write_timeout_ms, 0);
        return;
    }
    conn->server->stats.write_timeouts++;
    uvh__log(conn->server, UVH_LOG_DEBUG, "write timed out", 0);
    uvh__conn_close(conn);
}

/* ---- Writing ---- */

static void on_shutdown(uv_shutdown_t *request, int status) {
    uvh_conn_t *conn = (uvh_conn_t *)request->data;

    if (conn->state == CONN_CLOSED)
        return;
    if (status != 0 || conn->eof || conn->server->stopping) {
        uvh__conn_close(conn);
        return;
    }
    conn->state = CONN_LINGERING;
    conn_timer_start(conn, TIMER_LINGER);
    conn_start_reading(conn);
}

/* Called once the output is empty: ends the connection when it is draining,
 * or continues a connection that paused for backpressure. */
static void conn_output_sent(uvh_conn_t *conn) {
    if (conn->state == CONN_DRAINING && conn->detached) {
        uvh__conn_close(conn);
        return;
    }
    if (conn->state == CONN_DRAINING) {
        conn->shutdown_req.data = conn;
        if (uv_shutdown(&conn->shutdown_req, (uv_stream_t *)&conn->tcp,
                        on_shutdown) != 0)
            uvh__conn_close(conn);
        return;
    }
    if (conn->state == CONN_PAUSED && conn->pause == PAUSE_BACKPRESSURE) {
        conn->pause = PAUSE_NONE;
        conn->state = CONN_ACTIVE;
        uvh_conn_resume(conn);
        return;
    }
    if (conn->state == CONN_ACTIVE && conn->server->stopping &&
        uvh__conn_is_idle(conn)) {
        uvh__conn_close(conn);
        return;
    }
    /* Nothing buffered and nothing in progress: the keep-alive clock runs. */
    if (conn->state == CONN_ACTIVE && !conn->in_request &&
        conn->pending_length == 0) {
        if (conn->timer_kind != TIMER_IDLE ||
            conn->idle_since_requests != conn->requests_served) {
            conn->idle_since_ms = uv_now(&conn->server->loop);
            conn->idle_since_requests = conn->requests_served;
        }
        if (conn->timer_kind != TIMER_IDLE)
            conn_timer_start(conn, TIMER_IDLE);
    }
}

static void on_write(uv_write_t *request, int status) {
    uvh_conn_t *conn = (uvh_conn_t *)request->data;

    conn->writing_length = 0;
    if (conn->state == CONN_CLOSED)
        return;
    uv_timer_stop(&conn->write_timer);
    if (status != 0) {
        if (status != UV_EPIPE && status != UV_ECONNRESET)
            uvh__log(conn->server, UVH_LOG_DEBUG, "write failed", status);
        uvh__conn_close(conn);
        return;
    }
    conn_flush(conn);
}

/* Sends the output: as much as the kernel takes at once, and the rest through
 * a queued write that owns its buffer until on_write. */
static void conn_flush(uvh_conn_t *conn) {
    uv_buf_t buffer;
    int written;
    char *swap;
    size_t swap_capacity;

    if (conn->state == CONN_CLOSED || conn->writing_length > 0)
        return;
    if (conn->detached) {
        conn->detached_output_bytes += conn->out_length;
        conn->out_length = 0;
    }
    if (conn->out_length == 0) {
        conn_output_sent(conn);
        return;
    }
    buffer = uv_buf_init(conn->out, (unsigned int)conn->out_length);
    written = uv_try_write((uv_stream_t *)&conn->tcp, &buffer, 1);
    if (written == UV_EAGAIN) {
        written = 0;
    } else if (written < 0) {
        if (written != UV_EPIPE && written != UV_ECONNRESET)
            uvh__log(conn->server, UVH_LOG_DEBUG, "write failed", written);
        uvh__conn_close(conn);
        return;
    }
    if ((size_t)written == conn->out_length) {
        conn->out_length = 0;
        conn_output_sent(conn);
        return;
    }

    swap = conn->writing;
    swap_capacity = conn->writing_capacity;
    conn->writing = conn->out;
    conn->writing_capacity = conn->out_capacity;
    conn->writing_length = conn->out_length;
    conn->out = swap;
    conn->out_capacity = swap_capacity;
    conn->out_length = 0;

    buffer = uv_buf_init(conn->writing + written,
                         (unsigned int)(conn->writing_length - (size_t)written));
    conn->write_req.data = conn;
    if (uv_write(&conn->write_req, (uv_stream_t *)&conn->tcp, &buffer, 1,
                 on_write) != 0) {
        conn->writing_length = 0;
        uvh__conn_close(conn);
        return;
    }
    if (conn->server->limits.write_timeout_ms > 0) {
        conn->write_queue_mark =
            uv_stream_get_write_queue_size((const uv_stream_t *)&conn->tcp);
        uv_timer_start(&conn->write_timer, on_write_timeout,
                       conn->server->limits.write_timeout_ms, 0);
    }
}

const struct sockaddr *uvh_conn_peer(const uvh_conn_t *conn) {
    return (const struct sockaddr *)&conn->peer;
}

void uvh_conn_close_after_output(uvh_conn_t *conn) {
    conn_drain(conn);
}

/* Stops taking requests; the connection ends once its output is sent. */
static void conn_drain(uvh_conn_t *conn) {
    if (conn->state == CONN_CLOSED || conn->state == CONN_DRAINING ||
        conn->state == CONN_LINGERING)
        return;
    conn->state = CONN_DRAINING;
    conn->pause = PAUSE_NONE;
    conn_timer_start(conn, TIMER_NONE);
    uv_read_stop((uv_stream_t *)&conn->tcp);
}

/* ---- Reading ---- */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buffer) {
    uvh_conn_t *conn = (uvh_conn_t *)handle->data;

    (void)suggested;
    *buffer = uv_buf_init(conn->server->read_buffer, UVH_READ_BUFFER_SIZE);
}

static void conn_end_of_input(uvh_conn_t *conn) {
    conn->eof = 1;
    uv_read_stop((uv_stream_t *)&conn->tcp);
    if (conn->state == CONN_LINGERING) {
        uvh__conn_close(conn);
    } else if (conn->state == CONN_ACTIVE) {
        /* A request cut short by EOF gets no answer: the client is gone. */
        conn_drain(conn);
        conn_flush(conn);
    }
}

/* Handles bytes read: the path every input byte takes. */
static void conn_on_data(uvh_conn_t *conn, const char *data, size_t length) {
    if (conn->state == CONN_LINGERING)
        return;
    /* Bytes read leave the keep-alive clock running: on_message_begin
     * replaces it with the header deadline once a request begins, so empty
     * lines before a request cannot hold an idle connection open. */
    if (conn->timer_kind == TIMER_BODY)
        conn_timer_start(conn, TIMER_BODY);
    conn_input(conn, data, length);
    conn_flush(conn);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buffer) {
    uvh_conn_t *conn = (uvh_conn_t *)stream->data;

    if (nread == 0)
        return;
    if (nread < 0) {
        if (nread == UV_EOF) {
            conn_end_of_input(conn);
            return;
        }
        if (nread != UV_ECONNRESET)
            uvh__log(conn->server, UVH_LOG_DEBUG, "read failed", (int)nread);
        uvh__conn_close(conn);
        return;
    }
    conn_on_data(conn, buffer->base, (size_t)nread);
}

static void conn_start_reading(uvh_conn_t *conn) {
    int error;

    if (conn->detached)
        return;
    error = uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read);
    if (error != 0) {
        uvh__log(conn->server, UVH_LOG_DEBUG, "read start failed", error);
        uvh__conn_close(conn);
    }
}

void uvh_conn_resume(uvh_conn_t *conn) {
    if (conn->state == CONN_PAUSED && conn->pause == PAUSE_DEFERRED) {
        conn->pause = PAUSE_NONE;
        conn->state = CONN_ACTIVE;
        /* Bytes after a request that ends the connection are never
         * parsed, as for requests answered at once. */
        if (conn->end_after_deferred)
            conn_drain(conn);
    }
    if (conn->state == CONN_ACTIVE && conn->pending_length > conn->pending_parsed)
        conn_parse(conn, conn->pending, 0, conn->pending_length);
    if (conn->state == CONN_ACTIVE && conn->eof)
        conn_drain(conn);
    if (conn->state == CONN_ACTIVE)
        conn_start_reading(conn);
    conn_flush(conn);
}

/* ---- Accepting ---- */

/* Allocates a connection with its handles initialised, not yet listed. */
static uvh_conn_t *conn_new(uvh_server_t *server) {
    uvh_conn_t *conn = calloc(1, sizeof(*conn));

    if (conn != NULL)
        conn->headers =
            malloc(UVH_INITIAL_HEADER_CAPACITY * sizeof(uvh_header_t));
    if (conn == NULL || conn->headers == NULL) {
        free(conn);
        uvh__log(server, UVH_LOG_ERROR, "out of memory for connection", 0);
        return NULL;
    }
    conn->header_capacity = UVH_INITIAL_HEADER_CAPACITY;
    conn->server = server;
    conn->id = ++server->next_connection_id;
    conn->tcp.data = conn;
    conn->timer.data = conn;
    conn->write_timer.data = conn;
    uv_tcp_init(&server->loop, &conn->tcp);
    uv_timer_init(&server->loop, &conn->timer);
    uv_timer_init(&server->loop, &conn->write_timer);
    conn->open_handles = 3;
    conn->state = CONN_ACTIVE;
    llhttp_init(&conn->parser, HTTP_REQUEST, &server->settings);
    conn->parser.data = conn;
    return conn;
}

static void conn_list(uvh_conn_t *conn) {
    uvh_server_t *server = conn->server;

    conn->next = server->connections;
    if (server->connections != NULL)
        server->connections->prev = conn;
    server->connections = conn;
    server->stats.connections_open++;
}

void uvh__conn_accept(uvh_server_t *server, uv_stream_t *listener) {
    uvh_conn_t *conn = conn_new(server);
    int length = sizeof(struct sockaddr_storage);

    if (conn == NULL)
        return;
    if (uv_accept(listener, (uv_stream_t *)&conn->tcp) != 0) {
        conn->rejected = 1;
        uvh__conn_close(conn);
        return;
    }
    server->stats.connections_total++;
    if (server->stats.connections_open >= server->limits.max_connections) {
        server->stats.connections_rejected++;
        conn->rejected = 1;
        uvh__conn_close(conn);
        return;
    }
    conn_list(conn);
    uv_tcp_getpeername(&conn->tcp, (struct sockaddr *)&conn->peer, &length);
    uv_tcp_nodelay(&conn->tcp, 1);
    conn_start_reading(conn);
    /* Arms the keep-alive clock for a client that never sends a byte. */
    conn_flush(conn);
}

/* ---- Connections without a socket ---- */

uvh_conn_t *uvh__test_conn_open(uvh_server_t *server) {
    uvh_conn_t *conn = conn_new(server);
    struct sockaddr_in *peer;

    if (conn == NULL)
        return NULL;
    conn->detached = 1;
    peer = (struct sockaddr_in *)&conn->peer;
    peer->sin_family = AF_INET;
    peer->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    conn_list(conn);
    return conn;
}

void uvh__test_conn_feed(uvh_conn_t *conn, char *data, size_t length) {
    if (conn->state == CONN_CLOSED || length == 0)
        return;
    conn_on_data(conn, data, length);
}

void uvh__test_conn_end(uvh_conn_t *conn) {
    if (conn->state != CONN_CLOSED)
        conn_end_of_input(conn);
}
