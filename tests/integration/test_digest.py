"""The tree's digest, ZooKeeper's (DigestCalculator version 2): the `hash`
word lists it at every zxid that is a multiple of 128, and corrald's mntr
shows it at its last zxid. The digest is computed here from what a client
reads (path, data, stat of every node) and must equal the server's; the
same test runs against Apache ZooKeeper 3.8 (CORRAL_TEST_TARGET=zookeeper),
whose digest is on by default, so corral's is ZooKeeper's, byte for byte."""
import socket
import struct
import zlib

import pytest
from kazoo.client import KazooClient
from kazoo.security import make_acl


def word(srv, w):
    with socket.create_connection((srv.host, srv.port), timeout=5) as s:
        s.sendall(w.encode())
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out.decode()
            out += chunk


def mntr(srv):
    return dict(line.split("\t", 1) for line in word(srv, "mntr").splitlines() if "\t" in line)


def node_digest(path, data, st):
    if path.startswith("/zookeeper/"):
        return 0
    # ZooKeeper keeps the creates under a node (StatPersisted's cversion)
    # and shows a client creates * 2 - children.
    creates = (st.cversion + st.numChildren) // 2
    fields = struct.pack(">qqqqqiiiq", st.czxid, st.mzxid, st.pzxid, st.ctime, st.mtime,
                         st.version, creates, st.aversion, st.ephemeralOwner)
    return zlib.crc32((b"" if path == "/" else path.encode()) + (data or b"") + fields)


def tree_digest(zk):
    total, todo = 0, ["/"]
    while todo:
        path = todo.pop()
        data, st = zk.get(path)
        total += node_digest(path, data, st)
        todo += [("" if path == "/" else path) + "/" + c for c in zk.get_children(path)]
    total &= (1 << 64) - 1
    return total - (1 << 64) if total >= 1 << 63 else total


def hash_log(srv):
    """The `hash` word's lines as {zxid: digest}."""
    out = {}
    for line in word(srv, "hash").splitlines():
        zxid, digest = line.split(": ")
        out[int(zxid, 16)] = int(digest)
    return out


def write_until_multiple_of_128(zk):
    """Writes of every kind, then setData until the last zxid is a multiple of 128."""
    zk.create("/d", b"top")
    zk.create("/d/seq-", b"x" * 100, sequence=True)
    zk.create("/d/eph", b"e", ephemeral=True)
    zk.create("/d/empty")
    for i in range(20):
        zk.create(f"/d/n{i}", str(i).encode())
    for i in range(0, 20, 3):
        zk.delete(f"/d/n{i}")
    zk.set_acls("/d/n1", [make_acl("world", "anyone", all=True)])
    while True:
        st = zk.set("/d", b"v")
        if st.mzxid % 128 == 0:
            return st.mzxid


def test_hash_lists_the_digest_of_the_tree_at_multiples_of_128(make_server):
    srv = make_server(client={"four_letter_words": "*"})
    zk = KazooClient(hosts=srv.hosts)
    zk.start()
    try:
        zxid = write_until_multiple_of_128(zk)
        expected = tree_digest(zk)
        log = hash_log(srv)
        assert log.get(zxid) == expected, (hex(zxid), log)
        assert all(z % 128 == 0 for z in log)
        if srv.target == "corrald":
            m = mntr(srv)
            assert int(m["corral_last_zxid"], 16) == zxid
            assert int(m["corral_digest"]) == expected
    finally:
        zk.stop()
        zk.close()


@pytest.mark.corral_only
def test_digest_is_the_same_after_a_restart(make_server):
    """Recovered from the log (and a snapshot), the tree has the same digest."""
    srv = make_server(client={"four_letter_words": "*"}, storage={"snapshot_entries": 100})
    zk = KazooClient(hosts=srv.hosts)
    zk.start()
    zxid = write_until_multiple_of_128(zk)
    expected = tree_digest(zk)
    zk.stop()
    zk.close()
    before = int(mntr(srv)["corral_digest"])
    srv.stop()
    srv.start()
    assert hash_log(srv).get(zxid) == expected
    zk = KazooClient(hosts=srv.hosts)
    zk.start()
    try:
        assert tree_digest(zk) == int(mntr(srv)["corral_digest"])
    finally:
        zk.stop()
        zk.close()
    assert before != expected   # the session's close deleted /d/eph
