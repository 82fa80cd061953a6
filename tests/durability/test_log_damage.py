"""Damaged write-ahead logs: a torn tail is cut (and said so, with file and
offset) and everything before it is served; damage anywhere else, a
damaged segment header, or another cluster's log stops startup with exit
status 74 and a log line naming the file and offset; `corrald --verify`
says the same without changing anything.

Each test builds its data directory with corrald itself (known writes,
acknowledged, then SIGTERM while the client is still connected, so the
last record in the log is the last write), then edits the segment bytes
the way storage/wal.h describes them, locating records by walking them.
"""
import os
import random
import shutil

import pytest

from conftest import verify
from harness import EXIT_DATA_DIR, make_kazoo, stop_kazoo
from walfile import RECORD_HEADER, all_records, file_digests, read_records, segment_files

CONFIG = {"session": {"tick_time_ms": 200}, "storage": {"segment_bytes": 1048576}}


def value(i, size=120):
    """Distinct, deterministic data of the given size for write i."""
    r = random.Random(i)
    tag = b"value-%d:" % i
    return tag + r.randbytes(size - len(tag))


def build(corrald, name, count=40, size=120, burst=0, config=CONFIG):
    """A data directory holding /d and count (+ burst pipelined) acknowledged
    creates /d/nNNN; corrald stopped with the client still connected."""
    srv = corrald(name=name, config=config)
    srv.start()
    zk = make_kazoo(srv.hosts)
    zk.start(timeout=15)
    written = {}
    try:
        zk.create("/d", b"dir")
        for i in range(count):
            p = f"/d/n{i:04d}"
            zk.create(p, value(i, size))
            written[p] = value(i, size)
        if burst:
            futs = []
            for i in range(count, count + burst):
                p = f"/d/n{i:04d}"
                futs.append((p, value(i, size), zk.create_async(p, value(i, size))))
            for p, v, f in futs:
                assert f.get(timeout=30) == p
                written[p] = v
    finally:
        status = srv.stop()
        stop_kazoo([zk])
    assert status == 0, srv.log()
    return srv, written


def payload(path, rec):
    with open(path, "rb") as f:
        f.seek(rec.offset + RECORD_HEADER)
        return f.read(rec.length - RECORD_HEADER)


def record_of(seg, rec):
    """The /d/nNNN path a record creates, or None."""
    p = payload(seg, rec)
    i = p.find(b"/d/n")
    return p[i:i + 8].decode() if i >= 0 else None


def patch(path, offset, data):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def flip(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x5A]))


def log_lines(text, *needles):
    return [l for l in text.splitlines() if all(n in l for n in needles)]


def check_tree(zk, present, absent):
    for p, v in present.items():
        got = zk.exists(p)
        assert got is not None, f"{p}: acknowledged before the damage, missing after the restart"
        assert zk.get(p)[0] == v, f"{p}: data differs after the restart"
    for p in absent:
        assert zk.exists(p) is None, f"{p}: its record was cut, yet it is there"


def assert_refused(srv, where, offset=None, also=(), check_verify=True):
    """Starts corrald on a damaged directory: exit 74 and a log line naming
    the file (and offset); the log files untouched."""
    before = file_digests(os.path.join(srv.data_dir, "wal"))
    srv.spawn()
    try:
        status = srv.wait_exit(60)
    except Exception:
        srv.kill()
        raise AssertionError(f"corrald did not exit on a damaged log:\n{srv.log()}")
    log = srv.log()
    assert status == EXIT_DATA_DIR, f"exit status {status}, expected {EXIT_DATA_DIR}:\n{log}"
    needles = [where] + ([f"offset {offset}"] if offset is not None else []) + list(also)
    assert log_lines(log, *needles), f"no log line naming {needles}:\n{log}"
    assert file_digests(os.path.join(srv.data_dir, "wal")) == before, \
        "a refused startup changed the log files"
    if not check_verify:
        return log
    r = verify(srv.data_dir)
    assert r.returncode != 0, f"--verify exited 0 on a damaged log:\n{r.stdout}{r.stderr}"
    assert log_lines(r.stdout + r.stderr, *needles), \
        f"--verify did not name {needles}:\n{r.stdout}{r.stderr}"
    assert "sound" not in r.stdout.replace("unsound", ""), r.stdout
    assert file_digests(os.path.join(srv.data_dir, "wal")) == before, "--verify changed the log"
    return log


# ---------------------------------------------------------------------------
# (a) a torn tail

TORN = ["truncated_in_half", "second_half_zeroed", "overwritten_with_garbage", "crc_zeroed",
        "truncated_inside_the_record_header", "first_record_of_the_last_batch_damaged",
        # Two batches are written and synced at once (storage/wal.h, WAL_FLIGHTS): a
        # crash can tear the older and leave the newer intact on disk, or leave the
        # older's blocks unwritten (zeroes). Neither was acknowledged (the newer is
        # reported durable only after the older): both are cut.
        "a_batch_torn_with_the_next_one_intact", "a_batch_zeroed_with_the_next_one_intact"]


@pytest.mark.parametrize("damage", TORN)
def test_torn_tail_is_cut_with_file_and_offset_and_everything_before_it_survives(
        corrald, kazoo, damage):
    burst = 40 if damage == "first_record_of_the_last_batch_damaged" else 0
    for attempt in range(5):
        srv, written = build(corrald, f"tail{attempt}", burst=burst)
        seg = segment_files(srv.data_dir)[-1]
        recs = read_records(seg)
        last = recs[-1]
        batch = [r for r in recs if r.batch == last.batch]
        if not burst or len(batch) >= 2:
            break
    else:
        pytest.fail("could not get a write batch of two records or more in 5 tries")

    beside = damage.endswith("_with_the_next_one_intact")
    if damage == "first_record_of_the_last_batch_damaged":
        victim = batch[0]
        cut = [record_of(seg, r) for r in batch]
    elif beside:
        victim = recs[-2]
        assert victim.batch < last.batch, "one create, one batch: the last two are two batches"
        cut = [record_of(seg, victim), record_of(seg, last)]
    else:
        victim = last
        cut = [record_of(seg, last)]
    assert all(cut), "the records to cut should be creates of /d/nNNN"
    off = victim.offset
    size = os.path.getsize(seg)
    rng = random.Random(7)
    if damage == "truncated_in_half":
        assert victim.length // 2 >= RECORD_HEADER
        os.truncate(seg, off + victim.length // 2)
    elif damage == "second_half_zeroed":
        half = victim.length // 2
        patch(seg, off + half, bytes(victim.padded - half))
    elif damage == "overwritten_with_garbage":
        junk = bytearray(rng.randbytes(victim.padded))
        junk[0] |= 0x80	# a non-zero length field (zero would read as the end of the log)
        patch(seg, off, bytes(junk))
    elif damage == "crc_zeroed":
        patch(seg, off + 4, bytes(4))
    elif damage == "truncated_inside_the_record_header":
        os.truncate(seg, off + 20)
    elif damage == "a_batch_zeroed_with_the_next_one_intact":
        patch(seg, off, bytes(victim.padded))
    else:
        flip(seg, off + RECORD_HEADER + 3)	# a payload byte: the crc no longer matches

    # --verify reports it (and changes nothing); startup cuts it, with a warning.
    before = file_digests(os.path.join(srv.data_dir, "wal"))
    r = verify(srv.data_dir)
    assert file_digests(os.path.join(srv.data_dir, "wal")) == before, "--verify changed the log"
    srv.start()
    log = srv.log()
    problems = []
    warn = log_lines(log, seg, f"offset {off}")
    if not (warn and warn[0].startswith("<4>")):
        problems.append(f"startup logged no warning naming {seg} and offset {off}:\n{log}")
    if not log_lines(r.stdout, seg, f"offset {off}", "torn"):
        problems.append(f"--verify did not report the torn tail at {seg} offset {off}:\n"
                        f"{r.stdout}{r.stderr}")
    if beside:
        # What was cut is zeroes now, the intact later batch too: records left
        # after the end would read as a later batch after the next crash.
        with open(seg, "rb") as f:
            f.seek(off)
            rest = f.read(last.offset + last.padded - off)
        if rest != bytes(len(rest)):
            problems.append(f"bytes after the cut at {off} were not zeroed")
    assert not problems, f"{damage} (the file was {size} bytes):\n" + "\n".join(problems)

    zk = kazoo(srv.hosts)
    kept = {p: v for p, v in written.items() if p not in cut}
    check_tree(zk, kept, cut)
    assert sorted(zk.get_children("/d")) == sorted(p.split("/")[-1] for p in kept)

    # The log takes writes again, and they and the rest survive a crash.
    after = {}
    for i in range(20):
        p = f"/after{i}"
        zk.create(p, value(1000 + i, 300))
        after[p] = value(1000 + i, 300)
    zk.set("/d/n0000", b"changed")
    kept["/d/n0000"] = b"changed"
    srv.kill()
    stop_kazoo([zk])
    srv.start()
    log = srv.log()
    assert not log_lines(log, "torn write"), f"a second restart found another torn tail:\n{log}"
    zk = kazoo(srv.hosts)
    check_tree(zk, {**kept, **after}, cut)
    assert zk.get("/d/n0000")[1].version == 1
    stop_kazoo([zk])
    assert srv.stop() == 0
    r = verify(srv.data_dir)
    assert r.returncode == 0 and "sound" in r.stdout and "torn tail" not in r.stdout, r.stdout
    all_records(srv.data_dir)	# every record of every segment checks out (asserts)


# ---------------------------------------------------------------------------
# (b) damage before the tail

def test_damaged_early_record_stops_startup_naming_file_and_offset(corrald):
    srv, written = build(corrald, "early")
    seg = segment_files(srv.data_dir)[-1]
    recs = read_records(seg)
    victim = next(r for r in recs if record_of(seg, r) == "/d/n0010")
    assert recs[-1].batch > victim.index, "later batches must follow the damaged record"
    flip(seg, victim.offset + RECORD_HEADER + victim.payload_len // 2)
    assert_refused(srv, seg, victim.offset)


@pytest.mark.parametrize("damage", ["flipped", "zeroed"])
def test_damage_with_two_later_batches_after_it_stops_startup(corrald, damage):
    # Two batches at most are in flight at once (WAL_FLIGHTS): a record followed by
    # intact records of two later batches was synced, so damage there (or zeroes,
    # which would otherwise end the log and drop acknowledged writes) is not a
    # torn tail.
    srv, written = build(corrald, "twolater" + damage)
    seg = segment_files(srv.data_dir)[-1]
    recs = read_records(seg)
    victim = recs[-3]
    assert len({r.batch for r in recs[-3:]}) == 3, "one create, one batch"
    if damage == "flipped":
        flip(seg, victim.offset + RECORD_HEADER + 3)
    else:
        patch(seg, victim.offset, bytes(victim.padded))
    assert_refused(srv, seg, victim.offset)


def test_damaged_record_header_field_stops_startup(corrald):
    srv, written = build(corrald, "earlyhdr")
    seg = segment_files(srv.data_dir)[-1]
    recs = read_records(seg)
    victim = recs[len(recs) // 2]
    flip(seg, victim.offset + 15)	# inside the index field: covered by the crc
    assert_refused(srv, seg, victim.offset)


def test_damaged_last_record_of_a_segment_that_is_not_the_last_stops_startup(corrald):
    # 8 KB values: a 1 MiB segment holds about 127, so 200 writes span two.
    srv, written = build(corrald, "multiseg", count=200, size=8000)
    segs = segment_files(srv.data_dir)
    assert len(segs) >= 2, segs
    seg = segs[0]
    victim = read_records(seg)[-1]
    patch(seg, victim.offset + 4, bytes(4))	# crc zeroed: would be a torn tail if it were last
    assert_refused(srv, seg, victim.offset)


# ---------------------------------------------------------------------------
# (c) a damaged segment header

@pytest.mark.parametrize("which", ["first", "last"])
def test_damaged_segment_header_stops_startup_naming_file_and_offset_0(corrald, which):
    srv, written = build(corrald, f"hdr{which}", count=200, size=8000)
    segs = segment_files(srv.data_dir)
    assert len(segs) >= 2, segs
    seg = segs[0] if which == "first" else segs[-1]
    flip(seg, 20)	# inside the cluster id: only the header checksum can tell
    assert_refused(srv, seg, 0)


def test_segment_with_bad_magic_stops_startup(corrald):
    srv, written = build(corrald, "magic")
    seg = segment_files(srv.data_dir)[0]
    patch(seg, 0, b"XXXXXXXX")
    assert_refused(srv, seg, 0)


# ---------------------------------------------------------------------------
# (d) another cluster's log

def two_clusters(corrald, count=40, size=120):
    """Two data directories written the same way: their segments have the
    same names, but they are two clusters (each bootstrapped its own id)."""
    a, _ = build(corrald, "mine", count=count, size=size)
    b, _ = build(corrald, "other", count=count, size=size)
    names = lambda d: [os.path.basename(p) for p in segment_files(d)]
    assert names(a.data_dir) == names(b.data_dir)
    return a, b


def swap_in(a, b, what):
    """Puts a piece of b's data directory into a's; returns the file named."""
    if what == "raft_meta":
        shutil.copyfile(os.path.join(b.data_dir, "raft.meta"), os.path.join(a.data_dir, "raft.meta"))
        return segment_files(a.data_dir)[0]
    k = 0 if what == "first_segment" else -1
    seg_a, seg_b = segment_files(a.data_dir)[k], segment_files(b.data_dir)[k]
    shutil.copyfile(seg_b, seg_a)
    return seg_a


@pytest.mark.parametrize("what", ["first_segment", "later_segment", "raft_meta"])
def test_log_of_another_cluster_is_refused(corrald, what):
    a, b = two_clusters(corrald, *((200, 8000) if what == "later_segment" else ()))
    named = swap_in(a, b, what)
    assert_refused(a, named, also=["another cluster"], check_verify=False)


@pytest.mark.parametrize("what", ["first_segment", "later_segment", "raft_meta"])
def test_verify_reports_a_log_of_another_cluster(corrald, what):
    """corrald refuses such a directory (above): --verify must not call it sound."""
    a, b = two_clusters(corrald, *((200, 8000) if what == "later_segment" else ()))
    named = swap_in(a, b, what)
    r = verify(a.data_dir)
    assert r.returncode != 0 and log_lines(r.stdout + r.stderr, named, "another cluster"), (
        f"--verify exited {r.returncode} and did not name {named} as another cluster's, on a "
        f"data directory corrald refuses to start from:\n{r.stdout}{r.stderr}")
