#!/usr/bin/env bash
# The whole benchmark suite in one command: builds the release binary, then
# runs bench/suite.py (throughput, connection setup, echo latency,
# concurrency) against a direct sshd, an OpenSSH jump host and the gateway,
# all on 127.0.0.1, and prints Markdown tables. See BENCHMARKS.md.
#
# Usage: bench/run.sh                          everything (about 15 minutes)
#        bench/run.sh throughput echo          some sections
#        bench/run.sh --size-mb 256 --sessions 500
#        BENCH_BIN=path/to/switchboard bench/run.sh   (skip the build; a
#            build's own BENCH_IDLE_TOOL for section many)
# Needs openssh-server, openssh-client and python3; starts sshd, so run as
# root (or as a user allowed to run sshd on a high port).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${CARGO_TARGET_DIR:-$ROOT/target}/release
if [ -z "${BENCH_BIN:-}" ]; then
    echo "building the release binary..." >&2
    "$ROOT/bin/setup"
    cargo build --release --locked --quiet --manifest-path "$ROOT/Cargo.toml" \
        --bin switchboard --example idle_sessions
fi
BIN=${BENCH_BIN:-$OUT/switchboard}
# The load tool of section `many` (examples/idle_sessions.rs).
IDLE=${BENCH_IDLE_TOOL:-$OUT/examples/idle_sessions}
exec python3 "$ROOT/bench/suite.py" --bin "$BIN" --idle-tool "$IDLE" "$@"
