"""Restart at scale: 100,000 znodes and 1,000 live sessions, each with an
ephemeral, survive SIGKILL; after the restart the node count is exact and
every session resumes with its id and password and still owns its
ephemeral.

The znodes are created pipelined over one raw connection, and the 1,000
sessions with a minimal raw-socket client (ConnectRequest, then a create
of an ephemeral sent right behind it), whose sockets are then just closed:
the sessions live on (timeout 60 s) with only their id and password
remembered. Two variants: the whole log replayed (snapshots off), and a
snapshot plus the log after it.

The restart-to-ready time (SIGKILL'd corrald spawned again until it
answers ruok) is printed, not asserted.
"""
import os
import random
import struct
import threading
import time

import pytest

import jute
from conftest import verify
from harness import mntr, stop_kazoo
from jute import Client, create_body, encode_body, frame, path_watch_body, request

NODES = int(os.environ.get("CORRAL_SCALE_NODES", "100000"))
SESSIONS = int(os.environ.get("CORRAL_SCALE_SESSIONS", "1000"))
BUCKET = 1000
SESSION_TIMEOUT_MS = 60000

EPHEMERAL = 1


def connect_request(session_id=0, password=bytes(16), timeout_ms=SESSION_TIMEOUT_MS):
    return frame(jute.connect_request(timeout_ms, session_id, password))


def create_request(xid, path, data, flags=0):
    return request(xid, "create", create_body(path, data, flags=flags))


def exists_request(xid, path):
    return request(xid, "exists", path_watch_body(path))


def parse_connect_response(f):
    r = jute.decode_connect_response(f)
    return r["timeOut"], r["sessionId"], r["passwd"]


def reply_header(f):
    return struct.unpack_from(">iqi", f)	# xid, zxid, err


def open_sessions(port, first, count, batch=100):
    """Opens count sessions, session i creating /eph/s<i> (ephemeral) right
    behind its ConnectRequest; closes the sockets. Returns [(id, password, timeout)]."""
    out = []
    for start in range(first, first + count, batch):
        conns = []
        for i in range(start, min(first + count, start + batch)):
            c = Client(port, timeout=30)
            c.send(connect_request() + create_request(1, f"/eph/s{i}", b"e%d" % i, EPHEMERAL))
            conns.append(c)
        for i, c in zip(range(start, start + batch), conns):
            it = c.frames()
            timeout, sid, pw = parse_connect_response(next(it))
            assert sid != 0 and timeout == SESSION_TIMEOUT_MS, (sid, timeout)
            xid, zxid, err = reply_header(next(it))
            assert (xid, err) == (1, 0), f"create /eph/s{i}: err {err}"
            out.append((sid, pw, timeout))
            c.close()
    return out


def pipeline(port, reqs):
    """Sends requests over one new session's connection as fast as it takes
    them, reading the replies meanwhile; asserts that none failed."""
    c = Client(port, timeout=120)
    c.send(connect_request())
    it = c.frames()
    timeout, sid, pw = parse_connect_response(next(it))
    assert sid
    failures = []

    def sender():
        try:
            for k in range(0, len(reqs), 2000):
                c.send(b"".join(reqs[k:k + 2000]))
        except Exception as e:
            failures.append(repr(e))
    t = threading.Thread(target=sender, daemon=True)
    t.start()
    errors = []
    for _ in range(len(reqs)):
        xid, zxid, err = reply_header(next(it))
        if err:
            errors.append((xid, err))
    t.join(60)
    c.close()
    assert not failures, failures
    assert not errors, f"{len(errors)} requests failed: {errors[:5]}"


def create_nodes(port, count):
    buckets = (count + BUCKET - 1) // BUCKET
    reqs = [create_request(1, "/scale", b"s")]
    reqs += [create_request(2 + k, f"/scale/b{k}", b"b") for k in range(buckets)]
    for i in range(count):
        reqs.append(create_request(10000 + i, f"/scale/b{i // BUCKET}/n{i}", data_of(i)))
    pipeline(port, reqs)


def set_nodes(port, indexes):
    pipeline(port, [request(1 + k, "setData", encode_body("setData", {
                        "path": node_path(i), "data": data_of(i, 1), "version": 0}))
                    for k, i in enumerate(indexes)])


def resume_all(port, sessions, batch=100):
    """Resumes every session by id and password and reads its ephemeral's
    owner. Returns [(timeout, session id, ephemeralOwner or None)]."""
    out = []
    for start in range(0, len(sessions), batch):
        conns = []
        for i in range(start, min(len(sessions), start + batch)):
            sid, pw, _ = sessions[i]
            c = Client(port, timeout=30)
            c.send(connect_request(sid, pw) + exists_request(1, f"/eph/s{i}"))
            conns.append(c)
        for c in conns:
            it = c.frames()
            timeout, sid, _ = parse_connect_response(next(it))
            owner = None
            if timeout:
                f = next(it)
                xid, zxid, err = reply_header(f)
                if err == 0:
                    owner = struct.unpack_from(">q", f, 16 + 44)[0]	# Stat.ephemeralOwner
            out.append((timeout, sid, owner))
            c.close()
    return out


def node_path(i):
    return f"/scale/b{i // BUCKET}/n{i}"


def data_of(i, version=0):
    r = random.Random(i * 2 + version)
    return (b"%d.%d:" % (i, version) + r.randbytes(100))[:100]


@pytest.mark.parametrize("variant", ["whole_log", "snapshot_and_log"])
def test_restart_with_100k_znodes_and_1000_sessions_keeps_every_node_and_session(
        corrald, kazoo, variant):
    # whole_log: no snapshot, the restart replays every entry. snapshot_and_log:
    # one snapshot once the znodes are in, then a log tail of sessions and
    # setData for the restart to replay on top of it.
    storage = {"snapshot_entries": 1000000000, "snapshot_log_bytes": 1099511627776} \
        if variant == "whole_log" else {"snapshot_entries": NODES}
    srv = corrald(name=variant, config={
        "session": {"tick_time_ms": 2000, "max_timeout_ms": 120000, "max_sessions": 10000},
        "storage": storage})
    srv.start()
    base = int(mntr(srv.port)["zk_znode_count"])
    zk = kazoo(srv.hosts)
    zk.create("/eph", b"")
    stop_kazoo([zk])
    half = SESSIONS // 2
    t0 = time.monotonic()
    sessions = open_sessions(srv.port, 0, half)
    t_sessions = time.monotonic() - t0
    t0 = time.monotonic()
    create_nodes(srv.port, NODES)
    t_nodes = time.monotonic() - t0
    if variant == "snapshot_and_log":
        end = time.monotonic() + 120
        while time.monotonic() < end and "snapshot at index" not in srv.log():
            time.sleep(0.05)
        assert "snapshot at index" in srv.log(), "no snapshot was written"
    t0 = time.monotonic()
    sessions += open_sessions(srv.port, half, SESSIONS - half)
    t_sessions += time.monotonic() - t0
    changed = list(range(0, NODES, 20))
    set_nodes(srv.port, changed)
    changed = set(changed)
    buckets = (NODES + BUCKET - 1) // BUCKET
    expected = base + 1 + buckets + NODES + 1 + SESSIONS
    m = mntr(srv.port)
    assert int(m["zk_znode_count"]) == expected, (m["zk_znode_count"], expected)

    srv.kill()
    srv.spawn()
    ready_s = srv.wait_ready(300)
    log = srv.log()
    if variant == "snapshot_and_log":
        assert "loaded the snapshot" in log, log
    m = mntr(srv.port)
    assert int(m["zk_znode_count"]) == expected, (m["zk_znode_count"], expected)
    assert int(m["zk_ephemerals_count"]) == SESSIONS, m["zk_ephemerals_count"]

    t0 = time.monotonic()
    resumed = resume_all(srv.port, sessions)
    t_resume = time.monotonic() - t0
    bad = [(i, r) for i, (r, s) in enumerate(zip(resumed, sessions))
           if r[0] == 0 or r[1] != s[0] or r[2] != s[0]]
    assert not bad, (f"{len(bad)} of {SESSIONS} sessions did not resume with their ephemeral "
                     f"(index, (timeout, id, ephemeralOwner)): {bad[:5]}")
    assert time.monotonic() - srv.ready_at < SESSION_TIMEOUT_MS / 1000

    # Every node by name, and a sample by content and version.
    zk = kazoo(srv.hosts)
    for k in range(buckets):
        names = set(zk.get_children(f"/scale/b{k}"))
        want = {f"n{i}" for i in range(k * BUCKET, min(NODES, (k + 1) * BUCKET))}
        assert names == want, f"/scale/b{k}: {len(want - names)} missing, {len(names - want)} extra"
    rng = random.Random(1)
    sample = rng.sample(range(NODES), min(NODES, 3000))
    futs = [(i, zk.get_async(node_path(i))) for i in sample]
    for i, f in futs:
        data, stat = f.get(timeout=30)
        v = 1 if i in changed else 0
        assert (data, stat.version) == (data_of(i, v), v), node_path(i)
    stop_kazoo([zk])
    assert srv.stop() == 0
    r = verify(srv.data_dir)
    assert r.returncode == 0 and "sound" in r.stdout, r.stdout
    recovery = [l for l in log.splitlines() if "read the log" in l or "loaded the snapshot" in l]
    print(f"\n[{variant}] {NODES} znodes created in {t_nodes:.1f} s, {SESSIONS} sessions in "
          f"{t_sessions:.1f} s; restart-to-ready after SIGKILL: {ready_s:.2f} s "
          f"({'; '.join(l[3:] for l in recovery)}); {SESSIONS} sessions resumed in {t_resume:.1f} s")


def test_snapshots_are_taken_while_writes_never_stop(corrald, kazoo):
    # A server under continuous pipelined writes always has txns on their way
    # to the log; snapshots must not wait for an idle moment that never comes
    # (else the log, and the restart, grow without bound).
    # a 10 ms timer (tick 20 ms) reaps finished snapshot writers promptly
    srv = corrald(name="busy", config={
        "session": {"tick_time_ms": 20, "max_timeout_ms": 120000},
        "storage": {"snapshot_entries": 2000}})
    srv.start()
    base = int(mntr(srv.port)["zk_znode_count"])
    count = 40000
    reqs = [create_request(1, "/busy", b"b")]
    reqs += [create_request(2 + i, f"/busy/n{i}", data_of(i)) for i in range(count)]
    pipeline(srv.port, reqs)
    # Published during the load: after it at most one more can have started.
    written = srv.log().count("snapshot at index")
    assert written >= 2, f"{written} snapshots during {count} pipelined creates:\n{srv.log()}"

    srv.kill()
    srv.spawn()
    srv.wait_ready(120)
    log = srv.log()
    assert "loaded the snapshot" in log, log
    assert int(mntr(srv.port)["zk_znode_count"]) == base + 1 + count
    zk = kazoo(srv.hosts)
    for i in random.Random(2).sample(range(count), 200):
        assert zk.get(f"/busy/n{i}")[0] == data_of(i)
    stop_kazoo([zk])
    assert srv.stop() == 0
    r = verify(srv.data_dir)
    assert r.returncode == 0 and "sound" in r.stdout, r.stdout
