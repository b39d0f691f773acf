/*
 * Counts the heap calls that the UVHTTP C shim's loop thread makes while it
 * serves keep-alive traffic, to show that a request in steady state
 * allocates nothing.
 *
 * The server loop runs on the main thread. A client thread in the same
 * process opens keep-alive connections to 127.0.0.1 and sends five steps per
 * connection and round:
 *   - one GET in one write,
 *   - one POST with a Content-Length body in one write,
 *   - 16 pipelined requests (GET, POST, chunked POST in turn) in one write,
 *   - one GET split inside a header value across two writes,
 *   - one chunked POST split inside its first chunk across two writes.
 * That is 20 requests per connection and round. Before sending the second
 * part of a split request, the client waits until the loop thread has read
 * every byte sent so far, so the shim has to keep a partial request. A
 * warm-up phase comes first, then the measured phase, which runs on until the
 * Date value from uvh_server_date() has changed at least once.
 *
 * malloc, calloc, realloc, free, posix_memalign, aligned_alloc and memalign
 * are interposed in this executable and forward to libc through
 * dlsym(RTLD_NEXT). Every call
 * made on the loop thread is counted against the current phase, whether the
 * shim, libuv, llhttp or libc makes it. The loop thread switches phases
 * itself in its on_wake callback, so a phase boundary always falls between
 * two loop callbacks and no request is split across two phases.
 *
 * Build with -DSHIM_ALLOC_NO_HEAP_HOOKS to leave the allocator alone, for
 * runs under valgrind, which replaces the allocator itself.
 */
#define _GNU_SOURCE

#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "uvhttp.h"

#define MAX_CONNECTIONS 64
#define PIPELINE_DEPTH 16
#define REQUESTS_PER_ROUND 20
#define CLIENT_TIMEOUT_SECONDS 10
#define EVENTS_PER_PHASE 48
#define EVENT_FRAMES 5
_Static_assert(REQUESTS_PER_ROUND == 1 + 1 + PIPELINE_DEPTH + 2,
               "a round is a GET, a POST, a pipelined batch and two split requests");

/* record_heap_call and the interposed function are the first two frames of
 * every backtrace. The report skips them. */
#define SKIPPED_FRAMES 2

enum phase {
    PHASE_SETUP,
    PHASE_WARM_UP,
    PHASE_MEASURED,
    PHASE_TEARDOWN,
    PHASE_COUNT
};

static const char *const phase_names[PHASE_COUNT] = {"setup", "warm-up",
                                                     "measured", "teardown"};

/* ---- Traffic ---- */

static const char request_get[] = "GET /hello?name=shim HTTP/1.1\r\n"
                                  "Host: 127.0.0.1\r\n"
                                  "User-Agent: shim-alloc\r\n"
                                  "Accept: */*\r\n"
                                  "\r\n";

static const char request_post[] = "POST /echo HTTP/1.1\r\n"
                                   "Host: 127.0.0.1\r\n"
                                   "Content-Type: text/plain\r\n"
                                   "Content-Length: 11\r\n"
                                   "\r\n"
                                   "hello world";

static const char request_chunked[] = "POST /upload HTTP/1.1\r\n"
                                      "Host: 127.0.0.1\r\n"
                                      "Transfer-Encoding: chunked\r\n"
                                      "\r\n"
                                      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";

/* Where each split request is cut: inside the User-Agent value, and inside
 * the first chunk's data. */
static const char split_get_before[] = "alloc\r\n";
static const char split_chunked_before[] = "llo\r\n6\r\n";

static const char response_ok[] = "HTTP/1.1 200 OK\r\n"
                                  "Content-Length: 2\r\n"
                                  "\r\n"
                                  "ok";

static const char response_bad_request[] = "HTTP/1.1 400 Bad Request\r\n"
                                           "Content-Length: 0\r\n"
                                           "Connection: close\r\n"
                                           "\r\n";

#define RESPONSE_OK_LENGTH (sizeof(response_ok) - 1)

/* ---- State shared between the loop thread and the client thread ---- */

/* The phase the loop thread counts against. Only the loop thread reads or
 * writes it. */
static int current_phase = PHASE_SETUP;

/* A phase number, or COMMAND_STOP, set by the client before it wakes the
 * loop. The loop thread posts `command_done` once it has acted on it. */
#define COMMAND_STOP (-1)
static atomic_int requested_command;
static sem_t command_done;

/* Set by the loop thread once the Date value has changed during the measured
 * phase, so the client can run on until the once-a-second formatting has
 * been counted there. */
static atomic_int measured_date_changed;

/* Bytes the loop thread has read from sockets, so the client can tell when
 * the first part of a split request has been consumed. */
static atomic_uint_fast64_t loop_socket_bytes;
static uint64_t loop_socket_reads[PHASE_COUNT];

static __thread int on_loop_thread;

/* ---- Interposed libc functions ---- */

typedef ssize_t (*read_function)(int, void *, size_t);

static read_function real_read;

#ifndef SHIM_ALLOC_NO_HEAP_HOOKS

enum heap_call {
    CALL_MALLOC,
    CALL_CALLOC,
    CALL_REALLOC,
    CALL_ALIGNED,
    CALL_FREE,
    CALL_KIND_COUNT
};

static const char *const call_names[CALL_KIND_COUNT] = {
    "malloc", "calloc", "realloc", "aligned", "free"};

struct heap_event {
    enum heap_call kind;
    /* Requested bytes, or 0 for free. */
    size_t size;
    /* The argument of free or realloc. */
    const void *pointer;
    int frame_count;
    void *frames[EVENT_FRAMES + SKIPPED_FRAMES];
};

typedef void *(*malloc_function)(size_t);
typedef void *(*calloc_function)(size_t, size_t);
typedef void *(*realloc_function)(void *, size_t);
typedef void (*free_function)(void *);
typedef int (*posix_memalign_function)(void **, size_t, size_t);
typedef void *(*aligned_function)(size_t, size_t);

static malloc_function real_malloc;
static calloc_function real_calloc;
static realloc_function real_realloc;
static free_function real_free;
static posix_memalign_function real_posix_memalign;
static aligned_function real_aligned_alloc;
static aligned_function real_memalign;

/* Loop-thread counts, read by the report after the loop has returned. */
static uint64_t heap_calls[PHASE_COUNT][CALL_KIND_COUNT];
static struct heap_event events[PHASE_COUNT][EVENTS_PER_PHASE];
static int stored_events[PHASE_COUNT];

/* Set while backtrace() runs, so that the instrumentation's own heap calls
 * are not recorded. */
static __thread int in_record;

/* dlsym() may allocate before the real allocator is known. Those few blocks
 * come from this arena and are never freed. */
static char bootstrap_arena[16384] __attribute__((aligned(16)));
static size_t bootstrap_used;

#endif

static int resolving;
static int resolved;

static void die_unresolved(const char *name) {
    static const char prefix[] = "shim-alloc: dlsym(RTLD_NEXT) found no ";

    (void)!write(STDERR_FILENO, prefix, sizeof(prefix) - 1);
    (void)!write(STDERR_FILENO, name, strlen(name));
    (void)!write(STDERR_FILENO, "\n", 1);
    abort();
}

static void *resolve_symbol(const char *name) {
    void *symbol = dlsym(RTLD_NEXT, name);

    if (symbol == NULL)
        die_unresolved(name);
    return symbol;
}

/* Looks up libc's functions behind the interposed ones. This runs at the
 * process's first heap call or in the constructor, before any other thread
 * exists. */
static void resolve_real_functions(void) {
    resolving = 1;
    real_read = (read_function)resolve_symbol("read");
#ifndef SHIM_ALLOC_NO_HEAP_HOOKS
    real_malloc = (malloc_function)resolve_symbol("malloc");
    real_calloc = (calloc_function)resolve_symbol("calloc");
    real_realloc = (realloc_function)resolve_symbol("realloc");
    real_free = (free_function)resolve_symbol("free");
    real_posix_memalign =
        (posix_memalign_function)resolve_symbol("posix_memalign");
    real_aligned_alloc = (aligned_function)resolve_symbol("aligned_alloc");
    real_memalign = (aligned_function)resolve_symbol("memalign");
#endif
    resolving = 0;
    resolved = 1;
}

__attribute__((constructor)) static void resolve_at_start(void) {
    if (!resolved)
        resolve_real_functions();
}

/* Counts reads of sockets on the loop thread. libuv 1.44 reads TCP streams
 * with read(2). Its wake-up eventfd is not a socket and is left out. */
ssize_t read(int fd, void *buffer, size_t count) {
    struct stat status;
    ssize_t result;

    if (!resolved)
        resolve_real_functions();
    result = real_read(fd, buffer, count);
    if (on_loop_thread && result > 0 && fstat(fd, &status) == 0 &&
        S_ISSOCK(status.st_mode)) {
        loop_socket_reads[current_phase]++;
        atomic_fetch_add(&loop_socket_bytes, (uint64_t)result);
    }
    return result;
}

#ifndef SHIM_ALLOC_NO_HEAP_HOOKS

static void *bootstrap_allocate(size_t size) {
    size_t start = (bootstrap_used + 15) & ~(size_t)15;

    if (size > sizeof(bootstrap_arena) - start)
        return NULL;
    bootstrap_used = start + size;
    return bootstrap_arena + start;
}

static int is_bootstrap(const void *pointer) {
    const char *byte = pointer;

    return byte >= bootstrap_arena &&
           byte < bootstrap_arena + sizeof(bootstrap_arena);
}

/* Counts one heap call against the current phase when it runs on the loop
 * thread, and stores the first calls of each phase with a backtrace. */
__attribute__((noinline)) static void
record_heap_call(enum heap_call kind, size_t size, const void *pointer) {
    int phase = current_phase;
    struct heap_event *event;

    if (!on_loop_thread || in_record)
        return;
    heap_calls[phase][kind]++;
    if (stored_events[phase] == EVENTS_PER_PHASE)
        return;
    event = &events[phase][stored_events[phase]++];
    event->kind = kind;
    event->size = size;
    event->pointer = pointer;
    in_record = 1;
    event->frame_count = backtrace(event->frames, EVENT_FRAMES + SKIPPED_FRAMES);
    in_record = 0;
}

void *malloc(size_t size) {
    void *block;

    if (!resolved) {
        if (resolving)
            return bootstrap_allocate(size);
        resolve_real_functions();
    }
    block = real_malloc(size);
    record_heap_call(CALL_MALLOC, size, NULL);
    return block;
}

void *calloc(size_t count, size_t size) {
    void *block;

    if (!resolved) {
        /* The arena is static, so its bytes are already zero. */
        if (resolving)
            return size != 0 && count > SIZE_MAX / size
                       ? NULL
                       : bootstrap_allocate(count * size);
        resolve_real_functions();
    }
    block = real_calloc(count, size);
    record_heap_call(CALL_CALLOC, count * size, NULL);
    return block;
}

void *realloc(void *pointer, size_t size) {
    void *block;

    if (!resolved) {
        if (resolving && pointer == NULL)
            return bootstrap_allocate(size);
        resolve_real_functions();
    }
    if (is_bootstrap(pointer)) {
        /* The old size is unknown, so copy as much as the arena can hold. */
        size_t available =
            (size_t)(bootstrap_arena + sizeof(bootstrap_arena) - (char *)pointer);

        block = real_malloc(size);
        if (block != NULL)
            memcpy(block, pointer, size < available ? size : available);
    } else {
        block = real_realloc(pointer, size);
    }
    record_heap_call(CALL_REALLOC, size, pointer);
    return block;
}

void free(void *pointer) {
    if (is_bootstrap(pointer))
        return;
    if (!resolved)
        resolve_real_functions();
    record_heap_call(CALL_FREE, 0, pointer);
    real_free(pointer);
}

int posix_memalign(void **result, size_t alignment, size_t size) {
    int error;

    if (!resolved)
        resolve_real_functions();
    error = real_posix_memalign(result, alignment, size);
    record_heap_call(CALL_ALIGNED, size, NULL);
    return error;
}

void *aligned_alloc(size_t alignment, size_t size) {
    void *block;

    if (!resolved)
        resolve_real_functions();
    block = real_aligned_alloc(alignment, size);
    record_heap_call(CALL_ALIGNED, size, NULL);
    return block;
}

void *memalign(size_t alignment, size_t size) {
    void *block;

    if (!resolved)
        resolve_real_functions();
    block = real_memalign(alignment, size);
    record_heap_call(CALL_ALIGNED, size, NULL);
    return block;
}

#endif

/* ---- Server ---- */

struct server_tally {
    uint64_t requests[PHASE_COUNT];
    uint64_t unexpected_requests;
    uint64_t invalid_dates;
    /* Requests that saw a different Date value than the request before. */
    uint64_t date_changes[PHASE_COUNT];
    uint64_t errors;
    uint64_t reserve_failures;
    uint64_t log_events;
    const char *last_log_message;
    int last_error_status;
    const char *last_error_reason;
};

static uvh_server_t *server;
static struct server_tally tally;

/* Set by --allocate-per-request: the handler then allocates and frees one
 * block per request, which the run must report as a failure. */
static int allocate_per_request;
static void *volatile handler_block;

static int span_equals(const uvh_request_t *request, uvh_span_t span,
                       const char *text) {
    size_t length = strlen(text);

    return span.length == length &&
           memcmp(request->base + span.offset, text, length) == 0;
}

/* Checks a request against the three that the client sends, so that a shim
 * that responds but parses wrongly fails the run. */
static int request_is_expected(const uvh_request_t *request) {
    const uvh_header_t *host = &request->headers[0];

    if (request->http_major != 1 || request->http_minor != 1 ||
        !request->keep_alive || request->header_count == 0 ||
        !span_equals(request, host->name, "Host") ||
        !span_equals(request, host->value, "127.0.0.1"))
        return 0;
    if (span_equals(request, request->method, "GET"))
        return span_equals(request, request->target, "/hello?name=shim") &&
               request->header_count == 3 && request->body.length == 0 &&
               span_equals(request, request->headers[1].value, "shim-alloc");
    if (!span_equals(request, request->method, "POST") ||
        !span_equals(request, request->body, "hello world"))
        return 0;
    if (span_equals(request, request->target, "/echo"))
        return request->header_count == 3;
    return span_equals(request, request->target, "/upload") &&
           request->header_count == 2;
}

static void append_bytes(uvh_conn_t *conn, const char *bytes, size_t length) {
    char *space = uvh_conn_reserve(conn, length);

    if (space == NULL) {
        tally.reserve_failures++;
        return;
    }
    memcpy(space, bytes, length);
    uvh_conn_commit(conn, length);
}

static int on_request(void *context, uvh_conn_t *conn,
                      const uvh_request_t *request) {
    static char last_date[29];
    const char *date;

    (void)context;
    tally.requests[current_phase]++;
    if (!request_is_expected(request))
        tally.unexpected_requests++;
    /* UVHTTP's response encoder takes its Date field from here on every
     * response, so the once-a-second formatting is counted too. */
    date = uvh_server_date(server);
    if (memcmp(date + 26, "GMT", 3) != 0)
        tally.invalid_dates++;
    if (memcmp(date, last_date, sizeof(last_date)) != 0) {
        memcpy(last_date, date, sizeof(last_date));
        tally.date_changes[current_phase]++;
        if (current_phase == PHASE_MEASURED)
            atomic_store(&measured_date_changed, 1);
    }
    if (allocate_per_request) {
        handler_block = malloc(64);
        free(handler_block);
    }
    append_bytes(conn, response_ok, RESPONSE_OK_LENGTH);
    return UVH_RESPONDED;
}

static void on_error(void *context, uvh_conn_t *conn, int status,
                     const char *reason) {
    (void)context;
    tally.errors++;
    tally.last_error_status = status;
    tally.last_error_reason = reason;
    append_bytes(conn, response_bad_request, sizeof(response_bad_request) - 1);
}

/* Runs the client's command: switches the phase or stops the server. */
static void on_wake(void *context) {
    int command = atomic_load(&requested_command);

    (void)context;
    if (command == COMMAND_STOP)
        uvh_server_stop(server, 0);
    else
        current_phase = command;
    sem_post(&command_done);
}

/* Keeps the message without formatting it, because printing here would
 * allocate on the loop thread. The messages are string literals in the shim. */
static void on_log(void *context, int level, const char *message,
                   const char *detail) {
    (void)context;
    (void)level;
    (void)detail;
    tally.log_events++;
    tally.last_log_message = message;
}

/* ---- Client ---- */

struct client {
    int port;
    int connection_count;
    int fds[MAX_CONNECTIONS];
    long warm_up_rounds;
    long measured_rounds;
    /* Rounds added to the measured phase to include a Date change. */
    long extra_rounds;
    uint64_t bytes_sent;
    uint64_t requests_sent[PHASE_COUNT];
    double measured_seconds;
    /* Room for 16 of the longest request, with space to spare. */
    char pipelined[PIPELINE_DEPTH * (sizeof(request_get) + sizeof(request_post) +
                                     sizeof(request_chunked))];
    size_t pipelined_length;
    char failure[256];
};

static double seconds_now(void) {
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

__attribute__((format(printf, 2, 3))) static void
client_fail(struct client *client, const char *format, ...) {
    va_list arguments;

    if (client->failure[0] != '\0')
        return;
    va_start(arguments, format);
    vsnprintf(client->failure, sizeof(client->failure), format, arguments);
    va_end(arguments);
}

/* Asks the loop thread to switch phase or stop, and waits until it has. */
static void send_command(int command) {
    atomic_store(&requested_command, command);
    uvh_server_wake(server);
    while (sem_wait(&command_done) != 0 && errno == EINTR)
        continue;
}

static int connect_all(struct client *client) {
    struct sockaddr_in address;
    struct timeval timeout = {CLIENT_TIMEOUT_SECONDS, 0};
    int enabled = 1;
    int index;

    memset(&address, 0, sizeof(address));
    address.sin_family = AF_INET;
    address.sin_port = htons((uint16_t)client->port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (index = 0; index < client->connection_count; index++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        client->fds[index] = fd;
        if (fd < 0) {
            client_fail(client, "socket() failed: %s", strerror(errno));
            return -1;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &enabled, sizeof(enabled));
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
        if (connect(fd, (struct sockaddr *)&address, sizeof(address)) != 0) {
            client_fail(client, "connect to 127.0.0.1:%d failed: %s",
                        client->port, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static int send_all(struct client *client, int fd, const char *bytes,
                    size_t length) {
    while (length > 0) {
        ssize_t sent = send(fd, bytes, length, MSG_NOSIGNAL);

        if (sent < 0 && errno == EINTR)
            continue;
        if (sent <= 0) {
            client_fail(client, "send failed: %s", strerror(errno));
            return -1;
        }
        bytes += sent;
        length -= (size_t)sent;
        client->bytes_sent += (uint64_t)sent;
    }
    return 0;
}

static int send_to_all(struct client *client, const char *bytes,
                       size_t length) {
    int index;

    for (index = 0; index < client->connection_count; index++)
        if (send_all(client, client->fds[index], bytes, length) != 0)
            return -1;
    return 0;
}

/* Waits until the loop thread has read every byte sent so far. */
static int wait_for_server_read(struct client *client) {
    double deadline = seconds_now() + CLIENT_TIMEOUT_SECONDS;

    while (atomic_load(&loop_socket_bytes) < client->bytes_sent) {
        if (seconds_now() > deadline) {
            client_fail(client,
                        "timed out after %d s waiting for the server to read "
                        "the first part of a split request",
                        CLIENT_TIMEOUT_SECONDS);
            return -1;
        }
        sched_yield();
    }
    return 0;
}

/* Reads `count` responses from every connection and checks each byte. */
static int receive_from_all(struct client *client, int count) {
    char buffer[PIPELINE_DEPTH * RESPONSE_OK_LENGTH];
    size_t expected = (size_t)count * RESPONSE_OK_LENGTH;
    int index;
    int response;

    for (index = 0; index < client->connection_count; index++) {
        size_t received = 0;

        while (received < expected) {
            ssize_t got = recv(client->fds[index], buffer + received,
                               expected - received, 0);

            if (got < 0 && errno == EINTR)
                continue;
            if (got == 0) {
                client_fail(client, "server closed connection %d", index);
                return -1;
            }
            if (got < 0) {
                client_fail(client, "receiving responses on connection %d "
                                    "failed: %s",
                            index, strerror(errno));
                return -1;
            }
            received += (size_t)got;
        }
        for (response = 0; response < count; response++) {
            if (memcmp(buffer + (size_t)response * RESPONSE_OK_LENGTH,
                       response_ok, RESPONSE_OK_LENGTH) != 0) {
                client_fail(client, "unexpected response bytes on connection "
                                    "%d: %.*s",
                            index, (int)RESPONSE_OK_LENGTH,
                            buffer + (size_t)response * RESPONSE_OK_LENGTH);
                return -1;
            }
        }
    }
    return 0;
}

static int send_split(struct client *client, const char *request,
                      const char *cut_before) {
    size_t length = strlen(request);
    size_t first = (size_t)(strstr(request, cut_before) - request);
    int index;

    if (send_to_all(client, request, first) != 0 ||
        wait_for_server_read(client) != 0)
        return -1;
    for (index = 0; index < client->connection_count; index++)
        if (send_all(client, client->fds[index], request + first,
                     length - first) != 0)
            return -1;
    return 0;
}

/* Sends one round, 20 requests per connection, and checks the responses. */
static int run_round(struct client *client, enum phase phase) {
    if (send_to_all(client, request_get, strlen(request_get)) != 0 ||
        receive_from_all(client, 1) != 0)
        return -1;
    if (send_to_all(client, request_post, strlen(request_post)) != 0 ||
        receive_from_all(client, 1) != 0)
        return -1;
    if (send_to_all(client, client->pipelined, client->pipelined_length) != 0 ||
        receive_from_all(client, PIPELINE_DEPTH) != 0)
        return -1;
    if (send_split(client, request_get, split_get_before) != 0 ||
        receive_from_all(client, 1) != 0)
        return -1;
    if (send_split(client, request_chunked, split_chunked_before) != 0 ||
        receive_from_all(client, 1) != 0)
        return -1;
    client->requests_sent[phase] +=
        (uint64_t)REQUESTS_PER_ROUND * (uint64_t)client->connection_count;
    return 0;
}

static int run_rounds(struct client *client, enum phase phase, long rounds) {
    long round;

    for (round = 0; round < rounds; round++)
        if (run_round(client, phase) != 0)
            return -1;
    return 0;
}

static void build_pipelined_batch(struct client *client) {
    static const char *const requests[3] = {request_get, request_post,
                                            request_chunked};
    int index;

    client->pipelined_length = 0;
    for (index = 0; index < PIPELINE_DEPTH; index++) {
        size_t length = strlen(requests[index % 3]);

        memcpy(client->pipelined + client->pipelined_length,
               requests[index % 3], length);
        client->pipelined_length += length;
    }
}

/* Sleeps until 0.8 s past a wall-clock second, so that the Date value
 * changes within 0.2 s of the measured phase starting. */
static void wait_for_late_in_second(void) {
    struct timespec now;
    struct timespec pause = {0, 0};

    clock_gettime(CLOCK_REALTIME, &now);
    if (now.tv_nsec < 800000000L) {
        pause.tv_nsec = 800000000L - now.tv_nsec;
        nanosleep(&pause, NULL);
    }
}

static void *client_main(void *argument) {
    struct client *client = argument;
    double start;
    int index;

    for (index = 0; index < MAX_CONNECTIONS; index++)
        client->fds[index] = -1;
    build_pipelined_batch(client);
    /* Connect inside the warm-up phase, so that accepting, which allocates
     * the connections, is counted there. */
    send_command(PHASE_WARM_UP);
    if (connect_all(client) != 0 ||
        run_rounds(client, PHASE_WARM_UP, client->warm_up_rounds) != 0)
        goto finish;
    wait_for_late_in_second();
    send_command(PHASE_MEASURED);
    start = seconds_now();
    if (run_rounds(client, PHASE_MEASURED, client->measured_rounds) != 0)
        goto finish;
    /* A measured phase shorter than 0.2 s may still see no change, so it
     * runs on, one round at a time, until it has. */
    while (!atomic_load(&measured_date_changed) &&
           seconds_now() - start < CLIENT_TIMEOUT_SECONDS) {
        if (run_rounds(client, PHASE_MEASURED, 1) != 0)
            goto finish;
        client->extra_rounds++;
    }
    client->measured_seconds = seconds_now() - start;
    send_command(PHASE_TEARDOWN);

finish:
    for (index = 0; index < client->connection_count; index++)
        if (client->fds[index] >= 0)
            close(client->fds[index]);
    send_command(COMMAND_STOP);
    return NULL;
}

/* ---- Report ---- */

#ifndef SHIM_ALLOC_NO_HEAP_HOOKS

static char executable_path[PATH_MAX];

/* Prints "function (file:line)" for an address in this executable, using
 * addr2line. Code that the compiler inlined gets one line per inlined call,
 * innermost first. Prints the bare offset when addr2line gives nothing. */
static void print_own_frame(uintptr_t offset, const char *first_prefix,
                            const char *prefix) {
    char command[PATH_MAX + 64];
    char function[256];
    char location[PATH_MAX];
    FILE *output;
    int printed = 0;

    snprintf(command, sizeof(command),
             "addr2line -f -i -s -e '%s' 0x%lx 2>/dev/null", executable_path,
             (unsigned long)offset);
    output = popen(command, "r");
    while (output != NULL && fgets(function, sizeof(function), output) != NULL &&
           fgets(location, sizeof(location), output) != NULL) {
        function[strcspn(function, "\n")] = '\0';
        location[strcspn(location, "\n")] = '\0';
        if (strcmp(function, "??") == 0)
            break;
        printf("%s%s (%s)%s", printed == 0 ? first_prefix : prefix, function,
               location, printed == 0 ? "" : " (inlined)");
        printed++;
    }
    if (output != NULL)
        pclose(output);
    if (printed == 0)
        printf("%sharness+0x%lx", first_prefix, (unsigned long)offset);
}

/* Prints a readable name for a return address: function and line for this
 * executable, module and offset for a shared library. */
static void print_frame(void *address, const char *first_prefix,
                        const char *prefix) {
    Dl_info self;
    Dl_info info;
    /* A return address points after the call, which may be the next line. */
    uintptr_t call_site = (uintptr_t)address - 1;
    const char *module;

    if (dladdr(address, &info) == 0 || info.dli_fname == NULL) {
        printf("%s%p", first_prefix, address);
        return;
    }
    if (dladdr((void *)print_frame, &self) != 0 &&
        self.dli_fbase == info.dli_fbase) {
        print_own_frame(call_site - (uintptr_t)info.dli_fbase, first_prefix,
                        prefix);
        return;
    }
    module = strrchr(info.dli_fname, '/');
    module = module != NULL ? module + 1 : info.dli_fname;
    printf("%s%s+0x%lx", first_prefix, module,
           (unsigned long)(call_site - (uintptr_t)info.dli_fbase));
}

static uint64_t heap_call_total(enum phase phase) {
    uint64_t total = 0;
    int kind;

    for (kind = 0; kind < CALL_KIND_COUNT; kind++)
        total += heap_calls[phase][kind];
    return total;
}

static int same_event(const struct heap_event *left,
                      const struct heap_event *right) {
    return left->kind == right->kind && left->size == right->size &&
           (left->pointer == NULL) == (right->pointer == NULL) &&
           left->frame_count == right->frame_count &&
           memcmp(left->frames, right->frames,
                  (size_t)left->frame_count * sizeof(left->frames[0])) == 0;
}

/* Lists the stored heap calls of a phase, each distinct call and backtrace
 * once with the number of times it was stored. */
static void print_events(enum phase phase) {
    int index;
    int other;
    int frame;

    if (stored_events[phase] == 0)
        return;
    printf("\nloop-thread heap calls in the %s phase", phase_names[phase]);
    if (heap_call_total(phase) > (uint64_t)stored_events[phase])
        printf(" (the first %d of %llu)", stored_events[phase],
               (unsigned long long)heap_call_total(phase));
    printf(", innermost caller first:\n");
    for (index = 0; index < stored_events[phase]; index++) {
        const struct heap_event *event = &events[phase][index];
        int repeats = 0;

        for (other = 0; other < index; other++)
            if (same_event(&events[phase][other], event))
                break;
        if (other < index)
            continue;
        for (other = index; other < stored_events[phase]; other++)
            if (same_event(&events[phase][other], event))
                repeats++;
        printf("  %dx ", repeats);
        if (event->kind == CALL_FREE)
            printf("free(%s)", event->pointer == NULL ? "NULL" : "block");
        else if (event->kind == CALL_REALLOC)
            printf("realloc(%s, %zu)",
                   event->pointer == NULL ? "NULL" : "block", event->size);
        else
            printf("%s(%zu)", call_names[event->kind], event->size);
        for (frame = SKIPPED_FRAMES; frame < event->frame_count; frame++)
            print_frame(event->frames[frame],
                        frame == SKIPPED_FRAMES ? " at " : "\n      <- ",
                        "\n      <- ");
        printf("\n");
    }
}

#endif

static void print_table(void) {
    int phase;

    printf("\nphase     requests  socket reads");
#ifndef SHIM_ALLOC_NO_HEAP_HOOKS
    {
        int kind;

        for (kind = 0; kind < CALL_KIND_COUNT; kind++)
            printf("  %8s", call_names[kind]);
    }
#endif
    printf("\n");
    for (phase = 0; phase < PHASE_COUNT; phase++) {
        printf("%-8s  %8llu  %12llu", phase_names[phase],
               (unsigned long long)tally.requests[phase],
               (unsigned long long)loop_socket_reads[phase]);
#ifndef SHIM_ALLOC_NO_HEAP_HOOKS
        {
            int kind;

            for (kind = 0; kind < CALL_KIND_COUNT; kind++)
                printf("  %8llu", (unsigned long long)heap_calls[phase][kind]);
        }
#endif
        printf("\n");
    }
}

/* Prints the counts and returns the process's exit status. */
static int report(const struct client *client, int run_error, int verbose) {
    int failed = 0;
    int phase;

    print_table();
#ifndef SHIM_ALLOC_NO_HEAP_HOOKS
    for (phase = 0; phase < PHASE_COUNT; phase++)
        if (verbose || phase == PHASE_WARM_UP || phase == PHASE_MEASURED)
            print_events((enum phase)phase);
#else
    (void)verbose;
    printf("\nheap counting is compiled out (SHIM_ALLOC_NO_HEAP_HOOKS)\n");
#endif
    printf("\n");
    if (client->failure[0] != '\0') {
        printf("FAIL client: %s\n", client->failure);
        failed = 1;
    }
    for (phase = PHASE_WARM_UP; phase <= PHASE_MEASURED; phase++) {
        if (tally.requests[phase] != client->requests_sent[phase]) {
            printf("FAIL %s phase: the client sent %llu requests but the "
                   "server handled %llu\n",
                   phase_names[phase],
                   (unsigned long long)client->requests_sent[phase],
                   (unsigned long long)tally.requests[phase]);
            failed = 1;
        }
    }
    if (tally.unexpected_requests != 0) {
        printf("FAIL %llu requests reached on_request with unexpected spans\n",
               (unsigned long long)tally.unexpected_requests);
        failed = 1;
    }
    if (tally.invalid_dates != 0) {
        printf("FAIL uvh_server_date returned a malformed date %llu times\n",
               (unsigned long long)tally.invalid_dates);
        failed = 1;
    }
    if (tally.errors != 0) {
        printf("FAIL on_error ran %llu times, last with status %d (%s)\n",
               (unsigned long long)tally.errors, tally.last_error_status,
               tally.last_error_reason);
        failed = 1;
    }
    if (tally.reserve_failures != 0) {
        printf("FAIL uvh_conn_reserve returned NULL %llu times\n",
               (unsigned long long)tally.reserve_failures);
        failed = 1;
    }
    if (tally.log_events != 0)
        printf("note: the shim logged %llu events, the last: %s\n",
               (unsigned long long)tally.log_events, tally.last_log_message);
    if (run_error != 0) {
        printf("FAIL uvh_server_run returned %s\n", uvh_error_name(run_error));
        failed = 1;
    }
    printf("the Date value changed %llu times during the measured phase "
           "(%ld rounds added to include a change)\n",
           (unsigned long long)tally.date_changes[PHASE_MEASURED],
           client->extra_rounds);
    if (tally.date_changes[PHASE_MEASURED] == 0) {
        printf("FAIL the Date value never changed in the measured phase, so "
               "its formatting was not counted\n");
        failed = 1;
    }
    if (client->measured_seconds > 0)
        printf("measured phase took %.2f s (%.0f requests/s, with a client "
               "in the same process; not a throughput figure)\n",
               client->measured_seconds,
               (double)tally.requests[PHASE_MEASURED] / client->measured_seconds);
#ifndef SHIM_ALLOC_NO_HEAP_HOOKS
    {
        uint64_t calls = heap_call_total(PHASE_MEASURED);
        uint64_t requests = tally.requests[PHASE_MEASURED];

        printf("measured phase: %llu heap calls on the loop thread for %llu "
               "requests = %.6f per request\n",
               (unsigned long long)calls, (unsigned long long)requests,
               requests == 0 ? 0.0 : (double)calls / (double)requests);
        if (calls != 0) {
            printf("FAIL the loop thread called the allocator during the "
                   "measured phase\n");
            failed = 1;
        }
    }
#endif
    printf("%s\n", failed ? "FAIL" : "PASS");
    return failed ? 1 : 0;
}

/* ---- Main ---- */

static void usage(FILE *stream, const char *program) {
    fprintf(stream,
            "usage: %s [--connections N] [--warm-up REQUESTS] "
            "[--measured REQUESTS] [--verbose] [--allocate-per-request]\n"
            "  --connections  keep-alive connections, 1 to %d (default 4)\n"
            "  --warm-up      requests before counting starts, rounded up to "
            "whole rounds of %d per connection (default 2000)\n"
            "  --measured     requests counted, rounded up the same way and "
            "extended until the Date value has changed once (default 100000)\n"
            "  --verbose      also list the heap calls of the setup and "
            "teardown phases\n"
            "  --allocate-per-request\n"
            "                 make the handler malloc and free a block per "
            "request, to check that the harness then fails\n",
            program, MAX_CONNECTIONS, REQUESTS_PER_ROUND);
}

static int parse_count(const char *text, long minimum, long maximum,
                       long *value) {
    char *end;

    errno = 0;
    *value = strtol(text, &end, 10);
    return errno == 0 && end != text && *end == '\0' && *value >= minimum &&
           *value <= maximum;
}

static long rounds_for(long requests, int connections) {
    long per_round = (long)REQUESTS_PER_ROUND * connections;

    return (requests + per_round - 1) / per_round;
}

int main(int argc, char **argv) {
    static struct client client;
    uvh_callbacks_t callbacks = {0};
    uvh_limits_t limits;
    pthread_t client_thread;
    long connections = 4;
    long warm_up = 2000;
    long measured = 100000;
    int verbose = 0;
    int port = 0;
    int error;
    int index;

    for (index = 1; index < argc; index++) {
        const char *option = argv[index];
        const char *value = index + 1 < argc ? argv[index + 1] : NULL;

        if (strcmp(option, "--help") == 0) {
            usage(stdout, argv[0]);
            return 0;
        }
        if (strcmp(option, "--verbose") == 0) {
            verbose = 1;
            continue;
        }
        if (strcmp(option, "--allocate-per-request") == 0) {
            allocate_per_request = 1;
            continue;
        }
        if (value != NULL && strcmp(option, "--connections") == 0 &&
            parse_count(value, 1, MAX_CONNECTIONS, &connections)) {
            index++;
        } else if (value != NULL && strcmp(option, "--warm-up") == 0 &&
                   parse_count(value, 0, 100000000, &warm_up)) {
            index++;
        } else if (value != NULL && strcmp(option, "--measured") == 0 &&
                   parse_count(value, 1, 100000000, &measured)) {
            index++;
        } else {
            fprintf(stderr, "shim-alloc: invalid or incomplete option %s\n",
                    option);
            usage(stderr, argv[0]);
            return 64;
        }
    }
    client.connection_count = (int)connections;
    client.warm_up_rounds = rounds_for(warm_up, client.connection_count);
    client.measured_rounds = rounds_for(measured, client.connection_count);

#ifndef SHIM_ALLOC_NO_HEAP_HOOKS
    {
        ssize_t length = readlink("/proc/self/exe", executable_path,
                                  sizeof(executable_path) - 1);

        executable_path[length > 0 ? length : 0] = '\0';
    }
    {
        /* The first backtrace() loads the unwinder, which allocates. */
        void *frames[4];

        backtrace(frames, 4);
    }
#endif
    if (sem_init(&command_done, 0, 0) != 0) {
        perror("shim-alloc: sem_init");
        return 1;
    }

    callbacks.on_request = on_request;
    callbacks.on_error = on_error;
    callbacks.on_wake = on_wake;
    callbacks.on_log = on_log;
    uvh_limits_init(&limits);

    on_loop_thread = 1;
    server = uvh_server_create(&callbacks, NULL, &limits);
    if (server == NULL) {
        on_loop_thread = 0;
        fprintf(stderr, "shim-alloc: uvh_server_create failed\n");
        return 1;
    }
    error = uvh_server_listen(server, "127.0.0.1", 0, &port);
    if (error != 0) {
        on_loop_thread = 0;
        fprintf(stderr, "shim-alloc: listening on 127.0.0.1 failed: %s\n",
                uvh_error_message(error));
        return 1;
    }
    client.port = port;
    error = pthread_create(&client_thread, NULL, client_main, &client);
    if (error != 0) {
        on_loop_thread = 0;
        fprintf(stderr, "shim-alloc: starting the client thread failed: %s\n",
                strerror(error));
        return 1;
    }
    error = uvh_server_run(server);
    uvh_server_destroy(server);
    on_loop_thread = 0;
    pthread_join(client_thread, NULL);

    printf("shim-alloc: %d keep-alive connections to 127.0.0.1:%d; each round "
           "sends %d requests per connection: 1 GET, 1 POST, %d pipelined in "
           "one write, and 2 split across two writes\n",
           client.connection_count, port, REQUESTS_PER_ROUND, PIPELINE_DEPTH);
    printf("warm-up: %ld rounds, measured: %ld rounds\n", client.warm_up_rounds,
           client.measured_rounds + client.extra_rounds);
    return report(&client, error, verbose);
}
