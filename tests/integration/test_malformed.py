"""Bad input closes that one connection, with one log line, and costs
nothing else: a client connected before keeps working, new clients connect."""
import os
import random
import struct
import time

import pytest
from kazoo.client import KazooClient

from jute import Client, frame, jbuf, jint, jstr, path_watch_body

CONFIG = {"client": {"max_frame_bytes": 4096, "max_connections_per_address": 50}}


@pytest.fixture
def srv(make_server):
    return make_server(**CONFIG)


@pytest.fixture
def bystander(srv):
    k = KazooClient(hosts=srv.hosts, timeout=10)
    k.start()
    k.create("/still", b"here")
    yield k
    k.stop()
    k.close()


def log_lines(srv, since):
    return [l for l in srv.log_text()[since:].splitlines() if "closed:" in l and "<5>" in l]


def assert_one_line_and_others_fine(srv, bystander, since, words):
    end = time.monotonic() + 5
    while time.monotonic() < end and not log_lines(srv, since):
        time.sleep(0.02)
    lines = log_lines(srv, since)
    if os.environ.get("CORRAL_TEST_TARGET", "corrald") == "corrald":
        assert len(lines) == 1, lines
        assert words in lines[0], lines
    assert bystander.get("/still")[0] == b"here"
    fresh = KazooClient(hosts=srv.hosts, timeout=10)
    fresh.start()
    fresh.set("/still", b"here")
    fresh.stop()
    fresh.close()


def established(srv):
    c = Client(srv.port)
    c.connect()
    return c


@pytest.mark.corral_only
def test_frame_over_the_limit_closes_the_connection(srv, bystander):
    since = len(srv.log_text())
    c = established(srv)
    c.send_raw(jint(4097) + b"x" * 100)
    assert c.closed_by_server()
    assert_one_line_and_others_fine(srv, bystander, since, "outside 0..4096")


@pytest.mark.corral_only
def test_negative_length_closes_the_connection(srv, bystander):
    since = len(srv.log_text())
    c = established(srv)
    c.send_raw(jint(-5))
    assert c.closed_by_server()
    assert_one_line_and_others_fine(srv, bystander, since, "frame length -5")


@pytest.mark.corral_only
def test_truncated_record_closes_the_connection(srv, bystander):
    since = len(srv.log_text())
    c = established(srv)
    # a create whose path claims 100 bytes in a frame that holds 3
    c.send_raw(frame(jint(1) + jint(1) + jint(100) + b"/ab"))
    assert c.closed_by_server()
    assert_one_line_and_others_fine(srv, bystander, since, "malformed request")


@pytest.mark.corral_only
def test_null_path_closes_the_connection(srv, bystander):
    since = len(srv.log_text())
    c = established(srv)
    c.send_raw(frame(jint(1) + jint(3) + jint(-1) + b"\x00"))
    assert c.closed_by_server()
    assert_one_line_and_others_fine(srv, bystander, since, "malformed request")


def test_invalid_path_strings_get_bad_arguments_and_the_connection_stays(srv, bystander):
    c = established(srv)
    # Each has an existing parent, so path validation decides (ZooKeeper
    # looks for the parent first: "/a/" with no /a is NONODE).
    for bad in (b"/a\x00b", b"/\xff\xfe", b"/still/", b"/.", b"/..", b"/still/.", b"/\x01", b"/\xef\xbf\xbf"):
        assert c.call(1, jstr(bad) + jint(-1) + jint(1) + jint(31) + jstr("world")
                      + jstr("anyone") + jint(0))[2] == -8, bad
    assert c.call(3, path_watch_body("/still"))[2] == 0


def test_unknown_opcode_gets_unimplemented_then_a_close(srv, bystander):
    c = established(srv)
    c.request(999)
    assert c.reply()[2] == -6
    assert c.closed_by_server()
    assert bystander.get("/still")[0] == b"here"


def test_check_as_a_request_gets_unimplemented_then_a_close(srv, bystander):
    c = established(srv)
    c.request(0)
    assert c.reply()[2] == -6
    assert c.closed_by_server()


@pytest.mark.corral_only
def test_garbage_before_the_handshake_closes_the_connection(srv, bystander):
    since = len(srv.log_text())
    c = Client(srv.port)
    c.send_raw(bytes(random.Random(7).getrandbits(8) for _ in range(64)))
    assert c.closed_by_server()
    assert_one_line_and_others_fine(srv, bystander, since, "closed")


@pytest.mark.corral_only
def test_short_connect_request_closes_the_connection(srv, bystander):
    since = len(srv.log_text())
    c = Client(srv.port)
    c.send_raw(frame(jint(0) + b"\x00" * 6))
    assert c.closed_by_server()
    assert_one_line_and_others_fine(srv, bystander, since, "malformed ConnectRequest")


@pytest.mark.corral_only
def test_connections_beyond_the_per_address_limit_are_refused(make_server):
    srv = make_server(client={"max_connections_per_address": 3})
    kept = [established(srv) for _ in range(3)]
    extra = Client(srv.port)
    assert extra.closed_by_server()
    for c in kept:
        assert c.call(3, path_watch_body("/"))[2] == 0
    assert "max_connections_per_address" in srv.log_text()


def auth_body(credentials, scheme="digest"):
    return jint(0) + jstr(scheme) + jbuf(credentials)


@pytest.mark.corral_only
def test_addauth_past_the_identity_limit_gets_authfailed_and_a_log_line_naming_the_limit(
        srv, bystander):
    """A connection holds at most 16 identities: its ip one and 15 added.
    The 16th distinct addauth is refused (AUTHFAILED, then a close) with a
    log line that names the limit, not an "authentication failed"."""
    c = established(srv)
    for i in range(15):
        c.request(100, auth_body(b"user%d:pw" % i), xid=-4)
        assert c.reply()[2] == 0, i
    c.request(100, auth_body(b"user0:pw"), xid=-4)	# the same one again adds none
    assert c.reply()[2] == 0
    xid, _, err, body = c.call(107)			# whoAmI: ip and the 15
    assert err == 0 and struct.unpack(">i", body[:4])[0] == 16
    since = len(srv.log_text())
    c.request(100, auth_body(b"user15:pw"), xid=-4)
    assert c.reply()[2] == -115			# AUTHFAILED
    assert c.closed_by_server()

    def limit_lines():
        return [l for l in srv.log_text()[since:].splitlines()
                if "closed:" in l and not l.startswith("<7>")]	# not the debug ones
    end = time.monotonic() + 5
    while time.monotonic() < end and not limit_lines():
        time.sleep(0.02)
    lines = limit_lines()
    assert len(lines) == 1 and "addauth past the 16 identities one connection may hold" in lines[0] \
        and lines[0].startswith("<4>"), srv.log_text()[since:]
    assert "authentication with scheme digest failed" not in srv.log_text()[since:]
    assert bystander.get("/still")[0] == b"here"
