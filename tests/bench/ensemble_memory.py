#!/usr/bin/python3
"""A 3-member corral ensemble's memory against a standalone server's, for the
same tree (issue 19, item 5): --znodes znodes of 100 bytes created through
the leader (loadgen create, 8 connections x 32 outstanding), then, once every
member is at the same zxid, each member's RSS and its mntr memory figures
(log entries cached, their bytes, the state's bytes) and glibc's
malloc_stats() (bytes in use and held, through gdb when it is installed);
then a standalone corrald loads the same tree and reports the same. One
system at a time.

Usage: tests/bench/ensemble_memory.py [--corrald PATH] [--loadgen PATH]
           [--znodes 1000000] [--entry-cache-bytes N] [--workdir DIR] [--keep]
Extra ensemble configuration (--entry-cache-bytes) goes into every member's
corral.yaml. Run by hand, never by CI: the figures belong in the README with
the machine they came from.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import Server, rss_mb  # noqa: E402
from ensemble import HOST, N, Ensemble, four_letter, log  # noqa: E402

FIGURES = ("zk_znode_count", "corral_log_entries_in_memory", "corral_log_entries_in_memory_bytes",
           "corral_log_entries_read_from_disk", "corral_memory_state_bytes",
           "corral_memory_connection_bytes", "corral_peer_buffer_bytes", "zk_approximate_data_size")


def mntr(port):
    out = {}
    for line in four_letter(port, "mntr").splitlines():
        k, _, v = line.partition("\t")
        if k in FIGURES:
            out[k] = int(v)
    return out


def heap(pid, log_path):
    """glibc's malloc_stats() in the process (gdb attaches for a moment; it
    prints to the server's stderr, its log): (in use, held from the system)
    in MB, or None without gdb."""
    if not shutil.which("gdb"):
        return None
    before = os.path.getsize(log_path)
    subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "call (void)malloc_stats()"],
                   capture_output=True, timeout=120)
    with open(log_path, errors="replace") as f:
        f.seek(before)
        lines = f.read().splitlines()
    total = [i for i, ln in enumerate(lines) if ln.startswith("Total (incl. mmap):")]
    if not total:
        return None
    k = total[-1]
    system = int(lines[k + 1].split("=")[1])
    used = int(lines[k + 2].split("=")[1])
    return round(used / 1048576, 1), round(system / 1048576, 1)


def load(args, ports):
    cmd = [args.loadgen, "--servers", ",".join(f"{HOST}:{p}" for p in ports), "--workload", "create",
           "--count", str(args.znodes), "--value-bytes", "100", "--json", "--connections", "8",
           "--outstanding", "32"]
    t0 = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        raise SystemExit(f"loadgen exited with {out.returncode}: {out.stderr.strip()[-2000:]}")
    return time.monotonic() - t0


def ensemble(args, workdir):
    ens = Ensemble("corral", workdir, args.corrald, 1000)
    if args.entry_cache_bytes is not None:
        for i in range(N):
            with open(os.path.join(ens.sdir(i), "corral.yaml"), "a") as f:
                f.write(f"  entry_cache_bytes: {args.entry_cache_bytes}\n")
    try:
        leader = ens.start_all()
        took = load(args, [ens.client[leader]])
        leader = ens.wait_settled(300)
        for i in range(N):
            role = "leader" if i == leader else "follower"
            log(f"ensemble s{i + 1} ({role}): RSS {rss_mb(ens.procs[i].pid):.0f} MB "
                f"{mntr(ens.client[i])}; malloc in use, held (MB): "
                f"{heap(ens.procs[i].pid, os.path.join(ens.sdir(i), 'server.log'))}")
        log(f"ensemble: {args.znodes} znodes loaded in {took:.1f} s")
    finally:
        ens.stop_all()
        if not args.keep:
            shutil.rmtree(ens.dir, ignore_errors=True)


def standalone(args, workdir):
    srv = Server("corral", workdir, args.corrald, f"memory-{os.getpid()}")   # a new data directory
    try:
        srv.start()
        took = load(args, [srv.port])
        log(f"standalone: RSS {rss_mb(srv.proc.pid):.0f} MB {mntr(srv.port)}; malloc in use, "
            f"held (MB): {heap(srv.proc.pid, os.path.join(srv.dir, 'server.log'))}; "
            f"{args.znodes} znodes loaded in {took:.1f} s")
    finally:
        srv.stop()
        if not args.keep:
            shutil.rmtree(srv.dir, ignore_errors=True)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--corrald", default=os.path.join(here, "../../build-rel/app/corrald"))
    ap.add_argument("--loadgen", default=os.path.join(here, "../../build-rel/tests/bench/loadgen"))
    ap.add_argument("--znodes", type=int, default=1000000)
    ap.add_argument("--entry-cache-bytes", type=int, default=None)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--keep", action="store_true", help="keep the data directories and logs")
    args = ap.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="corral-ensmem-")
    os.makedirs(workdir, exist_ok=True)
    ensemble(args, workdir)
    standalone(args, workdir)


if __name__ == "__main__":
    main()
