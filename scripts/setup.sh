#!/usr/bin/env bash
# Bring a Debian 12 machine to a buildable state: the Debian packages the
# build needs, and llhttp's release C source placed where the CLLHTTP target
# compiles it. Safe to run again: it skips whatever is already in place.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)

# --with-test-tools adds what the test suites need beyond the build.
with_test_tools=0
for argument in "$@"; do
    case "$argument" in
        --with-test-tools) with_test_tools=1 ;;
        *) echo "setup: unknown option $argument (known: --with-test-tools)" >&2; exit 64 ;;
    esac
done

# llhttp 9.3.0 as carried, unmodified under lib/, by PyPI's llhttp==9.3.0.0
# source distribution. The SHA-256 pins the archive itself.
LLHTTP_PYPI_VERSION=9.3.0.0
LLHTTP_SHA256=0d989363e7fb6f270b9d49956e7a3945c26778f8c70a166815264309ac6a8295
llhttp_dir="$root/CSources/CLLHTTP"
stamp="$llhttp_dir/upstream/.version"

packages=(libuv1-dev pkg-config python3 python3-pip)
if [ "$with_test_tools" = 1 ]; then
    packages+=(python3-venv)
fi
need_packages=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
        || need_packages+=("$pkg")
done
if [ "${#need_packages[@]}" -gt 0 ]; then
    echo "setup: installing ${need_packages[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_packages[@]}" >/dev/null
fi

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$LLHTTP_SHA256" ] \
    && [ -f "$llhttp_dir/include/llhttp.h" ]; then
    exit 0
fi

echo "setup: fetching llhttp $LLHTTP_PYPI_VERSION source" >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip download --quiet --no-binary :all: --no-deps \
    --dest "$work" "llhttp==$LLHTTP_PYPI_VERSION"
archive="$work/llhttp-$LLHTTP_PYPI_VERSION.tar.gz"
actual=$(sha256sum "$archive" | cut -d' ' -f1)
if [ "$actual" != "$LLHTTP_SHA256" ]; then
    echo "setup: llhttp archive SHA-256 mismatch: expected $LLHTTP_SHA256, got $actual" >&2
    exit 1
fi
tar -xzf "$archive" -C "$work"
src="$work/llhttp-$LLHTTP_PYPI_VERSION/lib"
mkdir -p "$llhttp_dir/upstream" "$llhttp_dir/include"
cp "$src/api.c" "$src/http.c" "$src/llhttp.c" "$llhttp_dir/upstream/"
cp "$src/llhttp.h" "$llhttp_dir/include/llhttp.h"
echo "$LLHTTP_SHA256" > "$stamp"
echo "setup: llhttp source placed in CSources/CLLHTTP" >&2
