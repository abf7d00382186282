#!/usr/bin/python3
"""A box impostor for the attack tests (tests/security*.rs): a Paramiko SSH
server at a box's address, with its own host key, that logs to LOG everything
the gateway does to it, one line per event:

    conn                         a TCP connection
    kex-failed ERROR             the handshake did not complete
    auth none USER               an auth attempt without a key
    auth publickey USER BLOB     an auth attempt (or query) with a key
    channel KIND                 a channel the gateway opened
    exec COMMAND | shell | pty | agent-request
    agent-channel opened | agent-channel refused: WHY
    agent-keys N                 keys the client's agent listed to us

    impostor.py PORT HOST_KEY_FILE LOG [--accept-any] [--open-agent]

--accept-any accepts every public key (and its signature); --open-agent then
opens an `auth-agent@openssh.com` channel back to the gateway right after the
login and, if it opens, asks the agent behind it for its keys. A session's
exec is answered with "impostor" on stdout and exit status 0.
"""

import socket
import struct
import sys
import threading

import paramiko

LOCK = threading.Lock()


def log(path, line):
    with LOCK:
        with open(path, "a") as f:
            f.write(line + "\n")


class Impostor(paramiko.ServerInterface):
    def __init__(self, log_path, accept_any):
        self.log = lambda line: log(log_path, line)
        self.accept_any = accept_any
        self.exec_event = threading.Event()

    def get_allowed_auths(self, username):
        return "publickey"

    def check_auth_none(self, username):
        self.log(f"auth none {username}")
        return paramiko.AUTH_FAILED

    def check_auth_publickey(self, username, key):
        self.log(f"auth publickey {username} {key.get_name()} {key.get_base64()}")
        return paramiko.AUTH_SUCCESSFUL if self.accept_any else paramiko.AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        self.log(f"channel {kind}")
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel, command):
        self.log(f"exec {command.decode(errors='replace')}")
        self.exec_event.set()
        return True

    def check_channel_shell_request(self, channel):
        self.log("shell")
        self.exec_event.set()
        return True

    def check_channel_pty_request(self, *args):
        self.log("pty")
        return True

    def check_channel_env_request(self, channel, name, value):
        return True

    def check_channel_forward_agent_request(self, channel):
        self.log("agent-request")
        return True


def read_exact(chan, n):
    buf = b""
    while len(buf) < n:
        chunk = chan.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def list_agent_keys(chan):
    """SSH_AGENTC_REQUEST_IDENTITIES over the channel; the number of keys."""
    chan.sendall(struct.pack(">IB", 1, 11))
    head = read_exact(chan, 4)
    if head is None:
        return None
    body = read_exact(chan, struct.unpack(">I", head)[0])
    if not body or body[0] != 12:
        return None
    return struct.unpack(">I", body[1:5])[0]


def handle(sock, host_key, log_path, accept_any, open_agent):
    say = lambda line: log(log_path, line)
    say("conn")
    transport = paramiko.Transport(sock)
    transport.add_server_key(host_key)
    server = Impostor(log_path, accept_any)
    try:
        transport.start_server(server=server)
    except Exception as e:  # the gateway walked away during the handshake
        say(f"kex-failed {type(e).__name__}: {e}")
        return
    session = transport.accept(timeout=15)
    if not transport.is_authenticated():
        transport.close()
        return
    if open_agent:
        try:
            agent = transport.open_channel("auth-agent@openssh.com", timeout=5)
            say("agent-channel opened")
            say(f"agent-keys {list_agent_keys(agent)}")
            agent.close()
        except Exception as e:
            say(f"agent-channel refused: {type(e).__name__}: {e}")
    if session is not None and server.exec_event.wait(10):
        session.sendall(b"impostor\n")
        session.send_exit_status(0)
        session.close()
    transport.close()


def main():
    port, key_file, log_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    accept_any = "--accept-any" in sys.argv
    open_agent = "--open-agent" in sys.argv
    host_key = paramiko.Ed25519Key(filename=key_file)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    print("listening", flush=True)
    while True:
        sock, _ = listener.accept()
        args = (sock, host_key, log_path, accept_any, open_agent)
        threading.Thread(target=handle, args=args, daemon=True).start()


if __name__ == "__main__":
    main()
