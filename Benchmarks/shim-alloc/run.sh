#!/usr/bin/env bash
# Builds the shim allocation harness against the repository's shim sources
# (CSources/CUVHTTP/*.c) and llhttp's, then runs it. The harness exits non-zero when the shim's
# loop thread calls the allocator while serving the measured requests.
#
#   Benchmarks/shim-alloc/run.sh [harness options]
#       options: --connections N --warm-up REQUESTS --measured REQUESTS
#                --verbose --allocate-per-request (see harness --help)
#   Benchmarks/shim-alloc/run.sh --valgrind
#       cross-check without the harness's own counting: runs a build without
#       the allocator hooks under valgrind's memcheck with 2 000 and then
#       20 000 measured requests, and compares the whole process's heap totals.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/Benchmarks/shim-alloc"
out="$root/build/shim-alloc"
llhttp="$root/CSources/CLLHTTP"
shim="$root/CSources/CUVHTTP"

missing=()
for file in "$llhttp/include/llhttp.h" "$llhttp/upstream/api.c" \
    "$llhttp/upstream/http.c" "$llhttp/upstream/llhttp.c"; do
    [ -f "$file" ] || missing+=("${file#"$root"/}")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "shim-alloc: llhttp source is missing (${missing[*]})." >&2
    echo "shim-alloc: run scripts/setup.sh first, then run this script again." >&2
    exit 2
fi
if ! pkg-config --exists libuv; then
    echo "shim-alloc: pkg-config cannot find libuv. Install libuv1-dev, which scripts/setup.sh does." >&2
    exit 2
fi

read -r -a uv_flags <<<"$(pkg-config --cflags --libs libuv)"
includes=(-I"$shim/include" -I"$llhttp/include")
mkdir -p "$out"

# Compiles the shim, llhttp and the harness, the harness with the extra flags
# given, and links them into $out/$1.
build() {
    local name=$1
    shift
    local shim_objects=()
    for source in "$shim"/*.c; do
        local object="$out/shim-$(basename "$source" .c).o"
        gcc -O2 -g -std=gnu11 -c "${includes[@]}" -I"$shim" "$source" -o "$object"
        shim_objects+=("$object")
    done
    for source in api http llhttp; do
        gcc -O2 -g -std=gnu11 -c "${includes[@]}" "$llhttp/upstream/$source.c" \
            -o "$out/llhttp-$source.o"
    done
    gcc -O2 -g -std=gnu11 -Wall -Wextra "$@" -c "${includes[@]}" \
        "$here/harness.c" -o "$out/$name.o"
    gcc -o "$out/$name" "$out/$name.o" "${shim_objects[@]}" "$out"/llhttp-*.o \
        "${uv_flags[@]}" -ldl -lpthread
}

if [ "${1:-}" != "--valgrind" ]; then
    build harness
    echo "shim-alloc: built $out/harness" >&2
    exec "$out/harness" "$@"
fi

if ! command -v valgrind >/dev/null; then
    echo "shim-alloc: valgrind is not installed (apt-get install valgrind)." >&2
    exit 2
fi
build harness-valgrind -DSHIM_ALLOC_NO_HEAP_HOOKS
echo "shim-alloc: built $out/harness-valgrind" >&2

# Runs the hook-free harness under memcheck with the given --measured count
# and prints the measured requests and the "total heap usage" line, separated
# by a tab.
heap_usage() {
    local log="$out/valgrind-$1.log"
    local requests
    if ! valgrind --tool=memcheck --error-exitcode=3 "$out/harness-valgrind" \
        --measured "$1" >"$log" 2>&1; then
        echo "shim-alloc: the harness failed under valgrind; see $log" >&2
        exit 1
    fi
    requests=$(awk '$1 == "measured" && $2 ~ /^[0-9]+$/ { print $2 }' "$log")
    printf '%s\t%s\n' "$requests" "$(grep -o 'total heap usage: .*' "$log")"
}

small=$(heap_usage 2000)
large=$(heap_usage 20000)
IFS=$'\t' read -r small_requests small_usage <<<"$small"
IFS=$'\t' read -r large_requests large_usage <<<"$large"
echo "$small_requests measured requests: $small_usage"
echo "$large_requests measured requests: $large_usage"
allocs_small=${small_usage#total heap usage: }
allocs_small=${allocs_small%% allocs*}
allocs_large=${large_usage#total heap usage: }
allocs_large=${allocs_large%% allocs*}
more=$((large_requests - small_requests))
if [ "$allocs_small" = "$allocs_large" ]; then
    echo "PASS: $more more requests made no more allocations in the whole process"
else
    echo "FAIL: $more more requests changed the process's allocation count from $allocs_small to $allocs_large"
    exit 1
fi
