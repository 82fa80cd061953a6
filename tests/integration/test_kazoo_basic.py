"""kazoo's basic API against the server, every Stat field, versions, and the
error codes of the core operations."""
import threading

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import (BadArgumentsError, BadVersionError, NoChildrenForEphemeralsError,
                              NodeExistsError, NoNodeError, NotEmptyError)


@pytest.fixture
def zk(server):
    c = KazooClient(hosts=server.hosts, timeout=10)
    c.start()
    yield c
    c.stop()
    c.close()


def test_create_get_set_children_delete_exists(zk):
    assert zk.create("/a", b"one") == "/a"
    data, st = zk.get("/a")
    assert data == b"one" and st.version == 0 and st.dataLength == 3
    st2 = zk.set("/a", b"two")
    assert st2.version == 1 and st2.mzxid > st.mzxid and st2.czxid == st.czxid
    zk.create("/a/b")
    zk.create("/a/c")
    assert sorted(zk.get_children("/a")) == ["b", "c"]
    assert zk.exists("/a/b") is not None and zk.exists("/nope") is None
    zk.delete("/a/b")
    assert zk.get_children("/a") == ["c"]


def test_empty_data_reads_back_empty(zk):
    zk.create("/empty")  # kazoo sends empty data as a null buffer
    assert zk.get("/empty")[0] == b""


def test_stat_of_a_new_node_and_its_parent(zk):
    zk.create("/p")
    st = zk.create("/p/c", b"xyz", include_data=True)[1]
    assert st.czxid == st.mzxid == st.pzxid
    assert st.ctime == st.mtime and st.ctime > 0
    assert (st.version, st.cversion, st.aversion, st.ephemeralOwner, st.dataLength,
            st.numChildren) == (0, 0, 0, 0, 3, 0)
    parent = zk.exists("/p")
    assert parent.pzxid == st.czxid and parent.numChildren == 1 and parent.cversion == 1
    zk.delete("/p/c")
    parent2 = zk.exists("/p")
    # cversion counts child creates and deletes; pzxid is the last change's zxid
    assert parent2.cversion == 2 and parent2.numChildren == 0 and parent2.pzxid > parent.pzxid


def test_sequential_suffix_counts_creates_under_the_parent(zk):
    zk.create("/seq")
    first = zk.create("/seq/n-", sequence=True)
    assert first == "/seq/n-0000000000"
    zk.delete(first)
    zk.create("/seq/other")
    assert zk.create("/seq/n-", sequence=True) == "/seq/n-0000000002"


def test_ephemeral_belongs_to_its_session_and_takes_no_children(zk):
    path = zk.create("/e", ephemeral=True)
    st = zk.exists(path)
    assert st.ephemeralOwner == zk.client_id[0]
    with pytest.raises(NoChildrenForEphemeralsError):
        zk.create("/e/child")


def test_ensure_path_and_makepath(zk):
    zk.ensure_path("/x/y/z")
    assert zk.exists("/x/y/z")
    zk.create("/m/n/o", b"v", makepath=True)
    assert zk.get("/m/n/o")[0] == b"v"


def test_versions_guard_set_and_delete(zk):
    zk.create("/v", b"0")
    zk.set("/v", b"1", version=0)
    with pytest.raises(BadVersionError):
        zk.set("/v", b"2", version=0)
    zk.set("/v", b"2", version=-1)
    with pytest.raises(BadVersionError):
        zk.delete("/v", version=1)
    zk.delete("/v", version=2)


def test_error_codes_of_the_core_operations(zk):
    with pytest.raises(NoNodeError):
        zk.get("/missing")
    with pytest.raises(NoNodeError):
        zk.set("/missing", b"")
    with pytest.raises(NoNodeError):
        zk.delete("/missing")
    with pytest.raises(NoNodeError):
        zk.create("/missing/child")
    zk.create("/dup")
    with pytest.raises(NodeExistsError):
        zk.create("/dup")
    zk.create("/dup/kid")
    with pytest.raises(NotEmptyError):
        zk.delete("/dup")
    with pytest.raises(BadArgumentsError):
        zk.delete("/zookeeper")


def test_a_read_sees_the_writes_pipelined_before_it(zk):
    futures = [zk.create_async(f"/order{i}", str(i).encode()) for i in range(50)]
    reads = [zk.get_async(f"/order{i}") for i in range(50)]
    assert [f.get(timeout=10) for f in futures] == [f"/order{i}" for i in range(50)]
    assert [r.get(timeout=10)[0] for r in reads] == [str(i).encode() for i in range(50)]


def test_lock_between_two_clients(server):
    a, b = (KazooClient(hosts=server.hosts, timeout=10) for _ in range(2))
    a.start()
    b.start()
    try:
        la, lb = a.Lock("/lock", "a"), b.Lock("/lock", "b")
        assert la.acquire(timeout=10)
        got = threading.Event()
        t = threading.Thread(target=lambda: lb.acquire(timeout=10) and got.set(), daemon=True)
        t.start()
        assert not got.wait(0.3)
        la.release()
        assert got.wait(10)
        lb.release()
        t.join(10)
    finally:
        for c in (a, b):
            c.stop()
            c.close()
