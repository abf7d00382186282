#!/usr/bin/python3
"""A client that breaks the packet-size rule (tests/security*.rs): logs in to
the gateway with Paramiko, opens a session channel and sends CHANNEL_DATA
packets of SIZE bytes (larger than the 32 KiB the gateway advertises; OpenSSH
never does this), COUNT times or until the gateway cuts the connection.

    oversize.py PORT KEY_FILE USER SIZE COUNT

Prints one JSON line: {"authenticated": bool, "sent": packets written,
"cut": whether the connection was closed by the gateway, "error": ...}.
"""

import json
import socket
import sys
import time

import paramiko
from paramiko.common import cMSG_CHANNEL_DATA
from paramiko.message import Message


def main():
    port, key_file, user = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    size, count = int(sys.argv[4]), int(sys.argv[5])
    result = {"authenticated": False, "sent": 0, "cut": False, "error": None}
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    transport = paramiko.Transport(sock)
    try:
        transport.start_client(timeout=10)
        key = paramiko.Ed25519Key(filename=key_file)
        transport.auth_publickey(user, key)
        result["authenticated"] = transport.is_authenticated()
        channel = transport.open_session(timeout=10)
        payload = b"\0" * size
        for _ in range(count):
            if not transport.is_active():
                break
            m = Message()
            m.add_byte(cMSG_CHANNEL_DATA)
            m.add_int(channel.remote_chanid)
            m.add_string(payload)
            # Straight to the packetizer: Channel.send would split the data
            # to the advertised maximum packet size.
            transport._send_user_message(m)
            result["sent"] += 1
    except Exception as e:
        result["error"] = f"{type(e).__name__}: {e}"
    deadline = time.time() + 5
    while transport.is_active() and time.time() < deadline:
        time.sleep(0.05)
    result["cut"] = not transport.is_active()
    transport.close()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
