#!/usr/bin/python3
"""Benchmarks corrald and Apache ZooKeeper side by side, on this machine, in one run.

Both servers run standalone on loopback with the same durability (ZooKeeper
with forceSync=yes, corrald always fsyncs before replying), their data on the
same disk (a directory under --workdir). Every workload of loadgen runs
against each in turn, on a fresh server; then each, fresh again, is loaded
with --znodes znodes of 100 bytes to measure its RSS, killed (SIGKILL) and
restarted to measure restart-to-ready (exec until a session is served) with
that tree. fio measures the disk's write+fdatasync latency first, the floor
for one synchronous client's setData.

With --floor PATH (a corrald built with -Dbench_floor=true: server/floor.h)
the workloads also run against the floor: the same loop, ring and framing
answering every request with a reply of the right shape and nothing else (no
tree, no log): how close corral comes to what this machine's network path
allows. Each row also gives the servers' CPU per operation: the server
process's utime + stime over loadgen's run (what perf stat's task-clock
counts) divided by the operations done.

With --rounds N all of it runs N times, the servers in turn in each round
(ZooKeeper, corral, the floor), every server fresh; each row gives the round
with the median rate (its p99 and CPU with it), RSS and restart their medians,
and --json-out keeps every round's figures. One run of either server moves
between runs (ZooKeeper's multi 36-53k/s in four runs of one evening), so a
ratio of two single runs says less than one of two medians.

Usage: tests/bench/compare.py [--corrald PATH] [--loadgen PATH] [--floor PATH]
                              [--duration 5] [--znodes 1000000] [--rounds 1]
                              [--workdir DIR] [--markdown] [--json-out FILE]
Run from a release build: `bash tests/bench/run-compare.sh` does it all.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

# (name, loadgen workload, extra flags); all at 8 connections x 32 outstanding
WORKLOADS = [
    ("create", "create", []), ("set", "set", []), ("get", "get", []), ("exists", "exists", []),
    ("children", "children", ["--outstanding", "4"]), ("mix", "mix", ["--read-percent", "90"]),
    ("churn", "churn", []), ("watch", "watch", ["--watchers", "100"]),
    ("multi", "multi", ["--multi-ops", "4"]),
    # one client, synchronous setData: latency against the disk's fdatasync
    ("set-sync", "set", ["--connections", "1", "--outstanding", "1"]),
]
# the floor answers requests of open sessions; sessions themselves are the
# log's (createSession, closeSession): no floor for churn. One synchronous
# client's setData on the floor is the round trip alone (no log, no disk).
NO_FLOOR = ("churn",)
LABELS = {
    "create": "create (sequential)", "set": "setData", "get": "getData", "exists": "exists",
    "children": "getChildren (1,000 children)", "mix": "mix (90% getData)",
    "churn": "session churn (sessions/s)", "watch": "watch fan-out to 100 (fan-outs/s)",
    "multi": "multi (4 setData)", "set-sync": "setData, 1 client synchronous",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, proc, deadline_s=120):
    """Ready = answers a ConnectRequest (not just accepts TCP)."""
    end = time.monotonic() + deadline_s
    req = (b"\x00\x00\x00\x2d" + b"\x00" * 4 + b"\x00" * 8 + (30000).to_bytes(4, "big")
           + b"\x00" * 8 + (16).to_bytes(4, "big") + b"\x00" * 16 + b"\x00")
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(req)
                if len(s.recv(64)) >= 4:
                    return
        except OSError:
            pass
        time.sleep(0.02)
    raise SystemExit("server not ready in time")


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


# corrald runs with what the shipped unit (units/corral.service) gives it:
# glibc's malloc asks for transparent huge pages (a snapshot's fork copies
# far fewer page table entries).
CORRAL_ENV = {**os.environ, "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}


class Server:
    def __init__(self, kind, workdir, corrald, phase):
        self.kind, self.dir, self.corrald = kind, os.path.join(workdir, kind + "-" + phase), corrald
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.proc = None

    def command(self):
        if self.kind in ("corral", "floor"):
            return [self.corrald, "-d", os.path.join(self.dir, "data"), "-l", f"127.0.0.1:{self.port}"]
        cfg = os.path.join(self.dir, "zoo.cfg")
        with open(cfg, "w") as f:
            f.write(f"tickTime=2000\ndataDir={self.dir}/data\nclientPort={self.port}\n"
                    "clientPortAddress=127.0.0.1\nforceSync=yes\nadmin.enableServer=false\n"
                    "maxClientCnxns=0\n4lw.commands.whitelist=*\n"
                    "globalOutstandingLimit=100000\n")
        # Debian's zookeeper.jar names its dependencies in its manifest.
        cp = ["/etc/zookeeper/conf", "/usr/share/java/zookeeper.jar"]
        return ["java", "-Dzookeeper.log.dir=" + self.dir, "-Dzookeeper.root.logger=WARN,CONSOLE",
                "-cp", ":".join(cp), "org.apache.zookeeper.server.ZooKeeperServerMain", cfg]

    def start(self):
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "server.log"), "a"),
                                     env=CORRAL_ENV if self.kind != "zookeeper" else None)
        wait_ready(self.port, self.proc)
        return time.monotonic() - t0

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def disk_fdatasync_us(workdir):
    """fio: 4 KiB sequential writes, each followed by fdatasync, in workdir."""
    if not shutil.which("fio"):
        return None
    d = tempfile.mkdtemp(dir=workdir)
    out = subprocess.run(["fio", "--name=fdatasync", f"--directory={d}", "--rw=write", "--bs=4k",
                          "--size=16m", "--fdatasync=1", "--output-format=json"],
                         capture_output=True, text=True)
    shutil.rmtree(d, ignore_errors=True)
    if out.returncode != 0:
        return None
    job = json.loads(out.stdout)["jobs"][0]
    sync = job["sync"]["lat_ns"]
    return {"write_mean_us": job["write"]["clat_ns"]["mean"] / 1000,
            "sync_mean_us": sync["mean"] / 1000,
            "sync_p50_us": sync["percentile"]["50.000000"] / 1000,
            "sync_p99_us": sync["percentile"]["99.000000"] / 1000}


def cpu_s(pid):
    """utime + stime of a process (its threads included), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def loadgen(args, server, workload, extra, label):
    cmd = [args.loadgen, "--port", str(server.port), "--workload", workload, "--json",
           "--label", label, "--connections", "8", "--outstanding", "32"] + extra
    if "--count" not in extra:
        cmd += ["--duration", str(args.duration)]
    cpu0, t0 = cpu_s(server.proc.pid), time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    cpu, wall = cpu_s(server.proc.pid) - cpu0, time.monotonic() - t0
    if out.returncode not in (0, 1):
        raise SystemExit(f"loadgen failed: {out.stderr}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    # loadgen's setup and warm-up are in the CPU too: per op over the whole
    # run, at the measured rate (a slight overestimate; the same for all)
    ops = r["ops_per_s"] * wall
    r["cpu_us_per_op"] = cpu * 1e6 / ops if ops else 0.0
    return r


def run_round(args, workdir, n):
    """Round n: every workload on each server, fresh, then the tree's RSS and
    restart: {(kind, name): figures}. Each server's directory goes after it."""
    results = {}
    for kind in ("zookeeper", "corral"):
        srv = Server(kind, workdir, args.corrald, f"load{n}")
        try:
            srv.start()
            for name, w, extra in WORKLOADS:
                results[(kind, name)] = loadgen(args, srv, w, extra, kind)
                print(f"{kind} {name}: {results[(kind, name)]}", file=sys.stderr)
        finally:
            srv.stop()
            shutil.rmtree(srv.dir, ignore_errors=True)
        # a fresh server holding only the tree: RSS, then restart-to-ready
        srv = Server(kind, workdir, args.corrald, f"tree{n}")
        try:
            srv.start()
            t0 = time.monotonic()
            loadgen(args, srv, "create", ["--count", str(args.znodes), "--value-bytes", "100"], kind)
            results[(kind, "load_s")] = time.monotonic() - t0
            results[(kind, "rss_mb")] = rss_mb(srv.proc.pid)
            srv.kill()
            results[(kind, "restart_s")] = srv.start()
            results[(kind, "rss_restarted_mb")] = rss_mb(srv.proc.pid)
            print(f"{kind} tree: load {results[(kind, 'load_s')]:.1f} s, RSS {results[(kind, 'rss_mb')]:.0f} MB, "
                  f"restart {results[(kind, 'restart_s')]:.2f} s, RSS after {results[(kind, 'rss_restarted_mb')]:.0f} MB",
                  file=sys.stderr)
        finally:
            srv.stop()
            shutil.rmtree(srv.dir, ignore_errors=True)
    if args.floor:
        srv = Server("floor", workdir, args.floor, f"load{n}")
        try:
            srv.start()
            for name, w, extra in WORKLOADS:
                if name not in NO_FLOOR:
                    results[("floor", name)] = loadgen(args, srv, w, extra, "floor")
                    print(f"floor {name}: {results[('floor', name)]}", file=sys.stderr)
        finally:
            srv.stop()
            shutil.rmtree(srv.dir, ignore_errors=True)
    return results


def median_results(rounds):
    """Per (kind, workload) the round with the median rate (the lower middle
    one of an even count); per (kind, figure) of the tree the median value."""
    out = {}
    for key in rounds[0]:
        vals = [r[key] for r in rounds]
        if isinstance(vals[0], dict):
            vals.sort(key=lambda v: v["ops_per_s"])
            out[key] = dict(vals[(len(vals) - 1) // 2])
            if len(vals) > 1:
                out[key]["rounds_ops_per_s"] = [r[key]["ops_per_s"] for r in rounds]
        else:
            vals.sort()
            out[key] = vals[(len(vals) - 1) // 2]
    return out


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--corrald", default=os.path.join(here, "../../build-rel/app/corrald"))
    ap.add_argument("--loadgen", default=os.path.join(here, "../../build-rel/tests/bench/loadgen"))
    ap.add_argument("--floor", default=None,
                    help="a corrald built with -Dbench_floor=true: its column in the table")
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--znodes", type=int, default=1000000)
    ap.add_argument("--rounds", type=int, default=1,
                    help="run everything this many times; the table gives medians")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--json-out", default=None, help="also write every figure to this JSON file")
    args = ap.parse_args()
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    workdir = args.workdir or tempfile.mkdtemp(prefix="corral-bench-", dir="/var/tmp")
    print(f"machine: {os.cpu_count()} cores, {os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB, "
          f"Linux {os.uname().release}", file=sys.stderr)
    disk = disk_fdatasync_us(workdir)
    if disk:
        print("disk (fio, 4 KiB write + fdatasync): write {write_mean_us:.0f} us + fdatasync mean "
              "{sync_mean_us:.0f} us, p50 {sync_p50_us:.0f}, p99 {sync_p99_us:.0f}".format(**disk),
              file=sys.stderr)
    rounds = []
    for n in range(args.rounds):
        if args.rounds > 1:
            print(f"round {n + 1} of {args.rounds}", file=sys.stderr)
        rounds.append(run_round(args, workdir, n + 1))
    results = median_results(rounds)
    shutil.rmtree(workdir, ignore_errors=True)

    print_table(args, results, disk)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"disk": disk, "rounds": args.rounds,
                       "results": {f"{k[0]}.{k[1]}": v for k, v in results.items()},
                       "every_round": [{f"{k[0]}.{k[1]}": v for k, v in r.items()} for r in rounds]},
                      f, indent=1)

def print_table(args, results, disk):
    floor = args.floor is not None
    zr, cr = results[("zookeeper", "rss_mb")], results[("corral", "rss_mb")]
    zt, ct = results[("zookeeper", "restart_s")], results[("corral", "restart_s")]
    if not args.markdown:
        for name, _, _ in WORKLOADS:
            z, c = results[("zookeeper", name)], results[("corral", name)]
            f = results.get(("floor", name))
            print(f"{name:10} zk {z['ops_per_s']:10.0f}/s corral {c['ops_per_s']:10.0f}/s "
                  f"x{c['ops_per_s'] / max(z['ops_per_s'], 1):6.1f}"
                  + (f" floor {f['ops_per_s']:10.0f}/s" if f else "")
                  + f"   p99 zk {z['p99_us']:9.0f}us corral {c['p99_us']:9.0f}us   p50 zk "
                  f"{z['p50_us']:.0f} corral {c['p50_us']:.0f}   CPU/op zk {z['cpu_us_per_op']:.1f}us "
                  f"corral {c['cpu_us_per_op']:.1f}us" + (f" floor {f['cpu_us_per_op']:.1f}us" if f else ""))
        for k in ("load_s", "rss_mb", "restart_s", "rss_restarted_mb"):
            print(f"{k:10} zk {results[('zookeeper', k)]:.2f} corral {results[('corral', k)]:.2f}")
        return
    if args.rounds > 1:
        print(f"Medians of {args.rounds} rounds (each workload's row is its round with the "
              "median rate).\n")
    head = "| workload | ZooKeeper ops/s | corral ops/s | ratio |"
    if floor:
        head += " floor ops/s | corral / floor |"
    head += " ZooKeeper p99 µs | corral p99 µs | CPU µs/op: ZooKeeper, corral" + (", floor |" if floor else " |")
    print(head)
    print("|---|" + "---:|" * (head.count("|") - 2))
    for name, _, _ in WORKLOADS:
        z, c = results[("zookeeper", name)], results[("corral", name)]
        f = results.get(("floor", name))
        row = f"| {LABELS[name]} | {z['ops_per_s']:.0f} | {c['ops_per_s']:.0f} | {c['ops_per_s'] / max(z['ops_per_s'], 1):.1f}x |"
        if floor:
            row += (f" {f['ops_per_s']:.0f} | {c['ops_per_s'] / max(f['ops_per_s'], 1):.2f} |" if f else " | |")
        row += (f" {z['p99_us']:.0f} | {c['p99_us']:.0f} | {z['cpu_us_per_op']:.1f}, {c['cpu_us_per_op']:.1f}"
                + (f", {f['cpu_us_per_op']:.1f}" if f else "") + " |")
        print(row)
    pad = " | |" if floor else ""
    sync, zsync = results[("corral", "set-sync")], results[("zookeeper", "set-sync")]
    if disk:
        print(f"| setData, 1 client: p50 µs (disk write+fdatasync {disk['write_mean_us'] + disk['sync_mean_us']:.0f} µs mean, "
              f"fdatasync p50 {disk['sync_p50_us']:.0f}"
              + (f"; the floor's, no log: {results[('floor', 'set-sync')]['p50_us']:.0f}" if floor else "")
              + f") | {zsync['p50_us']:.0f} | {sync['p50_us']:.0f} | "
              f"{sync['p50_us'] / zsync['p50_us']:.2f} |{pad} | | |")
    print(f"| RSS, {args.znodes:,} znodes of 100 B | {zr:.0f} MB | {cr:.0f} MB | {cr / zr:.2f} |{pad} | | |")
    print(f"| restart-to-ready with them | {zt:.2f} s | {ct:.2f} s | {ct / zt:.2f} |{pad} | | |")


if __name__ == "__main__":
    main()
