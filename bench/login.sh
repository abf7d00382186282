#!/usr/bin/env bash
# Connection setup: `ssh HOST true` (TCP connect + key exchange + auth + exec
# + close), N times in a row, on each path in one run on this machine:
#   direct          client -> box sshd
#   jump            client -> OpenSSH jump host (-J) -> box sshd
#   gateway         client -> switchboard -> box sshd
#   gateway+tunnels the same with [http_tunnel] enabled (protocol detection on
#                   the port: SSH clients must see no added delay)
#   gateway+proxy   with [proxy_protocol] enabled (direct clients, no header)
# Prints p50 / p99 / mean in milliseconds and each path's ratio to direct.
#
# Usage: bench/login.sh          (N=50)
#        N=200 bench/login.sh
set -euo pipefail

N=${N:-50}
CIPHER=${CIPHER:-aes128-gcm@openssh.com}
ROOT=$(cd "$(dirname "$0")/.." && pwd)

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
start_gateway gateway
start_gateway gateway+tunnels $'[http_tunnel]\nenabled = true'
start_gateway gateway+proxy $'[proxy_protocol]\nenabled = true\ntrusted_cidrs = ["127.0.0.0/8"]'

SSH=(ssh -F "$WORK/ssh_config")
PATHS=(direct jump gateway gateway+tunnels gateway+proxy)

# stats FILE -> "p50 p99 mean"
stats() {
    sort -n "$1" | awk '{ v[NR] = $1; s += $1 }
        END { p50 = v[int((NR + 1) * 0.5)]; i99 = int(NR * 0.99 + 0.999); if (i99 > NR) i99 = NR;
              printf "%.1f %.1f %.1f", p50, v[i99], s / NR }'
}

echo "$N x 'ssh HOST true' per path, interleaved rounds, $(nproc) cores" >&2
for path in "${PATHS[@]}"; do "${SSH[@]}" "$path" true; done # warm up
for path in "${PATHS[@]}"; do : >"$WORK/$path.ms"; done
# Interleave the paths so machine noise hits them alike.
for _ in $(seq 1 "$N"); do
    for path in "${PATHS[@]}"; do
        t0=$(date +%s%N)
        "${SSH[@]}" "$path" true
        t1=$(date +%s%N)
        awk -v ns=$((t1 - t0)) 'BEGIN { printf "%.2f\n", ns / 1e6 }' >>"$WORK/$path.ms"
    done
done

read -r d50 d99 dmean <<<"$(stats "$WORK/direct.ms")"
printf '\n%-16s %9s %9s %9s %12s\n' path "p50 ms" "p99 ms" "mean ms" "p50/direct"
for path in "${PATHS[@]}"; do
    read -r p50 p99 mean <<<"$(stats "$WORK/$path.ms")"
    printf '%-16s %9s %9s %9s %12s\n' "$path" "$p50" "$p99" "$mean" \
        "$(awk -v a="$p50" -v b="$d50" 'BEGIN { printf "%.2f", a / b }')"
done
