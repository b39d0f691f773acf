/*
 * Loop, listeners and connections for UVHTTP. See uvhttp.h for the contract
 * and docs/architecture.md for the life of a request.
 */
#include "uvhttp.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "CLLHTTP.h"

#define UVH_READ_BUFFER_SIZE (64 * 1024)
#define UVH_INITIAL_HEADER_CAPACITY 16
#define UVH_INITIAL_OUTPUT_CAPACITY 2048
#define UVH_LINGER_MS 2000
#define UVH_MAX_LISTENERS 8
#define UVH_MAX_WATCHERS 8

/* A timer or signal handle the embedder registered, closed at stop. */
typedef struct watcher {
    union {
        uv_handle_t handle;
        uv_timer_t timer;
        uv_signal_t signal;
    } u;
    uvh_event_cb callback;
    void *argument;
} watcher_t;

/*
 * Connection states. Every transition goes through one of the conn_* helpers
 * below; docs/architecture.md draws them.
 */
typedef enum conn_state {
    /* Reading, parsing and answering. */
    CONN_ACTIVE,
    /* Waiting for a deferred response or for output to drain; reading is
     * stopped and unparsed input waits in `pending`. */
    CONN_PAUSED,
    /* No more requests: the output is being sent, then the write side is
     * shut down. */
    CONN_DRAINING,
    /* Write side shut down; input is read and discarded until EOF or the
     * linger timer, so the peer sees the last response before any reset. */
    CONN_LINGERING,
    /* uv_close() called on the handles; freed in the last close callback. */
    CONN_CLOSED
} conn_state_t;

typedef enum pause_reason {
    PAUSE_NONE = 0,
    PAUSE_DEFERRED = 1,
    PAUSE_BACKPRESSURE = 2
} pause_reason_t;

struct uvh_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t write_req;
    uv_shutdown_t shutdown_req;
    llhttp_t parser;
    uvh_server_t *server;
    uvh_conn_t *prev;
    uvh_conn_t *next;
    uint64_t id;
    conn_state_t state;
    pause_reason_t pause;
    int open_handles;
    int eof;
    int in_request;
    int in_header_field;

    /* The buffer being parsed (the loop's read buffer or `pending`), and the
     * offset of the current request's first byte in it. */
    const char *parse_buffer;
    size_t request_start;

    /* Bytes kept between reads: either the parsed part of an unfinished
     * request (pending_parsed == pending_length) or unparsed input waiting
     * out a pause (pending_parsed == 0). */
    char *pending;
    size_t pending_length;
    size_t pending_parsed;
    size_t pending_capacity;

    uvh_request_t request;
    uvh_header_t *headers;
    uint32_t header_capacity;
    uint32_t head_bytes;
    int error_status;
    const char *error_reason;

    /* Output is appended to `out`; `writing` holds what a queued uv_write
     * still owns. The two swap when a write is queued. */
    char *out;
    size_t out_length;
    size_t out_capacity;
    char *writing;
    size_t writing_capacity;
    size_t writing_length;

    struct sockaddr_storage peer;
};

struct uvh_server {
    uv_loop_t loop;
    uv_async_t async;
    uv_tcp_t listeners[UVH_MAX_LISTENERS];
    int listener_count;
    int stopping;
    uvh_callbacks_t callbacks;
    void *context;
    uvh_limits_t limits;
    llhttp_settings_t settings;
    watcher_t watchers[UVH_MAX_WATCHERS];
    int watcher_count;
    uvh_conn_t *connections;
    uint64_t next_connection_id;
    uvh_stats_t stats;
    time_t date_second;
    char date[32];
    char read_buffer[UVH_READ_BUFFER_SIZE];
};

static void conn_feed(uvh_conn_t *conn, size_t from);
static void conn_flush(uvh_conn_t *conn);
static void conn_close(uvh_conn_t *conn);
static void conn_drain(uvh_conn_t *conn);
static void conn_start_reading(uvh_conn_t *conn);

static void log_event(uvh_server_t *server, int level, const char *message,
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
    next = *capacity == 0 ? UVH_INITIAL_OUTPUT_CAPACITY : *capacity;
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

/* ---- Parser callbacks: each records a span of the current request ---- */

static uvh_conn_t *conn_of(llhttp_t *parser) {
    return (uvh_conn_t *)parser->data;
}

static uint32_t offset_of(uvh_conn_t *conn, const char *at) {
    return (uint32_t)(at - (conn->parse_buffer + conn->request_start));
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
    conn->head_bytes = 0;
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
    return count_head(conn, length);
}

static int on_url(llhttp_t *parser, const char *at, size_t length) {
    uvh_conn_t *conn = conn_of(parser);
    uvh_span_t *target = &conn->request.target;

    if (target->length == 0)
        target->offset = offset_of(conn, at);
    target->length += (uint32_t)length;
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
    /* The 4 covers ": " and CRLF, so the count tracks the bytes on the wire. */
    return count_head(conn, length + (header->name.length == length ? 4 : 0));
}

static int on_header_field_complete(llhttp_t *parser) {
    conn_of(parser)->in_header_field = 0;
    return 0;
}

static int on_header_value(llhttp_t *parser, const char *at, size_t length) {
    uvh_conn_t *conn = conn_of(parser);
    uvh_header_t *header = &conn->headers[conn->request.header_count - 1];

    if (header->value.length == 0)
        header->value.offset = offset_of(conn, at);
    header->value.length += (uint32_t)length;
    return count_head(conn, length);
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
    return 0;
}

static int on_message_complete(llhttp_t *parser) {
    /* Stop after every request, so the request is handled outside the parser
     * and the connection can decide whether to parse the next one. */
    (void)parser;
    return HPE_PAUSED;
}

static void settings_init(llhttp_settings_t *settings) {
    llhttp_settings_init(settings);
    settings->on_message_begin = on_message_begin;
    settings->on_method = on_method;
    settings->on_url = on_url;
    settings->on_version = on_version;
    settings->on_header_field = on_header_field;
    settings->on_header_field_complete = on_header_field_complete;
    settings->on_header_value = on_header_value;
    settings->on_body = on_body;
    settings->on_message_complete = on_message_complete;
}

/* ---- Requests ---- */

/* Hands the request the parser just completed to the embedder. */
static void conn_dispatch(uvh_conn_t *conn) {
    uvh_server_t *server = conn->server;
    uvh_request_t *request = &conn->request;
    int outcome;

    request->base = conn->parse_buffer + conn->request_start;
    request->peer = (const struct sockaddr *)&conn->peer;
    request->connection_id = conn->id;
    request->http_major = llhttp_get_http_major(&conn->parser);
    request->http_minor = llhttp_get_http_minor(&conn->parser);
    request->keep_alive = (uint8_t)llhttp_should_keep_alive(&conn->parser);
    conn->in_request = 0;
    server->stats.requests++;

    outcome = server->callbacks.on_request(server->context, conn, request);
    if (outcome == UVH_DEFERRED) {
        conn->pause = PAUSE_DEFERRED;
        conn->state = CONN_PAUSED;
    } else if (!request->keep_alive || llhttp_get_upgrade(&conn->parser)) {
        conn_drain(conn);
    }
}

static void conn_reject(uvh_conn_t *conn, llhttp_errno_t error) {
    uvh_server_t *server = conn->server;
    int status = conn->error_status != 0 ? conn->error_status : 400;
    const char *reason = conn->error_reason != NULL
                             ? conn->error_reason
                             : llhttp_get_error_reason(&conn->parser);

    (void)error;
    server->stats.parse_errors++;
    server->callbacks.on_error(server->context, conn, status, reason);
    conn_drain(conn);
}

/* Copies the bytes from `from` to the end of the parse buffer into `pending`,
 * so they survive until the next read or until a pause ends. */
static int conn_keep(uvh_conn_t *conn, const char *from, const char *end) {
    size_t length = (size_t)(end - from);

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
            conn_reject(conn, error);
            return;
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
        if (conn_keep(conn, buffer + conn->request_start, end) != 0)
            goto out_of_memory;
        conn->request_start = 0;
        conn->pending_parsed = conn->pending_length;
    } else {
        conn->pending_length = 0;
        conn->pending_parsed = 0;
    }
    return;

out_of_memory:
    log_event(conn->server, UVH_LOG_ERROR, "out of memory for request", 0);
    conn_close(conn);
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
        log_event(conn->server, UVH_LOG_ERROR, "out of memory for request", 0);
        conn_close(conn);
        return;
    }
    memcpy(conn->pending + conn->pending_length, data, length);
    parsed = conn->pending_parsed;
    conn->pending_length += length;
    conn_parse(conn, conn->pending, parsed, conn->pending_length);
}

/* ---- Writing ---- */

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

static void conn_close(uvh_conn_t *conn) {
    uvh_server_t *server = conn->server;

    if (conn->state == CONN_CLOSED)
        return;
    conn->state = CONN_CLOSED;
    if (conn->prev != NULL)
        conn->prev->next = conn->next;
    else
        server->connections = conn->next;
    if (conn->next != NULL)
        conn->next->prev = conn->prev;
    server->stats.connections_open--;
    uv_timer_stop(&conn->timer);
    uv_close((uv_handle_t *)&conn->timer, on_close);
    uv_close((uv_handle_t *)&conn->tcp, on_close);
}

static void on_linger_timeout(uv_timer_t *timer) {
    conn_close((uvh_conn_t *)timer->data);
}

static void on_idle_timeout(uv_timer_t *timer) {
    uvh_conn_t *conn = (uvh_conn_t *)timer->data;

    log_event(conn->server, UVH_LOG_DEBUG, "idle connection closed", 0);
    conn_close(conn);
}

static void on_shutdown(uv_shutdown_t *request, int status) {
    uvh_conn_t *conn = (uvh_conn_t *)request->data;

    if (conn->state == CONN_CLOSED)
        return;
    if (status != 0 || conn->eof) {
        conn_close(conn);
        return;
    }
    conn->state = CONN_LINGERING;
    uv_timer_start(&conn->timer, on_linger_timeout, UVH_LINGER_MS, 0);
    conn_start_reading(conn);
}

/* Called once the output is empty: ends the connection when it is draining,
 * or continues a connection that paused for backpressure. */
static void conn_output_sent(uvh_conn_t *conn) {
    if (conn->state == CONN_DRAINING) {
        conn->shutdown_req.data = conn;
        if (uv_shutdown(&conn->shutdown_req, (uv_stream_t *)&conn->tcp,
                        on_shutdown) != 0)
            conn_close(conn);
        return;
    }
    if (conn->state == CONN_PAUSED && conn->pause == PAUSE_BACKPRESSURE) {
        conn->pause = PAUSE_NONE;
        conn->state = CONN_ACTIVE;
        uvh_conn_resume(conn);
        return;
    }
    /* Nothing buffered and nothing in progress: the keep-alive clock runs. */
    if (conn->state == CONN_ACTIVE && !conn->in_request &&
        conn->pending_length == 0 &&
        conn->server->limits.keep_alive_timeout_ms > 0)
        uv_timer_start(&conn->timer, on_idle_timeout,
                       conn->server->limits.keep_alive_timeout_ms, 0);
}

static void on_write(uv_write_t *request, int status) {
    uvh_conn_t *conn = (uvh_conn_t *)request->data;

    conn->writing_length = 0;
    if (conn->state == CONN_CLOSED)
        return;
    if (status != 0) {
        if (status != UV_EPIPE && status != UV_ECONNRESET)
            log_event(conn->server, UVH_LOG_DEBUG, "write failed", status);
        conn_close(conn);
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
            log_event(conn->server, UVH_LOG_DEBUG, "write failed", written);
        conn_close(conn);
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
        conn_close(conn);
    }
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
        conn_close(conn);
    } else if (conn->state == CONN_ACTIVE) {
        /* A request cut short by EOF gets no answer: the client is gone. */
        conn_drain(conn);
        conn_flush(conn);
    }
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
            log_event(conn->server, UVH_LOG_DEBUG, "read failed", (int)nread);
        conn_close(conn);
        return;
    }
    if (conn->state == CONN_LINGERING)
        return;
    uv_timer_stop(&conn->timer);
    conn_input(conn, buffer->base, (size_t)nread);
    conn_flush(conn);
}

static void conn_start_reading(uvh_conn_t *conn) {
    int error = uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read);

    if (error != 0) {
        log_event(conn->server, UVH_LOG_DEBUG, "read start failed", error);
        conn_close(conn);
    }
}

void uvh_conn_resume(uvh_conn_t *conn) {
    if (conn->state == CONN_PAUSED && conn->pause == PAUSE_DEFERRED) {
        conn->pause = PAUSE_NONE;
        conn->state = CONN_ACTIVE;
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

static void on_connection(uv_stream_t *listener, int status) {
    uvh_server_t *server = (uvh_server_t *)listener->data;
    uvh_conn_t *conn;
    int length = sizeof(struct sockaddr_storage);

    if (status != 0) {
        log_event(server, UVH_LOG_WARNING, "accept failed", status);
        return;
    }
    conn = calloc(1, sizeof(*conn));
    if (conn != NULL)
        conn->headers = malloc(UVH_INITIAL_HEADER_CAPACITY * sizeof(uvh_header_t));
    if (conn == NULL || conn->headers == NULL) {
        free(conn);
        log_event(server, UVH_LOG_ERROR, "out of memory for connection", 0);
        return;
    }
    conn->header_capacity = UVH_INITIAL_HEADER_CAPACITY;
    conn->server = server;
    conn->id = ++server->next_connection_id;
    conn->tcp.data = conn;
    conn->timer.data = conn;
    uv_tcp_init(&server->loop, &conn->tcp);
    uv_timer_init(&server->loop, &conn->timer);
    conn->open_handles = 2;
    conn->state = CONN_ACTIVE;
    conn->next = server->connections;
    if (server->connections != NULL)
        server->connections->prev = conn;
    server->connections = conn;
    server->stats.connections_open++;

    if (uv_accept(listener, (uv_stream_t *)&conn->tcp) != 0) {
        conn_close(conn);
        return;
    }
    server->stats.connections_total++;
    if (server->stats.connections_open > server->limits.max_connections) {
        server->stats.connections_rejected++;
        conn_close(conn);
        return;
    }
    uv_tcp_getpeername(&conn->tcp, (struct sockaddr *)&conn->peer, &length);
    uv_tcp_nodelay(&conn->tcp, 1);
    llhttp_init(&conn->parser, HTTP_REQUEST, &server->settings);
    conn->parser.data = conn;
    conn_start_reading(conn);
    /* Arms the keep-alive clock for a client that never sends a byte. */
    conn_flush(conn);
}

/* ---- Server ---- */

const char *uvh_error_name(int error) {
    return uv_err_name(error);
}

const char *uvh_error_message(int error) {
    return uv_strerror(error);
}

void uvh_limits_init(uvh_limits_t *limits) {
    limits->max_head_bytes = 16 * 1024;
    limits->max_header_count = 100;
    limits->max_target_bytes = 8 * 1024;
    limits->max_body_bytes = 1024 * 1024;
    limits->max_connections = 10000;
    limits->output_high_water = 1024 * 1024;
    limits->keep_alive_timeout_ms = 20000;
}

static void on_async(uv_async_t *async) {
    uvh_server_t *server = (uvh_server_t *)async->data;

    if (server->callbacks.on_wake != NULL)
        server->callbacks.on_wake(server->context);
}

uvh_server_t *uvh_server_create(const uvh_callbacks_t *callbacks,
                                void *context, const uvh_limits_t *limits) {
    uvh_server_t *server = calloc(1, sizeof(*server));

    if (server == NULL)
        return NULL;
    if (uv_loop_init(&server->loop) != 0) {
        free(server);
        return NULL;
    }
    /* libuv does not suppress SIGPIPE on Linux: without this, a write to a
     * peer that has gone would kill the process. */
    signal(SIGPIPE, SIG_IGN);
    server->callbacks = *callbacks;
    server->context = context;
    server->limits = *limits;
    settings_init(&server->settings);
    server->async.data = server;
    uv_async_init(&server->loop, &server->async, on_async);
    return server;
}

int uvh_server_listen(uvh_server_t *server, const char *host, int port,
                      int *bound_port) {
    uv_getaddrinfo_t resolver;
    struct addrinfo hints;
    struct sockaddr_storage address;
    int length = sizeof(address);
    uv_tcp_t *listener;
    int error;

    if (server->listener_count == UVH_MAX_LISTENERS)
        return UV_EMFILE;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    /* A NULL callback makes the lookup synchronous; this runs at start-up. */
    error = uv_getaddrinfo(&server->loop, &resolver, NULL, host, NULL, &hints);
    if (error != 0)
        return error;
    memcpy(&address, resolver.addrinfo->ai_addr, resolver.addrinfo->ai_addrlen);
    uv_freeaddrinfo(resolver.addrinfo);
    if (address.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&address)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)&address)->sin_port = htons((uint16_t)port);

    listener = &server->listeners[server->listener_count];
    uv_tcp_init(&server->loop, listener);
    listener->data = server;
    error = uv_tcp_bind(listener, (struct sockaddr *)&address, 0);
    if (error == 0)
        error = uv_listen((uv_stream_t *)listener, SOMAXCONN, on_connection);
    if (error == 0)
        error = uv_tcp_getsockname(listener, (struct sockaddr *)&address, &length);
    if (error != 0) {
        uv_close((uv_handle_t *)listener, NULL);
        /* Let the close finish so the slot is clean before reuse. */
        uv_run(&server->loop, UV_RUN_NOWAIT);
        return error;
    }
    server->listener_count++;
    if (bound_port != NULL)
        *bound_port = address.ss_family == AF_INET6
                          ? ntohs(((struct sockaddr_in6 *)&address)->sin6_port)
                          : ntohs(((struct sockaddr_in *)&address)->sin_port);
    return 0;
}

int uvh_server_run(uvh_server_t *server) {
    uv_run(&server->loop, UV_RUN_DEFAULT);
    return uv_loop_close(&server->loop);
}

void uvh_server_stop(uvh_server_t *server) {
    int index;

    if (server->stopping)
        return;
    server->stopping = 1;
    for (index = 0; index < server->listener_count; index++)
        uv_close((uv_handle_t *)&server->listeners[index], NULL);
    for (index = 0; index < server->watcher_count; index++)
        uv_close(&server->watchers[index].u.handle, NULL);
    while (server->connections != NULL)
        conn_close(server->connections);
    uv_close((uv_handle_t *)&server->async, NULL);
}

void uvh_server_destroy(uvh_server_t *server) {
    /* A server whose loop never ran still has its handles open: close them
     * and let their callbacks run before the loop goes. */
    if (!server->stopping) {
        uvh_server_stop(server);
        uv_run(&server->loop, UV_RUN_DEFAULT);
        uv_loop_close(&server->loop);
    }
    free(server);
}

void uvh_server_wake(uvh_server_t *server) {
    uv_async_send(&server->async);
}

const char *uvh_server_date(uvh_server_t *server) {
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed",
                                    "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr",
                                       "May", "Jun", "Jul", "Aug",
                                       "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    struct tm parts;

    if (now == server->date_second && server->date[0] != '\0')
        return server->date;
    gmtime_r(&now, &parts);
    snprintf(server->date, sizeof(server->date),
             "%s, %02d %s %04d %02d:%02d:%02d GMT", days[parts.tm_wday],
             parts.tm_mday, months[parts.tm_mon], parts.tm_year + 1900,
             parts.tm_hour, parts.tm_min, parts.tm_sec);
    server->date_second = now;
    return server->date;
}

uint64_t uvh_server_now(uvh_server_t *server) {
    return uv_now(&server->loop);
}

void uvh_server_stats(const uvh_server_t *server, uvh_stats_t *stats) {
    *stats = server->stats;
}

/* ---- Timers and signals ---- */

static void on_watcher_timer(uv_timer_t *timer) {
    watcher_t *watcher = (watcher_t *)timer->data;

    watcher->callback(watcher->argument);
}

static void on_watcher_signal(uv_signal_t *signal, int signum) {
    watcher_t *watcher = (watcher_t *)signal->data;

    (void)signum;
    watcher->callback(watcher->argument);
}

static watcher_t *watcher_next(uvh_server_t *server, uvh_event_cb callback,
                               void *argument) {
    watcher_t *watcher;

    if (server->watcher_count == UVH_MAX_WATCHERS || server->stopping)
        return NULL;
    watcher = &server->watchers[server->watcher_count];
    watcher->callback = callback;
    watcher->argument = argument;
    watcher->u.handle.data = watcher;
    return watcher;
}

int uvh_server_add_timer(uvh_server_t *server, uint64_t interval_ms,
                         uvh_event_cb callback, void *argument) {
    watcher_t *watcher = watcher_next(server, callback, argument);
    int error;

    if (watcher == NULL)
        return UV_ENOSPC;
    error = uv_timer_init(&server->loop, &watcher->u.timer);
    if (error != 0)
        return error;
    watcher->u.timer.data = watcher;
    server->watcher_count++;
    return uv_timer_start(&watcher->u.timer, on_watcher_timer, interval_ms,
                          interval_ms);
}

int uvh_server_add_signal(uvh_server_t *server, int signum,
                          uvh_event_cb callback, void *argument) {
    watcher_t *watcher = watcher_next(server, callback, argument);
    int error;

    if (watcher == NULL)
        return UV_ENOSPC;
    error = uv_signal_init(&server->loop, &watcher->u.signal);
    if (error != 0)
        return error;
    watcher->u.signal.data = watcher;
    server->watcher_count++;
    return uv_signal_start(&watcher->u.signal, on_watcher_signal, signum);
}
