"""Moving a big ZooKeeper to corral: how long `corrald import-zookeeper`
takes on Apache ZooKeeper 3.8's data directory (snapshots and logs), side
by side with ZooKeeper's own restart on the same directory (from start to
serving a session). Prints figures; asserts nothing (tests/bench).

    /usr/bin/python3 tests/bench/zookeeper_import.py BUILD_DIR [NODES]   (default 1000000)
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
import jute  # noqa: E402


class BigZooKeeper(harness.ZooKeeper):
    """The harness's ZooKeeper with the heap a million znodes need."""

    def argv(self):
        return [a if a != "-Xmx256m" else "-Xmx3g" for a in super().argv()]


def populate(port, nodes, fanout=1000):
    """nodes znodes (fanout per parent, 40 bytes of data each), created with
    pipelined requests on one connection."""
    c = jute.Client(port, timeout=120)
    c.connect(timeout=30000)
    parents = max(1, nodes // fanout)
    paths = [f"/p{p}" for p in range(parents)]
    paths += [f"/p{i % parents}/n{i}" for i in range(nodes - parents)]
    for k in range(0, len(paths), 500):
        chunk = paths[k:k + 500]
        for path in chunk:
            c.request("create", jute.create_body(path, b"x" * 40))
        for _ in chunk:
            assert c.reply()[2] == 0
    c.call("closeSession")
    c.close()


def main():
    build, nodes = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1000000
    corrald = os.path.abspath(os.path.join(build, "app", "corrald"))
    tmp = tempfile.mkdtemp(prefix="corral-bench-zkimport-")
    zk = BigZooKeeper(tmp)
    t = time.monotonic()
    zk.start(timeout=120)
    populate(zk.port, nodes)
    print(f"ZooKeeper: {nodes} znodes created in {time.monotonic() - t:.1f} s")
    zk.stop(timeout=120)
    files = sorted(os.listdir(os.path.join(zk.data_dir, "version-2")))
    size = sum(os.path.getsize(os.path.join(zk.data_dir, "version-2", f)) for f in files)
    print(f"data directory: {len(files)} files, {size / 1e6:.0f} MB")
    # ZooKeeper writes a snapshot of everything as it starts: the import
    # reads a copy taken before, with its logs to replay, as a migration does.
    before = os.path.join(tmp, "zookeeper-copy")
    shutil.copytree(zk.data_dir, before)
    t = time.monotonic()
    zk.start(timeout=600)
    restart = time.monotonic() - t
    zk.stop(timeout=120)
    print(f"ZooKeeper's restart (start to serving a session): {restart:.2f} s")
    target = os.path.join(tmp, "corral-data")
    t = time.monotonic()
    p = subprocess.run([corrald, "import-zookeeper", before, target], capture_output=True,
                       text=True)
    took = time.monotonic() - t
    print(f"corrald import-zookeeper: {took:.2f} s, exit {p.returncode}: "
          f"{(p.stdout + p.stderr).strip()}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
