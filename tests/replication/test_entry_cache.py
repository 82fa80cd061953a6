"""The entry cache bounded in bytes (ensemble.entry_cache_bytes): a follower
kept down while the leader commits thousands of entries, far more than a
4 KiB cache holds, catches up from entries the leader reads back from its
log on disk, not from a snapshot (snapshot_entries is far above what is
written, so the leader takes none); and when those reads fail (fault
injection), the leader says so once and the follower gets a snapshot
instead. Either way the follower's tree ends equal to the leader's."""
from harness import wait_until

CACHE = 4096
WRITES = 2000
UNREADABLE = "is neither in memory nor readable from the log"


def cluster(ensemble, env=None):
    c = ensemble(3, config={"ensemble": {"entry_cache_bytes": CACHE},
                            "storage": {"snapshot_entries": 10000000}}, start=False)
    for s in c:
        s.extra_env = dict(env or {})
    c.first_leader = c.start()
    return c


def write_while_down(ensemble, c):
    """Stops a follower, then commits WRITES creates of 100 bytes through
    the leader; returns (leader, follower)."""
    lid = c.first_leader
    fid = [s for s in c.ids if s != lid][0]
    zk = ensemble.kazoo(c[lid].client_addr)
    zk.ensure_path("/ec")
    for i in range(20):   # something the follower has before it goes down
        zk.create(f"/ec/before-{i}", b"b" * 100)
    c.wait_converged(timeout=60)
    assert c[fid].stop() == 0, c[fid].log()
    futs = []
    for i in range(WRITES):
        futs.append(zk.create_async(f"/ec/n-{i:05d}", b"c" * 100))
        if len(futs) >= 200:
            for f in futs:
                f.get(60)
            futs = []
    for f in futs:
        f.get(60)
    return lid, fid


def test_a_follower_behind_the_cache_catches_up_from_entries_read_from_the_log(ensemble):
    c = cluster(ensemble)
    lid, fid = write_while_down(ensemble, c)
    m = c[lid].mntr()
    held = int(m["corral_log_entries_in_memory"])
    assert held < WRITES // 4, m
    # (the follower that stayed up may have needed some already)
    read_before = int(m["corral_log_entries_read_from_disk"])

    c[fid].start()
    state = c.wait_converged(c.ids, timeout=120)
    assert sum(1 for p in state if p.startswith("/ec/n-")) == WRITES
    # all but the few the cache still held
    read = int(c[lid].mntr()["corral_log_entries_read_from_disk"]) - read_before
    assert read >= WRITES - held, f"the leader read {read} entries from its log"
    assert "sending the snapshot" not in c[lid].log()
    assert "receiving the leader's snapshot" not in c[fid].log(run=2)
    assert UNREADABLE not in c[lid].log()


def test_entries_the_log_cannot_give_get_the_follower_a_snapshot_with_one_line(ensemble):
    c = cluster(ensemble, env={"CORRAL_FAULT_WAL_READ_FAIL": "1"})
    lid, fid = write_while_down(ensemble, c)

    c[fid].start()
    state = c.wait_converged(c.ids, timeout=120)
    assert sum(1 for p in state if p.startswith("/ec/n-")) == WRITES
    wait_until(lambda: "receiving the leader's snapshot" in c[fid].log(run=2), 30,
               what=f"server {fid} to receive a snapshot")
    # one line for it (the follower that stayed up may have had its own)
    lines = [ln for ln in c[lid].log().splitlines()
             if UNREADABLE in ln and f"for server {fid} " in ln]
    assert len(lines) == 1, lines
    assert int(c[lid].mntr()["corral_log_entries_read_from_disk"]) == 0
