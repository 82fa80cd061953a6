"""The audit log (corrald: audit_log: true, server/audit.h; ZooKeeper:
zookeeper.audit.enable=true): a record for every write a client asks, when
it is answered: who (session, authenticated users, client address) did
what (operation, path, node type, ACL, result), as ZooKeeper's
tab-separated key=value line; and one per ephemeral node a session's end
deletes. The same tests run against ZooKeeper 3.8 (CORRAL_TEST_TARGET=
zookeeper) and pass there, but for what is marked corrald's own. Reads are
not audited; corrald's log is off by default and a reload turns it on."""
import signal
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError, NodeExistsError
from kazoo.security import make_acl

from conftest import merge


def records(srv):
    """The audit records in the server's output, each a dict of its fields."""
    out = []
    for line in srv.log_text().splitlines():
        if "session=" in line and "\toperation=" in line:
            fields = line[line.index("session="):].split("\t")
            out.append(dict(f.split("=", 1) for f in fields))
    return out


def wait_records(srv, count, timeout=10):
    end = time.monotonic() + timeout
    while True:
        got = records(srv)
        if len(got) >= count or time.monotonic() > end:
            return got
        time.sleep(0.05)


def client(srv, auth=None):
    zk = KazooClient(hosts=srv.hosts, auth_data=auth)
    zk.start()
    return zk


def test_every_write_is_audited_with_who_and_what(make_server):
    srv = make_server(audit_log=True)
    zk = client(srv)
    sid = "0x%x" % zk.client_id[0]
    try:
        zk.create("/a", b"1")
        seq = zk.create("/a/s-", b"", ephemeral=True, sequence=True)
        zk.set("/a", b"2")
        zk.get("/a")                      # reads are not audited
        zk.exists("/a/none")
        zk.set_acls("/a", [make_acl("world", "anyone", read=True, write=True)])
        with pytest.raises(NodeExistsError):
            zk.create("/a")
        with pytest.raises(NoNodeError):
            zk.delete("/nothing")
        tx = zk.transaction()
        tx.create("/m", b"")
        tx.set_data("/a", b"3")
        tx.commit()
        tx = zk.transaction()
        tx.create("/m", b"")
        tx.commit()                       # fails: NODEEXISTS
        zk.delete("/m")
    finally:
        zk.stop()                         # its end deletes the ephemeral
        zk.close()
    got = wait_records(srv, 12)
    want = [
        ("create", "/a", "success"), ("create", seq, "success"), ("setData", "/a", "success"),
        ("setAcl", "/a", "success"), ("create", "/a", "failure"), ("delete", "/nothing", "failure"),
        ("create", "/m", "success"), ("setData", "/a", "success"),
        ("multiOperation", None, "failure"), ("delete", "/m", "success"),
        ("ephemeralZNodeDeletionOnSessionCloseOrExpire", seq, "success"),
    ]
    assert [(r["operation"], r.get("znode"), r["result"]) for r in got] == want, got
    for r in got[:10]:
        assert r["session"] == sid and r["ip"] == "127.0.0.1" and r["user"] == "127.0.0.1", r
    # the server deleted the ephemeral: no client address, the server's user
    assert got[10]["session"] == sid and "ip" not in got[10] and got[10]["user"], got[10]
    assert got[0]["znode_type"] == "persistent"
    assert got[1]["znode_type"] == "ephemeral_sequential"
    assert got[3]["acl"] == "world:anyone:rw"
    assert got[4]["znode_type"] == "persistent"     # a failed create says what was asked
    assert got[6]["znode_type"] == "persistent"     # a create inside the multi
    assert "acl" not in got[2] and "znode_type" not in got[2]
    if srv.target == "corrald":
        # corrald also gives a create's ACL (ZooKeeper only setAcl's)
        assert got[0]["acl"] == "world:anyone:rwcda"


def test_digest_identities_are_users(make_server):
    srv = make_server(audit_log=True)
    zk = client(srv, auth=[("digest", "alice:secret")])
    try:
        zk.create("/private", b"x", acl=[make_acl("auth", "", all=True)])
        zk.set_acls("/private", [make_acl("auth", "", read=True, admin=True)])
        got = wait_records(srv, 2)
    finally:
        zk.stop()
        zk.close()
    assert got[0]["user"] == "alice,127.0.0.1", got
    assert (got[0]["operation"], got[0]["result"]) == ("create", "success")
    acl = got[1]["acl"].split(":")
    if srv.target == "corrald":
        # the ACL as stored: the auth scheme became the digest identity
        assert acl[:2] == ["digest", "alice"] and acl[-1] == "ra", got[1]
    else:
        # ZooKeeper's: as the request had it
        assert got[1]["acl"] == "auth:null:ra", got[1]


@pytest.mark.corral_only
def test_off_by_default_and_on_after_a_reload(make_server):
    srv = make_server()
    zk = client(srv)
    try:
        zk.create("/before", b"")
        assert records(srv) == []
        # audit_log: true in the file, then SIGHUP
        srv.overrides = merge(srv.overrides, {"audit_log": True})
        srv.command()        # rewrites corral.yaml
        srv.proc.send_signal(signal.SIGHUP)
        end = time.monotonic() + 10
        while "the audit log is on" not in srv.log_text():
            assert time.monotonic() < end, srv.log_text()[-2000:]
            time.sleep(0.05)
        zk.create("/after", b"")
        got = wait_records(srv, 1)
    finally:
        zk.stop()
        zk.close()
    assert [(r["operation"], r["znode"]) for r in got] == [("create", "/after")], got
