"""The handshake and sessions, on the wire: new sessions, resume, the expired
answer, timeout negotiation, the readOnly byte, lastZxidSeen, expiry taking
ephemerals, closeSession, ping, and bytes pipelined after the ConnectRequest."""
import struct
import threading
import time

import pytest
from kazoo.client import KazooClient

from jute import Client, connect_request, create_body, frame, jint, path_watch_body

CREATE, EXISTS, PING, CLOSE = 1, 3, 11, -11


def test_resume_on_a_new_connection_keeps_the_session_and_its_ephemeral(server):
    a = Client(server.port)
    first = a.connect()
    assert first["session_id"] != 0 and len(first["passwd"]) == 16
    assert a.call(CREATE, create_body("/eph", flags=1))[2] == 0
    a.close()
    b = Client(server.port)
    again = b.connect(session_id=first["session_id"], passwd=first["passwd"])
    assert again["session_id"] == first["session_id"] and again["timeout"] > 0
    xid, zxid, err, body = b.call(EXISTS, path_watch_body("/eph"))
    assert err == 0
    owner = struct.unpack(">q", body[44:52])[0]  # Stat.ephemeralOwner
    assert owner == first["session_id"]
    b.call(CLOSE)


def test_wrong_password_gets_the_expired_answer_and_a_close(server):
    a = Client(server.port)
    s = a.connect()
    b = Client(server.port)
    r = b.connect(session_id=s["session_id"], passwd=b"\x01" * 16)
    assert (r["timeout"], r["session_id"], r["passwd"]) == (0, 0, b"\x00" * 16)
    assert b.closed_by_server()


@pytest.mark.corral_only
def test_wrong_password_leaves_the_sessions_own_connection_alone(server):
    """An intended difference (README): ZooKeeper closes it too."""
    a = Client(server.port)
    s = a.connect()
    b = Client(server.port)
    b.connect(session_id=s["session_id"], passwd=b"\x01" * 16)
    assert b.closed_by_server()
    assert a.call(EXISTS, path_watch_body("/"))[2] == 0


def test_unknown_session_gets_the_expired_answer(server):
    b = Client(server.port)
    r = b.connect(session_id=0x1234567890, passwd=b"\x00" * 16)
    assert (r["timeout"], r["session_id"]) == (0, 0)
    assert b.closed_by_server()


def test_resume_closes_the_sessions_old_connection(server):
    a = Client(server.port)
    s = a.connect()
    b = Client(server.port)
    assert b.connect(session_id=s["session_id"], passwd=s["passwd"])["session_id"] == s["session_id"]
    assert a.closed_by_server()
    assert b.call(EXISTS, path_watch_body("/"))[2] == 0


def test_timeout_is_negotiated_within_min_and_max(make_server):
    srv = make_server(session={"tick_time_ms": 200, "min_timeout_ms": 1000, "max_timeout_ms": 4000})
    assert Client(srv.port).connect(timeout=10)["timeout"] == 1000
    assert Client(srv.port).connect(timeout=60000)["timeout"] == 4000
    assert Client(srv.port).connect(timeout=2500)["timeout"] == 2500


def test_read_only_byte_is_mirrored(server):
    with_byte = Client(server.port).connect(read_only=False)
    without = Client(server.port).connect(read_only=None)
    assert with_byte["length"] == 37 and without["length"] == 36


def test_last_zxid_beyond_the_servers_closes_without_a_reply(server):
    c = Client(server.port)
    c.send_raw(frame(connect_request(last_zxid=1 << 40)))
    assert c.closed_by_server()


def test_expired_session_takes_its_ephemerals_and_another_client_sees_it(make_server):
    srv = make_server(session={"tick_time_ms": 100, "min_timeout_ms": 500, "max_timeout_ms": 2000})
    a = Client(srv.port)
    s = a.connect(timeout=500)
    assert a.call(CREATE, create_body("/gone", flags=1))[2] == 0
    watcher = KazooClient(hosts=srv.hosts, timeout=10)
    watcher.start()
    try:
        deleted = threading.Event()
        assert watcher.exists("/gone", watch=lambda e: deleted.set() if e.type == "DELETED" else None)
        # a sends nothing more: no pings, so the session expires.
        assert deleted.wait(10), "the ephemeral outlived its session"
        assert watcher.exists("/gone") is None
        r = Client(srv.port).connect(session_id=s["session_id"], passwd=s["passwd"])
        assert r["session_id"] == 0, "an expired session was resumed"
    finally:
        watcher.stop()
        watcher.close()


@pytest.mark.parametrize("target", ["corrald", "zookeeper"])
def test_a_silent_session_expires_at_the_first_tick_after_its_timeout(make_server, target):
    """ZooKeeper's session tracker: a session expires at the first multiple
    of the tick after its last request + its timeout, on the monotonic
    clock (CLOCK_MONOTONIC: Java's nanoTime, corrald's loop and this test's
    time.monotonic() share it), so it lives its timeout and up to one tick
    more. The last request goes out just after a tick begins: expiring at
    the timeout itself (corral did) comes most of a tick too soon."""
    tick, timeout = 1000, 2000
    srv = make_server(target=target, session={"tick_time_ms": tick, "min_timeout_ms": timeout,
                                              "max_timeout_ms": timeout})
    watcher = KazooClient(hosts=srv.hosts, timeout=10)
    watcher.start()
    try:
        a = Client(srv.port)
        assert a.connect(timeout=timeout)["timeout"] == timeout
        time.sleep((tick - time.monotonic() * 1000 % tick + 30) / 1000)
        sent_ms = time.monotonic() * 1000   # 30 ms into a tick
        assert a.call(CREATE, create_body("/gone", flags=1))[2] == 0
        # a sends nothing more. The server took the create after sent_ms
        # (5 ms of slack for a clock read just before it):
        expires_ms = ((int(sent_ms) - 5 + timeout) // tick + 1) * tick
        gone_at = []
        deleted = threading.Event()

        def on_event(e):
            if e.type == "DELETED":
                gone_at.append(time.monotonic() * 1000)
                deleted.set()
        assert watcher.exists("/gone", watch=on_event)
        assert deleted.wait(timeout / 1000 + tick / 1000 + 20), "the session did not expire"
        assert gone_at[0] >= expires_ms, (
            f"expired {expires_ms - gone_at[0]:.0f} ms before the first tick after its "
            f"timeout ({gone_at[0] - sent_ms:.0f} ms after its last request)")
    finally:
        watcher.stop()
        watcher.close()


def test_close_session_replies_then_closes_and_ephemerals_go(server):
    a = Client(server.port)
    a.connect()
    assert a.call(CREATE, create_body("/bye", flags=1))[2] == 0
    xid, _, err, _ = a.call(CLOSE)
    assert err == 0 and xid == a.xid
    assert a.closed_by_server()
    b = Client(server.port)
    b.connect()
    assert b.call(EXISTS, path_watch_body("/bye"))[2] == -101


def test_ping_is_answered_with_xid_minus_two(server):
    c = Client(server.port)
    c.connect()
    c.request(PING, xid=-2)
    assert c.reply()[0] == -2 and c.reply is not None


def test_requests_pipelined_with_the_connect_request_are_all_served_in_order(server):
    c = Client(server.port)
    c.send_raw(frame(connect_request())
               + frame(jint(1) + jint(CREATE) + create_body("/piped"))
               + frame(jint(2) + jint(EXISTS) + path_watch_body("/piped")))
    c.recv_frame()  # the ConnectResponse
    assert c.reply()[:3:2] == (1, 0)
    xid, _, err, _ = c.reply()
    assert (xid, err) == (2, 0)
