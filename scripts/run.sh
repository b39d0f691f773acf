#!/usr/bin/env bash
# Set up, build and start pmsd on port 32400, with its configuration and state
# in ./state. Extra arguments are passed to pmsd, e.g. --bind 0.0.0.0.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

scripts/setup.sh
swift build -c release --product pmsd

state="$root/state"
config="$state/pmsd.json"
mkdir -p "$state"
chmod 700 "$state"
if [ ! -f "$config" ]; then
    printf '{\n  "friendlyName": "pmsd on %s"\n}\n' "$(hostname)" > "$config"
    echo "run: wrote a starting configuration to $config" >&2
fi

echo "run: pmsd answers on http://127.0.0.1:32400/ (try: curl http://127.0.0.1:32400/identity)" >&2
echo "run: the owner token is in $state/admin-token unless $config sets adminToken" >&2
exec "$root/.build/release/pmsd" --config "$config" --port 32400 --bind 127.0.0.1 \
    --state-dir "$state" "$@"
