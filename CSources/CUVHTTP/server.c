/*
 * The server: its loop, listeners, graceful stop, cross-thread wake-ups,
 * the cached Date value, and the timers and signal watchers the embedder
 * registers.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

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
    limits->header_timeout_ms = 10000;
    limits->body_timeout_ms = 10000;
    limits->write_timeout_ms = 30000;
    limits->max_chunk_extension_bytes = 16 * 1024;
    limits->max_requests_per_connection = 0;
}

static void on_async(uv_async_t *async) {
    uvh_server_t *server = (uvh_server_t *)async->data;

    if (server->callbacks.on_wake != NULL)
        server->callbacks.on_wake(server->context);
}

static void on_connection(uv_stream_t *listener, int status) {
    uvh_server_t *server = (uvh_server_t *)listener->data;

    if (status != 0) {
        uvh__log(server, UVH_LOG_WARNING, "accept failed", status);
        return;
    }
    uvh__conn_accept(server, listener);
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
    pthread_mutex_init(&server->wake_lock, NULL);
    server->callbacks = *callbacks;
    server->context = context;
    server->limits = *limits;
    uvh__settings_init(&server->settings);
    server->async.data = server;
    uv_async_init(&server->loop, &server->async, on_async);
    server->stop_timer.data = server;
    uv_timer_init(&server->loop, &server->stop_timer);
    /* The stop timer must not keep the loop alive while serving. */
    uv_unref((uv_handle_t *)&server->stop_timer);
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

/* Closes the handles that outlive the connections, so the loop can end. */
static void server_close_handles(uvh_server_t *server) {
    int index;

    if (server->stopping == 2)
        return;
    server->stopping = 2;
    for (index = 0; index < server->watcher_count; index++)
        uv_close(&server->watchers[index].u.handle, NULL);
    uv_close((uv_handle_t *)&server->stop_timer, NULL);
    pthread_mutex_lock(&server->wake_lock);
    server->async_closed = 1;
    uv_close((uv_handle_t *)&server->async, NULL);
    pthread_mutex_unlock(&server->wake_lock);
}

void uvh__server_connection_closed(uvh_server_t *server) {
    if (server->stopping == 1 && server->connections == NULL)
        server_close_handles(server);
}

static void close_all_connections(uvh_server_t *server) {
    while (server->connections != NULL)
        uvh__conn_close(server->connections);
}

static void on_stop_deadline(uv_timer_t *timer) {
    uvh_server_t *server = (uvh_server_t *)timer->data;

    uvh__log(server, UVH_LOG_WARNING,
             "stop deadline reached; closing connections in progress", 0);
    close_all_connections(server);
}

void uvh_server_stop(uvh_server_t *server, uint64_t deadline_ms) {
    uvh_conn_t *conn;
    uvh_conn_t *next;
    int index;

    if (server->stopping == 2)
        return;
    if (server->stopping == 0) {
        server->stopping = 1;
        for (index = 0; index < server->listener_count; index++)
            uv_close((uv_handle_t *)&server->listeners[index], NULL);
        for (conn = server->connections; conn != NULL; conn = next) {
            next = conn->next;
            if (uvh__conn_is_idle(conn))
                uvh__conn_close(conn);
        }
    }
    if (server->stopping == 2)
        return;
    if (deadline_ms == 0 || server->connections == NULL) {
        close_all_connections(server);
        server_close_handles(server);
        return;
    }
    /* A later call may bring the deadline forward but never push it back. */
    if (uv_is_active((uv_handle_t *)&server->stop_timer) &&
        uv_timer_get_due_in(&server->stop_timer) <= deadline_ms)
        return;
    uv_ref((uv_handle_t *)&server->stop_timer);
    uv_timer_start(&server->stop_timer, on_stop_deadline, deadline_ms, 0);
}

int uvh_server_is_stopping(const uvh_server_t *server) {
    return server->stopping != 0;
}

void uvh_server_destroy(uvh_server_t *server) {
    /* A server whose loop never ran still has its handles open: close them
     * and let their callbacks run before the loop goes. */
    if (server->stopping != 2) {
        uvh_server_stop(server, 0);
        uv_run(&server->loop, UV_RUN_DEFAULT);
        uv_loop_close(&server->loop);
    }
    pthread_mutex_destroy(&server->wake_lock);
    free(server);
}

void uvh_server_wake(uvh_server_t *server) {
    pthread_mutex_lock(&server->wake_lock);
    if (!server->async_closed)
        uv_async_send(&server->async);
    pthread_mutex_unlock(&server->wake_lock);
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
