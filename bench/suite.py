#!/usr/bin/env python3
"""Switchboard benchmark suite: the gateway against what users would otherwise
run, on this machine, in one run.

Paths compared (all on 127.0.0.1, all sharing the machine's CPU):
  direct     client -> box sshd
  jump       client -> OpenSSH sshd as a jump host (ProxyJump) -> box sshd
  gw-key     client -> switchboard (key mode: its own key for the box) -> box
  gw-agent   client -> switchboard (agent mode: logs in with the client's
             forwarded agent) -> box
  gw-jump    client -> switchboard (jump mode: ssh -J, end-to-end inner
             session) -> box

Sections (all by default; name some to run only those):
  throughput   SIZE_MB up and down per path and cipher: MiB/s, ratios, CPU
  setup        connect + auth + exec + close, sequential and parallel
  echo         one-byte round trips in a raw PTY session
  stalled      echo on one channel of a ControlMaster connection while another
               channel of it has 1 GiB nobody reads (direct, jump, gw-key,
               gw-agent): latency alone and stalled, gateway RSS growth
  slowbox      gateway RSS while 1 GiB is piped up to a box reading 1 MiB/s
  scp          (not in the default set) scp of --scp-mb (2048) MiB up and down
               through each gateway path: time and the gateway's peak RSS
  concurrency  SESSIONS idle sessions through one gateway: memory, idle CPU
  many         (not in the default set) MANY idle key-mode sessions with
               one-process clients and box: memory per session, idle CPU
  profile      (not in the default set) perf profile of the gateway relaying
               SIZE_MB up and down (--profile-path, --profile-cipher)
  versus       (not in the default set) throughput of every gateway path and
               cipher through this build and through --baseline BIN, in one
               world, transfers interleaved (--reps each): before/after

Run through bench/run.sh, which builds the release binary. Results are printed
as Markdown tables (stdout); progress goes to stderr. Compare figures within
one run only: client, middle hop and box share two cores here.
"""

import argparse
import concurrent.futures
import getpass
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CIPHERS = {
    "aes128-gcm": "aes128-gcm@openssh.com",
    "chacha20": "chacha20-poly1305@openssh.com",
}
PATHS = ["direct", "jump", "gw-key", "gw-agent", "gw-jump"]
GATEWAY_PATHS = ["gw-key", "gw-agent", "gw-jump"]
# direct with the gateway's key exchange, and key mode through a gateway
# that also sniffs for PROXY headers and HTTP tunnels on its port.
SETUP_PATHS = ["direct", "direct-x25519", "jump", *GATEWAY_PATHS, "gw-sniff"]
TICK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


def log(*args):
    print(*args, file=sys.stderr, flush=True)


# --- processes ----------------------------------------------------------


def cpu_seconds(pid, children=False):
    """utime+stime of PID (or of its reaped descendants) in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is state (field 3); utime is field 14, cutime field 16.
    i = 13 if children else 11
    return (int(fields[i]) + int(fields[i + 1])) / TICK


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def threads(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def descendants(pid):
    """PIDs of every live process below PID."""
    kids = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        kids.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in kids.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def pss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_banner(port, proc, what):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited at start (status {proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                if s.recv(4) == b"SSH-":
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{what}: nothing answers SSH on port {port}")


def stats(values):
    """(p50, p99, mean) of a list of numbers."""
    v = sorted(values)
    p50 = v[(len(v) - 1) // 2]
    p99 = v[min(len(v) - 1, max(0, -(-len(v) * 99 // 100) - 1))]
    return p50, p99, statistics.fmean(v)


def table(head, rows):
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    print(flush=True)


# --- the world: a box, a jump host, an agent, gateways ---------------------


class World:
    def __init__(self, binary, box_max_startups):
        self.binary = binary
        self.work = Path(tempfile.mkdtemp(prefix="sb-bench."))
        self.procs = []
        self.user = getpass.getuser()
        w = self.work
        for name, comment in [("client_key", "bench-client"), ("agent_key", "bench-agent"),
                              ("identity", "bench-gateway")]:
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(w / name)])
        pub = {n: (w / f"{n}.pub").read_text().strip() for n in ["client_key", "agent_key", "identity"]}
        (w / "box_keys").write_text(f"{pub['client_key']}\n{pub['agent_key']}\n{pub['identity']}\n")
        (w / "jump_keys").write_text(pub["client_key"] + "\n")
        self.box_port, self.box = self.start_sshd("box", "box_keys", box_max_startups)
        self.jump_port, self.jumphost = self.start_sshd("jumphost", "jump_keys", "10:30:100")

        self.agent_sock = w / "agent.sock"
        self.spawn(["ssh-agent", "-D", "-a", str(self.agent_sock)], stdout=subprocess.DEVNULL)
        for _ in range(100):
            if self.agent_sock.exists():
                break
            time.sleep(0.05)
        run(["ssh-add", "-q", str(w / "agent_key")],
            env=dict(os.environ, SSH_AUTH_SOCK=str(self.agent_sock)), stderr=subprocess.DEVNULL)

        (w / "routes.toml").write_text(
            "[[route]]\n"
            'name = "bench-box"\n'
            f'address = "127.0.0.1:{self.box_port}"\n'
            f'user = "{self.user}"\n'
            f'authorized_keys = ["{pub["client_key"]}"]\n'
            f'identity_file = "{w / "identity"}"\n'
        )
        self.gateways = {}

    def spawn(self, argv, **kw):
        proc = subprocess.Popen(argv, start_new_session=True, **kw)
        self.procs.append(proc)
        return proc

    def start_sshd(self, name, keys, max_startups):
        d = self.work / name
        d.mkdir()
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host_key")])
        port = free_port()
        (d / "sshd_config").write_text(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\n"
            f"PidFile {d / 'sshd.pid'}\nAuthorizedKeysFile {self.work / keys}\n"
            "StrictModes no\nUsePAM no\nUseDNS no\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
            f"AllowTcpForwarding yes\nAllowAgentForwarding yes\nMaxStartups {max_startups}\n"
            "ClientAliveInterval 0\nLogLevel ERROR\n"
            "Subsystem sftp /usr/lib/openssh/sftp-server\n"
        )
        Path("/run/sshd").mkdir(exist_ok=True)
        proc = self.spawn(["/usr/sbin/sshd", "-D", "-f", str(d / "sshd_config"),
                           "-E", str(d / "sshd.log")])
        wait_banner(port, proc, f"sshd {name}")
        return port, proc

    def start_gateway(self, name, extra="", server_extra="", routes=None, binary=None):
        port = free_port()
        cfg = self.work / f"{name}.toml"
        cfg.write_text(
            f'[server]\nlisten = "127.0.0.1:{port}"\n'
            'host_key_seed = "bench-only-seed-not-secret"\n'
            "max_unauthenticated = 1000\n" + server_extra +
            f'[sources.file]\npath = "{routes or self.work / "routes.toml"}"\nwatch = false\n'
            '[admin]\nlisten = "127.0.0.1:0"\n[log]\nlevel = "warn"\n' + extra
        )
        logf = open(self.work / f"{name}.log", "w")
        # BENCH_GATEWAY_WRAP="heaptrack -o FILE": run the gateway under a
        # profiler (its RSS figures are then the profiler's, not ours).
        wrap = os.environ.get("BENCH_GATEWAY_WRAP", "").split()
        proc = self.spawn([*wrap, str(binary or self.binary), "serve", "--config", str(cfg)],
                          stdout=logf, stderr=subprocess.STDOUT)
        try:
            wait_banner(port, proc, f"gateway {name}")
        except SystemExit:
            log((self.work / f"{name}.log").read_text())
            raise
        self.gateways[name] = (port, proc)
        return port, proc

    def ssh_config(self, cipher):
        """An ssh_config file with one Host per path, for CIPHER on every leg
        the client speaks (outer and inner, for ProxyJump)."""
        w = self.work
        gw_port = self.gateways["gw"][0]
        hosts = {
            "direct": f"HostName 127.0.0.1\n Port {self.box_port}",
            "direct-x25519": f"HostName 127.0.0.1\n Port {self.box_port}\n"
                             " KexAlgorithms curve25519-sha256",
            "jumphost": f"HostName 127.0.0.1\n Port {self.jump_port}",
            "jump": f"HostName 127.0.0.1\n Port {self.box_port}\n ProxyJump jumphost",
            "gw-key": f"HostName 127.0.0.1\n Port {gw_port}",
            "gw-agent": f"HostName 127.0.0.1\n Port {gw_port}\n User {self.user}@bench-box\n"
                        f" IdentityFile {w / 'agent_key'}\n IdentityAgent {self.agent_sock}\n"
                        f" ForwardAgent {self.agent_sock}",
            "gw-jump": "HostName bench-box\n ProxyJump gw-key",
        }
        for name, (port, _) in self.gateways.items():
            if name != "gw":
                hosts[name] = f"HostName 127.0.0.1\n Port {port}"
                hosts[f"{name}-jump"] = f"HostName bench-box\n ProxyJump {name}"
                hosts[f"{name}-agent"] = hosts["gw-agent"].replace(f"Port {gw_port}", f"Port {port}")
        text = "".join(f"Host {h}\n {body}\n" for h, body in hosts.items())
        text += (
            f"Host *\n User {self.user}\n IdentityFile {w / 'client_key'}\n IdentitiesOnly yes\n"
            " IdentityAgent none\n StrictHostKeyChecking no\n UserKnownHostsFile /dev/null\n"
            " BatchMode yes\n LogLevel ERROR\n ConnectTimeout 30\n ControlMaster no\n"
            f" ControlPath none\n EscapeChar none\n Ciphers {cipher}\n"
        )
        path = w / f"ssh_config.{cipher}"
        path.write_text(text)
        return path

    def close(self):
        for proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except OSError:
                    pass
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if os.environ.get("BENCH_KEEP"):
            log(f"kept {self.work} (BENCH_KEEP)")
        else:
            shutil.rmtree(self.work, ignore_errors=True)


def run(argv, **kw):
    subprocess.run(argv, check=True, **kw)


def ssh(cfg, host, command=None, *options):
    """argv for `ssh -F CFG [OPTIONS] HOST [COMMAND]`."""
    return ["ssh", "-F", str(cfg), *options, host, *([command] if command else [])]


def check_reaches_box(cfg, host):
    out = subprocess.run(ssh(cfg, host, "echo $SSH_CONNECTION"), capture_output=True,
                         text=True, timeout=60)
    if out.returncode != 0 or not out.stdout.strip():
        raise SystemExit(f"{host} does not reach the box: {out.stderr.strip()}")


# --- throughput --------------------------------------------------------------


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def cpu_now(world):
    r = resource.getrusage(resource.RUSAGE_SELF)
    return {
        # all gateways: only the one a transfer goes through is busy
        "gateway": sum(cpu_seconds(proc.pid) for _, proc in world.gateways.values()),
        "jumphost": cpu_seconds(world.jumphost.pid, children=True),
        "box": cpu_seconds(world.box.pid, children=True),
        # ssh (reaped) plus this script feeding or draining it
        "client": children_cpu() + r.ru_utime + r.ru_stime,
    }


CHUNK = bytes(MIB)


def transfer(world, cfg, host, direction, nbytes):
    """Moves NBYTES up (into `wc -c` on the box) or down (from `head -c`).
    The clock runs from the first byte (down) or from the moment the remote
    command is running (up), so login time is not in the figure. Returns
    (seconds, CPU seconds per process group during the whole ssh run)."""
    before = cpu_now(world)
    if direction == "up":
        proc = subprocess.Popen(ssh(cfg, host, "echo ready; exec wc -c"), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        ready = proc.stdout.readline()
        t0 = time.perf_counter()
        left = nbytes
        try:
            while left and ready == b"ready\n":
                n = min(left, MIB)
                proc.stdin.write(CHUNK[:n] if n < MIB else CHUNK)
                left -= n
            proc.stdin.close()
        except BrokenPipeError:
            pass
        got = proc.stdout.read().strip().decode()
        elapsed = time.perf_counter() - t0
    else:
        proc = subprocess.Popen(ssh(cfg, host, f"head -c {nbytes} /dev/zero"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out = proc.stdout.fileno()
        first = os.read(out, MIB)
        t0 = time.perf_counter()
        total = len(first)
        while first:
            first = os.read(out, MIB)
            total += len(first)
        elapsed = time.perf_counter() - t0
        got = str(total)
    err = proc.stderr.read().decode(errors="replace").strip()
    proc.wait()
    if proc.returncode != 0 or got != str(nbytes):
        raise SystemExit(f"{host} {direction}: moved {got or 0} of {nbytes} bytes: {err}")
    time.sleep(0.3)  # let sshd reap the session's processes (cutime)
    after = cpu_now(world)
    return elapsed, {k: after[k] - before[k] for k in before}


def bench_throughput(world, args):
    nbytes = args.size_mb * MIB
    gib = nbytes / (1024 * MIB)
    results = {}
    for short, cipher in CIPHERS.items():
        cfg = world.ssh_config(cipher)
        for path in PATHS:
            check_reaches_box(cfg, path)
        for direction in ["up", "down"]:
            for path in PATHS:
                log(f"  throughput {short} {direction} {path}...")
                secs, cpu = transfer(world, cfg, path, direction, nbytes)
                middle = cpu["jumphost"] if path == "jump" else cpu["gateway"] if path.startswith("gw") else None
                results[(short, direction, path)] = {
                    "mibps": args.size_mb / secs,
                    "middle": None if middle is None else middle / gib,
                    "box": cpu["box"] / gib,
                    "client": cpu["client"] / gib,
                }
    print(f"### Throughput: {args.size_mb} MiB each way\n")
    print("MiB/s; `÷jump` and `÷direct` are ratios of MiB/s in this run. CPU is in "
          "seconds per GiB: `middle` is the gateway process (gw-*) or the OpenSSH jump "
          "host's sshd processes (jump); `box` is the box's sshd processes with the "
          "command they run (`wc -c`, `head -c`); `client` is ssh plus this script "
          "feeding or draining it. The clock starts once the remote command runs "
          "(up) or at the first byte (down): login is not in MiB/s, but is in CPU.\n")
    rows = []
    for short in CIPHERS:
        for direction in ["up", "down"]:
            jump = results[(short, direction, "jump")]["mibps"]
            direct = results[(short, direction, "direct")]["mibps"]
            for path in PATHS:
                r = results[(short, direction, path)]
                rows.append([
                    f"{short} {direction} {path}", f"{r['mibps']:.1f}",
                    f"{r['mibps'] / jump:.2f}", f"{r['mibps'] / direct:.2f}",
                    "-" if r["middle"] is None else f"{r['middle']:.2f}",
                    f"{r['box']:.2f}", f"{r['client']:.2f}",
                ])
    table(["cipher, direction, path", "MiB/s", "÷jump", "÷direct", "middle CPU s/GiB",
           "box CPU s/GiB", "client CPU s/GiB"], rows)
    rows = []
    for short in CIPHERS:
        for direction in ["up", "down"]:
            sshd = results[(short, direction, "direct")]["box"]
            for path in GATEWAY_PATHS:
                mid = results[(short, direction, path)]["middle"]
                rows.append([f"{short} {direction} {path}", f"{mid:.2f}", f"{sshd:.2f}",
                             f"{mid / sshd:.2f}" if sshd > 0 else "n/a"])
    print("Gateway CPU per GiB against the box sshd's on the direct path (same "
          "bytes, same client cipher; target ≤ 2.5):\n")
    table(["cipher, direction, path", "gateway s/GiB", "direct sshd s/GiB", "ratio"], rows)
    return results


# --- versus: this build against a baseline build, interleaved ------------------


def bench_versus(world, args):
    """Throughput of every gateway path and cipher through this build and
    through --baseline, both gateways in this one world, transfers
    interleaved (ABBA) so that drift on a shared machine falls on both."""
    base = {"gw-key": "base", "gw-agent": "base-agent", "gw-jump": "base-jump"}
    nbytes = args.size_mb * MIB
    gib = nbytes / (1024 * MIB)
    got = {}
    for short, cipher in CIPHERS.items():
        cfg = world.ssh_config(cipher)
        for path in GATEWAY_PATHS:
            check_reaches_box(cfg, path)
            check_reaches_box(cfg, base[path])
        for direction in ["up", "down"]:
            for path in GATEWAY_PATHS:
                for rep in range(args.reps):
                    order = [("this", path), ("baseline", base[path])]
                    for build, host in order if rep % 2 == 0 else reversed(order):
                        log(f"  versus {short} {direction} {path} {build} {rep + 1}/{args.reps}...")
                        secs, cpu = transfer(world, cfg, host, direction, nbytes)
                        got.setdefault((short, direction, path, build), []).append(
                            (args.size_mb / secs, cpu["gateway"] / gib))
    print(f"### Versus the baseline: {args.size_mb} MiB each way, "
          f"{args.reps} interleaved transfers per build\n")
    print("Both gateways run in this one world, on the same box; transfers alternate "
          "between them (ABBA). MiB/s and gateway CPU s/GiB are medians; `ratio` is "
          "this build's MiB/s over the baseline's.\n")
    rows, results = [], {}
    for short in CIPHERS:
        for direction in ["up", "down"]:
            for path in GATEWAY_PATHS:
                med = {b: (statistics.median(r for r, _ in got[(short, direction, path, b)]),
                           statistics.median(c for _, c in got[(short, direction, path, b)]))
                       for b in ["baseline", "this"]}
                (b_rate, b_cpu), (t_rate, t_cpu) = med["baseline"], med["this"]
                results[(short, direction, path)] = {
                    "baseline": b_rate, "this": t_rate, "baseline_cpu": b_cpu, "this_cpu": t_cpu,
                    "runs": {b: got[(short, direction, path, b)] for b in ["baseline", "this"]}}
                rows.append([f"{short} {direction} {path}", f"{b_rate:.1f}", f"{t_rate:.1f}",
                             f"{t_rate / b_rate:.2f}", f"{b_cpu:.2f} → {t_cpu:.2f}"])
    table(["cipher, direction, path", "baseline MiB/s", "this MiB/s", "ratio",
           "gateway CPU s/GiB"], rows)
    return results


# --- connection setup ----------------------------------------------------------


def timed_login(cfg, host):
    t0 = time.perf_counter()
    out = subprocess.run(ssh(cfg, host, "true"), capture_output=True, timeout=120)
    ms = (time.perf_counter() - t0) * 1000
    if out.returncode != 0:
        raise SystemExit(f"{host}: ssh true failed: {out.stderr.decode(errors='replace').strip()}")
    return ms


def bench_setup(world, args):
    world.start_gateway("gw-sniff", '[http_tunnel]\nenabled = true\n[proxy_protocol]\n'
                        'enabled = true\ntrusted_cidrs = ["127.0.0.0/8"]\n')
    cfg = world.ssh_config(CIPHERS["aes128-gcm"])
    for path in SETUP_PATHS:
        timed_login(cfg, path)  # warm up
    seq = {p: [] for p in SETUP_PATHS}
    log(f"  setup: {args.n} sequential rounds over {len(SETUP_PATHS)} paths...")
    for _ in range(args.n):
        for path in SETUP_PATHS:  # interleaved, so machine noise hits every path alike
            seq[path].append(timed_login(cfg, path))
    par = {}
    total = args.n * 2
    for path in SETUP_PATHS:
        log(f"  setup: {total} logins on {path}, {args.parallel} at a time...")
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(args.parallel) as pool:
            lat = list(pool.map(lambda _: timed_login(cfg, path), range(total)))
        par[path] = (lat, total / (time.perf_counter() - t0))
    print(f"### Connection setup: `ssh HOST true` (connect, key exchange, auth, exec, close)\n")
    print("`direct-x25519` is direct with `KexAlgorithms curve25519-sha256`, the key "
          "exchange the gateway negotiates on both legs; OpenSSH to OpenSSH picks "
          "`sntrup761x25519-sha512` by default, which costs more CPU. `gw-sniff` is "
          "key mode through a gateway with `[http_tunnel]` and `[proxy_protocol]` on "
          "(it looks at the first bytes; SSH clients speak first, so it must add "
          "nothing).\n")
    print(f"Sequential: {args.n} interleaved rounds. Parallel: {total} logins per path, "
          f"{args.parallel} at a time. Milliseconds; `÷direct` compares p50s.\n")
    d50 = stats(seq["direct"])[0]
    dpar = stats(par["direct"][0])[0]
    rows = []
    for path in SETUP_PATHS:
        p50, p99, mean = stats(seq[path])
        q50, q99, _ = stats(par[path][0])
        rows.append([path, f"{p50:.1f}", f"{p99:.1f}", f"{p50 / d50:.2f}", f"{1000 / mean:.1f}",
                     f"{q50:.1f}", f"{q99:.1f}", f"{q50 / dpar:.2f}", f"{par[path][1]:.1f}"])
    table(["path", "seq p50", "seq p99", "÷direct", "seq conn/s", "par p50", "par p99",
           "÷direct", "par conn/s"], rows)
    return {"seq": seq, "par": {p: v[1] for p, v in par.items()}}


# --- interactive echo -------------------------------------------------------------


class EchoSession:
    def __init__(self, cfg, host, options=()):
        self.host = host
        self.proc = subprocess.Popen(
            ssh(cfg, host, "stty raw -echo; echo READY; exec cat", "-tt", *options),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            bufsize=0)
        self.out = self.proc.stdout.fileno()
        self.inp = self.proc.stdin.fileno()
        seen = b""
        while b"READY" not in seen:
            seen += self.read(timeout=60)
        time.sleep(0.2)
        while select.select([self.out], [], [], 0.2)[0]:  # the newline after READY
            self.read(timeout=1)

    def read(self, timeout):
        if not select.select([self.out], [], [], timeout)[0]:
            raise SystemExit(f"{self.host}: no echo within {timeout} s")
        data = os.read(self.out, 4096)
        if not data:
            raise SystemExit(f"{self.host}: session ended")
        return data

    def round_trip(self):
        t0 = time.perf_counter()
        os.write(self.inp, b"x")
        got = self.read(timeout=10)
        us = (time.perf_counter() - t0) * 1e6
        if got != b"x":
            raise SystemExit(f"{self.host}: echoed {got!r}")
        return us

    def close(self):
        self.proc.kill()
        self.proc.wait()


def bench_echo(world, args):
    cfg = world.ssh_config(CIPHERS["aes128-gcm"])
    sessions = [EchoSession(cfg, p) for p in PATHS]
    rtt = {p: [] for p in PATHS}
    log(f"  echo: {args.echo_n} round trips per path, interleaved...")
    try:
        for s in sessions:
            for _ in range(50):
                s.round_trip()  # warm up
        for _ in range(args.echo_n):
            for s in sessions:
                rtt[s.host].append(s.round_trip())
    finally:
        for s in sessions:
            s.close()
    print(f"### Interactive latency: one-byte echo in a raw PTY (`cat`), {args.echo_n} round trips\n")
    print("Microseconds; `Δp99` is the path's p99 minus direct's.\n")
    _, d99, _ = stats(rtt["direct"])
    rows = []
    for path in PATHS:
        p50, p99, mean = stats(rtt[path])
        rows.append([path, f"{p50:.0f}", f"{p99:.0f}", f"{mean:.0f}", f"{p99 - d99:+.0f}"])
    table(["path", "p50 µs", "p99 µs", "mean µs", "Δp99 µs"], rows)
    return rtt


# --- a stalled neighbour ------------------------------------------------------------

STALL_PATHS = ["direct", "jump", "gw-key", "gw-agent"]


def start_master(world, cfg, host):
    """A ControlMaster connection to HOST; returns the ssh options that reuse it."""
    ctl = world.work / f"ctl-{host}"
    world.spawn(ssh(cfg, host, None, "-N", "-o", "ControlMaster=yes", "-o", f"ControlPath={ctl}"),
                stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    mux = ["-o", "ControlMaster=no", "-o", f"ControlPath={ctl}"]
    for _ in range(300):
        if ctl.exists() and subprocess.run(ssh(cfg, host, None, "-O", "check", *mux),
                                           capture_output=True).returncode == 0:
            return mux
        time.sleep(0.1)
    raise SystemExit(f"{host}: the ControlMaster did not come up")


def echo_rtts(echo, n):
    """N round trips, or None when the echo stops (the connection is stalled)."""
    try:
        return [echo.round_trip() for _ in range(n)]
    except SystemExit as e:
        log(f"    {e}")
        return None


def bench_stalled(world, args):
    """Echo latency on one channel of a ControlMaster connection while another
    channel of it streams 1 GiB that nobody reads."""
    cfg = world.ssh_config(CIPHERS["aes128-gcm"])
    gw = world.gateways["gw"][1].pid
    n = args.stall_n
    rows, results = [], {}
    for path in STALL_PATHS:
        log(f"  stalled neighbour: {path}...")
        mux = start_master(world, cfg, path)
        echo = EchoSession(cfg, path, mux)
        for _ in range(50):
            echo.round_trip()
        alone = echo_rtts(echo, n)
        rss0 = rss_kib(gw)
        stuck = subprocess.Popen(ssh(cfg, path, "head -c 1073741824 /dev/zero", *mux),
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL)  # stdout never read
        time.sleep(2)
        stalled = echo_rtts(echo, n)
        rss1 = rss_kib(gw)
        stuck.kill()
        stuck.wait()
        echo.close()
        results[path] = {"alone": alone, "stalled": stalled, "rss": (rss0, rss1)}
        a50, a99, _ = stats(alone)
        if stalled:
            s50, s99, _ = stats(stalled)
            after = [f"{s50:.0f}", f"{s99:.0f}"]
        else:
            after = ["no echo (stalled)", "—"]
        growth = f"{(rss1 - rss0) / 1024:+.1f} MiB" if path.startswith("gw") else "—"
        rows.append([path, f"{a50:.0f}", f"{a99:.0f}", *after, growth])
    print(f"### A stalled neighbour: echo while another channel of the connection is not read\n")
    print("One ControlMaster connection per path; one-byte echo in a raw PTY on one session "
          f"({n} round trips), first alone, then while a second session of the same connection "
          "runs `head -c 1G /dev/zero` into a pipe nobody reads. Microseconds; the last "
          "column is the gateway's RSS growth meanwhile.\n")
    table(["path", "alone p50", "alone p99", "stalled p50", "stalled p99", "gateway RSS"], rows)
    return results


def bench_slowbox(world, args):
    """Gateway memory while 1 GiB is piped up to a box that reads 1 MiB/s."""
    cfg = world.ssh_config(CIPHERS["aes128-gcm"])
    gw = world.gateways["gw"][1].pid
    reader = ("python3 -c 'import sys,time\nwhile sys.stdin.buffer.read(65536): "
              "time.sleep(1/16)'")
    rows, results = [], {}
    for path in GATEWAY_PATHS:
        log(f"  slow box: {path} for {args.slow_secs} s...")
        before = rss_kib(gw)
        proc = subprocess.Popen(ssh(cfg, path, reader), stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        sent = [0]

        def feed():
            try:
                while sent[0] < 1024 * MIB:
                    proc.stdin.write(CHUNK)
                    sent[0] += len(CHUNK)
            except (BrokenPipeError, ValueError, OSError):
                pass

        feeder = threading.Thread(target=feed, daemon=True)
        feeder.start()
        peak, t0 = before, time.perf_counter()
        while time.perf_counter() - t0 < args.slow_secs:
            peak = max(peak, rss_kib(gw))
            time.sleep(0.25)
        proc.kill()
        proc.wait()
        results[path] = {"before": before, "peak": peak, "sent_mib": sent[0] / MIB}
        rows.append([path, f"{before / 1024:.1f} MiB", f"{peak / 1024:.1f} MiB",
                     f"{(peak - before) / 1024:+.1f} MiB", f"{sent[0] / MIB:.0f} MiB"])
    print(f"### A slow box: 1 GiB piped up to a box reading 1 MiB/s, {args.slow_secs} s each\n")
    print("`cat` of zeros into `ssh PATH` whose remote command reads 64 KiB every 1/16 s. "
          "The gateway's resident set before and at its peak; \"written\" is what the client "
          "got rid of (the rest waits in the client).\n")
    table(["path", "gateway RSS before", "peak", "growth", "written by the client"], rows)
    return results


def bench_scp(world, args):
    """Gateway memory while scp copies SCP_MB up and down through it."""
    cfg = world.ssh_config(CIPHERS["aes128-gcm"])
    gw = world.gateways["gw"][1].pid
    src = world.work / "scp-src.bin"
    with open(src, "wb") as f:
        f.truncate(args.scp_mb * MIB)  # sparse zeros: no disk I/O to speak of
    rows, results = [], {}
    # Not gw-agent: scp and sftp pass -oForwardAgent=no to ssh, so agent
    # mode needs a ControlMaster connection opened with -A (README).
    for path in ["gw-key", "gw-jump"]:
        for way in ["up", "down"]:
            remote = f"/tmp/switchboard-bench-scp-{os.getpid()}.bin"
            argv = (["scp", "-q", "-F", str(cfg), str(src), f"{path}:{remote}"] if way == "up"
                    else ["scp", "-q", "-F", str(cfg), f"{path}:{remote}", os.devnull])
            log(f"  scp: {path} {way} {args.scp_mb} MiB...")
            before, t0 = rss_kib(gw), time.perf_counter()
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
            peak = before
            while proc.poll() is None:
                peak = max(peak, rss_kib(gw))
                time.sleep(0.1)
            secs = time.perf_counter() - t0
            if proc.returncode != 0:
                raise SystemExit(f"scp {path} {way} failed: {proc.stderr.read().decode()}")
            results[f"{path}-{way}"] = {"before": before, "peak": peak, "secs": secs}
            rows.append([path, way, f"{args.scp_mb / secs:.0f} MiB/s",
                         f"{before / 1024:.1f} MiB", f"{peak / 1024:.1f} MiB",
                         f"{(peak - before) / 1024:+.1f} MiB"])
        run(ssh(cfg, path, f"rm -f {remote}"))
    print(f"### scp of {args.scp_mb} MiB through the gateway\n")
    print("`scp` (SFTP protocol) to and from the box, aes128-gcm; the gateway's resident "
          "set sampled every 100 ms.\n")
    table(["path", "way", "rate", "gateway RSS before", "peak", "growth"], rows)
    return results


# --- many idle sessions (no process per session) ----------------------------------------


def bench_many(world, args):
    """ARGS.MANY idle key-mode sessions through one gateway, with clients and a
    box that cost no process per session (examples/idle_sessions.rs)."""
    tool, n = args.idle_tool, args.many
    box_port = free_port()
    box = world.spawn([tool, "box", str(box_port)], stdout=subprocess.DEVNULL)
    wait_banner(box_port, box, "idle box")
    w = world.work
    pub = (w / "client_key.pub").read_text().strip()
    routes = w / "many-routes.toml"
    routes.write_text(
        '[[route]]\nname = "idle-box"\n'
        f'address = "127.0.0.1:{box_port}"\nuser = "idle"\n'
        f'authorized_keys = ["{pub}"]\nidentity_file = "{w / "identity"}"\n'
    )
    port, gw = world.start_gateway(
        "gw-many", routes=routes,
        server_extra=f"max_connections = {n + 100}\nper_source_exempt = [\"127.0.0.0/8\"]\n")
    time.sleep(1)
    base = rss_kib(gw.pid)
    log(f"  many: opening {n} idle key-mode sessions, {args.parallel * 4} at a time...")
    t0 = time.perf_counter()
    clients = world.spawn([tool, "clients", str(port), str(w / "client_key"), "anyone",
                           str(n), str(args.parallel * 4)],
                          stdout=subprocess.PIPE, text=True)
    line = ""
    for line in clients.stdout:
        if line.startswith("ready"):
            break
        log(f"    {line.strip()}")
    open_secs = time.perf_counter() - t0
    parts = line.split()
    opened, failed = (int(parts[2]), int(parts[4])) if len(parts) == 5 else (0, n)
    time.sleep(5)
    loaded = rss_kib(gw.pid)
    log(f"  many: measuring idle CPU for {args.idle_secs} s...")
    c0, t1 = cpu_seconds(gw.pid), time.perf_counter()
    time.sleep(args.idle_secs)
    idle_cpu = (cpu_seconds(gw.pid) - c0) / (time.perf_counter() - t1)
    os.killpg(clients.pid, signal.SIGTERM)
    clients.wait()
    per = (loaded - base) / max(1, opened)
    print(f"### Many idle sessions: {n} key-mode sessions through one gateway\n")
    print("Clients and box are one process each (russh; `examples/idle_sessions.rs`), so "
          "the machine's memory goes to the gateway, not to a process per session. "
          "Memory is the gateway's resident set; idle CPU over "
          f"{args.idle_secs} s with keepalives at their default (30 s, both legs).\n")
    table(["measure", "key mode"], [
        ["sessions open (failed)", f"{opened} ({failed})"],
        ["time to open them", f"{open_secs:.0f} s ({opened / max(open_secs, 1e-9):.0f}/s)"],
        ["gateway RSS before", f"{base / 1024:.1f} MiB"],
        ["gateway RSS with the sessions", f"{loaded / 1024:.1f} MiB"],
        ["**gateway memory per session**", f"**{per:.1f} KiB**"],
        ["gateway CPU while idle", f"{idle_cpu * 100:.2f} % of a core"],
    ])
    return {"opened": opened, "failed": failed, "base_kib": base, "loaded_kib": loaded,
            "per_session_kib": per, "idle_cpu": idle_cpu}


# --- concurrency --------------------------------------------------------------------


def open_idle_session(cfg, host):
    proc = subprocess.Popen(ssh(cfg, host, "echo ready; exec sleep 86400", "-T"),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    line = proc.stdout.readline()
    if line.strip() != b"ready":
        proc.kill()
        err = proc.stderr.read().decode(errors="replace").strip()
        raise RuntimeError(f"session did not open: {err}")
    return proc


def open_sessions(cfg, host, count, parallel):
    procs, failures = [], []
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        futures = [pool.submit(open_idle_session, cfg, host) for _ in range(count)]
        for i, f in enumerate(concurrent.futures.as_completed(futures), 1):
            try:
                procs.append(f.result())
            except RuntimeError as e:
                failures.append(str(e))
            if i % 250 == 0:
                log(f"    {i}/{count}")
    if failures:
        log(f"    {len(failures)} sessions failed, first: {failures[0]}")
    return procs, len(failures)


def close_sessions(procs):
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait()


def hold_idle(world, gateway, host, n, args):
    """Opens N idle sessions to HOST through a fresh gateway GATEWAY and
    measures it; returns a dict of figures."""
    _, gw = world.start_gateway(gateway)
    cfg = world.ssh_config(CIPHERS["aes128-gcm"])
    for _ in range(3):
        timed_login(cfg, host)
    time.sleep(1)
    base = rss_kib(gw.pid)
    base_threads = threads(gw.pid)
    log(f"  concurrency: opening {n} idle sessions ({host})...")
    t0 = time.perf_counter()
    procs, failed = open_sessions(cfg, host, n, args.parallel)
    open_secs = time.perf_counter() - t0
    try:
        time.sleep(5)
        loaded = rss_kib(gw.pid)
        log(f"  concurrency: measuring idle CPU for {args.idle_secs} s...")
        c0, t0 = cpu_seconds(gw.pid), time.perf_counter()
        time.sleep(args.idle_secs)
        idle_cpu = (cpu_seconds(gw.pid) - c0) / (time.perf_counter() - t0)
        loaded_threads = threads(gw.pid)
    finally:
        close_sessions(procs)
    time.sleep(3)
    opened = len(procs)
    return {
        "opened": opened, "failed": failed, "open_secs": open_secs, "base_kib": base,
        "loaded_kib": loaded, "after_kib": rss_kib(gw.pid),
        "per_session_kib": (loaded - base) / max(1, opened), "threads": (base_threads, loaded_threads),
        "idle_cpu": idle_cpu,
    }


def bench_concurrency(world, args):
    modes = {"key mode": hold_idle(world, "gw-conc", "gw-conc", args.sessions, args)}
    if args.jump_mode_sessions:
        modes["jump mode"] = hold_idle(world, "gw-jconc", "gw-jconc-jump", args.jump_mode_sessions, args)
    jump = None
    if args.jump_sessions:
        m = args.jump_sessions
        log(f"  concurrency: {m} idle sessions through the OpenSSH jump host, for comparison...")
        cfg = world.ssh_config(CIPHERS["aes128-gcm"])
        before = pss_kib(descendants(world.jumphost.pid))
        jprocs, _ = open_sessions(cfg, "jump", m, args.parallel)
        try:
            time.sleep(3)
            jump = (len(jprocs), (pss_kib(descendants(world.jumphost.pid)) - before) / max(1, len(jprocs)))
        finally:
            close_sessions(jprocs)

    print("### Concurrency: idle sessions held open through one gateway\n")
    print("Each session is an OpenSSH client running `sleep` on the box, opened "
          f"{args.parallel} at a time through a fresh gateway. Key mode: a client connection "
          "and a box connection (russh client) in the gateway; jump mode (`ssh -J`): a "
          "client connection and a raw TCP stream. Memory is the gateway's resident set "
          f"(VmRSS); idle CPU is over {args.idle_secs} s, keepalives at their default "
          "(30 s, both legs).\n")
    names = list(modes)
    rows = [
        ["sessions open (failed)"] + [f"{m['opened']} ({m['failed']})" for m in modes.values()],
        ["time to open them"] + [f"{m['open_secs']:.0f} s ({m['opened'] / m['open_secs']:.0f}/s)" for m in modes.values()],
        ["gateway RSS before"] + [f"{m['base_kib'] / 1024:.1f} MiB" for m in modes.values()],
        ["gateway RSS with the sessions"] + [f"{m['loaded_kib'] / 1024:.1f} MiB" for m in modes.values()],
        ["**gateway memory per session**"] + [f"**{m['per_session_kib']:.1f} KiB**" for m in modes.values()],
        ["gateway RSS after they closed"] + [f"{m['after_kib'] / 1024:.1f} MiB" for m in modes.values()],
        ["gateway threads (before / loaded)"] + [f"{m['threads'][0]} / {m['threads'][1]}" for m in modes.values()],
        ["gateway CPU while idle"] + [f"{m['idle_cpu'] * 100:.2f} % of a core" for m in modes.values()],
    ]
    table(["measure"] + names, rows)
    if jump:
        print(f"For comparison, an OpenSSH jump host holding {jump[0]} such sessions "
              f"(`ProxyJump`): {jump[1]:.0f} KiB per session (PSS of its sshd processes).\n")
    return modes


# --- profile -----------------------------------------------------------------------


def bench_profile(world, args):
    """perf profile of the gateway while it relays SIZE_MB up and down on
    --profile-path with --profile-cipher; prints the hottest symbols."""
    if not shutil.which("perf"):
        raise SystemExit("profile needs perf (Debian: linux-perf)")
    host, short = args.profile_path, args.profile_cipher
    cfg = world.ssh_config(CIPHERS[short])
    gw = world.gateways["gw"][1].pid
    data = world.work / "perf.data"
    check_reaches_box(cfg, host)
    perf = subprocess.Popen(["perf", "record", "-q", "-F", "1999", "-g", "-o", str(data),
                             "-p", str(gw)], stderr=subprocess.DEVNULL)
    time.sleep(1)
    for direction in ["up", "down"]:
        log(f"  profile: {host} {short} {direction}...")
        transfer(world, cfg, host, direction, args.size_mb * MIB)
    perf.send_signal(signal.SIGINT)
    perf.wait()
    report = subprocess.run(
        ["perf", "report", "-i", str(data), "--stdio", "--no-children", "--percent-limit", "0.7",
         "--sort", "dso,symbol", "-g", "none"], capture_output=True, text=True).stdout
    print(f"### Profile: the gateway on {host}, {short}, {args.size_mb} MiB up then down\n")
    print("```")
    for line in report.splitlines():
        if line.strip() and not line.startswith("#"):
            print(re.sub(r"(\s+-)*\s*$", "", line))
    print("```\n")
    return {}


# --- main -------------------------------------------------------------------------


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sections", nargs="*", metavar="section",
                   help="throughput, setup, echo, stalled, slowbox, concurrency (default: all); "
                   "profile (perf, on its own)")
    p.add_argument("--bin", required=True, help="the switchboard binary")
    p.add_argument("--size-mb", type=int, default=1024, help="per transfer (default 1024)")
    p.add_argument("--n", type=int, default=50, help="sequential logins per path (default 50)")
    p.add_argument("--parallel", type=int, default=8, help="concurrent logins (default 8)")
    p.add_argument("--echo-n", type=int, default=2000, help="echo round trips (default 2000)")
    p.add_argument("--sessions", type=int, default=2000, help="idle sessions (default 2000)")
    p.add_argument("--jump-mode-sessions", type=int, default=1000,
                   help="idle sessions through the gateway in jump mode (default 1000)")
    p.add_argument("--jump-sessions", type=int, default=200,
                   help="idle sessions through the OpenSSH jump host for comparison (default 200)")
    p.add_argument("--idle-secs", type=int, default=30, help="idle CPU window (default 30)")
    p.add_argument("--profile-path", default="gw-key", choices=GATEWAY_PATHS,
                   help="path the profile section relays (default gw-key)")
    p.add_argument("--profile-cipher", default="aes128-gcm", choices=list(CIPHERS),
                   help="cipher the profile section uses (default aes128-gcm)")
    p.add_argument("--stall-n", type=int, default=500,
                   help="echo round trips per phase, stalled section (default 500)")
    p.add_argument("--slow-secs", type=int, default=20,
                   help="seconds per path, slowbox section (default 20)")
    p.add_argument("--scp-mb", type=int, default=2048,
                   help="MiB copied each way, scp section (default 2048)")
    p.add_argument("--many", type=int, default=10000,
                   help="idle sessions, section many (default 10000)")
    p.add_argument("--idle-tool", help="examples/idle_sessions binary, section many "
                   "(bench/run.sh builds it)")
    p.add_argument("--baseline", help="another switchboard binary, section versus")
    p.add_argument("--reps", type=int, default=4,
                   help="transfers per build and cell, section versus (default 4)")
    p.add_argument("--json", help="also write the raw results here")
    args = p.parse_args()
    all_sections = ["throughput", "setup", "echo", "stalled", "slowbox", "concurrency"]
    for section in args.sections:
        if section not in all_sections + ["profile", "many", "scp", "versus"]:
            p.error(f"unknown section {section!r}; choose from {', '.join(all_sections)}, "
                    "profile, many, scp, versus")
    if "versus" in args.sections and not args.baseline:
        p.error("section versus needs --baseline (a binary to compare with)")
    if "many" in args.sections and not args.idle_tool:
        p.error("section many needs --idle-tool (bench/run.sh passes it)")
    args.sections = args.sections or all_sections

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:  # root may raise it: the gateway holds two sockets a session
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(hard, 65536), max(hard, 65536)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    world = World(Path(args.bin), f"{args.parallel * 4}:30:{args.parallel * 8}")
    results = {}
    try:
        world.start_gateway("gw")
        if args.baseline:
            world.start_gateway("base", binary=Path(args.baseline))
        print(f"## Switchboard benchmarks\n\n{os.cpu_count()} cores, "
              f"{subprocess.run(['ssh', '-V'], capture_output=True, text=True).stderr.strip()}, "
              f"{time.strftime('%Y-%m-%d %H:%M')}\n", flush=True)
        for section in args.sections:
            results[section] = {
                "throughput": bench_throughput, "setup": bench_setup,
                "echo": bench_echo, "stalled": bench_stalled, "slowbox": bench_slowbox, "scp": bench_scp,
                "concurrency": bench_concurrency, "many": bench_many,
                "profile": bench_profile, "versus": bench_versus,
            }[section](world, args)
    finally:
        world.close()
    if args.json:
        Path(args.json).write_text(json.dumps(
            {k: {str(kk): vv for kk, vv in v.items()} if isinstance(v, dict) else v
             for k, v in results.items()}, indent=1, default=str))


if __name__ == "__main__":
    main()
