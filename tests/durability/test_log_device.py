"""The log on a file system of its own: a device mounted at DATA_DIR/wal,
as ZooKeeper's dataLogDir puts its log apart (README, Durability). Then a
snapshot's writes and the log's fdatasyncs do not share a disk's queue and
cache flushes (tests/bench/disk_tail.py measures what sharing costs).

Here the mount is a tmpfs (the test needs root, as the other mounting
tests): what matters is that the log's directory is another file system
than the rest of the data directory, so a segment is never renamed,
linked or counted across them by mistake. The mount carries a lost+found
directory, as a fresh ext4 does. The second test takes the mount away
(a bind mount there) and starts corrald on the empty directory beneath.
"""
import os
import subprocess

import pytest

from conftest import verify
from harness import run_corrald, stop_kazoo, wait_until

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
    wait_until(lambda: len(set(sizes())) == 1, 30,
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


def test_a_start_with_the_log_s_device_not_mounted_is_refused_and_writes_nothing(
        corrald, kazoo, tmp_path):
    """A corrald that started before the log's device was mounted would see
    an empty DATA_DIR/wal and begin a new log after the last snapshot: the
    writes after it would be gone. It refuses instead (exit 74, the cause
    named; under systemd the unit is started again), and starts once the
    device is back."""
    data, device = tmp_path / "data", tmp_path / "logdev"
    (data / "wal").mkdir(parents=True)
    device.mkdir()
    mount = ["mount", "--bind", str(device), str(data / "wal")]
    r = subprocess.run(mount, capture_output=True, text=True)
    assert r.returncode == 0, f"cannot bind-mount (this suite runs as root): {r.stderr}"
    srv = corrald(data_dir=data, config={"session": {"tick_time_ms": 200}}, name="unmounted")
    try:
        srv.start()
        zk = kazoo(srv.hosts)
        for i in range(20):
            zk.create(f"/w{i}", b"%d" % i)
        stop_kazoo([zk])
        assert srv.stop() == 0
    finally:
        if srv.running():
            srv.kill()
        subprocess.run(["umount", str(data / "wal")], check=True)
    assert os.listdir(data / "wal") == [], "the log was written beneath its mount point"
    assert [n for n in os.listdir(device) if n.endswith(".seg")], "no segment on the log's device"

    srv.spawn()
    status = srv.wait_exit(30)
    log = srv.log()
    assert status == 74, f"exit status {status}:\n{log}"
    assert "holds no log segment" in log and "is the log's device mounted?" in log, log
    assert os.listdir(data / "wal") == [], "the refused start wrote a log beneath the mount point"

    subprocess.run(mount, check=True)
    try:
        srv.start()
        zk = kazoo(srv.hosts)
        for i in range(20):
            assert zk.get(f"/w{i}")[0] == b"%d" % i
        stop_kazoo([zk])
        assert srv.stop() == 0
    finally:
        if srv.running():
            srv.kill()
        subprocess.run(["umount", str(data / "wal")], check=True)


def test_a_restore_goes_into_a_data_directory_whose_log_device_is_mounted(
        corrald, kazoo, log_mount, tmp_path):
    """corrald restore wants a new or empty data directory; one whose wal/
    is the log device's mount point, empty but for lost+found, is empty
    enough: the restored server's log starts there."""
    source = corrald(name="source", config=CONFIG)
    source.start()
    zk = kazoo(source.hosts)
    for i in range(10):
        zk.create(f"/r{i}", b"%d" % i)
    stop_kazoo([zk])
    assert source.stop() == 0

    data, running = log_mount
    r = run_corrald(["restore", source.data_dir, str(data)])
    assert r.returncode == 0, r.stdout + r.stderr
    assert segments(data) == [], "restore wrote a log"
    srv = corrald(data_dir=data, config=CONFIG, name="restored")
    running.append(srv)
    srv.start()
    zk = kazoo(srv.hosts)
    for i in range(10):
        assert zk.get(f"/r{i}")[0] == b"%d" % i
    stop_kazoo([zk])
    assert segments(data), "the restored server's log is not on the log's mount"
    assert (data / "log.started").exists()
    assert srv.stop() == 0

    # Something else beside the mount's lost+found: not empty, refused.
    other = tmp_path / "other"
    other.mkdir()
    (other / "wal").mkdir()
    (other / "wal" / "stray").write_bytes(b"")
    r = run_corrald(["restore", source.data_dir, str(other)])
    assert r.returncode != 0 and "not an empty directory" in r.stderr, r.stdout + r.stderr
