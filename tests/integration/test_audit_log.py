"""The audit log (audit_log: true; server/audit.h): a record for every write
a client asks, when it is answered: who (session, client address,
authenticated users) did what (operation, path, node type, ACL, result),
in ZooKeeper's audit line format (key=value). Reads are not audited; the
log is off by default and a reload (SIGHUP) turns it on."""
import re
import signal
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError, NodeExistsError
from kazoo.security import make_acl

from conftest import yaml_dump, merge

pytestmark = pytest.mark.corral_only

FIELD = re.compile(r"(\w+)=(\S*)")


def records(srv):
    """The audit records in the server's log, each a dict of its fields."""
    out = []
    for line in srv.log_text().splitlines():
        if " operation=" in line and line.startswith("<6>session="):
            out.append(dict(FIELD.findall(line[3:])))
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


def local_address(zk):
    host, port = zk._connection._socket.getsockname()[:2]
    return f"{host}:{port}"


def test_every_write_is_audited_with_who_and_what(make_server):
    srv = make_server(audit_log=True)
    zk = client(srv)
    sid, ip = "0x%x" % zk.client_id[0], local_address(zk)
    try:
        zk.create("/a", b"1")
        seq = zk.create("/a/s-", b"", ephemeral=True, sequence=True)
        zk.set("/a", b"2")
        zk.get("/a")                      # reads are not audited
        zk.exists("/a/none")
        zk.set_acls("/a", [make_acl("world", "anyone", read=True, write=True, create=True,
                                    delete=True, admin=True)])
        with pytest.raises(NodeExistsError):
            zk.create("/a")
        with pytest.raises(NoNodeError):
            zk.delete("/nothing")
        tx = zk.transaction()
        tx.create("/m", b"")
        tx.set_data("/a", b"3")
        tx.commit()
        zk.delete(seq)
        got = wait_records(srv, 9)
    finally:
        zk.stop()
        zk.close()
    want = [
        ("create", "/a", "success"), ("create", seq, "success"), ("setData", "/a", "success"),
        ("setAcl", "/a", "success"), ("create", "/a", "failure"), ("delete", "/nothing", "failure"),
        ("create", "/m", "success"), ("setData", "/a", "success"), ("delete", seq, "success"),
    ]
    assert [(r["operation"], r.get("znode"), r["result"]) for r in got[:9]] == want, got
    for r in got[:9]:
        assert r["session"] == sid and r["ip"] == ip and r["user"] == "127.0.0.1", r
    assert got[0]["znode_type"] == "persistent" and got[0]["acl"] == "world:anyone:rwcda"
    assert got[1]["znode_type"] == "ephemeral_sequential"
    assert got[3]["acl"] == "world:anyone:rwcda"
    assert got[6]["znode_type"] == "persistent"     # a create inside the multi
    assert "acl" not in got[2] and "znode_type" not in got[2]


def test_digest_identities_are_the_user(make_server):
    srv = make_server(audit_log=True)
    zk = client(srv, auth=[("digest", "alice:secret")])
    try:
        zk.create("/private", b"x", acl=[make_acl("auth", "", all=True)])
        got = wait_records(srv, 1)
    finally:
        zk.stop()
        zk.close()
    assert got[0]["user"] == "127.0.0.1,alice", got
    assert got[0]["operation"] == "create" and got[0]["result"] == "success"
    # the ACL as it was stored: the auth scheme made the digest identity
    assert re.fullmatch(r"digest:alice:\S+:rwcda", got[0]["acl"]), got[0]


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
