"""Purges off the loop (storage/reclaim.c): the old snapshots and log
segments a new snapshot makes redundant are renamed NAME.purged, their
blocks freed from the end a few MiB at a time and unlinked by io_uring ops
run on the kernel's worker threads, never by the server's own thread (an
unlink() that frees a big file's blocks held the loop 70-105 ms on ext4
with -o discard). A crash before the unlink leaves NAME.purged: the next
start removes it.

The first test traces the server's thread (strace -p, that thread only: the
ring's workers and the snapshot child are other tasks) for unlink and
unlinkat while snapshots are taken and purged, and checks the files are
gone all the same.
"""
import os
import subprocess

from harness import stop_kazoo, wait_until

CONFIG = {"session": {"tick_time_ms": 200},
          "storage": {"snapshot_entries": 200, "keep_snapshots": 2,
                      "segment_bytes": 1048576}}


def names(data_dir, sub):
    d = os.path.join(str(data_dir), sub)
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def snapshots_written(srv):
    return sum("written in" in line for line in srv.log().splitlines()
               if "snapshot at index" in line)


def tracer_of(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("TracerPid:"):
                return int(line.split()[1])
    return 0


def test_purged_snapshots_and_segments_are_deleted_by_the_ring_not_the_server_thread(
        corrald, kazoo, tmp_path):
    srv = corrald(name="purge", config=CONFIG)
    srv.start()
    trace = tmp_path / "server-thread.strace"
    strace = subprocess.Popen(["strace", "-qq", "-o", str(trace), "-e", "trace=unlink,unlinkat",
                               "-p", str(srv.proc.pid)], stderr=subprocess.PIPE)
    try:
        wait_until(lambda: tracer_of(srv.proc.pid) == strace.pid or strace.poll() is not None,
                   30, what="strace to attach to corrald's thread")
        assert strace.poll() is None, strace.stderr.read().decode()
        zk = kazoo(srv.hosts)
        zk.create("/p", b"")
        for i in range(100):
            zk.create(f"/p/n{i}", b"")
        # 10 bursts of 300 setData of 1 KiB: 3 MB of log (segments of 1 MiB;
        # a batch must fit in one), more entries than snapshot_entries each.
        value = b"v" * 1024
        for burst in range(10):
            before = snapshots_written(srv)
            futs = [zk.set_async(f"/p/n{i % 100}", value) for i in range(300)]
            for f in futs:
                f.get(timeout=30)
            wait_until(lambda: snapshots_written(srv) > before, 30,
                       what=f"a snapshot after burst {burst}")

        def settled():
            snaps, segs = names(srv.data_dir, "snap"), names(srv.data_dir, "wal")
            busy = [n for n in snaps if n.endswith(".tmp")] + \
                [n for n in snaps + segs if n.endswith(".purged")]
            done = not busy and len([n for n in snaps if n.endswith(".snap")]) == 2 \
                and "0000000000000001.seg" not in segs
            return (snaps, segs) if done else None
        snaps, segs = wait_until(settled, 30, what="2 snapshots kept, the first segment purged",
                                 detail=lambda: (names(srv.data_dir, "snap"),
                                                 names(srv.data_dir, "wal")))
        stop_kazoo([zk])
    finally:
        strace.terminate()
        strace.wait(30)
    calls = trace.read_text()
    assert "unlink" not in calls, f"the server's thread unlinked files itself:\n{calls}"
    assert srv.stop() == 0


def test_purged_files_a_crash_left_are_removed_at_start(corrald, kazoo):
    srv = corrald(name="leftover", config=CONFIG)
    srv.start()
    zk = kazoo(srv.hosts)
    zk.create("/kept", b"x")
    stop_kazoo([zk])
    assert srv.stop() == 0
    # As a crash leaves them: renamed, not yet unlinked.
    os.makedirs(os.path.join(srv.data_dir, "snap"), exist_ok=True)
    left = [os.path.join(srv.data_dir, "snap", "00000000000000aa.snap.purged"),
            os.path.join(srv.data_dir, "wal", "00000000000000aa.seg.purged")]
    for path in left:
        with open(path, "wb") as f:
            f.write(b"\0" * 65536)
    srv.start()
    for path in left:
        assert not os.path.exists(path), f"{path} outlived the restart"
    log = srv.log()
    assert "snap: removed 1 purged file a crash left" in log, log
    assert "wal: removed 1 purged file a crash left" in log, log
    zk = kazoo(srv.hosts)
    assert zk.get("/kept")[0] == b"x"
    stop_kazoo([zk])
    assert srv.stop() == 0
