"""Every txn that reaches the log must apply, now and on every replay: a
txn that does not fit the state aborts corrald, and since it is durable,
every restart after it aborts too (the data directory is lost until
someone edits the log by hand).

Writes are checked ("prepped") against the tree plus the changes still in
flight. These tests race a session's close, which deletes its ephemerals,
against another session's write to one of those ephemerals, sent while
the close is being made durable: the write must either apply or be
answered with an error, corrald must keep running, and the data directory
must start again. (A refused write's leftovers on a full disk are the same
kind of bug: test_faults.py.)
"""
import struct

import pytest

from conftest import verify
from jute import Client, connect_request, create_body, encode_body, frame, request

CONFIG = {"session": {"tick_time_ms": 200}}


def write_request(xid, op, path):
    if op == "delete":
        return request(xid, "delete", encode_body("delete", {"path": path, "version": -1}))
    return request(xid, "setData", encode_body("setData", {"path": path, "data": b"new",
                                                           "version": -1}))


def reply_header(f):
    return struct.unpack_from(">iqi", f)	# xid, zxid, err


@pytest.mark.parametrize("op", ["delete", "set"])
def test_write_to_an_ephemeral_racing_its_session_close_keeps_the_log_replayable(corrald, op):
    srv = corrald(name=f"race-{op}", config=CONFIG)
    srv.start()
    b = Client(srv.port, timeout=10)
    b.send(frame(connect_request(60000)))
    bi = b.frames()
    next(bi)    # the ConnectResponse
    outcomes = []
    problem = None
    for i in range(20):
        a = Client(srv.port, timeout=10)
        a.send(frame(connect_request(60000)) + request(1, "create", create_body(f"/e{i}", b"x",
                                                                                flags=1)))
        ai = a.frames()
        next(ai)    # the ConnectResponse
        assert reply_header(next(ai))[2] == 0
        # A's close, then B's write on A's ephemeral, back to back.
        a.send(request(2, "closeSession"))
        b.send(write_request(100 + i, op, f"/e{i}"))
        try:
            xid, zxid, err = reply_header(next(bi))
            outcomes.append(err)
        except (ConnectionError, OSError) as e:
            problem = f"round {i}: {op} of /e{i} racing its session's close: {e!r}"
            break
        finally:
            a.close()
    b.close()
    alive = srv.running()
    log = "\n".join(l for l in srv.log().splitlines() if not l.startswith("    #"))
    if alive:
        assert srv.stop() == 0, srv.log()[-2000:]
    # Whatever the outcomes, the log must replay.
    srv.spawn()
    restarted = True
    try:
        srv.wait_ready(30)
    except AssertionError as e:
        restarted = False
        restart_log = str(e)[-1500:]
    assert alive and problem is None and restarted, (
        f"corrald {'kept running' if alive else 'died'}; {problem or ''}\n{log[-1500:]}\n" +
        ("the restart works" if restarted else f"and the data directory no longer starts:\n"
                                               f"{restart_log}"))
    # Each write either applied (before the close) or failed cleanly.
    assert set(outcomes) <= {0, -101}, outcomes
    assert srv.stop() == 0
    r = verify(srv.data_dir)
    assert r.returncode == 0, r.stdout
