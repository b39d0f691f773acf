#!/usr/bin/env bash
# Builds the libFuzzer target fuzz_http.c with the shim and llhttp sources,
# under AddressSanitizer and UndefinedBehaviorSanitizer, into build/fuzz/, and
# runs it.
#
#   Tests/Fuzz/run.sh [SECONDS] [LIBFUZZER_OPTIONS...]
#       fuzzes for SECONDS (default 60) over build/fuzz/corpus, which starts
#       as a copy of Tests/Fuzz/corpus and keeps what earlier runs found.
#   Tests/Fuzz/run.sh --smoke
#       runs every seed and regression input once, then fuzzes for 20
#       seconds over a fresh copy of them.
#   Tests/Fuzz/run.sh --build
#       only builds.
#
# Exits non-zero when the target crashes, an invariant fails or an input
# times out. libFuzzer writes the failing input to build/fuzz/artifacts/.
# CLANG selects the compiler; by default it is the Swift toolchain's clang,
# then clang on PATH, whichever can link -fsanitize=fuzzer.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/Tests/Fuzz"
out="$root/build/fuzz"
llhttp="$root/CSources/CLLHTTP"
shim="$root/CSources/CUVHTTP"
max_len=65536
smoke_seconds=20

mode=fuzz
seconds=60
case "${1:-}" in
    --smoke) mode=smoke; shift ;;
    --build) mode=build; shift ;;
    ''|-*) ;;
    *)
        if ! [[ "$1" =~ ^[0-9]+$ ]]; then
            echo "fuzz: SECONDS must be a whole number, not '$1'" >&2
            exit 64
        fi
        seconds=$1
        shift
        ;;
esac

missing=()
for file in "$llhttp/include/llhttp.h" "$llhttp/upstream/api.c" \
    "$llhttp/upstream/http.c" "$llhttp/upstream/llhttp.c"; do
    [ -f "$file" ] || missing+=("${file#"$root"/}")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "fuzz: llhttp source is missing (${missing[*]})." >&2
    echo "fuzz: run scripts/setup.sh first, then run this script again." >&2
    exit 2
fi
if ! pkg-config --exists libuv; then
    echo "fuzz: pkg-config cannot find libuv. Install libuv1-dev, which scripts/setup.sh does." >&2
    exit 2
fi

mkdir -p "$out"

# Prints the first compiler that links a libFuzzer target, with the linker
# flag it needs.
find_clang() {
    local probe="$out/probe.c"
    local candidate
    local linker
    printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
        'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
        >"$probe"
    for candidate in ${CLANG:-/opt/swift/usr/bin/clang clang}; do
        command -v "$candidate" >/dev/null || continue
        # The system linker may be gold, which warns about every ASan
        # symbol, so lld is used when it is installed beside clang.
        linker=
        if [ -x "$(dirname "$(command -v "$candidate")")/ld.lld" ]; then
            linker=-fuse-ld=lld
        fi
        if "$candidate" $linker -fsanitize=fuzzer,address,undefined "$probe" \
            -o "$out/probe" >/dev/null 2>&1; then
            echo "$candidate $linker"
            return 0
        fi
    done
    return 1
}

if ! compiler=$(find_clang); then
    echo "fuzz: no clang here links -fsanitize=fuzzer. Set CLANG, or install" >&2
    echo "fuzz: Debian's clang with its runtime: apt-get install clang libclang-rt-14-dev" >&2
    exit 2
fi
read -r -a compiler <<<"$compiler"
read -r -a uv_flags <<<"$(pkg-config --cflags --libs libuv)"

"${compiler[@]}" -g -O1 -fno-omit-frame-pointer -std=gnu11 \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -fsanitize-recover=nonnull-attribute \
    -I"$shim" -I"$shim/include" -I"$llhttp/include" \
    "$here/fuzz_http.c" "$shim"/*.c "$llhttp"/upstream/{api,http,llhttp}.c \
    "${uv_flags[@]}" -o "$out/fuzz_http"
echo "fuzz: built $out/fuzz_http with ${compiler[0]}" >&2

if [ "$mode" = build ]; then
    exit 0
fi

# halt_on_error makes checks compiled as recoverable, such as
# nonnull-attribute, fatal as well.
ubsan_options=halt_on_error=1:print_stacktrace=1
export UBSAN_OPTIONS="$ubsan_options${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

# libFuzzer's -jobs and -fork modes write their logs to the working directory.
cd "$out"
mkdir -p "$out/artifacts"
options=(-max_len="$max_len" -timeout=20 -rss_limit_mb=2048
    -dict="$here/http.dict" -print_final_stats=1
    -artifact_prefix="$out/artifacts/")
# regressions/ keeps inputs that once found a defect, in the same format,
# so every run checks them again.
seeds=("$here"/corpus/* "$here"/regressions/*)

if [ "$mode" = smoke ]; then
    echo "fuzz: running ${#seeds[@]} seeds once" >&2
    "$out/fuzz_http" "${options[@]}" "${seeds[@]}"
    rm -rf "$out/smoke-corpus"
    mkdir -p "$out/smoke-corpus"
    cp "${seeds[@]}" "$out/smoke-corpus/"
    echo "fuzz: fuzzing for $smoke_seconds seconds" >&2
    "$out/fuzz_http" "${options[@]}" -max_total_time="$smoke_seconds" \
        "$out/smoke-corpus"
    echo "fuzz: smoke run passed: ${#seeds[@]} seeds and $smoke_seconds seconds of fuzzing without a failure"
    exit 0
fi

mkdir -p "$out/corpus"
cp "${seeds[@]}" "$out/corpus/"
exec "$out/fuzz_http" "${options[@]}" -max_total_time="$seconds" "$@" "$out/corpus"
