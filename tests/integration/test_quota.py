"""Quotas as ZooKeeper 3.8 has them: zkCli.sh's setquota/listquota/delquota
unchanged, /zookeeper/quota/<path>/zookeeper_stats kept by the server,
QUOTAEXCEEDED past a hard limit with enforcement on (corral.yaml
znode.enforce_quota, ZooKeeper's zookeeper.enforceQuota), soft limits only
logged. The same test runs against Apache ZooKeeper (test_quota-zookeeper):
the expected answers below are ZooKeeper's."""
import os
import re

import pytest
from kazoo import exceptions as kazoo_exceptions

import harness
from test_zookeeper_formats import ZKCLI, zkcli_session



# kazoo knows no QUOTAEXCEEDED (-125, ZooKeeper 3.7+): without this its
# connection thread dies on the reply.
@kazoo_exceptions._zookeeper_exception(-125)
class QuotaExceededError(kazoo_exceptions.ZookeeperError):
    pass


STATS = "/zookeeper/quota/q/zookeeper_stats"
LIMITS = "/zookeeper/quota/q/zookeeper_limits"


def listquota(limits, stats):
    return ["absolute path is /zookeeper/quota/q/zookeeper_limits",
            f"Output quota for /q {limits}", f"Output stat for /q {stats}"]


# (command, its output), as zkCli.sh 3.8 prints it against ZooKeeper 3.8
# with zookeeper.enforceQuota=true.
ZKCLI_SCRIPT = [
    ("create /q a", ["Created /q"]),
    ("create /q/x hello", ["Created /q/x"]),
    ("setquota -n 5 /q", []),
    ("listquota /q", listquota("count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=-1",
                               "count=2,bytes=6")),
    (f"get {STATS}", ["count=2,bytes=6"]),
    ("setquota -B 100 /q", []),
    ("setquota -N 3 /q", []),
    (f"get {LIMITS}", ["count=5,bytes=-1=;byteHardLimit=100;countHardLimit=3"]),
    ("create /q/y 1234567890", ["Created /q/y"]),
    ("set /q/x hi", []),
    ("listquota /q", listquota("count=5,bytes=-1=;byteHardLimit=100;countHardLimit=3",
                               "count=3,bytes=13")),
    ("delete /q/y", []),
    ("create /q/x/z", ["Created /q/x/z"]),
    ("create /q/x/w", ["Quota has exceeded : /q/x/w"]),
    ("listquota /q", listquota("count=5,bytes=-1=;byteHardLimit=100;countHardLimit=3",
                               "count=3,bytes=3")),
    ("set /q/x " + "0123456789" * 10, ["Quota has exceeded : /q/x"]),
    ("setquota -n 2 /q/x", ["/q/x has a parent /q which has a quota"]),
    ("setquota -n 2 /nope", ["/nope does not exist."]),
    ("listquota /nope", ["absolute path is /zookeeper/quota/nope/zookeeper_limits",
                         "quota for /nope does not exist."]),
    ("delquota -N /q", []),
    ("listquota /q", listquota("count=5,bytes=-1=;byteHardLimit=100;countHardLimit=-1",
                               "count=3,bytes=3")),
    ("delquota /q", []),
    ("listquota /q", ["absolute path is /zookeeper/quota/q/zookeeper_limits",
                      "quota for /q does not exist."]),
    ("ls /zookeeper/quota/q", ["Node does not exist: /zookeeper/quota/q"]),
]


def stats(zk):
    return zk.get(STATS)[0].decode()


@pytest.fixture
def client():
    made = []

    def make(srv):
        zk = harness.make_kazoo(srv.hosts)
        made.append(zk)
        zk.start(timeout=30)
        return zk

    yield make
    harness.stop_kazoo(made)


def test_zkcli_setquota_listquota_delquota(make_server):
    if not os.access(ZKCLI, os.X_OK):
        pytest.fail(f"{ZKCLI} is missing (Debian: zookeeper)")
    srv = make_server(znode={"enforce_quota": True})
    got = zkcli_session(srv, [c for c, _ in ZKCLI_SCRIPT])
    differ = [f"{c}\n  want: {want}\n  got:  {g}"
              for (c, want), g in zip(ZKCLI_SCRIPT, got) if g != want]
    assert not differ, "zkCli.sh answers differ from ZooKeeper's:\n" + "\n".join(differ)


def set_quota(zk, limits):
    """As zkCli.sh's setquota writes it: the limits, then the stats node
    (which the server fills in from the subtree)."""
    zk.ensure_path("/zookeeper/quota/q")
    zk.create(LIMITS, limits.encode())
    zk.create(STATS, b"count=0,bytes=0")


def test_hard_limits_refuse_with_enforcement_on(make_server, client):
    srv = make_server(znode={"enforce_quota": True})
    zk = client(srv)
    zk.create("/q", b"ab")
    zk.create("/q/a", b"")
    set_quota(zk, "count=-1,bytes=-1=;byteHardLimit=10;countHardLimit=3")
    assert stats(zk) == "count=2,bytes=2"
    zk.create("/q/b", b"1234")
    assert stats(zk) == "count=3,bytes=6"
    # the count's hard limit: a fourth node, even an empty one, anywhere below
    with pytest.raises(QuotaExceededError):
        zk.create("/q/a/c", b"")
    # the bytes' hard limit: setData growing past it, a create too (the count
    # is raised first so only the bytes stand in the way)
    with pytest.raises(QuotaExceededError):
        zk.set("/q/b", b"123456789")
    zk.set(LIMITS, b"count=-1,bytes=-1=;byteHardLimit=10;countHardLimit=100")
    with pytest.raises(QuotaExceededError):
        zk.create("/q/c", b"12345")
    tx = zk.transaction()
    tx.create("/q/d", b"1")
    tx.create("/q/e", b"1234567")
    results = tx.commit()
    assert isinstance(results[1], QuotaExceededError), results
    assert zk.exists("/q/d") is None and zk.exists("/q/c") is None
    assert zk.get("/q/b")[0] == b"1234"
    # what fits still goes; shrinking and deleting always do
    zk.create("/q/c", b"1234")
    zk.set("/q/b", b"")
    zk.delete("/q/c")
    assert stats(zk) == "count=3,bytes=2"
    # outside the quota nothing is counted or refused
    zk.create("/other", b"x" * 100)
    assert stats(zk) == "count=3,bytes=2"


def test_hard_limits_only_counted_with_enforcement_off(make_server, client):
    srv = make_server()
    zk = client(srv)
    zk.create("/q")
    set_quota(zk, "count=-1,bytes=-1=;byteHardLimit=5;countHardLimit=2")
    for i in range(3):
        zk.create(f"/q/n{i}", b"1234")
    assert stats(zk) == "count=4,bytes=12"


def test_soft_limits_are_logged_not_refused(make_server, client):
    srv = make_server(znode={"enforce_quota": True})
    zk = client(srv)
    zk.create("/q")
    set_quota(zk, "count=2,bytes=4")
    for i in range(3):
        zk.create(f"/q/n{i}", b"12")
    zk.set("/q/n0", b"123456")
    assert stats(zk) == "count=4,bytes=10"
    if srv.target == "corrald":
        harness.wait_until(lambda: "Quota exceeded: /q [current count=3, softCountLimit=2]"
                           in srv.log_text(), 10, what="the soft limit logged")
        assert "softByteLimit=4]" in srv.log_text()


def test_stats_after_restart_and_quota_removed(make_server, client):
    srv = make_server(znode={"enforce_quota": True})
    zk = client(srv)
    zk.create("/q", b"1")
    set_quota(zk, "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=4")
    zk.create("/q/a", b"22")
    zk.create("/q/a/b", b"333")
    zk.delete("/q/a/b")
    zk.create("/q/c", b"4444")
    want = stats(zk)
    assert want == "count=3,bytes=7"
    zk.stop()
    srv.restart()
    zk = client(srv)
    assert stats(zk) == want
    # the limit holds after the restart: 3 nodes, one more is the fourth
    zk.create("/q/d")
    with pytest.raises(QuotaExceededError):
        zk.create("/q/e")
    # without its limits node the quota is gone: nothing counted or refused
    zk.delete(LIMITS)
    zk.create("/q/e", b"55555")
    assert stats(zk) == "count=4,bytes=7"


@pytest.mark.corral_only
def test_stats_after_restart_from_a_snapshot(make_server, client):
    """A snapshot every 100 txns: the restart loads one (the stats are
    computed again from its tree) and replays the log after it."""
    srv = make_server(storage={"snapshot_entries": 100})
    zk = client(srv)
    zk.create("/q")
    set_quota(zk, "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=1000")
    for i in range(150):
        zk.create(f"/q/n{i}", b"x" * (i % 7))
    for i in range(0, 150, 3):
        zk.delete(f"/q/n{i}")
    snaps = os.path.join(srv.data_dir, "snap")
    harness.wait_until(lambda: os.path.isdir(snaps) and os.listdir(snaps), 30,
                       what="a snapshot taken")
    want = stats(zk)
    assert want == f"count=101,bytes={sum(i % 7 for i in range(150) if i % 3)}"
    zk.stop()
    srv.restart()
    zk = client(srv)
    assert "loaded the snapshot at index" in srv.log(), srv.log()
    assert stats(zk) == want


# mntr's quota figures (ZooKeeper has other figures per namespace: bytes
# read and written, not quotas')
QUOTA_FIGURE = re.compile(r"zk_.*_quota_\w+_per_namespace$")


def quota_on(zk, path, limits):
    zk.ensure_path(f"/zookeeper/quota{path}")
    zk.create(f"/zookeeper/quota{path}/zookeeper_limits", limits.encode())
    zk.create(f"/zookeeper/quota{path}/zookeeper_stats", b"count=0,bytes=0")


def test_mntr_gives_limits_usage_and_refusals_per_namespace(make_server, client):
    """ZooKeeper's quota metrics: per namespace (the first component of a
    quota's path), the limits of its quotas summed (the hard limit where one
    is set, else the soft), their usage summed, and the writes refused past
    a hard limit."""
    srv = make_server(znode={"enforce_quota": True}, client={"four_letter_words": "*"})
    zk = client(srv)
    zk.create("/a/x", b"hello", makepath=True)
    zk.create("/a/y", b"")
    zk.create("/b", b"")
    assert {k: v for k, v in srv.mntr().items() if QUOTA_FIGURE.match(k)} == {}
    quota_on(zk, "/a/x", "count=-1,bytes=100=;byteHardLimit=-1;countHardLimit=2")
    quota_on(zk, "/a/y", "count=10,bytes=-1")
    quota_on(zk, "/b", "count=5,bytes=-1=;byteHardLimit=4;countHardLimit=-1")
    zk.create("/a/x/1", b"")
    with pytest.raises(QuotaExceededError):
        zk.create("/a/x/2", b"")
    with pytest.raises(QuotaExceededError):
        zk.set("/b", b"12345")
    with pytest.raises(QuotaExceededError):
        zk.set("/b", b"123456")
    got = {k: int(v) for k, v in srv.mntr().items() if QUOTA_FIGURE.match(k)}
    assert got == {
        "zk_a_quota_count_limit_per_namespace": 2 + 10,
        "zk_a_quota_bytes_limit_per_namespace": 100 - 1,
        "zk_a_quota_count_usage_per_namespace": 2 + 1,
        "zk_a_quota_bytes_usage_per_namespace": 5 + 0,
        "zk_b_quota_count_limit_per_namespace": 5,
        "zk_b_quota_bytes_limit_per_namespace": 4,
        "zk_b_quota_count_usage_per_namespace": 1,
        "zk_b_quota_bytes_usage_per_namespace": 0,
        "zk_a_quota_exceeded_error_per_namespace": 1,
        "zk_b_quota_exceeded_error_per_namespace": 2,
    }, got
    # srst zeroes the refusals; the limits and usage are the tree's
    assert "reset" in srv.four_letter("srst")
    got = {k: int(v) for k, v in srv.mntr().items() if QUOTA_FIGURE.match(k)}
    assert got["zk_a_quota_exceeded_error_per_namespace"] == 0, got
    assert got["zk_a_quota_count_usage_per_namespace"] == 3
