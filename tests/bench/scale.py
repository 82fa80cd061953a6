#!/usr/bin/python3
"""Scale: a tree of --znodes znodes (default 10,000,000) of 100 bytes, on
corrald and on Apache ZooKeeper, on this machine, one after the other.

For each server, fresh: loadgen creates the tree as --parents parents of
equal numbers of sequential children (so getChildren of one parent returns
--znodes / --parents names); then

  - RSS with the tree, and per znode;
  - the snapshots the server wrote while loading (mntr's snapshottime and
    snap_count: both servers take them on their own schedule) and the data
    directory's size: snapshot bytes per znode, log bytes per txn;
  - getChildren of one parent, on a raw connection (no client library caps
    the reply at jute.maxbuffer): the median of --reads calls, with the
    reply's size;
  - SIGKILL, then restart-to-ready (exec until a ConnectRequest is
    answered) and RSS after, --restarts times (default 2: the first reads
    the files from disk or the page cache as the run left it, the next from
    the page cache).

ZooKeeper runs with -Xmx --zk-heap (default 16g on a 24 GB machine: it needs
about 2.3 GB per million znodes of this shape); if it fails or the load
stops making progress for --stall-s seconds, the report says how far it got.

Usage: tests/bench/scale.py [--corrald PATH] [--loadgen PATH] [--znodes N]
                            [--parents 10] [--zk-heap 16g] [--restarts 2]
                            [--only corral|zookeeper]
                            [--workdir DIR] [--json-out FILE]
Memory: corral needs ~180 bytes a znode of this shape; the default run needs
about 2 GB for corral and all --zk-heap for ZooKeeper.
"""
import argparse
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../lib"))
from compare import CORRAL_ENV, Server, rss_mb, wait_ready  # noqa: E402
import walfile  # noqa: E402


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def four_letter(port, word):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(word.encode())
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    return out.decode()


def mntr(port):
    got = {}
    for line in four_letter(port, "mntr").splitlines():
        k, _, v = line.partition("\t")
        got[k] = v
    return got


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(min(n - len(buf), 1 << 20))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return bytes(buf)


def recv_frame(s):
    return recv_exact(s, struct.unpack(">i", recv_exact(s, 4))[0])


def ustring(v):
    b = v.encode()
    return struct.pack(">i", len(b)) + b


def raw_session(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    req = struct.pack(">iqiq", 0, 0, 30000, 0) + struct.pack(">i", 16) + b"\0" * 16 + b"\0"
    s.sendall(struct.pack(">i", len(req)) + req)
    recv_frame(s)
    return s


def get_children_timed(port, path, reads):
    """(median seconds, children, reply bytes) of reads getChildren calls."""
    s = raw_session(port)
    times, count, size = [], 0, 0
    try:
        for xid in range(1, reads + 1):
            body = struct.pack(">ii", xid, 8) + ustring(path) + b"\0"
            t0 = time.monotonic()
            s.sendall(struct.pack(">i", len(body)) + body)
            reply = recv_frame(s)
            times.append(time.monotonic() - t0)
            _, _, err = struct.unpack(">iqi", reply[:16])
            if err:
                raise SystemExit(f"getChildren {path}: error {err}")
            count, size = struct.unpack(">i", reply[16:20])[0], len(reply)
    finally:
        s.close()
    times.sort()
    return times[len(times) // 2], count, size


def children_paths(port):
    """The parents loadgen made under /bench."""
    s = raw_session(port)
    try:
        body = struct.pack(">ii", 1, 8) + ustring("/bench") + b"\0"
        s.sendall(struct.pack(">i", len(body)) + body)
        reply = recv_frame(s)
        n = struct.unpack(">i", reply[16:20])[0]
        off, names = 20, []
        for _ in range(n):
            ln = struct.unpack(">i", reply[off:off + 4])[0]
            names.append(reply[off + 4:off + 4 + ln].decode())
            off += 4 + ln
    finally:
        s.close()
    return ["/bench/" + n for n in sorted(names)]


def dir_bytes(path, kind=None):
    """Bytes of the data directory's files: every file, or those of kind
    "log" (corral's wal/*.seg, ZooKeeper's log.*) or "snapshot" (a name or
    directory with "snap" in it)."""
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            full = os.path.join(root, f)
            is_log = f.endswith(".seg") or f.startswith("log.")
            is_snap = "snap" in os.path.relpath(full, path)
            if kind is None or (kind == "log" and is_log) or (kind == "snapshot" and is_snap):
                total += os.path.getsize(full)
    return total


class HeapServer(Server):
    """compare.py's server, ZooKeeper with a fixed heap."""

    def __init__(self, kind, workdir, corrald, heap, ready_s):
        super().__init__(kind, workdir, corrald, "scale")
        self.heap, self.ready_s = heap, ready_s

    def start(self):
        """Seconds from exec to serving; a big tree may take ZooKeeper
        minutes (compare.py's deadline is 2)."""
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "server.log"), "a"),
                                     env=CORRAL_ENV if self.kind != "zookeeper" else None)
        wait_ready(self.port, self.proc, deadline_s=self.ready_s)
        return time.monotonic() - t0

    def command(self):
        cmd = super().command()
        if self.kind == "zookeeper":
            cmd.insert(1, f"-Xmx{self.heap}")
        return cmd


def load(args, srv, per_parent):
    """Runs loadgen once per parent; returns (seconds, znodes created, why it
    stopped early or None)."""
    made, t0 = 0, time.monotonic()
    for p in range(args.parents):
        cmd = [args.loadgen, "--port", str(srv.port), "--workload", "create", "--json",
               "--connections", "8", "--outstanding", "32", "--value-bytes", "100",
               "--count", str(per_parent)]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.stall_s)
        except subprocess.TimeoutExpired:
            return time.monotonic() - t0, made, f"parent {p + 1} not loaded in {args.stall_s} s"
        if srv.proc.poll() is not None:
            return time.monotonic() - t0, made, f"the server exited ({srv.proc.returncode})"
        if out.returncode != 0:
            return time.monotonic() - t0, made, f"loadgen: {out.stderr.strip()[-300:]}"
        made += per_parent
        log(f"{srv.kind}: {made:,} znodes after {time.monotonic() - t0:.0f} s, "
            f"RSS {rss_mb(srv.proc.pid):.0f} MB")
    return time.monotonic() - t0, made, None


def measure(args, kind, workdir):
    srv = HeapServer(kind, workdir, args.corrald, args.zk_heap, args.ready_s)
    res = {"kind": kind}
    per_parent = args.znodes // args.parents
    try:
        srv.start()
        res["load_s"], res["znodes"], res["stopped"] = load(args, srv, per_parent)
        if res["stopped"]:
            log(f"{kind}: stopped: {res['stopped']}")
            res["rss_mb"] = rss_mb(srv.proc.pid) if srv.proc.poll() is None else None
            return res
        res["rss_mb"] = rss_mb(srv.proc.pid)
        m = mntr(srv.port)
        for k in ("zk_snap_count", "zk_avg_snapshottime", "zk_max_snapshottime",
                  "zk_cnt_snapshottime", "zk_znode_count", "zk_approximate_data_size"):
            if k in m:
                res[k] = float(m[k]) if "." in m[k] else int(m[k])
        parent = children_paths(srv.port)[0]
        res["children_s"], res["children"], res["children_bytes"] = \
            get_children_timed(srv.port, parent, args.reads)
        # the files once nothing writes them (a snapshot may be finishing
        # and compacting the log until then)
        srv.kill()
        data = os.path.join(srv.dir, "data")
        res["disk_bytes"] = dir_bytes(data)
        res["snapshot_bytes"] = dir_bytes(data, "snapshot")
        res["log_bytes"] = dir_bytes(data, "log")
        if kind == "corral":
            # what a txn takes in the log (its 40-byte header, payload and
            # padding), over the records the segments still hold
            recs = [r for _, seg in walfile.all_records(data) for r in seg]
            res["log_bytes_per_txn"] = sum(r.padded for r in recs) / max(1, len(recs))
        log(f"{kind} before the restarts: {json.dumps(res)}")
        # restart-to-ready, --restarts times (the first may read the files
        # from disk, the later ones from the page cache)
        res["restart_s"] = []
        for n in range(args.restarts):
            if n:
                srv.kill()
            res["restart_s"].append(srv.start())
            res["rss_restarted_mb"] = rss_mb(srv.proc.pid)
        log(f"{kind}: {json.dumps(res)}")
        return res
    finally:
        srv.stop()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--corrald", default=os.path.join(here, "../../build-rel/app/corrald"))
    ap.add_argument("--loadgen", default=os.path.join(here, "../../build-rel/tests/bench/loadgen"))
    ap.add_argument("--znodes", type=int, default=10_000_000)
    ap.add_argument("--parents", type=int, default=10)
    ap.add_argument("--reads", type=int, default=5)
    ap.add_argument("--zk-heap", default="16g")
    ap.add_argument("--restarts", type=int, default=2)
    ap.add_argument("--ready-s", type=int, default=1800,
                    help="how long a (re)start may take before the run gives up")
    ap.add_argument("--stall-s", type=int, default=900,
                    help="give up on a server when one parent's children take longer")
    ap.add_argument("--only", choices=("corral", "zookeeper"))
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--json-out", default=None)
    args = ap.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="corral-scale-", dir="/var/tmp")
    log(f"machine: {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB, "
        f"Linux {os.uname().release}; {args.znodes:,} znodes under {args.parents} parents")
    results = []
    for kind in ("corral", "zookeeper"):
        if args.only in (None, kind):
            results.append(measure(args, kind, workdir))
    shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(results, indent=1))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
