"""Snapshots under faults: a kill -9 while the snapshot child writes, and a
data directory whose snap/ is empty.

(a) CORRAL_FAULT_SNAPSHOT_STOP=1 (test builds) stops the snapshot child
    (SIGSTOP) once its temp file is whole and synced, just before it would
    publish it: corrald is killed at that moment. The child must die with it
    (else it holds a snapshot-sized temp file, and publishes its snapshot
    under the next corrald: one more than storage.keep_snapshots), and the
    next start removes the temp file it left.
(b) A snapshot that failed (ENOSPC) leaves snap/ empty: startup takes that
    as no snapshot (it used to hand qsort() a NULL list: UBSan aborts).
(c) A stop with 10,000 entries or more since the last snapshot writes one
    first, serving meanwhile (the same fault holds its child), so the next
    start loads it and replays nothing; a stop while a snapshot is being
    written waits for it, serving.
"""
import ctypes
import os
import re
import signal

import pytest

import jute
from harness import stop_kazoo, wait_until

CONFIG = {"session": {"tick_time_ms": 200},
          "storage": {"snapshot_entries": 100, "keep_snapshots": 2}}

PR_SET_CHILD_SUBREAPER = 36


def snap_files(data_dir):
    d = os.path.join(str(data_dir), "snap")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def children_of(pid):
    """Pids whose parent is pid (from /proc)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append(int(name))
    return out


def proc_state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()[0]


@pytest.fixture
def subreaper():
    """This process adopts the orphans of the processes it started, so a
    snapshot child whose corrald died becomes a child of the test: it can be
    waited for, and killed if it outlives the test."""
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0, os.strerror(ctypes.get_errno())
    adopted = []
    yield adopted
    for pid in adopted:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def stopped_child(srv):
    """The snapshot child of srv held by CORRAL_FAULT_SNAPSHOT_STOP, or None."""
    for pid in children_of(srv.proc.pid):
        if proc_state(pid) == "T":
            return pid
    return None


def exited(pid):
    """The child's wait status once it has exited (reaped here), else None."""
    try:
        p, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return -1		# reaped by someone else: gone all the same
    return status if p == pid else None


def test_sigkill_while_the_snapshot_child_writes_kills_it_and_restart_removes_its_temp_file(
        corrald, kazoo, subreaper):
    srv = corrald(name="snapkill", config=CONFIG)
    srv.start(env={"CORRAL_FAULT_SNAPSHOT_STOP": "1"})
    zk = kazoo(srv.hosts)
    zk.create("/s", b"s")
    futs = [zk.create_async(f"/s/n{i}", b"%d" % i) for i in range(150)]
    for f in futs:
        f.get(timeout=30)

    child = wait_until(lambda: stopped_child(srv), 30,
                       what="the snapshot child to stop before publishing")
    subreaper.append(child)
    temps = [n for n in snap_files(srv.data_dir) if n.endswith(".snap.tmp")]
    assert len(temps) == 1, snap_files(srv.data_dir)
    assert os.path.getsize(os.path.join(srv.data_dir, "snap", temps[0])) > 0

    srv.kill()
    stop_kazoo([zk])
    status = wait_until(lambda: exited(child), 10, what="the snapshot child to die with corrald")
    assert status == -1 or (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL), \
        f"the snapshot child ended with wait status {status}, expected SIGKILL"
    assert not [n for n in snap_files(srv.data_dir) if n.endswith(".snap")], \
        f"the killed child published a snapshot: {snap_files(srv.data_dir)}"

    srv.start()
    assert "removed 1 unfinished snapshot file" in srv.log(), srv.log()
    # The restarted server snapshots at once (150 entries since none was
    # published, more than snapshot_entries), at the same index: a temp file
    # of the same name is its own snapshot in progress, gone once published.
    # The killed child's would stay for ever.
    wait_until(lambda: not [n for n in snap_files(srv.data_dir) if n.endswith(".tmp")], 30,
               what="no unfinished snapshot file after the restart",
               detail=lambda: snap_files(srv.data_dir))
    zk = kazoo(srv.hosts)
    assert len(zk.get_children("/s")) == 150
    # The restarted server snapshots as usual (three times here: setData
    # keeps the tree at 150 znodes, so a snapshot is due every 100 entries)
    # and keeps 2.
    def written():
        return sum("written in" in l for l in srv.log().splitlines() if "snapshot at index" in l)
    for burst in range(3):
        before = written()
        futs = [zk.set_async(f"/s/n{i}", b"m%d" % burst) for i in range(150)]
        for f in futs:
            f.get(timeout=30)
        wait_until(lambda: written() > before, 30, what="a snapshot of the restarted server")
    # A burst can start one more snapshot than the one waited for, and a
    # purge waits while the last one's deletions are still on the ring
    # (commit_snapshot.c): once every started snapshot is written (no temp
    # file left) and purged after, 2 are kept.
    def settled():
        names = snap_files(srv.data_dir)
        kept = [n for n in names if n.endswith(".snap")]
        return names if not [n for n in names if n.endswith(".tmp")] and len(kept) == 2 else None
    wait_until(settled, 30, what="2 snapshots kept once those in progress are written",
               detail=lambda: snap_files(srv.data_dir))
    stop_kazoo([zk])
    assert srv.stop() == 0


def test_startup_with_an_empty_snap_directory_replays_the_log(corrald, kazoo):
    srv = corrald(name="emptysnap", config=CONFIG)
    srv.start()
    zk = kazoo(srv.hosts)
    zk.create("/e", b"before")
    stop_kazoo([zk])
    assert srv.stop() == 0
    snap = os.path.join(srv.data_dir, "snap")
    os.makedirs(snap, exist_ok=True)
    for n in os.listdir(snap):
        os.unlink(os.path.join(snap, n))

    srv.start()
    zk = kazoo(srv.hosts)
    assert zk.get("/e")[0] == b"before"
    stop_kazoo([zk])
    assert srv.stop() == 0


def bulk_create(port, parent, count):
    """count creates under parent, pipelined on one raw connection."""
    c = jute.Client(port, timeout=60)
    c.connect()
    for k in range(0, count, 500):
        n = min(500, count - k)
        for i in range(k, k + n):
            c.request("create", jute.create_body(f"{parent}/n{i}", b"v"))
        for _ in range(n):
            assert c.reply()[2] == 0
    c.call("closeSession")
    c.close()


def snap_indexes(data_dir):
    return [int(n[:-len(".snap")], 16) for n in snap_files(data_dir) if n.endswith(".snap")]


def test_a_stop_after_a_long_log_writes_a_snapshot_first_and_serves_meanwhile(
        corrald, kazoo, subreaper):
    srv = corrald(name="stopsnap", config={"storage": {"snapshot_entries": 1000000}})
    srv.start(env={"CORRAL_FAULT_SNAPSHOT_STOP": "1"})
    zk = kazoo(srv.hosts)
    zk.create("/s", b"s")
    bulk_create(srv.port, "/s", 10000)
    assert snap_indexes(srv.data_dir) == [] and children_of(srv.proc.pid) == []
    last = zk.exists("/s").pzxid

    srv.proc.send_signal(signal.SIGTERM)

    child = wait_until(lambda: stopped_child(srv), 30,
                       what="the stop's snapshot child (held before it publishes)")
    subreaper.append(child)
    # The snapshot is being written: the server still serves, writes too.
    assert srv.running()
    zk.create("/during", b"d")
    assert zk.get("/during")[0] == b"d"
    assert "writing one before stopping" in srv.log(), srv.log()
    os.kill(child, signal.SIGCONT)
    assert srv.wait_exit(60) == 0, srv.log()
    stop_kazoo([zk])
    assert max(snap_indexes(srv.data_dir)) >= last

    srv.start()
    log = srv.log()
    assert "loaded the snapshot at index" in log, log
    # Only /during (and its session's close) came after the snapshot.
    replayed = re.search(r"read the log: \d+ entries, index \d+\.\.\d+, (\d+) txns", log)
    assert replayed and int(replayed.group(1)) <= 3, log
    zk = kazoo(srv.hosts)
    assert len(zk.get_children("/s")) == 10000
    assert zk.get("/during")[0] == b"d"
    stop_kazoo([zk])
    assert srv.stop() == 0


def test_a_stop_while_a_snapshot_is_written_waits_for_it_and_serves_meanwhile(
        corrald, kazoo, subreaper):
    srv = corrald(name="stopwait", config=CONFIG)
    srv.start(env={"CORRAL_FAULT_SNAPSHOT_STOP": "1"})
    zk = kazoo(srv.hosts)
    zk.create("/s", b"s")
    for f in [zk.create_async(f"/s/n{i}", b"v") for i in range(150)]:
        f.get(timeout=30)

    child = wait_until(lambda: stopped_child(srv), 30,
                       what="the snapshot child to stop before publishing")
    subreaper.append(child)
    srv.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: "stopping once it is" in srv.log(), 30, what="the stop to wait",
               detail=srv.log)
    zk.create("/during", b"d")
    assert srv.running()
    os.kill(child, signal.SIGCONT)
    assert srv.wait_exit(60) == 0, srv.log()
    stop_kazoo([zk])
    names = snap_files(srv.data_dir)
    assert snap_indexes(srv.data_dir) and not [n for n in names if n.endswith(".tmp")], names
