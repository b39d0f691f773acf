/*
 * Framing rules llhttp leaves to the server (RFC 9112), checked once a
 * request's header is complete.
 */
#include <string.h>

#include "internal.h"

static int lower(int c) {
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Compares a span with a lowercase literal of `length` bytes, ignoring
 * ASCII case. */
static int span_equals(const char *base, uvh_span_t span, const char *literal,
                       size_t length) {
    uint32_t index;

    if (span.length != length)
        return 0;
    for (index = 0; index < span.length; index++)
        if (lower((unsigned char)base[span.offset + index]) != literal[index])
            return 0;
    return 1;
}

#define span_is(base, span, literal) \
    span_equals((base), (span), (literal), sizeof(literal) - 1)

static int is_space(char c) {
    return c == ' ' || c == '\t';
}

/* Kinds of transfer coding lists, RFC 9112 section 6.1. */
enum coding_verdict {
    CODING_CHUNKED_FINAL = 0,
    CODING_UNSUPPORTED = 1,
    CODING_MALFORMED = 2
};

/*
 * Scans the comma-separated codings of one Transfer-Encoding value. Sets
 * `saw_chunked` when any coding is chunked and `last_chunked` to whether the
 * last one seen is. Codings other than chunked, and parameters, make the
 * value unsupported.
 */
static int scan_codings(const char *value, uint32_t length, int *saw_chunked,
                        int *last_chunked, int *unsupported) {
    uint32_t start = 0;

    while (start <= length) {
        uint32_t end = start;
        uint32_t first;
        uint32_t last;

        while (end < length && value[end] != ',')
            end++;
        first = start;
        last = end;
        while (first < last && is_space(value[first]))
            first++;
        while (last > first && is_space(value[last - 1]))
            last--;
        if (last > first) {
            uvh_span_t coding = {first, last - first};
            if (span_is(value, coding, "chunked")) {
                if (*saw_chunked)
                    return CODING_MALFORMED;
                *saw_chunked = 1;
                *last_chunked = 1;
            } else {
                *unsupported = 1;
                *last_chunked = 0;
            }
        }
        start = end + 1;
    }
    return 0;
}

int uvh__check_framing(const uvh_request_t *request, const char **reason,
                       int *expect_continue) {
    const char *base = request->base;
    uint32_t index;
    int hosts = 0;
    int content_lengths = 0;
    int transfer_encodings = 0;
    int saw_chunked = 0;
    int last_chunked = 0;
    int unsupported = 0;

    *expect_continue = 0;
    if (request->http_major != 1) {
        *reason = "HTTP version not supported";
        return 505;
    }
    for (index = 0; index < request->header_count; index++) {
        const uvh_header_t *header = &request->headers[index];

        if (span_is(base, header->name, "host")) {
            hosts++;
        } else if (span_is(base, header->name, "content-length")) {
            content_lengths++;
        } else if (span_is(base, header->name, "transfer-encoding")) {
            transfer_encodings++;
            if (scan_codings(base + header->value.offset, header->value.length,
                             &saw_chunked, &last_chunked,
                             &unsupported) == CODING_MALFORMED) {
                *reason = "chunked transfer coding applied twice";
                return 400;
            }
        } else if (span_is(base, header->name, "expect")) {
            if (!span_is(base, header->value, "100-continue")) {
                *reason = "unsupported expectation";
                return 417;
            }
            *expect_continue = request->http_minor >= 1;
        }
    }

    /* RFC 9112 section 3.2: a 1.1 request has exactly one Host field. */
    if (request->http_minor >= 1 && hosts != 1) {
        *reason = hosts == 0 ? "missing Host header" : "repeated Host header";
        return 400;
    }
    if (hosts > 1) {
        *reason = "repeated Host header";
        return 400;
    }
    if (transfer_encodings == 0)
        return 0;
    /* RFC 9112 section 6.1: Transfer-Encoding in an HTTP/1.0 request cannot
     * be trusted to frame the body, and section 6.3 makes
     * Content-Length alongside it a smuggling signal. */
    if (request->http_minor == 0) {
        *reason = "Transfer-Encoding in an HTTP/1.0 request";
        return 400;
    }
    if (content_lengths > 0) {
        *reason = "both Content-Length and Transfer-Encoding";
        return 400;
    }
    /* RFC 9112 section 6.3: chunked must be the final coding of a request,
     * or the body length cannot be determined. */
    if (!last_chunked) {
        *reason = saw_chunked ? "chunked is not the final transfer coding"
                              : "unsupported transfer coding";
        return saw_chunked ? 400 : 501;
    }
    if (unsupported) {
        *reason = "unsupported transfer coding";
        return 501;
    }
    return 0;
}
