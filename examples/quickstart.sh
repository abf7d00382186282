#!/usr/bin/env bash
# Quickstart: a throw-away box (a real OpenSSH sshd on 127.0.0.1) behind
# Switchboard, with no switchboard.toml at all: just a routes.toml.
#
#   examples/quickstart.sh          # from the repository root; Ctrl-C stops everything
#
# then, in another terminal:
#
#   ssh -p 2233 -i /tmp/switchboard-quickstart/client_key anything@127.0.0.1 'echo hello from $BOX'
#
# Needs openssh-server and openssh-client (Debian: apt-get install openssh-server
# openssh-client). As root the box logs you in as root; as another user, as you.
# Knobs: WORK (directory), GW_PORT (2233), BOX_PORT (2222), SSHD (/usr/sbin/sshd).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-${TMPDIR:-/tmp}/switchboard-quickstart}
GW_PORT=${GW_PORT:-2233}
BOX_PORT=${BOX_PORT:-2222}
SSHD=${SSHD:-/usr/sbin/sshd}
ME=$(id -un)

in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in "$GW_PORT" "$BOX_PORT"; do
    if in_use "$port"; then
        echo "port $port on 127.0.0.1 is already in use; pick others with GW_PORT=… BOX_PORT=…" >&2
        exit 1
    fi
done

mkdir -p "$WORK"
cd "$WORK"

# 1. Keys: yours (the client), the gateway's identity for the box, the box's host key.
for key in client_key gateway_identity box_host_key; do
    [ -f "$key" ] || ssh-keygen -q -t ed25519 -N '' -C "quickstart-$key" -f "$key"
done

# 2. The box: an sshd that trusts only the gateway's identity key.
cp gateway_identity.pub box_authorized_keys
cat >box_sshd_config <<EOF
Port $BOX_PORT
ListenAddress 127.0.0.1
HostKey $WORK/box_host_key
PidFile $WORK/box_sshd.pid
AuthorizedKeysFile $WORK/box_authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowTcpForwarding yes
Subsystem sftp internal-sftp
SetEnv BOX=demo-box
EOF
if [ "$(id -u)" = 0 ]; then mkdir -p /run/sshd; fi
"$SSHD" -D -f "$WORK/box_sshd_config" -E "$WORK/box_sshd.log" &
SSHD_PID=$!
trap 'kill "$SSHD_PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
    if ! kill -0 "$SSHD_PID" 2>/dev/null; then
        echo "the box's sshd did not start:" >&2
        cat "$WORK/box_sshd.log" >&2
        exit 1
    fi
    if in_use "$BOX_PORT"; then break; fi
    sleep 0.1
done

# 3. The route: your key reaches demo-box; the gateway logs in with its identity.
cat >routes.toml <<EOF
[[route]]
name = "demo-box"
address = "127.0.0.1:$BOX_PORT"
user = "$ME"
authorized_keys = ["$(cat client_key.pub)"]
identity_file = "$WORK/gateway_identity"
EOF

cat <<EOF

  box demo-box: sshd on 127.0.0.1:$BOX_PORT (log: $WORK/box_sshd.log)
  routes file:  $WORK/routes.toml (edit it: changes apply without a restart)

  Once the gateway says "listening", in another terminal:

    ssh -p $GW_PORT -i $WORK/client_key anything@127.0.0.1 'echo hello from \$BOX'
    ssh -p $GW_PORT -i $WORK/client_key $ME@demo-box@127.0.0.1

EOF

# 4. The gateway: no switchboard.toml, so built-in defaults and ./routes.toml;
#    --dev uses a public development host-key seed (never for real use).
SWITCHBOARD_SERVER_LISTEN="127.0.0.1:$GW_PORT" \
    cargo run --release --quiet --manifest-path "$ROOT/Cargo.toml" -- serve --dev
