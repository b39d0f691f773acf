#!/usr/bin/env bash
# Set up, build and run every test: the Swift suites (UVHTTP and the Plex
# endpoints over loopback), a short fuzzing run of the request parser path,
# then the client compatibility suite, which drives a real pmsd with
# python-plexapi from PyPI.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

scripts/setup.sh --with-test-tools

swift build --build-tests
swift test --skip-build

Tests/Fuzz/run.sh --smoke

swift build --product pmsd
Tests/Compatibility/run.sh "$root/.build/debug/pmsd"
