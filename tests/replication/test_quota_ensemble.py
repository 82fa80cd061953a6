"""Quotas in an ensemble: every member keeps the same zookeeper_stats (the
txns change them as they apply, no write of their own), refuses past a hard
limit whichever member the write came to, and the digest check finds no
difference between members (nodes under /zookeeper/ are outside the digest)."""
import pytest
from kazoo import exceptions as kazoo_exceptions

from harness import wait_until

STATS = "/zookeeper/quota/q/zookeeper_stats"
LIMITS = "/zookeeper/quota/q/zookeeper_limits"


@kazoo_exceptions._zookeeper_exception(-125)
class QuotaExceededError(kazoo_exceptions.ZookeeperError):
    pass


def test_stats_are_the_same_on_every_member_and_enforced_everywhere(ensemble):
    c = ensemble(3, config={"znode": {"enforce_quota": True}})
    lid = c.first_leader
    follower = c.followers(lid)[0]
    zk = ensemble.kazoo(c.hosts(only=[lid]))
    zf = ensemble.kazoo(c.hosts(only=[follower]))
    zk.create("/q", b"1")
    zk.ensure_path("/zookeeper/quota/q")
    zk.create(LIMITS, b"count=-1,bytes=-1=;byteHardLimit=1000;countHardLimit=39")
    zk.create(STATS, b"count=0,bytes=0")
    for i in range(38):
        (zk if i % 2 else zf).create(f"/q/n{i}", b"ab")
    zf.set("/q/n0", b"abcd")
    zk.delete("/q/n1")
    zf.create("/q/n1", b"")
    with pytest.raises(QuotaExceededError):
        zf.create("/q/over")
    with pytest.raises(QuotaExceededError):
        zk.create("/q/over")
    want = "count=39,bytes=77"
    assert zk.get(STATS)[0].decode() == want

    clients = {s.id: ensemble.kazoo(c.hosts(only=[s.id])) for s in c}

    def everywhere():
        seen = {sid: z.get(STATS)[0].decode() for sid, z in clients.items()}
        return all(v == want for v in seen.values()) or None
    wait_until(everywhere, 30, what="the same stats on every member")
    # past DIGEST_CHECK_TXNS more txns the followers compared digests: equal
    for i in range(20):
        zk.set("/q/n2", str(i % 10).encode())
    for sid in c.followers(lid):
        m = wait_until(lambda: (lambda m: int(m["corral_digest_checks"]) > 0 and m)(c[sid].mntr()),
                       10, what=f"server {sid} to check a digest")
        assert m["zk_digest_mismatches_count"] == "0", m
        assert m["corral_digest_diverged"] == "0", m
