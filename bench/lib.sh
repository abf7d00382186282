# Shared setup for the benchmark scripts (sourced): a work dir cleaned up on
# exit, a box sshd, an OpenSSH jump host, and `start_gateway NAME EXTRA_TOML`.
# Expects ROOT and CIPHER set; builds the release binary unless SWITCHBOARD_BIN
# names one; sets BIN, WORK, BOX_PORT, JUMP_PORT and writes $WORK/ssh_config
# with hosts direct, jump, jumphost (gateways add theirs).

if [ -z "${SWITCHBOARD_BIN:-}" ]; then
    echo "building release binary..." >&2
    cargo build --release --locked --quiet --manifest-path "$ROOT/Cargo.toml"
fi
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

cat >"$WORK/routes.toml" <<EOF
[[route]]
name = "bench-box"
address = "127.0.0.1:$BOX_PORT"
user = "$(id -un)"
authorized_keys = ["$(cat "$WORK/client_key.pub")"]
identity_file = "$WORK/identity"
EOF
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
EOF


# start_gateway NAME [EXTRA_TOML]: a gateway on a free port serving the box,
# reachable as ssh host NAME.
start_gateway() {
    local name=$1 extra=${2:-} port
    port=$(free_port)
    cat >"$WORK/$name.toml" <<EOF
[server]
listen = "127.0.0.1:$port"
host_key_seed = "bench-only-seed-not-secret"

[sources.file]
path = "$WORK/routes.toml"
watch = false

[admin]
listen = "127.0.0.1:0"

[log]
level = "warn"

$extra
EOF
    "$BIN" serve --config "$WORK/$name.toml" >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    if ! wait_banner "$port"; then
        cat "$WORK/$name.log" >&2
        exit 1
    fi
    printf 'Host %s\n    Port %s\n' "$name" "$port" >>"$WORK/ssh_config"
}
