"""Faults under a running corrald: a failed fdatasync, a full disk, and a
second corrald on the same data directory.

(a) CORRAL_FAULT_FSYNC_FAIL_AT=N (test builds) makes the Nth fdatasync of
    the log fail with EIO. The injection turns a *successful* write+fsync
    into a failure, so the failing batch is on disk: after a restart its
    writes may come back although their clients heard SYSTEMERROR (as they
    could after a real EIO: the kernel may or may not have written the
    pages). What is asserted, precisely: every acknowledged write is there;
    while the failed server runs no refused write is visible; after the
    restart the refused writes that are there are a prefix (in the order
    they were sent) of those refused, and none sent after the failure was
    reported is there.
(b) ENOSPC on a 12 MiB tmpfs filled with a filler file: writes are refused
    with SYSTEMERROR, nothing acknowledged is lost, nothing refused appears,
    writes resume once the filler is gone; a refused write leaves no trace
    that later writes are checked against.
(c) flock: a second corrald on the same data directory exits 74.
"""
import os
import subprocess

import time

import pytest
from kazoo.exceptions import ConnectionLoss, SystemZookeeperError

from conftest import verify
from harness import EXIT_DATA_DIR, four_letter, make_kazoo, mntr, stop_kazoo, wait_until
from walfile import file_digests

CONFIG = {"session": {"tick_time_ms": 200}, "storage": {"segment_bytes": 1048576}}


def outcome(fut, timeout=30):
    """'ok' with the result, or the exception's class name."""
    try:
        return ("ok", fut.get(timeout=timeout))
    except Exception as e:
        return (type(e).__name__, None)


def lines(text, *needles):
    return [l for l in text.splitlines() if all(n in l for n in needles)]


# ---------------------------------------------------------------------------
# (a) a failed fdatasync

def test_failed_fdatasync_refuses_writes_keeps_reads_and_loses_nothing_acknowledged(
        corrald, kazoo):
    srv = corrald(name="fsync", config=CONFIG)
    # fsync 1: the client's session; 2: /f; 3..7: the sync writes; the 12th
    # falls among the pipelined bursts.
    srv.start(env={"CORRAL_FAULT_FSYNC_FAIL_AT": "12"})
    zk = kazoo(srv.hosts)
    zk.create("/f", b"f")
    acked = {}
    refused = []		# (path, data) in the order sent
    for i in range(5):
        zk.create(f"/f/s{i}", b"sync-%d" % i)
        acked[f"/f/s{i}"] = b"sync-%d" % i

    failed = False
    for burst in range(50):
        futs = []
        for j in range(20):
            p, v = f"/f/b{burst}-{j}", b"burst-%d-%d" % (burst, j) * 8
            futs.append((p, v, zk.create_async(p, v)))
        results = [(p, v, outcome(f)) for p, v, f in futs]
        kinds = [r[0] for _, _, r in results]
        # Writes in flight when the fsync failed have an unknown outcome: their
        # connection is closed (ConnectionLoss); writes after it are refused.
        assert set(kinds) <= {"ok", "ConnectionLoss", "SystemZookeeperError"}, kinds
        # Replies come in order: the acknowledged ones, then the refused ones.
        assert kinds == sorted(kinds, key=lambda k: k != "ok"), kinds
        for p, v, r in results:
            if r[0] == "ok":
                assert r[1] == p
                acked[p] = v
            else:
                refused.append((p, v))
        if refused:
            failed = True
            break
    assert failed, "no write failed: is corrald built with fault_injection=true?"

    log = srv.log()
    crit = lines(log, "the write-ahead log failed")
    assert crit and crit[0].startswith("<2>"), f"no <2> line saying the log failed:\n{log}"
    assert "Input/output error" in crit[0], crit[0]

    # kazoo reconnects (the session is still there); every later write is
    # refused the same way, whatever its kind.
    for _ in range(200):
        if zk.connected:
            break
        time.sleep(0.05)
    later = []
    for i, op in enumerate(["create", "set", "delete", "multi", "create_ephemeral"]):
        p = f"/f/later{i}"
        with pytest.raises(SystemZookeeperError):
            if op == "create":
                zk.create(p, b"later")
            elif op == "create_ephemeral":
                zk.create(p, b"later", ephemeral=True)
            elif op == "set":
                zk.set("/f/s0", b"later")
            elif op == "delete":
                zk.delete("/f/s1")
            else:
                t = zk.transaction()
                t.create(p, b"later")
                t.set_data("/f/s2", b"later")
                t.commit()
        later.append(p)

    # Reads go on, and show exactly the acknowledged state.
    for p, v in acked.items():
        assert zk.get(p)[0] == v, p
    assert zk.get("/f/s0")[1].version == 0
    visible = {f"/f/{c}" for c in zk.get_children("/f")}
    assert visible == set(acked), (
        f"while the log is failed, the tree must show exactly the acknowledged writes: "
        f"extra {sorted(visible - set(acked))[:10]}, missing {sorted(set(acked) - visible)[:10]}")
    assert four_letter(srv.port, "ruok") == "imok"
    assert int(mntr(srv.port)["zk_znode_count"]) >= len(acked)
    assert zk.connected

    status = srv.stop()
    stop_kazoo([zk])
    assert status == 0, f"SIGTERM after the log failed: exit status {status}\n{srv.log()[-3000:]}"

    # Restart without the fault.
    srv.start()
    zk = kazoo(srv.hosts)
    for p, v in acked.items():
        assert zk.exists(p) is not None, f"{p}: acknowledged, missing after the restart"
        assert zk.get(p)[0] == v, p
    back = [p for p, _ in refused if zk.exists(p) is not None]
    assert back == [p for p, _ in refused[:len(back)]], (
        f"refused writes that came back are not a prefix of the refused ones: {back}")
    for p, v in refused[:len(back)]:
        assert zk.get(p)[0] == v, p
    for p in later:
        assert zk.exists(p) is None, f"{p} was refused after the failure, yet it is there"
    data, stat = zk.get("/f/s0")
    assert data == b"sync-0" and stat.version == 0, "a setData refused after the failure applied"
    assert zk.exists("/f/s1") is not None
    print(f"fsync failure: {len(acked)} acknowledged, {len(refused)} refused in flight, "
          f"{len(back)} of those on disk after the restart (the failing batch)")
    # Writes work again.
    zk.create("/f/again", b"again")
    assert zk.get("/f/again")[0] == b"again"
    stop_kazoo([zk])
    assert srv.stop() == 0
    r = verify(srv.data_dir)
    assert r.returncode == 0 and "sound" in r.stdout, r.stdout


def test_after_a_failed_fdatasync_new_sessions_are_refused_and_sigterm_still_exits_0(
        corrald, kazoo):
    srv = corrald(name="fsync2", config=CONFIG)
    srv.start(env={"CORRAL_FAULT_FSYNC_FAIL_AT": "2"})
    zk = kazoo(srv.hosts)
    with pytest.raises((ConnectionLoss, SystemZookeeperError)):
        zk.create("/x", b"x")	# in flight at the failure: outcome unknown
    for _ in range(200):
        if zk.connected:
            break
        time.sleep(0.05)
    with pytest.raises(SystemZookeeperError):
        zk.create("/y", b"y")	# after it: refused
    # Opening a session is a write: a new client gets no session.
    z2 = make_kazoo(srv.hosts, 4.0)
    with pytest.raises(Exception):
        z2.start(timeout=3)
    stop_kazoo([z2])
    assert lines(srv.log(), "the log takes no writes"), srv.log()
    assert zk.exists("/") is not None	# the old session still reads
    status = srv.stop()
    stop_kazoo([zk])
    log = srv.log()
    interesting = [l for l in log.splitlines()
                   if "the log takes no writes" not in l and not l.startswith("    #")]
    assert status == 0, f"SIGTERM: exit status {status}, expected 0:\n" + \
        "\n".join(interesting[-40:])


# ---------------------------------------------------------------------------
# (b) a full disk

@pytest.fixture
def small_tmpfs(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): "
                    f"{r.stderr.strip() or r.returncode}")
    try:
        yield mnt
    finally:
        # corrald is killed by its fixture after this one tears down: kill
        # whatever still runs on the mount first, then unmount (lazily if busy).
        for c in _on_mount:
            if c.running():
                c.kill()
        _on_mount.clear()
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


_on_mount = []


def fill(mnt):
    """Takes every free byte of the filesystem with one file; returns its path."""
    path = os.path.join(str(mnt), "filler")
    st = os.statvfs(str(mnt))
    n = st.f_bavail * st.f_frsize
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        while n > 0:
            try:
                os.posix_fallocate(fd, 0, n)
                break
            except OSError:
                n -= 65536
    finally:
        os.close(fd)
    return path


def fill_log_until_refused(zk, prefix, acked, refused, size=4000, limit=3000):
    for i in range(limit):
        p, v = f"{prefix}{i}", (b"%d:" % i) * (size // 4)
        try:
            zk.create(p, v)
            acked[p] = v
        except SystemZookeeperError:
            refused.append(p)
            return
    raise AssertionError(f"{limit} writes of {size} bytes and none refused on a full disk")


def test_full_disk_refuses_writes_loses_nothing_and_writes_resume(corrald, kazoo, small_tmpfs):
    srv = corrald(data_dir=small_tmpfs / "data", config=CONFIG, name="enospc")
    _on_mount.append(srv)
    srv.start()
    zk = kazoo(srv.hosts)
    zk.create("/w", b"w")
    acked, refused = {"/w": b"w"}, []
    filler = fill(small_tmpfs)
    fill_log_until_refused(zk, "/w/n", acked, refused)
    log = srv.log()
    warn = lines(log, "no room for another log segment")
    assert warn and warn[0].startswith("<4>"), f"no warning saying there is no room:\n{log}"
    # Still refused (a few more), reads fine.
    for i in range(5):
        with pytest.raises(SystemZookeeperError):
            zk.create(f"/w/more{i}", b"m" * 4000)
        refused.append(f"/w/more{i}")
    assert zk.get("/w/n0")[0] == acked["/w/n0"]
    assert len(zk.get_children("/w")) == len(acked) - 1

    # Room again: writes resume within a bounded wait.
    os.unlink(filler)
    attempt = [0]

    def resumed():
        attempt[0] += 1
        # As big as the refused writes: a small one may still fit in what is
        # left of the current segment.
        p, v = f"/probe{attempt[0]}", b"p" * 4000
        try:
            zk.create(p, v)
            acked[p] = v
            return True
        except SystemZookeeperError:
            refused.append(p)
            return False
    wait_until(resumed, 30, interval=0.1, what="writes to resume after the filler went")
    assert lines(srv.log(), "writes resume"), srv.log()
    # Enough to need two more segments, now that there is room for them.
    for i in range(600):
        p, v = f"/x{i}", b"%d" % i * 500
        zk.create(p, v)
        acked[p] = v

    srv.kill()
    stop_kazoo([zk])
    srv.start()
    zk = kazoo(srv.hosts)
    for p, v in acked.items():
        assert zk.exists(p) is not None, f"{p}: acknowledged, missing after the restart"
        assert zk.get(p)[0] == v, p
    for p in refused:
        assert zk.exists(p) is None, f"{p}: refused for lack of space, yet there after the restart"
    stop_kazoo([zk])
    assert srv.stop() == 0
    r = verify(srv.data_dir)
    assert r.returncode == 0 and "sound" in r.stdout, r.stdout


def test_restart_on_a_still_full_disk_serves_reads_and_writes_resume_once_there_is_room(
        corrald, kazoo, small_tmpfs):
    srv = corrald(data_dir=small_tmpfs / "data", config=CONFIG, name="fullrestart")
    _on_mount.append(srv)
    srv.start()
    zk = kazoo(srv.hosts)
    zk.create("/w", b"w")
    acked, refused = {"/w": b"w"}, []
    filler = fill(small_tmpfs)
    fill_log_until_refused(zk, "/w/n", acked, refused)
    srv.kill()
    stop_kazoo([zk])
    srv.start()		# the disk is still full
    zk = kazoo(srv.hosts)
    for p, v in acked.items():
        assert zk.get(p)[0] == v, p
    for p in refused:
        assert zk.exists(p) is None, p
    with pytest.raises(SystemZookeeperError):
        zk.create("/big0", b"b" * 8000)
    os.unlink(filler)
    attempt = [0]

    def resumed():
        attempt[0] += 1	# a new path each time: see the test below for why
        try:
            zk.create(f"/big{attempt[0]}", b"b" * 8000)
            return True
        except SystemZookeeperError:
            return False
    wait_until(resumed, 30, interval=0.1, what="writes to resume after the filler went")
    stop_kazoo([zk])
    assert srv.stop() == 0


def test_write_refused_for_lack_of_space_leaves_nothing_later_writes_see(
        corrald, kazoo, small_tmpfs):
    """A refused write must not stay among the changes later writes are
    checked against: once there is room, a child of a node whose create was
    refused is NONODE, and a version a refused setData would have made is
    not the node's version."""
    srv = corrald(data_dir=small_tmpfs / "data", config=CONFIG, name="phantom")
    _on_mount.append(srv)
    srv.start()
    zk = kazoo(srv.hosts)
    zk.create("/w", b"w")
    zk.create("/q", b"q")
    filler = fill(small_tmpfs)
    acked, refused = {}, []
    fill_log_until_refused(zk, "/w/n", acked, refused)
    big = b"B" * 8000	# too big for what is left of the segment
    with pytest.raises(SystemZookeeperError):
        zk.create("/p", big)
    with pytest.raises(SystemZookeeperError):
        zk.set("/q", big, 0)
    problems = []
    # Still no room: the same create again is refused the same way (not NODEEXISTS).
    try:
        zk.create("/p", big)
        problems.append("create /p succeeded on a full disk")
    except SystemZookeeperError:
        pass
    except Exception as e:
        problems.append(f"create /p again on the full disk: {type(e).__name__}, expected "
                        f"SystemZookeeperError (/p exists: {zk.exists('/p') is not None})")
    os.unlink(filler)
    wait_until(lambda: lines(srv.log(), "writes resume"), 30, interval=0.05,
               what="the 'writes resume' log line")
    # Sent together, so that no write applies before both are checked.
    f_set = zk.set_async("/q", b"q2", 0)
    f_child = zk.create_async("/p/child", b"c")
    r_set, r_child = outcome(f_set, 10), outcome(f_child, 10)
    if r_set[0] != "ok":
        problems.append(f"setData /q version 0 after the refused setData: {r_set[0]} "
                        f"(the node's version is 0)")
    if r_child[0] != "NoNodeError":
        problems.append(f"create /p/child after the refused create /p: {r_child[0]}, "
                        f"expected NoNodeError")
    if not srv.running():
        problems.append(f"corrald exited with status {srv.wait_exit(10)}:\n" +
                        "\n".join(l for l in srv.log().splitlines() if not l.startswith("    #"))[-1500:])
    else:
        assert zk.exists("/p") is None
    stop_kazoo([zk])
    if srv.running():
        srv.stop()
    # Whatever happened, the data directory must still start.
    srv.spawn()
    try:
        srv.wait_ready(30)
    except AssertionError as e:
        problems.append(f"restart failed: {str(e)[-1500:]}")
    assert not problems, "\n".join(problems)


def test_full_disk_takes_writes_that_fit_the_current_segment_durably_and_refuses_the_rest(
        corrald, kazoo, small_tmpfs):
    """What the README says of a full disk: a segment is preallocated whole,
    so a write that fits in what is left of the current one is taken (its
    room was reserved before the disk filled) and is durable; one that does
    not fit gets SYSTEMERROR while the next segment cannot be made."""
    srv = corrald(data_dir=small_tmpfs / "data", config=CONFIG, name="fits")
    _on_mount.append(srv)
    srv.start()
    zk = kazoo(srv.hosts)
    zk.create("/w", b"w")
    acked, refused = {"/w": b"w"}, []
    filler = fill(small_tmpfs)
    # Writes of 40000 bytes reserve 84 KiB each (twice the request and
    # 4 KiB): the first refused one leaves room for smaller ones (2000
    # bytes: 8 KiB reserved, 2 KiB used each).
    fill_log_until_refused(zk, "/w/n", acked, refused, size=40000)
    assert mntr(srv.port)["corral_log_refusing_for_space"] == "1"
    small = 0
    for i in range(500):
        v = b"%04d" % i * 500
        try:
            zk.create(f"/small{i}", v)
        except SystemZookeeperError:
            refused.append(f"/small{i}")
            break
        acked[f"/small{i}"] = v
        small += 1
        # A big one still does not fit.
        with pytest.raises(SystemZookeeperError):
            zk.create(f"/big{i}", b"b" * 40000)
        refused.append(f"/big{i}")
    assert 1 <= small < 500, f"{small} small writes taken on the full disk"
    assert mntr(srv.port)["corral_log_refusing_for_space"] == "1"

    srv.kill()		# what was acknowledged is on disk, not in memory
    stop_kazoo([zk])
    srv.start()		# the disk is still full
    zk = kazoo(srv.hosts)
    for p, v in acked.items():
        assert zk.get(p)[0] == v, f"{p}: acknowledged on the full disk, lost by a kill -9"
    for p in refused:
        assert zk.exists(p) is None, f"{p}: refused, yet there after the restart"
    os.unlink(filler)
    stop_kazoo([zk])
    assert srv.stop() == 0
    r = verify(srv.data_dir)
    assert r.returncode == 0 and "sound" in r.stdout, r.stdout


def test_sessions_closed_on_a_full_disk_do_not_fail_the_log(corrald, kazoo, small_tmpfs):
    """closeSession is a write too: it must be refused like one when the
    segment has no room, not appended past its end (that failed the log for
    good on ENOSPC: writes never resumed once there was room again)."""
    srv = corrald(data_dir=small_tmpfs / "data", config=CONFIG, name="closes")
    _on_mount.append(srv)
    srv.start()
    zk = kazoo(srv.hosts)
    zk.create("/w", b"w")
    closers = [kazoo(srv.hosts) for _ in range(150)]
    filler = fill(small_tmpfs)
    acked, refused = {}, []
    fill_log_until_refused(zk, "/w/n", acked, refused)
    for i in range(200):		# what is left of the segment, in small writes
        try:
            zk.create(f"/small{i}", b"")
        except SystemZookeeperError:
            break
    stop_kazoo(closers)		# 150 closeSessions: more than the room left
    assert srv.running()
    assert not lines(srv.log(), "write-ahead log failed"), srv.log()
    os.unlink(filler)
    wait_until(lambda: lines(srv.log(), "writes resume"), 30, interval=0.05,
               what="the 'writes resume' log line")
    zk.create("/after", b"a")
    # The sessions whose close was refused expire once writes resume.
    wait_until(lambda: mntr(srv.port)["zk_global_sessions"] == "1", 30,
               what="the closed sessions to be gone (closed or expired)")
    assert not lines(srv.log(), "write-ahead log failed"), srv.log()
    stop_kazoo([zk])
    assert srv.stop() == 0


# ---------------------------------------------------------------------------
# (c) one corrald per data directory

def test_second_corrald_on_the_same_data_dir_exits_74_and_the_first_keeps_serving(
        corrald, kazoo):
    first = corrald(name="first", config=CONFIG)
    first.start()
    zk = kazoo(first.hosts)
    zk.create("/before", b"1")
    wal = os.path.join(first.data_dir, "wal")
    before = file_digests(wal)
    second = corrald(data_dir=first.data_dir, config=CONFIG, name="second")
    second.spawn()
    status = second.wait_exit(30)
    log = second.log()
    assert status == EXIT_DATA_DIR, f"exit status {status}:\n{log}"
    assert lines(log, "in use by another corrald", first.data_dir), log
    assert file_digests(wal) == before, "the refused corrald changed the log"
    # The first one is unaffected.
    assert four_letter(first.port, "ruok") == "imok"
    zk.create("/after", b"2")
    assert zk.get("/before")[0] == b"1" and zk.get("/after")[0] == b"2"
    stop_kazoo([zk])
    assert first.stop() == 0
    # Once the first is gone, the lock is free.
    second.start()
    zk = kazoo(second.hosts)
    assert zk.get("/after")[0] == b"2"
