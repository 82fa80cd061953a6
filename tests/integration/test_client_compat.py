"""What client libraries see of the server beyond the protocol's records:
the version they parse and gate features on, and SASL without a mechanism.
Each test drives kazoo as an application would and passes against corrald
and against Apache ZooKeeper 3.8 (CORRAL_TEST_TARGET=zookeeper).

- kazoo's server_version() reads the leading digits of envi's
  zookeeper.version; clients gate features on it (kazoo's own tests skip
  transactions, create(include_data=True), LockingQueue and reconfig below
  3.4/3.5). The server answers with the ZooKeeper version whose protocol it
  serves, in srvr, stat, mntr and envi alike, in ZooKeeper's shape
  "X.Y.Z-REVISION, built on DATE"; corral puts its own name and version
  where ZooKeeper has its git revision.
- A client configured for SASL DIGEST-MD5 against a server with no SASL
  mechanism ends in AUTH_FAILED and stops (ZooKeeper, after its session
  expires; corral at once), instead of looping on empty challenges.
- mntr's figures per namespace (the first component of a path), which
  monitoring reads: the bytes of each change applied and of each read
  answered, summed as ZooKeeper's DataTree sums them.
"""
import logging
import re
import socket
import threading
import time

import pytest
from kazoo.client import KazooClient
from kazoo.protocol.states import KeeperState

from conftest import TARGET

logging.getLogger("kazoo").setLevel(logging.CRITICAL)

VERSION_SHAPE = re.compile(r"^(\d+)\.(\d+)\.(\d+)-\S+, built on \S.*$")


def word(server, w, timeout=5.0):
    with socket.create_connection((server.host, server.port), timeout=timeout) as s:
        s.sendall(w.encode())
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                return b"".join(chunks).decode()
            chunks.append(b)


def wait_for(pred, timeout, what):
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def kazoo(server):
    clients = []

    def make(**kw):
        zk = KazooClient(hosts=server.hosts, timeout=10, **kw)
        clients.append(zk)
        return zk

    yield make
    for zk in clients:
        t = threading.Thread(target=lambda zk=zk: (zk.stop(), zk.close()), daemon=True)
        t.start()
        t.join(15)


def test_kazoo_server_version_is_the_zookeeper_release_whose_protocol_is_served(server, kazoo):
    zk = kazoo()
    zk.start(15)
    version = zk.server_version()
    # kazoo raises "Unable to fetch useable server version" when envi's
    # zookeeper.version has no leading digits
    assert version[:2] == (3, 8), version
    assert len(version) == 3


def test_srvr_stat_mntr_and_envi_carry_one_version_in_zookeepers_shape(server):
    srvr = word(server, "srvr").splitlines()[0]
    stat = word(server, "stat").splitlines()[0]
    mntr = dict(line.split("\t", 1) for line in word(server, "mntr").splitlines() if "\t" in line)
    envi = dict(line.split("=", 1) for line in word(server, "envi").splitlines() if "=" in line)
    assert srvr.startswith("Zookeeper version: "), srvr
    version = srvr[len("Zookeeper version: "):]
    assert stat == srvr
    assert mntr["zk_version"] == version
    assert envi["zookeeper.version"] == version
    m = VERSION_SHAPE.match(version)
    assert m, f"{version!r} is not 'X.Y.Z-REVISION, built on DATE'"
    assert (int(m.group(1)), int(m.group(2))) == (3, 8)


@pytest.mark.corral_only
def test_corral_names_itself_where_zookeeper_has_its_revision(server):
    version = word(server, "srvr").splitlines()[0][len("Zookeeper version: "):]
    assert re.match(r"^3\.8\.\d+-corral-\d+\.\d+\.\d+, built on \d{4}-\d\d-\d\d \d\d:\d\d UTC$",
                    version), version


def test_what_kazoo_gates_on_the_server_version_works(server, kazoo):
    """kazoo's tests gate transactions (3.4), create(include_data=True) and
    reconfig (3.5) and the locking queue (3.4) on server_version(): with the
    version read, each works."""
    zk = kazoo()
    zk.start(15)
    version = zk.server_version()
    assert version >= (3, 5), version
    t = zk.transaction()
    t.create("/tx", b"a")
    t.create("/tx/child", b"b")
    t.check("/tx", 0)
    t.set_data("/tx", b"c")
    results = t.commit()
    assert results[:2] == ["/tx", "/tx/child"], results
    assert results[2] is True
    assert results[3].version == 1
    assert zk.get("/tx")[0] == b"c"

    path, stat = zk.create("/with-stat", b"bytes", include_data=True)
    data, stat2 = zk.get("/with-stat")
    assert (path, data) == ("/with-stat", b"bytes")
    assert stat == stat2

    queue = zk.LockingQueue("/lq")
    queue.put(b"one")
    queue.put(b"two")
    assert queue.get(5) == b"one"
    assert queue.consume()
    assert queue.get(5) == b"two"
    assert queue.consume()


def test_sasl_digest_md5_without_sasl_on_the_server_ends_in_auth_failed_and_stops(server):
    """kazoo's DIGEST-MD5 answers every empty challenge with an empty
    response: against a server that answers SASL with a null token and no
    error it loops, and its connection thread never ends (stop() hangs).
    The server must fail the authentication instead: the client sees
    AUTH_FAILED, stops connecting, and stop() returns."""
    states = []
    sent = []
    zk = KazooClient(hosts=server.hosts, timeout=2.0,
                     sasl_options={"mechanism": "DIGEST-MD5", "username": "alice",
                                   "password": "secret"},
                     connection_retry={"max_tries": -1, "delay": 0.05, "backoff": 1})
    zk.add_listener(states.append)
    submit = zk._connection._submit

    def counting_submit(request, timeout, xid=None):
        if type(request).__name__ == "SASL":
            sent.append(time.monotonic())
        return submit(request, timeout, xid)

    zk._connection._submit = counting_submit
    keeper_states = []
    session_callback = zk._session_callback

    def recording_callback(state):
        keeper_states.append(state)
        return session_callback(state)

    zk._session_callback = recording_callback
    try:
        zk.start_async()
        # ZooKeeper lets the session expire first (2 s here); corral fails it
        wait_for(lambda: KeeperState.AUTH_FAILED in keeper_states, 30,
                 "the client to reach AUTH_FAILED")
        wait_for(zk._connection.connection_stopped.is_set, 10,
                 "kazoo's connection thread to stop")
    finally:
        stopper = threading.Thread(target=lambda: (zk.stop(), zk.close()), daemon=True)
        stopper.start()
        stopper.join(15)
    assert not stopper.is_alive(), "stop() hung"
    assert sent, "the client never sent a SASL request"
    assert states[-1] == "LOST", states
    if TARGET == "corrald":
        # no loop: the first SASL request is answered AUTHFAILED
        assert len(sent) == 1, f"{len(sent)} SASL requests"


def namespace_figures(server, namespaces):
    """mntr's read/write_per_namespace rows of the given namespaces."""
    rows = {}
    for line in word(server, "mntr").splitlines():
        name, _, value = line.partition("\t")
        m = re.match(r"zk_(avg|min|max|cnt|sum)_(\w+)_(read|write)_per_namespace$", name)
        if m and m.group(2) in namespaces:
            rows[name] = float(value) if m.group(1) == "avg" else int(value)
    return rows


def test_mntr_sums_the_bytes_written_and_read_per_namespace(server, kazoo):
    """A change applied counts its path's length and its data's (a delete,
    the path's); a read answered, the path's, what it returned (data, or
    the children's names) and 68; a read that fails counts nothing."""
    zk = kazoo()
    zk.start(30)
    zk.create("/ns", b"abc")                 # 3 + 3
    zk.create("/ns/child", b"hello")         # 9 + 5
    zk.set("/ns", b"abcdefgh")               # 3 + 8
    zk.delete("/ns/child")                   # 9
    zk.create("/other/x", makepath=True)     # /other: 6, /other/x: 8
    assert zk.get("/ns")[0] == b"abcdefgh"   # 3 + 8 + 68
    assert zk.exists("/ns")                  # 3 + 68
    assert zk.get_children("/other") == ["x"]    # 6 + 1 + 68
    assert zk.exists("/ns/none") is None     # not counted
    got = namespace_figures(server, {"ns", "other"})
    assert got == {
        "zk_avg_ns_write_per_namespace": 10.0, "zk_min_ns_write_per_namespace": 6,
        "zk_max_ns_write_per_namespace": 14, "zk_cnt_ns_write_per_namespace": 4,
        "zk_sum_ns_write_per_namespace": 40,
        "zk_avg_other_write_per_namespace": 7.0, "zk_min_other_write_per_namespace": 6,
        "zk_max_other_write_per_namespace": 8, "zk_cnt_other_write_per_namespace": 2,
        "zk_sum_other_write_per_namespace": 14,
        "zk_avg_ns_read_per_namespace": 75.0, "zk_min_ns_read_per_namespace": 71,
        "zk_max_ns_read_per_namespace": 79, "zk_cnt_ns_read_per_namespace": 2,
        "zk_sum_ns_read_per_namespace": 150,
        "zk_avg_other_read_per_namespace": 75.0, "zk_min_other_read_per_namespace": 75,
        "zk_max_other_read_per_namespace": 75, "zk_cnt_other_read_per_namespace": 1,
        "zk_sum_other_read_per_namespace": 75,
    }, got
