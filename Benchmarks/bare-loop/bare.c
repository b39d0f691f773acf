/*
 * The floor of pmsd's stack: a libuv loop with llhttp parsing that sends one
 * fixed response to every request, with no routing and no Swift.
 *
 *   bare PORT BODY_FILE CONTENT_TYPE
 *
 * Listens on 127.0.0.1:PORT. The response is
 * "HTTP/1.1 200 OK", Content-Type, Content-Length and the bytes of BODY_FILE.
 *
 * It does what pmsd's shim does on its hot path and nothing more:
 *   - one loop-wide 64 KiB read buffer handed to every read;
 *   - llhttp runs over each read and every complete request appends the
 *     response to the connection's output buffer, so pipelined requests in
 *     one read are answered in order into one buffer;
 *   - after the read, one uv_try_write of the whole output; what the kernel
 *     does not take goes to uv_write from a second buffer, which that write
 *     owns until its callback;
 *   - TCP_NODELAY, a listen backlog of 4096.
 * After a request that asks to close (HTTP/1.0 without keep-alive, or
 * "Connection: close"), the connection is closed once the response is
 * written. A parse error closes the connection at once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "llhttp.h"

#define READ_BUFFER_SIZE 65536
/* Stop reading from a client that does not read its responses. */
#define OUTPUT_HIGH_WATER (1u << 20)

typedef struct {
    char *data;
    size_t length;
    size_t capacity;
} buffer_t;

typedef struct {
    uv_tcp_t tcp;
    llhttp_t parser;
    buffer_t output;   /* responses not yet handed to the kernel */
    buffer_t in_write; /* owned by the queued uv_write until its callback */
    uv_write_t write_request;
    int writing;
    int reading;
    int close_after_output;
    int closing;
} connection_t;

static uv_loop_t *loop;
static llhttp_settings_t settings;
/* libuv calls on_read right after on_alloc, so one buffer serves all. */
static char read_buffer[READ_BUFFER_SIZE];
static char *response;
static size_t response_length;

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void flush(connection_t *conn);

static void die(const char *what, int error) {
    fprintf(stderr, "bare: %s: %s\n", what, uv_strerror(error));
    exit(1);
}

static int buffer_reserve(buffer_t *buffer, size_t extra) {
    if (buffer->length + extra <= buffer->capacity) {
        return 0;
    }
    size_t capacity = buffer->capacity ? buffer->capacity : 4096;
    while (capacity < buffer->length + extra) {
        capacity *= 2;
    }
    char *data = realloc(buffer->data, capacity);
    if (data == NULL) {
        return -1;
    }
    buffer->data = data;
    buffer->capacity = capacity;
    return 0;
}

static void on_closed(uv_handle_t *handle) {
    connection_t *conn = handle->data;
    free(conn->output.data);
    free(conn->in_write.data);
    free(conn);
}

static void close_connection(connection_t *conn) {
    if (conn->closing) {
        return;
    }
    conn->closing = 1;
    uv_close((uv_handle_t *)&conn->tcp, on_closed);
}

static int on_message_complete(llhttp_t *parser) {
    connection_t *conn = parser->data;
    if (buffer_reserve(&conn->output, response_length) != 0) {
        return HPE_USER;
    }
    memcpy(conn->output.data + conn->output.length, response, response_length);
    conn->output.length += response_length;
    if (!llhttp_should_keep_alive(parser)) {
        conn->close_after_output = 1;
        return HPE_PAUSED;
    }
    return HPE_OK;
}

static void on_write(uv_write_t *request, int status) {
    connection_t *conn = request->data;
    conn->writing = 0;
    conn->in_write.length = 0;
    if (status < 0) {
        close_connection(conn);
        return;
    }
    if (!conn->reading && !conn->close_after_output && !conn->closing) {
        conn->reading = 1;
        uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read);
    }
    flush(conn);
}

static void flush(connection_t *conn) {
    if (conn->closing || conn->writing) {
        return;
    }
    if (conn->output.length == 0) {
        if (conn->close_after_output) {
            close_connection(conn);
        }
        return;
    }
    uv_buf_t buf = uv_buf_init(conn->output.data, (unsigned int)conn->output.length);
    int written = uv_try_write((uv_stream_t *)&conn->tcp, &buf, 1);

    if (written == UV_EAGAIN || written == UV_ENOSYS) {
        written = 0;
    } else if (written < 0) {
        close_connection(conn);
        return;
    }

    if ((size_t)written == conn->output.length) {
        conn->output.length = 0;
        if (conn->close_after_output) {
            close_connection(conn);
        }
        return;
    }

    /* The kernel took only part of it. The rest is queued from this buffer,
     * and new output goes to the other one until the write completes. */
    buffer_t queued = conn->output;
    conn->output = conn->in_write;
    conn->output.length = 0;
    conn->in_write = queued;
    conn->writing = 1;
    conn->write_request.data = conn;
    uv_buf_t rest = uv_buf_init(queued.data + written, (unsigned int)(queued.length - (size_t)written));
    if (uv_write(&conn->write_request, (uv_stream_t *)&conn->tcp, &rest, 1, on_write) != 0) {
        conn->writing = 0;
        close_connection(conn);
    }
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
    (void)handle;
    (void)suggested;
    *buf = uv_buf_init(read_buffer, READ_BUFFER_SIZE);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
    connection_t *conn = stream->data;
    if (nread == 0) {
        return;
    }
    if (nread < 0) {
        close_connection(conn);
        return;
    }
    llhttp_errno_t error = llhttp_execute(&conn->parser, buf->base, (size_t)nread);
    if (error == HPE_PAUSED && conn->close_after_output) {
        /* Nothing after a request that closes the connection is read. */
        uv_read_stop(stream);
        conn->reading = 0;
    } else if (error != HPE_OK) {
        close_connection(conn);
        return;
    }
    if (conn->output.length > OUTPUT_HIGH_WATER && conn->reading) {
        uv_read_stop(stream);
        conn->reading = 0;
    }
    flush(conn);
}

static void on_connection(uv_stream_t *server, int status) {
    if (status < 0) {
        return;
    }
    connection_t *conn = calloc(1, sizeof *conn);
    if (conn == NULL) {
        return;
    }
    uv_tcp_init(loop, &conn->tcp);
    conn->tcp.data = conn;
    if (uv_accept(server, (uv_stream_t *)&conn->tcp) != 0) {
        close_connection(conn);
        return;
    }
    uv_tcp_nodelay(&conn->tcp, 1);
    llhttp_init(&conn->parser, HTTP_REQUEST, &settings);
    conn->parser.data = conn;
    conn->reading = 1;
    uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read);
}

static char *read_file(const char *path, size_t *length) {
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        fprintf(stderr, "bare: cannot open %s: %s\n", path, strerror(errno));
        exit(1);
    }
    size_t capacity = 4096, used = 0;
    char *data = malloc(capacity);
    size_t got;
    while (data != NULL && (got = fread(data + used, 1, capacity - used, file)) > 0) {
        used += got;
        if (used == capacity) {
            capacity *= 2;
            data = realloc(data, capacity);
        }
    }
    fclose(file);
    if (data == NULL) {
        fprintf(stderr, "bare: out of memory\n");
        exit(1);
    }
    *length = used;
    return data;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: bare PORT BODY_FILE CONTENT_TYPE\n");
        return 64;
    }
    int port = atoi(argv[1]);
    size_t body_length;
    char *body = read_file(argv[2], &body_length);
    char head[512];
    int head_length = snprintf(head, sizeof head,
                               "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n",
                               argv[3], body_length);
    if (head_length < 0 || (size_t)head_length >= sizeof head) {
        fprintf(stderr, "bare: CONTENT_TYPE is too long (over %zu bytes in the header)\n", sizeof head);
        return 64;
    }
    response_length = (size_t)head_length + body_length;
    response = malloc(response_length);
    memcpy(response, head, (size_t)head_length);
    memcpy(response + head_length, body, body_length);
    free(body);

    llhttp_settings_init(&settings);
    settings.on_message_complete = on_message_complete;

    loop = uv_default_loop();
    uv_tcp_t server;
    struct sockaddr_in address;
    int error;
    uv_tcp_init(loop, &server);
    if ((error = uv_ip4_addr("127.0.0.1", port, &address)) != 0) die("address", error);
    if ((error = uv_tcp_bind(&server, (const struct sockaddr *)&address, 0)) != 0) die("bind", error);
    if ((error = uv_listen((uv_stream_t *)&server, 4096, on_connection)) != 0) die("listen", error);
    fprintf(stderr, "bare: listening on 127.0.0.1:%d\n", port);
    return uv_run(loop, UV_RUN_DEFAULT);
}
