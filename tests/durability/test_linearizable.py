"""Linearizability of one corrald across crashes, checked by the WGL checker.

Five kazoo clients, each with its own session, run compare-and-set on three
registers (getData; setData with the version last read; sync then getData)
while corrald is killed (SIGKILL) and restarted on the same port, five
times. Every call is recorded with its real-time interval and outcome: ok,
BADVERSION, or unknown (connection lost, timed out: it may or may not have
happened). tests/lib/linearizability.py then decides whether one
sequential order of all of them explains every result. An acknowledged
write lost in a crash, a read of a value older than one already read, or a
CAS that succeeded on a stale version all make the history
non-linearizable; the failing history is kept as JSON lines beside the
test's temporary directory.

The same harness is what the replication tests use against an ensemble.
"""
import os
import random
import threading
import time

from harness import make_kazoo, stop_kazoo
from linearizability import Recorder, assert_linearizable

CLIENTS = 5
KEYS = ["/lin/k0", "/lin/k1", "/lin/k2"]
CRASHES = 5
OPS_BETWEEN_CRASHES = 300	# completed ops (any outcome) before the next kill
CALL_TIMEOUT_S = 10


def client_loop(cid, hosts, rec, stop, errors):
    from kazoo.exceptions import (BadVersionError, ConnectionLoss, OperationTimeoutError,
                                  SessionExpiredError)
    from kazoo.handlers.threading import KazooTimeoutError
    unknown = (ConnectionLoss, SessionExpiredError, OperationTimeoutError, KazooTimeoutError)
    rnd = random.Random(cid)
    zk = make_kazoo(hosts, timeout=30.0)
    try:
        zk.start(timeout=30)
        versions = {k: 0 for k in KEYS}
        n = 0
        while not stop.is_set():
            key = rnd.choice(KEYS)
            roll = rnd.random()
            if roll < 0.45:
                value = f"c{cid}-{n}".encode()
                n += 1
                p = rec.invoke(cid, key, "write", (value, versions[key]))
                try:
                    stat = zk.set_async(key, value, version=versions[key]).get(CALL_TIMEOUT_S)
                    p.ok(stat.version)
                    versions[key] = stat.version
                except BadVersionError:
                    p.fail("BADVERSION")
                except unknown:
                    p.unknown()
            else:
                p = rec.invoke(cid, key, "read")
                try:
                    if roll > 0.8:
                        zk.sync_async(key).get(CALL_TIMEOUT_S)
                    data, stat = zk.get_async(key).get(CALL_TIMEOUT_S)
                    p.ok((data, stat.version))
                    versions[key] = stat.version
                except unknown:
                    p.unknown()
    except Exception as e:  # anything else is a failure of the test run
        errors.append(f"client {cid}: {e!r}")
    finally:
        stop_kazoo([zk])


def port_outside_ephemeral_range():
    """A free port the kernel never hands out as a source port. The clients
    reconnect in a tight loop while corrald is down; with a port from the
    ephemeral range one of them can, rarely, connect to itself (TCP
    simultaneous open on the same port) and hold it, and the restart then
    finds it in use."""
    import socket
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low, high = (int(x) for x in f.read().split())
    candidates = [p for p in range(10000, 60000) if not low <= p <= high]
    random.Random(os.getpid()).shuffle(candidates)
    for p in candidates:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
                return p
            except OSError:
                continue
    raise AssertionError("no free port outside the ephemeral range")


def test_compare_and_set_stays_linearizable_across_crashes(corrald, kazoo, tmp_path):
    srv = corrald(name="lin", config={"session": {"max_timeout_ms": 60000}})
    port = port_outside_ephemeral_range()
    srv.start(port=port)
    zk = kazoo(srv.hosts)
    for k in KEYS:
        zk.ensure_path(k)
    rec = Recorder()
    stop = threading.Event()
    errors = []
    threads = [threading.Thread(target=client_loop, args=(i, srv.hosts, rec, stop, errors),
                                daemon=True) for i in range(CLIENTS)]
    for t in threads:
        t.start()

    def completed():
        return sum(1 for op in rec.history() if op.return_time is not None)

    try:
        for _ in range(CRASHES + 1):
            target = completed() + OPS_BETWEEN_CRASHES
            end = time.monotonic() + 120
            while completed() < target and time.monotonic() < end and not errors:
                time.sleep(0.05)
            assert not errors, errors
            assert completed() >= target, f"the clients stalled at {completed()} ops"
            if _ < CRASHES:
                srv.kill()
                srv.start(port=port)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not errors, errors
    history = rec.history()
    acked = sum(1 for op in history if op.kind == "write" and op.status == "ok")
    unknown = sum(1 for op in history if op.status == "unknown")
    assert acked >= 50, f"only {acked} acknowledged writes: the run proves little"
    assert_linearizable(history, initial=(b"", 0),
                        artifact=str(tmp_path / "history-single-server.jsonl"))
    print(f"\n{len(history)} ops, {acked} acknowledged writes, {unknown} unknown, "
          f"{CRASHES} SIGKILLs: linearizable")
    assert srv.stop() == 0
