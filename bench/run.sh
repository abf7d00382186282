#!/usr/bin/env bash
# The whole benchmark suite in one command: builds the release binary, then
# runs bench/suite.py (throughput, connection setup, echo latency,
# concurrency) against a direct sshd, an OpenSSH jump host and the gateway,
# all on 127.0.0.1, and prints Markdown tables. See BENCHMARKS.md.
#
# Usage: bench/run.sh                          everything (about 15 minutes)
#        bench/run.sh throughput echo          some sections
#        bench/run.sh --size-mb 256 --sessions 500
#        SWITCHBOARD_BIN=path/to/switchboard bench/run.sh   (skip the build)
# Needs openssh-server, openssh-client and python3; starts sshd, so run as
# root (or as a user allowed to run sshd on a high port).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${SWITCHBOARD_BIN:-}" ]; then
    echo "building the release binary..." >&2
    "$ROOT/bin/setup"
    cargo build --release --locked --quiet --manifest-path "$ROOT/Cargo.toml"
fi
BIN=${SWITCHBOARD_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/switchboard}
exec python3 "$ROOT/bench/suite.py" --bin "$BIN" "$@"
