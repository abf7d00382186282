#!/usr/bin/env bash
# Quickstart: a throw-away box (a real OpenSSH sshd on 127.0.0.1) behind
# Switchboard, with no switchboard.toml at all: just a routes.toml.
#
#   examples/quickstart.sh          # from the repository root; Ctrl-C stops everything
#
# then, in another terminal:
#
#   ssh -p 2233 -o IdentitiesOnly=yes -i /tmp/switchboard-quickstart/client_key anything@127.0.0.1 'echo hello from $BOX'
#
# (IdentitiesOnly=yes: offer only client_key; with several keys in your
# ssh-agent, OpenSSH would offer those first and run out of tries.)
#
# Needs openssh-server and openssh-client (Debian: apt-get install openssh-server
# openssh-client). As root the box logs you in as root; as another user, as you.
# Knobs: WORK (directory), GW_PORT (2233), BOX_PORT (2222), ADMIN_PORT (9102, the
# gateway's /metrics), SSHD (/usr/sbin/sshd), SWITCHBOARD_BIN (a built switchboard
# binary to run instead of `cargo run --release`).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WORK:-${TMPDIR:-/tmp}/switchboard-quickstart}
GW_PORT=${GW_PORT:-2233}
BOX_PORT=${BOX_PORT:-2222}
ADMIN_PORT=${ADMIN_PORT:-9102}
SSHD=${SSHD:-/usr/sbin/sshd}
BIN=${SWITCHBOARD_BIN:-}
# A knob of this script, not a setting: the gateway warns about SWITCHBOARD_
# variables that name none.
unset SWITCHBOARD_BIN
ME=$(id -un)

in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in "$GW_PORT" "$BOX_PORT" "$ADMIN_PORT"; do
    if in_use "$port"; then
        echo "port $port on 127.0.0.1 is already in use (another quickstart or gateway?);" \
            "pick others with GW_PORT=… BOX_PORT=… ADMIN_PORT=…" >&2
        exit 1
    fi
done
for tool in "$SSHD" ssh-keygen; do
    if ! command -v "$tool" >/dev/null; then
        echo "$tool not found: the quickstart needs OpenSSH" \
            "(Debian: apt-get install openssh-server openssh-client)" >&2
        exit 1
    fi
done

# The gateway: no switchboard.toml, only these two overrides of the defaults.
export SWITCHBOARD_SERVER_LISTEN="127.0.0.1:$GW_PORT"
export SWITCHBOARD_ADMIN_LISTEN="127.0.0.1:$ADMIN_PORT"
switchboard() {
    if [ -n "$BIN" ]; then
        "$BIN" "$@"
    else
        cargo run --release --quiet --manifest-path "$ROOT/Cargo.toml" -- "$@"
    fi
}

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

# 4. The gateway's host key, for the first connection's "authenticity of host"
#    prompt. (The first `cargo run` builds switchboard: a few minutes.)
if [ -z "$BIN" ]; then
    echo "building switchboard (cargo run --release) ..."
    "$ROOT/bin/setup"    # our russh patch (patches/), applied once
fi
if ! switchboard host-key --dev --known-hosts >gateway_known_hosts 2>host-key.log; then
    cat host-key.log >&2
    exit 1
fi
FINGERPRINT=$(ssh-keygen -l -f gateway_known_hosts | awk '{print $2; exit}')

cat <<EOF

  box demo-box: sshd on 127.0.0.1:$BOX_PORT (log: $WORK/box_sshd.log)
  routes file:  $WORK/routes.toml (edit it: changes apply without a restart)
  gateway:      127.0.0.1:$GW_PORT, metrics on http://127.0.0.1:$ADMIN_PORT/metrics

  The first ssh asks whether to trust the gateway's host key: yes, if it shows
    $FINGERPRINT
  Or trust it beforehand: its known_hosts lines (switchboard host-key --dev --known-hosts, one per host key) are
    $(cat gateway_known_hosts)
  and  cat $WORK/gateway_known_hosts >> ~/.ssh/known_hosts  adds them.

  Once the gateway says "listening", in another terminal:

    ssh -p $GW_PORT -o IdentitiesOnly=yes -i $WORK/client_key anything@127.0.0.1 'echo hello from \$BOX'
    ssh -p $GW_PORT -o IdentitiesOnly=yes -i $WORK/client_key $ME@demo-box@127.0.0.1

  IdentitiesOnly=yes offers only client_key, not every key in your ssh-agent
  first (those would use up the gateway's max_auth_tries).

EOF

# 5. The gateway: no switchboard.toml, so built-in defaults and ./routes.toml;
#    --dev uses a public development host-key seed (never for real use).
switchboard serve --dev
