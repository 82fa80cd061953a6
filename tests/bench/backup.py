"""An online backup of a big tree under a write load: how long corralctl
backup takes, the file's size, setData latency before, during and after
it (the backup must not pause writes), and how long --verify, restore and
dump take on the file. Prints figures; asserts nothing (tests/bench).

    /usr/bin/python3 tests/bench/backup.py BUILD_DIR [NODES]   (default 200000)
"""
import base64
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

from kazoo.client import KazooClient


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(argv, shell=False):
    t = time.monotonic()
    p = subprocess.run(argv, capture_output=True, text=True, shell=shell)
    return time.monotonic() - t, (p.stdout + p.stderr).strip()


def main():
    build, nodes = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 200000
    corrald, corralctl = build + "/app/corrald", build + "/ctl/corralctl"
    tmp = tempfile.mkdtemp(prefix="corral-bench-backup-")
    hosts = f"127.0.0.1:{free_port()}"
    digest = "super:" + base64.b64encode(hashlib.sha1(b"super:pw").digest()).decode()
    cfg = os.path.join(tmp, "corral.yaml")
    with open(cfg, "w") as f:
        f.write(f"data_dir: {tmp}/data\nclient:\n  listen: [\"{hosts}\"]\n"
                f"auth:\n  super_digest: \"{digest}\"\n")
    server = subprocess.Popen([corrald, "-c", cfg], stdout=open(tmp + "/log", "w"),
                              stderr=subprocess.STDOUT)
    try:
        zk = KazooClient(hosts)
        zk.start(timeout=30)
        zk.create("/t")
        pending = []
        for i in range(nodes):
            pending.append(zk.create_async(f"/t/n{i}", b"d" * 100))
            if len(pending) >= 2000:
                [p.get() for p in pending]
                pending = []
        [p.get() for p in pending]

        stop, samples = threading.Event(), []

        def writer():
            w = KazooClient(hosts)
            w.start(timeout=30)
            while not stop.is_set():
                t = time.monotonic()
                w.set("/t/n1", b"x")
                samples.append((t, time.monotonic() - t))
            w.stop()

        th = threading.Thread(target=writer)
        th.start()
        time.sleep(3)
        file = os.path.join(tmp, "b.snap")
        t0 = time.monotonic()
        took, out = timed([corralctl, "-s", hosts, "--auth", "super:pw", "-t", "60000",
                           "backup", file])
        t1 = time.monotonic()
        time.sleep(3)
        stop.set()
        th.join()
        print(out)
        print(f"{nodes} nodes: backup {took:.2f} s, {os.path.getsize(file)} bytes")
        for name, lo, hi in (("before", t0 - 3, t0), ("during", t0, t1), ("after", t1, t1 + 3)):
            lat = sorted(d for t, d in samples if lo <= t < hi)
            if lat:
                print(f"  setData {name}: {len(lat)} writes, median {lat[len(lat) // 2] * 1000:.2f} ms,"
                      f" max {lat[-1] * 1000:.2f} ms")
        zk.stop()
        with open(tmp + "/log") as log:
            print("".join(line for line in log if "backup at" in line).strip())
        for name, argv, shell in (
                ("verify", [corrald, "--verify", file], False),
                ("restore", [corrald, "restore", file, tmp + "/restored"], False),
                ("dump", f"{corrald} dump {file} | wc -c", True)):
            took, out = timed(argv, shell)
            print(f"{name}: {took:.2f} s: {out}")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
