#!/usr/bin/env bash
# Build pmsd in release mode and install it with its systemd unit:
#   $DESTDIR$PREFIX/bin/pmsd                     (PREFIX defaults to /usr/local)
#   $DESTDIR/etc/systemd/system/pmsd.service
#   $DESTDIR/etc/pmsd/pmsd.json                  (only when missing)
#   $DESTDIR$PREFIX/share/doc/pmsd/*.md
# Then, unless DESTDIR is set, reloads systemd. Enable and start it with
#   systemctl enable --now pmsd
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
prefix=${PREFIX:-/usr/local}
destdir=${DESTDIR:-}

scripts/setup.sh
swift build -c release --product pmsd

install -D -m 0755 .build/release/pmsd "$destdir$prefix/bin/pmsd"
sed "s|/usr/local/|$prefix/|g" scripts/systemd/pmsd.service > "$root/.build/pmsd.service"
install -D -m 0644 "$root/.build/pmsd.service" "$destdir/etc/systemd/system/pmsd.service"
if [ ! -f "$destdir/etc/pmsd/pmsd.json" ]; then
    install -d -m 0755 "$destdir/etc/pmsd"
    printf '{\n  "friendlyName": "%s"\n}\n' "$(hostname)" > "$destdir/etc/pmsd/pmsd.json"
    chmod 0644 "$destdir/etc/pmsd/pmsd.json"
fi
for doc in deploy configuration endpoints hardening; do
    install -D -m 0644 "docs/$doc.md" "$destdir$prefix/share/doc/pmsd/$doc.md"
done
echo "install: pmsd installed under $destdir$prefix; unit in $destdir/etc/systemd/system" >&2

if [ -z "$destdir" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    echo "install: start it with: systemctl enable --now pmsd" >&2
fi
