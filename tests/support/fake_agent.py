#!/usr/bin/python3
"""SSH agents for the attack tests (tests/security*.rs), on a unix socket.

    fake_agent.py silent SOCK
        Never answers a request for its keys (or anything else): an agent
        that hangs. Only the session-bind extension (27) that OpenSSH's
        client itself sends, synchronously, before it connects a forwarded
        agent channel, is refused at once (else the client would hang too,
        not just the gateway's login).
    fake_agent.py hang-on-sign SOCK PUBKEY_FILE
        Lists the one public key in PUBKEY_FILE (an `ssh-ed25519 AAAA...`
        line: public information, anyone can know it) and never answers a
        signing request: the box sees a key it accepts and waits for the
        signature. Other requests (the session bind) are refused.
    fake_agent.py tap SOCK UPSTREAM_SOCK LOG
        A real agent (UPSTREAM_SOCK) behind a tap that appends to LOG one line
        per connection ("conn N") and per request ("req N TYPE", the agent
        protocol message number: 11 list keys, 13 sign, ...).

The socket exists once the agent is ready. Runs until killed.
"""

import base64
import os
import socket
import struct
import sys
import threading

SSH_AGENTC_REQUEST_IDENTITIES = 11
SSH_AGENT_IDENTITIES_ANSWER = 12
SSH_AGENT_FAILURE = 5
SSH_AGENTC_SIGN_REQUEST = 13
SSH_AGENTC_EXTENSION = 27


def read_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def read_message(conn):
    """One agent message: (type, payload), or None at EOF."""
    head = read_exact(conn, 4)
    if head is None:
        return None
    (length,) = struct.unpack(">I", head)
    body = read_exact(conn, length)
    if body is None or not body:
        return None
    return body[0], body[1:]


def send_message(conn, kind, payload=b""):
    body = bytes([kind]) + payload
    conn.sendall(struct.pack(">I", len(body)) + body)


def ssh_string(data):
    return struct.pack(">I", len(data)) + data


def listen(path):
    if os.path.exists(path):
        os.unlink(path)
    tmp = path + ".tmp"
    if os.path.exists(tmp):
        os.unlink(tmp)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(tmp)
    server.listen(64)
    # Ready only once listening: the harness waits for the path.
    os.rename(tmp, path)
    return server


def serve(server, handle):
    while True:
        conn, _ = server.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def silent(conn):
    while True:
        msg = read_message(conn)
        if msg is None:
            return
        if msg[0] != SSH_AGENTC_EXTENSION:
            # Hang: read on, answer nothing, keep the connection open.
            while conn.recv(65536):
                pass
            return
        send_message(conn, SSH_AGENT_FAILURE)


def hang_on_sign(blob):
    def handle(conn):
        while True:
            msg = read_message(conn)
            if msg is None:
                return
            kind, _ = msg
            if kind == SSH_AGENTC_REQUEST_IDENTITIES:
                payload = struct.pack(">I", 1) + ssh_string(blob) + ssh_string(b"bait")
                send_message(conn, SSH_AGENT_IDENTITIES_ANSWER, payload)
            elif kind == SSH_AGENTC_SIGN_REQUEST:
                # The signing request: never answered.
                while conn.recv(65536):
                    pass
                return
            else:
                send_message(conn, SSH_AGENT_FAILURE)

    return handle


def tap(upstream_path, log_path):
    lock = threading.Lock()
    counter = [0]

    def log(line):
        with lock:
            with open(log_path, "a") as f:
                f.write(line + "\n")

    def handle(conn):
        with lock:
            counter[0] += 1
            n = counter[0]
        log(f"conn {n}")
        up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        up.connect(upstream_path)
        while True:
            msg = read_message(conn)
            if msg is None:
                break
            kind, payload = msg
            log(f"req {n} {kind}")
            send_message(up, kind, payload)
            answer = read_message(up)
            if answer is None:
                break
            send_message(conn, answer[0], answer[1])
        up.close()
        conn.close()

    return handle


def main():
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "silent":
        handle = silent
    elif mode == "hang-on-sign":
        with open(sys.argv[3]) as f:
            blob = base64.b64decode(f.read().split()[1])
        handle = hang_on_sign(blob)
    elif mode == "tap":
        handle = tap(sys.argv[3], sys.argv[4])
    else:
        sys.exit(f"unknown mode {mode}")
    serve(listen(path), handle)


if __name__ == "__main__":
    main()
