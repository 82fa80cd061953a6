#!/usr/bin/python3
"""setData latency over a big tree with snapshots taken continuously, against
the same run without snapshots: what the snapshot's fork costs the tail.

Each run starts a fresh corrald (release build) whose loadgen setup creates
--keys znodes of 100 bytes, then times --duration seconds of setData on them
(8 connections x 32 outstanding). "continuous" sets storage.snapshot_entries
to --every, so a snapshot starts again as soon as that many entries have
gone by (about one a second at 100k setData/s); "none" sets it so high that
no snapshot is taken during the run; with --snap-apart, "apart" is
continuous with DATA_DIR/snap on a tmpfs of its own (root: it mounts one),
the log still on the disk. Each is run with glibc's malloc asked
for transparent huge pages (GLIBC_TUNABLES=glibc.malloc.hugetlb=1, as the
shipped unit sets it) and without. Prints p50/p99/p999 and the fork pauses
corrald logged; asserts nothing.

    /usr/bin/python3 tests/bench/snapshot_tail.py [--build build-rel] [--keys 1000000]
        [--duration 10] [--every 100000] [--modes thp,plain] [--snap-apart]
"""
import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args, mode, snapshots, snap_apart=False):
    if not snap_apart:
        return run_on(args, mode, snapshots)
    # The snapshots on a file system of their own (a tmpfs: this machine has
    # one disk), the log on the disk: what a log device of its own gives
    # (README, Durability).
    tmp = tempfile.mkdtemp(prefix="corral-bench-tail-", dir="/var/tmp")
    snap = os.path.join(tmp, "data", "snap")
    os.makedirs(snap)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4g", "tmpfs", snap], check=True)
    try:
        return run_on(args, mode, snapshots, tmp)
    finally:
        subprocess.run(["umount", snap], check=True)
        shutil.rmtree(tmp, ignore_errors=True)


def run_on(args, mode, snapshots, tmp=None):
    tmp = tmp or tempfile.mkdtemp(prefix="corral-bench-tail-", dir="/var/tmp")
    port = free_port()
    every = args.every if snapshots == "continuous" else 1000000000
    with open(os.path.join(tmp, "corral.yaml"), "w") as f:
        f.write(f"data_dir: {tmp}/data\nclient:\n  listen: [\"127.0.0.1:{port}\"]\n"
                f"storage:\n  snapshot_entries: {every}\n")
    env = dict(os.environ)
    env.pop("GLIBC_TUNABLES", None)
    if mode == "thp":
        env["GLIBC_TUNABLES"] = "glibc.malloc.hugetlb=1"
    log = open(os.path.join(tmp, "log"), "w")
    server = subprocess.Popen([os.path.join(args.build, "app/corrald"), "-c",
                               os.path.join(tmp, "corral.yaml")], stdout=log,
                              stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        out = subprocess.run([os.path.join(args.build, "tests/bench/loadgen"), "--port", str(port),
                              "--workload", "set", "--keys", str(args.keys), "--duration",
                              str(args.duration), "--json"], capture_output=True, text=True,
                             check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        with open(f"/proc/{server.pid}/status") as f:
            status = f.read()
        r["rss_mb"] = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024
        with open(f"/proc/{server.pid}/smaps_rollup") as f:
            r["huge_mb"] = int(re.search(r"AnonHugePages:\s+(\d+)", f.read()).group(1)) / 1024
    finally:
        server.terminate()
        server.wait(60)
        log.close()
    with open(os.path.join(tmp, "log")) as f:
        text = f.read()
    r["fork_us"] = [int(x) for x in re.findall(r"the fork paused the server (\d+) us", text)]
    r["written_ms"] = [int(x) for x in re.findall(r"snapshot at index \d+ written in (\d+) ms", text)]
    shutil.rmtree(tmp, ignore_errors=True)
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build-rel")
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--every", type=int, default=100000)
    ap.add_argument("--modes", default="thp,plain")
    ap.add_argument("--snap-apart", action="store_true",
                    help="also run continuous snapshots written to a tmpfs of their own")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()}; "
          f"{args.keys} znodes of 100 bytes, setData 8 x 32 for {args.duration:g} s")
    print("| malloc | snapshots | setData/s | p50 µs | p99 µs | p999 µs | snapshots (fork pause, ms) "
          "| written in, ms | RSS MB (huge pages) |")
    print("|---|---|---:|---:|---:|---:|---|---|---:|")
    for mode in args.modes.split(","):
        for snapshots in ("none", "continuous") + (("apart",) if args.snap_apart else ()):
            r = run(args, mode, "continuous" if snapshots == "apart" else snapshots,
                    snapshots == "apart")
            forks = r["fork_us"]
            print(f"| {mode} | {snapshots} | {r['ops_per_s']:.0f} | {r['p50_us']:.0f} | {r['p99_us']:.0f} | "
                  f"{r['p999_us']:.0f} | {len(forks)}"
                  + (f" ({min(forks) / 1000:.1f}-{max(forks) / 1000:.1f})" if forks else "")
                  + " | " + (f"{min(r['written_ms'])}-{max(r['written_ms'])}" if r["written_ms"] else "")
                  + f" | {r['rss_mb']:.0f} ({r['huge_mb']:.0f}) |", flush=True)


if __name__ == "__main__":
    main()
