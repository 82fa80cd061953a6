"""The log on a file system of its own: a device mounted at DATA_DIR/wal,
as ZooKeeper's dataLogDir puts its log apart (README, Durability). Then a
snapshot's writes and the log's fdatasyncs do not share a disk's queue and
cache flushes (tests/bench/disk_tail.py measures what sharing costs).

Here the mount is a tmpfs (the test needs root, as the other mounting
tests): what matters is that the log's directory is another file system
than the rest of the data directory, so a segment is never renamed,
linked or counted across them by mistake. The mount carries a lost+found
directory, as a fresh ext4 does.
"""
import os
import subprocess

import pytest

from conftest import verify
from harness import stop_kazoo, wait_until

CONFIG = {"session": {"tick_time_ms": 200},
          "storage": {"snapshot_entries": 200, "keep_snapshots": 2,
                      "segment_bytes": 1048576}}


@pytest.fixture
def log_mount(tmp_path):
    """DATA_DIR with a tmpfs mounted at DATA_DIR/wal: the data directory."""
    data = tmp_path / "data"
    wal = data / "wal"
    wal.mkdir(parents=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0750", "tmpfs", str(wal)],
                       capture_output=True, text=True)
    assert r.returncode == 0, f"cannot mount a tmpfs at {wal} (this suite runs as root): " \
        f"{r.stderr.strip() or r.returncode}"
    (wal / "lost+found").mkdir()
    running = []
    try:
        yield data, running
    finally:
        for srv in running:
            if srv.running():
                srv.kill()
        if subprocess.run(["umount", str(wal)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(wal)], capture_output=True)


def segments(data):
    return sorted(n for n in os.listdir(data / "wal") if n.endswith(".seg"))


def snapshots(data):
    snap = data / "snap"
    return sorted(n for n in os.listdir(snap) if n.endswith(".snap")) if snap.is_dir() else []


def test_a_log_on_its_own_file_system_keeps_every_acknowledged_write_and_is_purged(
        corrald, kazoo, log_mount):
    data, running = log_mount
    assert os.stat(data / "wal").st_dev != os.stat(data).st_dev
    srv = corrald(data_dir=data, config=CONFIG, name="logdev")
    running.append(srv)
    srv.start()
    zk = kazoo(srv.hosts)
    zk.create("/p", b"")
    acked = {}
    for i in range(100):
        zk.create(f"/p/n{i}", b"")
        acked[f"/p/n{i}"] = b""
    # 3 MB of log in 1 MiB segments, a snapshot every 200 entries: the
    # first segments are purged from the mount while snapshots come and go
    # on the data directory's own file system.
    for burst in range(10):
        value = b"%d:" % burst * 300
        futs = [(f"/p/n{i % 100}", zk.set_async(f"/p/n{i % 100}", value)) for i in range(300)]
        for path, f in futs:
            f.get(timeout=30)
            acked[path] = value
    wait_until(lambda: "0000000000000001.seg" not in segments(data) and
               len(snapshots(data)) == 2 and
               not [n for n in os.listdir(data / "wal") if n.endswith(".purged")], 30,
               what="the first segment purged from the log's mount, 2 snapshots kept",
               detail=lambda: (segments(data), snapshots(data)))
    assert segments(data), "no segment on the log's mount"
    assert not [n for n in os.listdir(data) if n.endswith(".seg")], \
        f"a segment outside DATA_DIR/wal: {os.listdir(data)}"
    assert (data / "wal" / "lost+found").is_dir(), "the mount's lost+found was removed"
    # dirs counts the log's mount (a purge may still be finishing: the two
    # must agree once it has).
    def sizes():
        wal = data / "wal"
        on_mount = sum(os.stat(wal / n).st_size for n in os.listdir(wal)
                       if os.path.isfile(wal / n))
        dirs = dict(line.split(": ") for line in srv.four_letter("dirs").splitlines())
        return int(dirs["logdir_size"]), on_mount
    wait_until(lambda: sizes()[0] == sizes()[1], 30,
               what="dirs' logdir_size to be the bytes on the log's mount", detail=sizes)
    stop_kazoo([zk])

    # SIGKILL, as a crash: every acknowledged write is back from the
    # snapshot on one file system and the log on the other.
    srv.kill()
    srv.start()
    zk = kazoo(srv.hosts)
    for path, value in acked.items():
        assert zk.get(path)[0] == value, path
    stop_kazoo([zk])
    assert srv.stop() == 0
    r = verify(data)
    assert r.returncode == 0, r.stdout + r.stderr
