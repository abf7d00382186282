#!/usr/bin/env python3
"""Where a gateway's heap goes per session, from a heaptrack recording.

Usage: bench/heap_profile.py HEAPTRACK_FILE SESSIONS

Record with the `many` section (section `many`, gateway wrapped by
BENCH_GATEWAY_WRAP="heaptrack -o FILE"), or any run holding SESSIONS idle
sessions at its peak. Prints a Markdown table: heap at the peak, per session,
grouped by the code that allocated it (the innermost frame that is russh,
tokio's mpsc or ours). Needs heaptrack_print and c++filt (binutils).
"""

import collections
import re
import subprocess
import sys
import tempfile

# Who allocated: the deepest spawn (a task's future) or mpsc block (a
# channel's first slots) in the stack, charged to the code that made it; else
# the deepest frame of russh or ours.
SIDE = re.compile(r"^(?:russh::client|russh::server|russh::cipher|russh::session|russh::kex|"
                  r"russh::negotiation|russh::channels|russh_cryptovec|switchboard::)")


def side(frame):
    for prefix, name in [("russh::client", "russh client (box leg)"),
                         ("russh::server", "russh server (client leg)"),
                         ("russh::channels", "russh channels"),
                         ("switchboard::", "ours")]:
        if frame.startswith(prefix):
            return name
    return "russh cipher, packets, key exchange (both legs)"


def classify(frames):
    """FRAMES outermost first, demangled. heaptrack lists the inlined frames
    of one address innermost first, so the code that made a task or channel
    is a few frames either side of it: the nearest russh frame wins."""
    events = [i for i, f in enumerate(frames)
              if re.match(r"^(?:tokio::task::spawn::spawn$|alloc::boxed::Box<T>::pin|"
                          r"alloc::boxed::Box\$LT\$T\$GT\$::pin|"
                          r"tokio::sync::mpsc::block::Block)", f)]
    sides = [i for i, f in enumerate(frames) if SIDE.match(f)]
    if events:
        k = events[-1]
        near = sorted((abs(i - k), not frames[i].startswith("russh"), i)
                      for i in sides if abs(i - k) <= 6)
        near.sort(key=lambda t: (t[1], t[0]))
        owner = frames[near[0][2]] if near else ""
        what = ("`mpsc` channels (first block of slots)" if "Block" in frames[k]
                else "task futures (spawned or boxed)")
        return f"{side(owner)}: {what}"
    if sides:
        f = frames[sides[-1]]
        if f.startswith("russh::cipher") or f.startswith("russh_cryptovec"):
            return "russh cipher and packet buffers (both legs)"
        return f"{side(f)}: other state"
    return "other (std, tokio, start-up)"


def demangle(frames):
    text = "\n".join(re.sub(r" \(.*\)$", "", f) for f in frames)
    out = subprocess.run(["c++filt", "-s", "rust"], input=text, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    return dict(zip(frames, (re.sub(r"::h[0-9a-f]{16}", "", o) for o in out)))


def main():
    path, sessions = sys.argv[1], int(sys.argv[2])
    with tempfile.NamedTemporaryFile("r") as stacks:
        subprocess.run(["heaptrack_print", "-f", path, "--print-peaks", "0",
                        "--print-allocators", "0", "--print-leaks", "0",
                        "--print-temporary", "0", "--flamegraph-cost-type", "peak",
                        "-F", stacks.name], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        rows = []
        for line in stacks.read().splitlines():
            stack, n = line.rsplit(" ", 1)
            rows.append((int(n), stack.split(";")))
    names = demangle(sorted({f for _, s in rows for f in s}))
    totals = collections.Counter()
    for n, stack in rows:
        totals[classify([names[f] for f in stack])] += n
    print(f"| what | heap per session (KiB, {sessions} sessions, at the peak) |")
    print("|---|---:|")
    for label, n in totals.most_common():
        print(f"| {label} | {n / 1024 / sessions:.1f} |")
    print(f"| **total** | **{sum(totals.values()) / 1024 / sessions:.1f}** |")


if __name__ == "__main__":
    main()
