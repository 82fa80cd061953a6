"""The audit log in an ensemble (server/audit.h): a write is recorded by
the server that holds the client's connection, when it answers it (as
ZooKeeper's FinalRequestProcessor does), whether it prepped the write (the
leader) or forwarded it (a follower); the other servers record nothing."""
from kazoo.exceptions import NoAuthError, NoNodeError
import pytest

from harness import wait_until

def records(server):
    return [dict(f.split("=", 1) for f in line[line.index("session="):].split("\t"))
            for line in server.log().splitlines()
            if "\toperation=" in line and ">session=" in line]


def test_writes_through_a_follower_are_audited_there(ensemble):
    c = ensemble(3, config={"audit_log": True})
    lid = c.first_leader
    fid = c.followers(lid)[0]
    zk = ensemble.kazoo(c.hosts(only=[fid]))
    sid = "0x%x" % zk.client_id[0]
    zk.create("/via-follower", b"x")
    with pytest.raises(NoNodeError):
        zk.delete("/missing")
    got = wait_until(lambda: len(records(c[fid])) >= 2 and records(c[fid]), 10,
                     what="the follower's audit records")
    assert [(r["operation"], r["znode"], r["result"], r["session"]) for r in got] == [
        ("create", "/via-follower", "success", sid), ("delete", "/missing", "failure", sid)]
    for s in c:
        if s.id != fid:
            assert not [r for r in records(s) if r["session"] == sid], s.id


SUPER_DIGEST = "super:D/InIHSb7yEEbrWz8b9l71RjZJU="  # base64(sha1("super:test"))


def test_a_reconfig_is_audited_where_it_was_asked(ensemble):
    """reconfig is a write: recorded as ZooKeeper's AuditHelper records it
    (operation reconfig, znode /zookeeper/config), refused or done."""
    c = ensemble(3, config={"audit_log": True, "ensemble": {"reconfig": True},
                            "auth": {"super_digest": SUPER_DIGEST}})
    lid = c.first_leader
    fid, other = c.followers(lid)
    zk = ensemble.kazoo(c.hosts(only=[fid]))
    sid = "0x%x" % zk.client_id[0]
    with pytest.raises(NoAuthError):
        zk.reconfig(joining=None, leaving=str(other), new_members=None)
    zk.add_auth("digest", "super:test")
    zk.reconfig(joining=None, leaving=str(other), new_members=None)

    def reconfigs():
        got = [r for r in records(c[fid]) if r["operation"] == "reconfig"]
        return len(got) >= 2 and got
    got = wait_until(reconfigs, 10, what="the follower's reconfig records")
    assert [(r["znode"], r["result"], r["session"]) for r in got] == [
        ("/zookeeper/config", "failure", sid), ("/zookeeper/config", "success", sid)]
