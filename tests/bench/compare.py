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

Usage: tests/bench/compare.py [--corrald PATH] [--loadgen PATH] [--duration 5]
                              [--znodes 1000000] [--workdir DIR] [--markdown]
                              [--json-out FILE]
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
        if self.kind == "corral":
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
                                     env=CORRAL_ENV if self.kind == "corral" else None)
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


def loadgen(args, server, workload, extra, label):
    cmd = [args.loadgen, "--port", str(server.port), "--workload", workload, "--json",
           "--label", label, "--connections", "8", "--outstanding", "32"] + extra
    if "--count" not in extra:
        cmd += ["--duration", str(args.duration)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if out.returncode not in (0, 1):
        raise SystemExit(f"loadgen failed: {out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--corrald", default=os.path.join(here, "../../build-rel/app/corrald"))
    ap.add_argument("--loadgen", default=os.path.join(here, "../../build-rel/tests/bench/loadgen"))
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--znodes", type=int, default=1000000)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--json-out", default=None, help="also write every figure to this JSON file")
    args = ap.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="corral-bench-", dir="/var/tmp")
    results = {}
    print(f"machine: {os.cpu_count()} cores, {os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB, "
          f"Linux {os.uname().release}", file=sys.stderr)
    disk = disk_fdatasync_us(workdir)
    if disk:
        print("disk (fio, 4 KiB write + fdatasync): write {write_mean_us:.0f} us + fdatasync mean "
              "{sync_mean_us:.0f} us, p50 {sync_p50_us:.0f}, p99 {sync_p99_us:.0f}".format(**disk),
              file=sys.stderr)
    for kind in ("zookeeper", "corral"):
        srv = Server(kind, workdir, args.corrald, "load")
        try:
            srv.start()
            for name, w, extra in WORKLOADS:
                results[(kind, name)] = loadgen(args, srv, w, extra, kind)
                print(f"{kind} {name}: {results[(kind, name)]}", file=sys.stderr)
        finally:
            srv.stop()
        # a fresh server holding only the tree: RSS, then restart-to-ready
        srv = Server(kind, workdir, args.corrald, "tree")
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
    shutil.rmtree(workdir, ignore_errors=True)

    rows = []
    for name, _, _ in WORKLOADS:
        z, c = results[("zookeeper", name)], results[("corral", name)]
        rows.append((name, z["ops_per_s"], c["ops_per_s"], c["ops_per_s"] / max(z["ops_per_s"], 1),
                     z["p99_us"], c["p99_us"], c["p99_us"] / max(z["p99_us"], 1), z["p50_us"], c["p50_us"]))
    zr, cr = results[("zookeeper", "rss_mb")], results[("corral", "rss_mb")]
    zt, ct = results[("zookeeper", "restart_s")], results[("corral", "restart_s")]
    if args.markdown:
        print("| workload | ZooKeeper ops/s | corral ops/s | ratio | ZooKeeper p99 µs | corral p99 µs | p99 ratio |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {LABELS[r[0]]} | {r[1]:.0f} | {r[2]:.0f} | {r[3]:.1f}x | {r[4]:.0f} | {r[5]:.0f} | {r[6]:.2f} |")
        sync = results[("corral", "set-sync")]
        zsync = results[("zookeeper", "set-sync")]
        if disk:
            print(f"| setData, 1 client: p50 µs (disk write+fdatasync {disk['write_mean_us'] + disk['sync_mean_us']:.0f} µs mean, "
                  f"fdatasync p50 {disk['sync_p50_us']:.0f}) | {zsync['p50_us']:.0f} | {sync['p50_us']:.0f} | "
                  f"{sync['p50_us'] / zsync['p50_us']:.2f} | | | |")
        print(f"| RSS, {args.znodes:,} znodes of 100 B | {zr:.0f} MB | {cr:.0f} MB | {cr / zr:.2f} | | | |")
        print(f"| restart-to-ready with them | {zt:.2f} s | {ct:.2f} s | {ct / zt:.2f} | | | |")
    else:
        for r in rows:
            print(f"{r[0]:10} zk {r[1]:10.0f}/s corral {r[2]:10.0f}/s x{r[3]:6.1f}   "
                  f"p99 zk {r[4]:9.0f}us corral {r[5]:9.0f}us ({r[6]:.2f})   p50 zk {r[7]:.0f} corral {r[8]:.0f}")
        for k in ("load_s", "rss_mb", "restart_s", "rss_restarted_mb"):
            print(f"{k:10} zk {results[('zookeeper', k)]:.2f} corral {results[('corral', k)]:.2f}")
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"disk": disk, "results": {f"{k[0]}.{k[1]}": v for k, v in results.items()}}, f, indent=1)

if __name__ == "__main__":
    main()
