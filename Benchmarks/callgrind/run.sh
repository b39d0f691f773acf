#!/usr/bin/env bash
# Counts the instructions pmsd executes per request with callgrind: wall time
# is too noisy on a shared machine, instruction counts repeat. Builds pmsd in
# release mode, runs it under callgrind collecting only inside the event loop
# (uvh_server_run), sends REQUESTS pipelined GET /identity requests, and
# prints instructions per request and the top functions.
#
#   Benchmarks/callgrind/run.sh [REQUESTS]      (default 17600)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
requests=${1:-17600}
out="$root/build/callgrind"
port=18690
mkdir -p "$out"

command -v valgrind >/dev/null || { echo "callgrind: install valgrind (apt-get install valgrind)" >&2; exit 2; }
"$root/scripts/setup.sh"
(cd "$root" && swift build -c release --product pmsd)
# valgrind 3.19 cannot read the Swift toolchain's debug information, so the
# profiled copy keeps its symbol table and drops the rest.
strip --strip-debug -o "$out/pmsd" "$root/.build/release/pmsd"
echo '{"adminToken": "callgrind-token"}' > "$out/pmsd.json"
rm -f "$out/callgrind.out"

valgrind --tool=callgrind --toggle-collect=uvh_server_run --callgrind-out-file="$out/callgrind.out" \
    "$out/pmsd" --config "$out/pmsd.json" --port "$port" --bind 127.0.0.1 --state-dir "$out/state" \
    --log-level error 2> "$out/valgrind.log" &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do
    python3 - "$port" <<'PY' && break
import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
except OSError:
    sys.exit(1)
PY
    sleep 0.5
done
python3 "$root/Benchmarks/callgrind/pipelined_client.py" "$port" "$requests"
kill -TERM "$server"
wait "$server" || true
trap - EXIT

collected=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out/valgrind.log")
echo "callgrind: $collected instructions in the event loop for $requests requests:" \
    "$((collected / requests)) per request"
callgrind_annotate --auto=no --threshold=90 "$out/callgrind.out" | sed -n '/file:function/,$p' | head -25
