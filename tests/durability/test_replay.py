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
from test_restart_scale import (Conn, connect_request, create_request, frame,
                                parse_connect_response, reply_header, ustr)

CONFIG = {"session": {"tick_time_ms": 200}}
CLOSE_SESSION, DELETE, SET_DATA = -11, 2, 5


def write_request(xid, op, path):
    if op == "delete":
        return frame(struct.pack(">ii", xid, DELETE) + ustr(path) + struct.pack(">i", -1))
    return frame(struct.pack(">ii", xid, SET_DATA) + ustr(path) + struct.pack(">i", 3) + b"new" +
                 struct.pack(">i", -1))


@pytest.mark.parametrize("op", ["delete", "set"])
def test_write_to_an_ephemeral_racing_its_session_close_keeps_the_log_replayable(corrald, op):
    srv = corrald(name=f"race-{op}", config=CONFIG)
    srv.start()
    b = Conn(srv.port, timeout=10)
    b.send(connect_request())
    bi = b.frames()
    parse_connect_response(next(bi))
    outcomes = []
    problem = None
    for i in range(20):
        a = Conn(srv.port, timeout=10)
        a.send(connect_request() + create_request(1, f"/e{i}", b"x", 1))
        ai = a.frames()
        parse_connect_response(next(ai))
        assert reply_header(next(ai))[2] == 0
        # A's close, then B's write on A's ephemeral, back to back.
        a.send(frame(struct.pack(">ii", 2, CLOSE_SESSION)))
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
