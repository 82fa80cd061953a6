#!/usr/bin/python3
"""The blackout of a restart that keeps client connections (issue 17): the
time from the old process's last reply to the new one's first, as a client
on a kept connection sees it.

A fresh corrald (release build) runs under the stand-in fd store of
tests/lib/fakestore.py (what systemd does with FDSTORE=1 and LISTEN_FDS,
without a container: the numbers are corrald's, not systemd's); loadgen
creates --keys znodes of --value-bytes; a probe connection with a session
sends exists("/") one at a time, back to back, and stamps every reply.
Then --restarts times, each once no snapshot has been written for 2 s
(a restart waits for one being written): SIGTERM (the connections and
their state are stored), wait for the exit, start the next corrald with
what was stored.
The blackout of each is the longest gap between two replies the probe got;
the new process's recovery (snapshot and log) is most of it. Prints them;
asserts only that the probe's connection was never closed.

    /usr/bin/python3 tests/bench/handover_blackout.py [--build build-rel]
        [--keys 1000000] [--value-bytes 100] [--restarts 3]
"""
import argparse
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from fakestore import FakeFdStore  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return f.read().split()
    except OSError:
        return []


class Probe:
    """One connection with a session: exists("/") back to back, every reply stamped."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), 10)
        self.sock.settimeout(None)
        body = struct.pack("!iqiqi", 0, 0, 30000, 0, 16) + bytes(16) + b"\0"
        self.sock.sendall(struct.pack("!i", len(body)) + body)
        self.frame()
        self.stamps = []
        self.error = None
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def exact(self, n):
        b = b""
        while len(b) < n:
            chunk = self.sock.recv(n - len(b))
            if not chunk:
                raise EOFError("the server closed the probe's connection")
            b += chunk
        return b

    def frame(self):
        return self.exact(struct.unpack("!i", self.exact(4))[0])

    def run(self):
        xid = 1
        try:
            while self.running:
                req = struct.pack("!ii", xid, 3) + struct.pack("!i", 1) + b"/" + b"\0"
                self.sock.sendall(struct.pack("!i", len(req)) + req)
                rxid, _, err = struct.unpack_from("!iqi", self.frame())
                assert rxid == xid and err == 0, (rxid, xid, err)
                self.stamps.append(time.monotonic())
                xid += 1
        except Exception as e:
            self.error = e

    def longest_gap(self, since):
        s = [t for t in self.stamps if t >= since]
        gaps = [(b - a, a) for a, b in zip(s, s[1:])]
        return max(gaps) if gaps else (0, since)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build-rel")
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--value-bytes", type=int, default=100)
    ap.add_argument("--restarts", type=int, default=3)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="corral-bench-handover-", dir="/var/tmp")
    port = free_port()
    config = os.path.join(tmp, "corral.yaml")
    with open(config, "w") as f:
        f.write(f"data_dir: {tmp}/data\nclient:\n  listen: [\"127.0.0.1:{port}\"]\n")
    store = FakeFdStore(tmp)
    argv = [os.path.join(args.build, "app/corrald"), "-c", config]
    logs = []

    def start():
        logs.append(os.path.join(tmp, f"run{len(logs) + 1}.log"))
        with open(logs[-1], "wb") as f:
            return store.spawn(argv, dict(os.environ), f)

    server = start()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "corrald did not start"
                time.sleep(0.05)
        t0 = time.monotonic()
        subprocess.run([os.path.join(args.build, "tests/bench/loadgen"), "--port", str(port),
                        "--workload", "set", "--keys", str(args.keys), "--value-bytes",
                        str(args.value_bytes), "--count", "1"], check=True, capture_output=True)
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()}; "
              f"{args.keys} znodes of {args.value_bytes} bytes (created in "
              f"{time.monotonic() - t0:.0f} s)")
        probe = Probe(port)
        time.sleep(1)
        print("| restart | blackout ms | SIGTERM to exit ms | start to first reply ms | recovery (the new corrald's log) |")
        print("|---:|---:|---:|---:|---|")
        for i in range(args.restarts):
            # Not while a snapshot is being written (a restart waits for it:
            # that is the snapshot's time, not the hand-over's); the
            # recovery after a long log takes one at once.
            quiet_since = time.monotonic()
            while time.monotonic() - quiet_since < 2:
                if children(server.pid):
                    quiet_since = time.monotonic()
                time.sleep(0.1)
            since = time.monotonic()
            server.send_signal(signal.SIGTERM)
            assert server.wait(60) == 0
            exited = time.monotonic()
            server = start()
            deadline = time.monotonic() + 120
            while not probe.stamps or probe.stamps[-1] < exited:
                assert probe.error is None, probe.error
                assert time.monotonic() < deadline, "no reply after the restart"
                time.sleep(0.01)
            first = min(t for t in probe.stamps if t > exited)
            time.sleep(1)
            gap, _ = probe.longest_gap(since)
            with open(logs[-1], errors="replace") as f:
                text = f.read()
            recovery = "; ".join(re.findall(r"<\d>((?:loaded the snapshot|read the log)[^\n]*)",
                                            text))
            print(f"| {i + 1} | {gap * 1000:.0f} | {(exited - since) * 1000:.0f} | "
                  f"{(first - exited) * 1000:.0f} | {recovery} |", flush=True)
        probe.running = False
        assert probe.error is None, probe.error
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
        store.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
