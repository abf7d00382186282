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

echo "building release binary..." >&2
cargo build --release --locked --quiet --manifest-path "$ROOT/Cargo.toml"
BIN=${SWITCHBOARD_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/switchboard}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sb-bench.XXXXXX")
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port in 20000-31999 (below the ephemeral range) that nobody answers on.
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
}

# Waits until PORT answers with an SSH banner.
wait_banner() {
    local port=$1 i
    for i in $(seq 1 200); do
        if [ "$(timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port && head -c 4 <&3" 2>/dev/null)" = "SSH-" ]; then
            return 0
        fi
        sleep 0.1
    done
    echo "nothing answers SSH on port $port" >&2
    return 1
}

# start_sshd NAME PORT AUTHORIZED_KEYS_FILE
start_sshd() {
    local name=$1 port=$2 keys=$3 dir="$WORK/$1"
    mkdir -p "$dir" /run/sshd
    ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
    cat >"$dir/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $keys
StrictModes no
UsePAM no
UseDNS no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowTcpForwarding yes
SetEnv BOX=$name
LogLevel ERROR
EOF
    /usr/sbin/sshd -D -f "$dir/sshd_config" -E "$dir/sshd.log" &
    PIDS+=($!)
    wait_banner "$port"
}

ssh-keygen -q -t ed25519 -N '' -C bench-client -f "$WORK/client_key"
ssh-keygen -q -t ed25519 -N '' -C bench-gateway -f "$WORK/identity"
cat "$WORK/client_key.pub" "$WORK/identity.pub" >"$WORK/box_keys"
cp "$WORK/client_key.pub" "$WORK/jump_keys"

BOX_PORT=$(free_port)
start_sshd box "$BOX_PORT" "$WORK/box_keys"
JUMP_PORT=$(free_port)
start_sshd jump "$JUMP_PORT" "$WORK/jump_keys"

GW_PORT=$(free_port)
cat >"$WORK/routes.toml" <<EOF
[[route]]
name = "bench-box"
address = "127.0.0.1:$BOX_PORT"
user = "$(id -un)"
authorized_keys = ["$(cat "$WORK/client_key.pub")"]
identity_file = "$WORK/identity"
EOF
cat >"$WORK/switchboard.toml" <<EOF
[server]
listen = "127.0.0.1:$GW_PORT"
host_key_seed = "bench-only-seed-not-secret"

[sources.file]
path = "$WORK/routes.toml"
watch = false

[admin]
listen = "127.0.0.1:0"

[log]
level = "warn"
EOF
"$BIN" serve --config "$WORK/switchboard.toml" >"$WORK/gateway.log" 2>&1 &
PIDS+=($!)
if ! wait_banner "$GW_PORT"; then
    cat "$WORK/gateway.log" >&2
    exit 1
fi

cat >"$WORK/ssh_config" <<EOF
Host *
    HostName 127.0.0.1
    User $(id -un)
    IdentityFile $WORK/client_key
    IdentitiesOnly yes
    StrictHostKeyChecking no
    UserKnownHostsFile /dev/null
    BatchMode yes
    LogLevel ERROR
    ConnectTimeout 10
    Ciphers $CIPHER
Host direct
    Port $BOX_PORT
Host jumphost
    Port $JUMP_PORT
Host jump
    Port $BOX_PORT
    ProxyJump jumphost
Host gateway
    Port $GW_PORT
EOF

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
