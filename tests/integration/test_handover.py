"""Restarts that keep client connections (issue 17), with a stand-in for
systemd's fd store (fakestore.py): what corrald stores on SIGTERM and takes
back at start, and what it refuses. The same under the real systemd, with
the package's unit, is tests/service/test_fdstore.py.

Outside systemd (no $NOTIFY_SOCKET) corrald stops as before: the other
suites prove that.
"""
import os
import signal
import socket
import struct

import pytest

import harness
from fakestore import FakeFdStore

pytestmark = pytest.mark.corral_only


def conns(store):
    return [n for n in store.names() if n.startswith("conn-")]


class Served:
    """A corrald whose runs go through one fake fd store."""

    def __init__(self, tmp):
        self.store = FakeFdStore(tmp)
        self.srv = harness.Corrald(tmp, config={"log_level": "debug",
                                                "session": {"tick_time_ms": 200}})
        self.srv.prepare()
        self.logs = []
        self.proc = None

    def start(self):
        path = os.path.join(self.srv.workdir, f"run{len(self.logs) + 1}.log")
        self.logs.append(path)
        with open(path, "wb") as f:
            self.proc = self.store.spawn(self.srv.argv(), harness.clean_env(), f)
        harness.wait_until(lambda: harness.answers_ruok("127.0.0.1", self.srv.port), 30,
                           what="corrald to answer", detail=self.log)
        return self

    def stop(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)
        rc = self.proc.wait(30)
        assert rc == (0 if sig == signal.SIGTERM else -sig), self.log()

    def log(self, run=-1):
        with open(self.logs[run], errors="replace") as f:
            return f.read()

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.store.close()
        for path in self.logs:
            with open(path, errors="replace") as f:
                text = f.read()
            for report in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                assert report not in text, text


@pytest.fixture
def served(tmp_path):
    s = Served(tmp_path)
    yield s.start()
    s.close()


@pytest.fixture
def kazoo(served):
    zk = harness.make_kazoo(served.srv.hosts, timeout=30)
    states = []
    zk.add_listener(lambda st: states.append(str(st)))
    zk.start(30)
    states.clear()      # its first CONNECTED
    zk.states = states
    yield zk
    harness.stop_kazoo([zk], raise_stuck=False)


def test_restarts_keep_the_session_the_requests_and_the_watches(served, kazoo):
    sid = kazoo.client_id[0]
    kazoo.create("/eph", b"e", ephemeral=True)
    kazoo.create("/w", b"0")
    events = []
    kazoo.get("/w", watch=events.append)
    answered = []
    for run in range(2):
        served.proc.send_signal(signal.SIGTERM)
        # pipelined while the old process freezes and the new one starts
        pending = [kazoo.create_async(f"/r{run}-{i}", b"v") for i in range(100)]
        for i, a in enumerate(pending):
            a.rawlink(lambda _, i=i: answered.append((run, i)))
        assert served.proc.wait(30) == 0
        assert "handed over to systemd's fd store" in served.log()
        assert len(conns(served.store)) == 1 and "state" in served.store.names()
        served.start()
        assert [a.get(30) for a in pending] == [f"/r{run}-{i}" for i in range(100)]
        assert "1 client connections taken over from the previous process (0 closed)" \
            in served.log()
        # the image was read and left the store; the connection stays in it
        harness.wait_until(lambda: "state" not in served.store.names(), 10,
                           what="the state to leave the store")
    assert answered == [(r, i) for r in range(2) for i in range(100)]
    kazoo.set("/w", b"1")
    harness.wait_until(lambda: events, 10, what="the watch to fire")
    assert events[0].type == "CHANGED" and events[0].path == "/w"
    assert kazoo.states == [] and kazoo.client_id[0] == sid and kazoo.exists("/eph")


def only_the_connection_stored(served):
    """After a restart: the listening socket leaves the store once corrald
    listens again. Its FDSTOREREMOVE is a datagram the store's thread reads
    on its own time, so this waits for it rather than expecting it at once."""
    harness.wait_until(lambda: "listen" not in served.store.names(), 10,
                       what="the listening socket to leave the store")
    assert len(conns(served.store)) == 1 and served.store.names() == conns(served.store)


def newer_version(image):
    assert image[:8] == b"CORRALHO" and struct.unpack_from("!i", image, 8)[0] == 1
    struct.pack_into("!i", image, 8, 2)     # a newer corrald's format


def damaged(image):
    image[-3] ^= 0x10       # a bit of the last record


@pytest.mark.parametrize("change, why", [
    (newer_version, "the state's format version is not one this corrald reads"),
    (damaged, "the state is damaged (length or checksum)"),
])
def test_a_state_it_cannot_read_closes_the_connections_cleanly(served, kazoo, change, why):
    kazoo.create("/before", b"v")
    served.stop()
    with served.store.lock:
        (i, fd), = [(i, fd) for i, (n, fd) in enumerate(served.store.kept) if n == "state"]
        image = bytearray(os.pread(fd, 1 << 20, 0))
        change(image)
        other = os.memfd_create("other")
        os.write(other, image)
        os.close(fd)
        served.store.kept[i] = ("state", other)
    served.start()
    assert f"client connections from systemd's fd store closed: {why}" in served.log()
    # the client saw a close, and came back to its session
    harness.wait_until(lambda: "SUSPENDED" in kazoo.states and kazoo.connected, 30,
                       what="kazoo to reconnect")
    assert kazoo.get("/before")[0] == b"v"
    harness.wait_until(lambda: served.store.names() == [], 10, what="the store to be empty")


def test_after_kill_9_the_stored_connections_are_closed_and_leave_the_store(served, kazoo):
    served.stop()
    served.start()
    only_the_connection_stored(served)
    kazoo.create("/acked", b"v")
    served.stop(signal.SIGKILL)
    served.start()
    assert "client connections from systemd's fd store closed: no state was written" \
        in served.log()
    harness.wait_until(lambda: served.store.names() == [], 10, what="the store to be empty")
    harness.wait_until(lambda: "SUSPENDED" in kazoo.states and kazoo.connected, 30,
                       what="kazoo to reconnect")
    assert kazoo.get("/acked")[0] == b"v"


def test_a_stored_connection_closed_by_its_client_leaves_the_store(served, kazoo):
    served.stop()
    served.start()
    only_the_connection_stored(served)
    kazoo.stop()
    harness.wait_until(lambda: served.store.names() == [], 10, what="the store to be empty")


def test_the_listening_socket_is_kept_and_a_connection_made_meanwhile_is_served(served):
    served.stop()
    assert "listen" in served.store.names()
    # no corrald runs: the kept socket's backlog takes the connection
    with socket.create_connection(("127.0.0.1", served.srv.port), 5) as s:
        s.sendall(b"ruok")
        served.start()
        s.settimeout(10)
        assert s.recv(4) == b"imok"
    assert "cannot listen" not in served.log()
    harness.wait_until(lambda: "listen" not in served.store.names(), 10,
                       what="the listening socket to leave the store once used")
