#!/usr/bin/python3
"""Benchmarks corrald and Apache ZooKeeper side by side, on this machine, in one run.

Both servers run standalone on loopback with the same durability (ZooKeeper
with forceSync=yes, corrald always fsyncs before replying), their data on the
same disk (a directory under --workdir). Every workload of loadgen runs
against each in turn; then each is loaded with --znodes znodes of 100 bytes
to measure its RSS, and restarted to measure restart-to-ready.

Usage: tests/bench/compare.py [--corrald PATH] [--loadgen PATH] [--duration 5]
                              [--znodes 1000000] [--workdir DIR] [--markdown]
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

WORKLOADS = [
    ("create", []), ("set", []), ("get", []), ("exists", []),
    ("children", ["--outstanding", "4"]), ("mix", ["--read-percent", "90"]),
    ("multi", ["--multi-ops", "4"]),
]


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


class Server:
    def __init__(self, kind, workdir, corrald):
        self.kind, self.dir, self.corrald = kind, os.path.join(workdir, kind), corrald
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
                                     stderr=open(os.path.join(self.dir, "server.log"), "a"))
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
    ap.add_argument("--corrald", default=os.path.join(here, "../../build-rel/daemon/corrald"))
    ap.add_argument("--loadgen", default=os.path.join(here, "../../build-rel/tests/bench/loadgen"))
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--znodes", type=int, default=1000000)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="corral-bench-", dir="/var/tmp")
    results = {}
    for kind in ("zookeeper", "corral"):
        srv = Server(kind, workdir, args.corrald)
        try:
            srv.start()
            for w, extra in WORKLOADS:
                results[(kind, w)] = loadgen(args, srv, w, extra, kind)
            # one client, synchronous setData: latency against the disk's fdatasync
            results[(kind, "set-sync")] = loadgen(args, srv, "set", ["--connections", "1",
                                                                      "--outstanding", "1"], kind)
            loadgen(args, srv, "create", ["--count", str(args.znodes), "--value-bytes", "100"], kind)
            results[(kind, "rss_mb")] = rss_mb(srv.proc.pid)
            srv.kill()
            results[(kind, "restart_s")] = srv.start()
        finally:
            srv.stop()
    shutil.rmtree(workdir, ignore_errors=True)

    rows = []
    for w, _ in WORKLOADS + [("set-sync", None)]:
        z, c = results[("zookeeper", w)], results[("corral", w)]
        rows.append((w, z["ops_per_s"], c["ops_per_s"], c["ops_per_s"] / max(z["ops_per_s"], 1),
                     z["p99_us"], c["p99_us"], c["p99_us"] / max(z["p99_us"], 1), z["p50_us"], c["p50_us"]))
    if args.markdown:
        print("| workload | ZooKeeper ops/s | corral ops/s | ratio | ZooKeeper p99 µs | corral p99 µs | p99 ratio |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r[0]} | {r[1]:.0f} | {r[2]:.0f} | {r[3]:.1f}x | {r[4]:.0f} | {r[5]:.0f} | {r[6]:.2f} |")
        print(f"| RSS, {args.znodes} znodes of 100 B | {results[('zookeeper', 'rss_mb')]:.0f} MB | "
              f"{results[('corral', 'rss_mb')]:.0f} MB | "
              f"{results[('corral', 'rss_mb')] / results[('zookeeper', 'rss_mb')]:.2f} | | | |")
        print(f"| restart-to-ready with them | {results[('zookeeper', 'restart_s')]:.2f} s | "
              f"{results[('corral', 'restart_s')]:.2f} s | "
              f"{results[('corral', 'restart_s')] / results[('zookeeper', 'restart_s')]:.2f} | | | |")
    else:
        for r in rows:
            print(f"{r[0]:10} zk {r[1]:10.0f}/s corral {r[2]:10.0f}/s x{r[3]:6.1f}   "
                  f"p99 zk {r[4]:9.0f}us corral {r[5]:9.0f}us ({r[6]:.2f})   p50 zk {r[7]:.0f} corral {r[8]:.0f}")
        for k in ("rss_mb", "restart_s"):
            print(f"{k:10} zk {results[('zookeeper', k)]:.2f} corral {results[('corral', k)]:.2f}")


if __name__ == "__main__":
    main()
