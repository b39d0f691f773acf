#!/usr/bin/env bash
# Run the client compatibility suite against a pmsd binary.
#
# Usage: Tests/Compatibility/run.sh PMSD_BINARY [PYTEST_ARGUMENTS...]
#
# The first run creates a virtual environment in .build/compat-venv under the
# repository root and installs requirements.txt into it from PyPI. Later runs
# reuse it, and a change to requirements.txt or to the Python version makes
# the next run build it anew. The suite starts its own pmsd processes on
# 127.0.0.1 and exits non-zero when any test fails or when no test ran.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv="$root/.build/compat-venv"
requirements="$here/requirements.txt"

if [ "$#" -lt 1 ]; then
    echo "usage: $0 PMSD_BINARY [PYTEST_ARGUMENTS...]" >&2
    exit 64
fi
binary=$1
shift
if [ ! -x "$binary" ] || [ -d "$binary" ]; then
    echo "compat: $binary is not an executable file. Build it with: swift build --product pmsd" >&2
    exit 66
fi
binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")

python=${PYTHON:-python3}
# The stamp records what the environment was built from.
wanted_stamp="$(sha256sum "$requirements" | cut -d' ' -f1) $("$python" -c 'import sys; print(sys.version.split()[0])')"
stamp_file="$venv/.compat-stamp"

if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp_file" 2>/dev/null)" != "$wanted_stamp" ]; then
    echo "compat: creating the virtual environment in $venv" >&2
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    if ! "$python" -m venv "$venv" \
        || ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
            --requirement "$requirements"; then
        # A half-built environment would be reused next time, so remove it.
        rm -rf "$venv"
        echo "compat: creating the virtual environment failed" >&2
        exit 1
    fi
    echo "$wanted_stamp" > "$stamp_file"
fi

# Run from the repository root so that pytest names test files by their
# repository path.
cd "$root"
status=0
PMSD_BINARY="$binary" PYTHONDONTWRITEBYTECODE=1 \
    "$venv/bin/python" -m pytest -p no:cacheprovider --rootdir "$here" -c "$here/pytest.ini" "$here" "$@" \
    || status=$?
if [ "$status" -eq 5 ]; then
    echo "compat: pytest collected no tests, which counts as a failure" >&2
    exit 1
fi
exit "$status"
