/*
 * Types shared by the shim's source files. Nothing here is part of the
 * interface in include/uvhttp.h.
 */
#ifndef UVHTTP_INTERNAL_H
#define UVHTTP_INTERNAL_H

#include <pthread.h>
#include <time.h>

#include <uv.h>

#include "CLLHTTP.h"
#include "uvhttp.h"

#define UVH_READ_BUFFER_SIZE (64 * 1024)
#define UVH_INITIAL_HEADER_CAPACITY 16
#define UVH_INITIAL_BUFFER_CAPACITY 2048
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
 * Connection states. Every transition goes through one of the conn_*
 * functions in connection.c; docs/architecture.md draws them.
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

/* What the connection's read-side timer is measuring. */
typedef enum timer_kind {
    TIMER_NONE = 0,
    /* From a request's first byte to the end of its header: a deadline
     * that bytes trickling in do not extend. */
    TIMER_HEADER,
    /* Between reads of a request's body: restarted by each read. */
    TIMER_BODY,
    /* Nothing buffered or in progress on a keep-alive connection. */
    TIMER_IDLE,
    /* After the write side is shut down. */
    TIMER_LINGER
} timer_kind_t;

struct uvh_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_timer_t write_timer;
    uv_write_t write_req;
    uv_shutdown_t shutdown_req;
    llhttp_t parser;
    uvh_server_t *server;
    uvh_conn_t *prev;
    uvh_conn_t *next;
    uint64_t id;
    conn_state_t state;
    pause_reason_t pause;
    timer_kind_t timer_kind;
    int open_handles;
    int eof;
    int in_request;
    int in_header_field;
    /* Set once the current request's header is complete: field lines after
     * it are trailers, counted against the head limit but not kept. */
    int in_trailers;
    /* Set by on_message_complete, cleared by dispatch: a pause of the
     * parser is a complete request only when this is set. */
    int message_complete;
    /* Set when a deferred request must end the connection (no keep-alive,
     * or an upgrade this server does not perform). */
    int end_after_deferred;
    /* Set when the connection never reached the embedder, so it is not
     * counted as open. */
    int rejected;
    /* Set on connections made by uvh__test_conn_open(), which have no
     * socket: output counts as written as soon as it is flushed. */
    int detached;
    uint64_t detached_output_bytes;
    uint32_t requests_served;
    /* Loop time (ms) when the current request's first byte was parsed,
     * and whether its header is complete and its body still arriving. */
    uint64_t request_began_ms;
    int in_body;
    /* Loop time (ms) when the connection last became idle. The keep-alive
     * timer is not restarted per request: when it fires early it re-arms
     * for the rest of the period counted from here. */
    uint64_t idle_since_ms;
    /* requests_served when idle_since_ms was last set: bytes that complete
     * no request, such as empty lines, do not count as activity. */
    uint32_t idle_since_requests;
    uint32_t chunk_extension_bytes;

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
    /* Offset, from the request's first byte, just past the last byte any
     * span of the request covers. Bytes beyond it that the parser has
     * consumed (line ends, chunk sizes and extensions) are not kept. */
    uint32_t span_end;
    int error_status;
    const char *error_reason;
    /* Set when the embedder already answered the rejected request. */
    int error_answered;

    /* Output is appended to `out`; `writing` holds what a queued uv_write
     * still owns. The two swap when a write is queued. */
    char *out;
    size_t out_length;
    size_t out_capacity;
    char *writing;
    size_t writing_capacity;
    size_t writing_length;
    /* Bytes the queued write still had to send when the write timer last
     * started; less at its expiry means the client is reading. */
    size_t write_queue_mark;

    struct sockaddr_storage peer;
};

struct uvh_server {
    uv_loop_t loop;
    uv_async_t async;
    uv_timer_t stop_timer;
    uv_tcp_t listeners[UVH_MAX_LISTENERS];
    int listener_count;
    /* 0 while serving; 1 once a graceful stop began; 2 once every handle
     * is closing. */
    int stopping;
    /* Guards `async_closed` against uvh_server_wake() from other threads. */
    pthread_mutex_t wake_lock;
    int async_closed;
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

/* connection.c */
void uvh__settings_init(llhttp_settings_t *settings);
void uvh__conn_accept(uvh_server_t *server, uv_stream_t *listener);
void uvh__conn_close(uvh_conn_t *conn);
int uvh__conn_is_idle(const uvh_conn_t *conn);
void uvh__log(uvh_server_t *server, int level, const char *message,
              int error);

/*
 * Connections without a socket, for fuzzing and tests: bytes fed to one take
 * the same path as bytes from the read callback, and its output is counted
 * and discarded. Like the read buffer, fed bytes may be rewritten in place
 * (chunked bodies are joined over their framing). Close it with uvh__conn_close(), then run the loop once so
 * the close callbacks free it.
 */
uvh_conn_t *uvh__test_conn_open(uvh_server_t *server);
void uvh__test_conn_feed(uvh_conn_t *conn, char *data, size_t length);
void uvh__test_conn_end(uvh_conn_t *conn);

/* server.c */
void uvh__server_connection_closed(uvh_server_t *server);

/*
 * framing.c: checks RFC 9112 framing rules on a request whose header is
 * complete. Returns 0, or the status to answer with and sets `reason`.
 * Sets `expect_continue` when the request carries `Expect: 100-continue`.
 */
int uvh__check_framing(const uvh_request_t *request,
                       const char **reason, int *expect_continue);

#endif
