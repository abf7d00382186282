#!/usr/bin/env bash
# Throughput of one SSH stream three ways, in one run on this machine:
#   direct   client -> box sshd
#   jump     client -> OpenSSH sshd used as a jump host (-J) -> box sshd
#   gateway  client -> switchboard (release build) -> box sshd
# Up: `head -c N /dev/zero | ssh HOST 'cat > /dev/null'`; down: `ssh HOST 'head -c N /dev/zero'`.
# Prints MiB/s per path and direction, and the ratios gateway/direct and gateway/jump.
# Everything runs on 127.0.0.1 and shares the CPU: compare paths within one run only.
#
# Usage: bench/throughput.sh            (512 MiB each way)
#        SIZE_MB=1024 bench/throughput.sh
#        CIPHER=chacha20-poly1305@openssh.com bench/throughput.sh
# Needs: openssh-server, openssh-client; runs sshd, so as root (or a user allowed to).
set -euo pipefail

SIZE_MB=${SIZE_MB:-512}
CIPHER=${CIPHER:-aes128-gcm@openssh.com}
BYTES=$((SIZE_MB * 1024 * 1024))
ROOT=$(cd "$(dirname "$0")/.." && pwd)

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
start_gateway gateway

SSH=(ssh -F "$WORK/ssh_config")

now() { date +%s.%N; }
mibps() { awk -v n="$SIZE_MB" -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", n / (b - a) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

# measure HOST -> sets UP, DOWN (MiB/s) and CONNECT (seconds for `ssh HOST true`)
measure() {
    local host=$1 t0 t1 got
    if [ "$("${SSH[@]}" "$host" 'echo $BOX')" != box ]; then
        echo "$host does not reach the box" >&2
        exit 1
    fi
    t0=$(now)
    "${SSH[@]}" "$host" true
    t1=$(now)
    CONNECT=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')

    t0=$(now)
    got=$(head -c "$BYTES" /dev/zero | "${SSH[@]}" "$host" 'wc -c')
    t1=$(now)
    [ "$got" -eq "$BYTES" ] || { echo "$host up: box got $got of $BYTES bytes" >&2; exit 1; }
    UP=$(mibps "$t0" "$t1")

    t0=$(now)
    got=$("${SSH[@]}" "$host" "head -c $BYTES /dev/zero" | wc -c)
    t1=$(now)
    [ "$got" -eq "$BYTES" ] || { echo "$host down: got $got of $BYTES bytes" >&2; exit 1; }
    DOWN=$(mibps "$t0" "$t1")
}

echo "pushing $SIZE_MB MiB each way, cipher $CIPHER (client side), $(nproc) cores" >&2
declare -A R
for path in direct jump gateway; do
    echo "  $path..." >&2
    measure "$path"
    R[$path.up]=$UP
    R[$path.down]=$DOWN
    R[$path.connect]=$CONNECT
done

printf '\n%-8s %12s %12s %14s\n' path "up MiB/s" "down MiB/s" "ssh true (s)"
for path in direct jump gateway; do
    printf '%-8s %12s %12s %14s\n' "$path" "${R[$path.up]}" "${R[$path.down]}" "${R[$path.connect]}"
done
printf '\ngateway/direct: up %s, down %s\n' "$(ratio "${R[gateway.up]}" "${R[direct.up]}")" \
    "$(ratio "${R[gateway.down]}" "${R[direct.down]}")"
printf 'gateway/jump:   up %s, down %s\n' "$(ratio "${R[gateway.up]}" "${R[jump.up]}")" \
    "$(ratio "${R[gateway.down]}" "${R[jump.down]}")"
