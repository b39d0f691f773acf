/*
 * The C shim under UVHTTP: it owns the libuv loop, the listeners, the
 * connections and one llhttp parser per connection. It assembles requests,
 * hands each complete one to the embedder as borrowed spans, and writes the
 * bytes the embedder appends to a connection's output buffer once per read
 * batch. It makes no decision about routes or response content.
 *
 * Every function here runs on the loop thread, except uvh_server_wake(),
 * which any thread may call.
 */
#ifndef UVHTTP_H
#define UVHTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct uvh_server uvh_server_t;
typedef struct uvh_conn uvh_conn_t;

/* A byte range of a request, relative to uvh_request_t.base. */
typedef struct uvh_span {
    uint32_t offset;
    uint32_t length;
} uvh_span_t;

typedef struct uvh_header {
    uvh_span_t name;
    uvh_span_t value;
} uvh_header_t;

/*
 * One complete request. Every pointer and span in it stays valid only until
 * the on_request callback returns: the bytes live in a buffer that the next
 * read reuses.
 */
typedef struct uvh_request {
    const char *base;
    uvh_span_t method;
    uvh_span_t target;
    const uvh_header_t *headers;
    uint32_t header_count;
    uvh_span_t body;
    const struct sockaddr *peer;
    uint64_t connection_id;
    uint8_t http_major;
    uint8_t http_minor;
    /* Nonzero when HTTP/1.0 or 1.1 rules and the Connection header allow the
     * connection to stay open after this request. */
    uint8_t keep_alive;
} uvh_request_t;

/* Return values of on_request. */
enum {
    /* The response is in the output buffer. */
    UVH_RESPONDED = 0,
    /* The embedder answers later and then calls uvh_conn_resume(); the
     * connection reads nothing more until then. */
    UVH_DEFERRED = 1
};

/* Return value of on_expect_continue that lets the client send its body. */
enum { UVH_CONTINUE = 0 };

enum uvh_log_level {
    UVH_LOG_ERROR = 0,
    UVH_LOG_WARNING = 1,
    UVH_LOG_INFO = 2,
    UVH_LOG_DEBUG = 3
};

typedef struct uvh_callbacks {
    /* A complete request arrived. Returns UVH_RESPONDED or UVH_DEFERRED. */
    int (*on_request)(void *context, uvh_conn_t *conn,
                      const uvh_request_t *request);
    /* The request on this connection cannot be served (a parse error or a
     * limit). The embedder appends a response with the given status; the
     * shim then closes the connection after writing it. */
    void (*on_error)(void *context, uvh_conn_t *conn, int status,
                     const char *reason);
    /* A request with `Expect: 100-continue` has a complete header and its
     * body is still to come. Returns UVH_CONTINUE to have the shim send
     * `100 Continue` and read the body. Otherwise the embedder has appended
     * a final response (such as 404 or 405) and returns its status; the
     * shim then closes the connection without reading the body. NULL always
     * continues. The request's body span is empty. */
    int (*on_expect_continue)(void *context, uvh_conn_t *conn,
                              const uvh_request_t *request);
    /* A connection whose request was deferred closed before
     * uvh_conn_resume(); the embedder must forget it. */
    void (*on_deferred_close)(void *context, uint64_t connection_id);
    /* uvh_server_wake() was called from some thread. */
    void (*on_wake)(void *context);
    /* A diagnostic event. `detail` may be NULL. */
    void (*on_log)(void *context, int level, const char *message,
                   const char *detail);
} uvh_callbacks_t;

typedef struct uvh_limits {
    /* Request line plus header bytes (431 beyond). */
    uint32_t max_head_bytes;
    /* Header fields per request (431 beyond). */
    uint32_t max_header_count;
    /* Request target bytes (414 beyond). */
    uint32_t max_target_bytes;
    /* Body bytes (413 beyond). */
    uint32_t max_body_bytes;
    /* Open connections; further ones are closed as they are accepted. */
    uint32_t max_connections;
    /* Unsent output bytes past which the shim stops reading from a
     * connection until the output drains. */
    uint32_t output_high_water;
    /* Milliseconds an idle keep-alive connection stays open; 0 keeps it
     * open until the peer closes it. */
    uint32_t keep_alive_timeout_ms;
    /* Milliseconds from a request's first byte to the end of its header
     * (408 beyond); bytes arriving meanwhile do not extend it. 0: none. */
    uint32_t header_timeout_ms;
    /* Milliseconds between two reads of a request body (408 beyond).
     * 0: none. */
    uint32_t body_timeout_ms;
    /* Milliseconds a queued write may wait for the peer to read before the
     * connection is closed. 0: none. */
    uint32_t write_timeout_ms;
    /* Chunk-extension bytes per chunk (413 beyond). */
    uint32_t max_chunk_extension_bytes;
    /* Requests per connection; the last one is answered with
     * `Connection: close`. 0: unlimited. */
    uint32_t max_requests_per_connection;
} uvh_limits_t;

typedef struct uvh_stats {
    uint64_t connections_open;
    uint64_t connections_total;
    uint64_t connections_rejected;
    uint64_t requests;
    uint64_t parse_errors;
    uint64_t header_timeouts;
    uint64_t body_timeouts;
    uint64_t idle_timeouts;
    uint64_t write_timeouts;
} uvh_stats_t;

/* libuv's name for a negative error code, such as "EADDRINUSE". */
const char *uvh_error_name(int error);

/* libuv's description of a negative error code. */
const char *uvh_error_message(int error);

/* Fills `limits` with the defaults. */
void uvh_limits_init(uvh_limits_t *limits);

/* Creates a server with its own loop. Returns NULL when out of memory or when
 * the loop cannot be initialised. Ignores SIGPIPE for the process. */
uvh_server_t *uvh_server_create(const uvh_callbacks_t *callbacks,
                                void *context, const uvh_limits_t *limits);

/*
 * Starts listening on `host` (a numeric IPv4 or IPv6 address, or a name the
 * resolver maps) and `port`; port 0 picks a free one. Stores the bound port in
 * `bound_port`. Returns 0 or a negative libuv error code.
 */
int uvh_server_listen(uvh_server_t *server, const char *host, int port,
                      int *bound_port);

/* Runs the loop until uvh_server_stop() has closed every handle. Returns 0,
 * or a negative libuv error code from uv_loop_close() when a handle is still
 * open. */
int uvh_server_run(uvh_server_t *server);

/*
 * Stops the server gracefully: closes the listeners and idle connections at
 * once, lets requests in progress finish (their responses carry
 * `Connection: close`), and closes whatever remains after `deadline_ms`. The
 * loop returns once every handle has closed. Calling it again with a shorter
 * deadline brings the deadline forward; 0 closes everything at once.
 */
void uvh_server_stop(uvh_server_t *server, uint64_t deadline_ms);

/* Nonzero once uvh_server_stop() has been called. */
int uvh_server_is_stopping(const uvh_server_t *server);

/* Frees a server whose loop has returned. */
void uvh_server_destroy(uvh_server_t *server);

/* Wakes the loop and calls on_wake there. Safe from any thread. */
void uvh_server_wake(uvh_server_t *server);

/* The current time as an IMF-fixdate (RFC 9110 section 5.6.7), 29 bytes, not
 * NUL-terminated, formatted at most once per second. */
const char *uvh_server_date(uvh_server_t *server);

/* Callback of a timer or signal watcher; `argument` is the one registered. */
typedef void (*uvh_event_cb)(void *argument);

/*
 * Calls `callback` every `interval_ms` milliseconds on the loop until the
 * server stops. Returns 0, or a negative libuv error code (UV_ENOSPC when
 * UVH_MAX_WATCHERS timers and signal watchers exist).
 */
int uvh_server_add_timer(uvh_server_t *server, uint64_t interval_ms,
                         uvh_event_cb callback, void *argument);

/* Calls `callback` on the loop each time the process receives `signum`, until
 * the server stops. Returns 0 or a negative libuv error code. */
int uvh_server_add_signal(uvh_server_t *server, int signum,
                          uvh_event_cb callback, void *argument);

/* Milliseconds since an arbitrary point, as cached by the loop. */
uint64_t uvh_server_now(uvh_server_t *server);

void uvh_server_stats(const uvh_server_t *server, uvh_stats_t *stats);

/* Returns space for at least `length` bytes at the end of the connection's
 * output buffer, or NULL when out of memory. */
char *uvh_conn_reserve(uvh_conn_t *conn, size_t length);

/* Adds `length` bytes written into the reserved space to the output. */
void uvh_conn_commit(uvh_conn_t *conn, size_t length);

/* The peer's address. */
const struct sockaddr *uvh_conn_peer(const uvh_conn_t *conn);

/* Closes the connection once the output written so far has been sent. */
void uvh_conn_close_after_output(uvh_conn_t *conn);

/* Continues a connection whose request was deferred: sends its output and
 * parses the requests that arrived meanwhile. */
void uvh_conn_resume(uvh_conn_t *conn);

#ifdef __cplusplus
}
#endif

#endif
