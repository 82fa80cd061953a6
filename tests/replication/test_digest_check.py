"""The ensemble's digest check (server/digest_check.h): the leader's tree
digest at a zxid goes to the followers, each compares its own at the same
zxid. `hash` and mntr agree on every server; a follower that applied one
txn wrongly (the test build's CORRAL_FAULT_DIVERGE_SET_DATA switch) finds
out within DIGEST_CHECK_TXNS txns, answers no read from its diverged state,
rebuilds its state from the leader's snapshot and serves the leader's data
again."""
import re
import threading
import time

import pytest
from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError

from harness import make_kazoo, wait_until

DIGEST_CHECK_TXNS = 16   # server/digest_check.h


def digest_at_last_zxid(s):
    m = s.mntr()
    return int(m["corral_last_zxid"], 16), int(m["corral_digest"])


def hash_lines(s):
    from harness import four_letter
    out = {}
    for line in four_letter(s.client_port, "hash").splitlines():
        z, d = line.split(": ")
        out[int(z, 16)] = int(d)
    return out


def test_hash_and_mntr_show_the_same_digest_on_leader_and_followers(ensemble):
    c = ensemble(3)
    lid = c.first_leader
    zk = ensemble.kazoo(c.hosts(only=[lid]))
    zk.create("/h", b"0")
    last = 0
    while last < 300 or last % 128 != 0:
        last = zk.set("/h", str(last).encode()).mzxid
    zxid, digest = digest_at_last_zxid(c[lid])
    assert zxid == last

    def same_everywhere():
        views = {s.id: digest_at_last_zxid(s) for s in c}
        return len(set(views.values())) == 1 and views
    wait_until(same_everywhere, 30, what="every server at the leader's zxid with its digest",
               detail=lambda: {s.id: digest_at_last_zxid(s) for s in c})
    logs = {s.id: hash_lines(s) for s in c}
    assert logs[lid].get(last) == digest, logs[lid]
    for sid, log in logs.items():
        assert log.get(last) == digest and log.get(last - 128) == logs[lid].get(last - 128), sid
    # the followers compared digests with the leader's, and found them equal
    for sid in c.followers(lid):
        m = wait_until(lambda: (lambda m: int(m["corral_digest_checks"]) > 0 and m)(c[sid].mntr()),
                       10, what=f"server {sid} to check a digest")
        assert m["zk_digest_mismatches_count"] == "0", m
        assert m["corral_digest_diverged"] == "0", m


def test_a_follower_that_applied_a_txn_wrongly_stops_serving_and_rebuilds(ensemble):
    c = ensemble(3, config={"storage": {"snapshot_entries": 100000}})
    lid = c.first_leader
    fid = c.followers(lid)[0]
    # the follower's next setData is applied with its first byte flipped; once
    # it finds out, it waits 3 s before it asks for the rebuild (so the test
    # sees it refuse clients meanwhile)
    c[fid].extra_env = {"CORRAL_FAULT_DIVERGE_SET_DATA": "1",
                        "CORRAL_FAULT_REBUILD_DELAY_MS": "3000"}
    for _ in range(3):	# should the restarted follower win an election, again
        c[fid].restart()
        lid = c.wait_for_leader()
        if lid != fid:
            break
    assert lid != fid, "the restarted follower became the leader three times"
    zl = ensemble.kazoo(c.hosts(only=[lid]))
    zl.create("/x", b"value-0")
    zf = ensemble.kazoo(c.hosts(only=[fid]), timeout=4.0)
    zf.sync("/x")
    assert zf.get("/x")[0] == b"value-0"

    # reads from the follower all along, each noted with when it started
    reads, stop = [], threading.Event()

    def reader():
        while not stop.is_set():
            started = time.monotonic()
            try:
                reads.append((started, zf.get("/x")[0]))
            except KazooException:
                time.sleep(0.02)
            except Exception:   # kazoo's own timeouts while it reconnects
                time.sleep(0.02)
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        wrong_zxid = zl.set("/x", b"value-1").mzxid
        detected_at = None
        for i in range(4 * DIGEST_CHECK_TXNS):
            zl.create(f"/y{i}", b"y")
            if detected_at is None and c[fid].mntr().get("zk_digest_mismatches_count") == "1":
                detected_at = time.monotonic()
        if detected_at is None:
            wait_until(lambda: c[fid].mntr().get("zk_digest_mismatches_count") == "1", 10,
                       what="the follower to find its digest differs")
            detected_at = time.monotonic()
        # found at a zxid at most DIGEST_CHECK_TXNS txns after the wrong one
        found = [int(z, 16) for z in re.findall(r"digest at zxid 0x([0-9a-f]+) is", c[fid].log())]
        assert len(found) == 1, found
        assert wrong_zxid <= found[0] <= wrong_zxid + DIGEST_CHECK_TXNS, (hex(wrong_zxid), found)

        # diverged: a new client finds no session there (the server refuses
        # it, as one without a leader does)
        assert c[fid].mntr()["corral_digest_diverged"] == "1"
        probe = make_kazoo(c.hosts(only=[fid]), timeout=4.0)
        with pytest.raises(KazooTimeoutError):
            probe.start(timeout=1.0)
        probe.stop()
        probe.close()
        assert c[fid].mntr()["corral_digest_diverged"] == "1"

        # rebuilt from the leader's snapshot, and serving again
        # (an mntr asked as the rebuild closes the server's connections gets
        # no answer: polled again)
        wait_until(lambda: (lambda m: m.get("corral_digest_rebuilds") == "1"
                            and m.get("corral_digest_diverged") == "0")(c[fid].mntr()), 60,
                   what="the follower to rebuild its state", detail=lambda: c[fid].log()[-3000:])
        zl.create("/after", b"a")
        wait_until(lambda: any(s > detected_at and v == b"value-1" for s, v in reads), 30,
                   what="a read from the rebuilt follower")
    finally:
        stop.set()
        t.join(10)
    # no read that started after the mismatch was found saw the diverged data
    after = [v for s, v in reads if s > detected_at]
    assert after and all(v == b"value-1" for v in after), set(after)

    # and the follower is back in sync: the same digest at the same zxid, the same data
    for i in range(2 * DIGEST_CHECK_TXNS):
        zl.set("/x", b"value-%d" % (i + 2))
    wait_until(lambda: digest_at_last_zxid(c[fid]) == digest_at_last_zxid(c[lid]), 30,
               what="the follower's digest to equal the leader's at the same zxid")
    assert c.tree_state(fid) == c.tree_state(lid)
    m = c[fid].mntr()
    assert m["zk_digest_mismatches_count"] == "1", m     # no new mismatch since
    assert int(m["corral_digest_checks"]) > 0, m
    assert "the state is the leader's again" in c[fid].log()

