"""Many sessions pipelining mixed requests: every reply must be the one a
sequential execution of that session's requests gives.

Each session works in its own subtree, so a per-session model (path -> data,
version) predicts every result exactly; replies arriving out of order, lost
bytes or a request overtaking an earlier write all show up as a mismatch.
"""
import random
import threading

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError

SESSIONS = 12
ROUNDS = 15
BATCH = 40


def run_session(hosts, seed, failures):
    try:
        session_body(hosts, seed, failures)
    except Exception as e:  # a lost connection, a timeout: all failures
        failures.append(f"session {seed}: {e!r}")


def session_body(hosts, seed, failures):
    rnd = random.Random(seed)
    z = KazooClient(hosts=hosts, timeout=15)
    lost = []
    z.add_listener(lambda state: lost.append(state) if state != "CONNECTED" else None)
    z.start(timeout=20)
    base = f"/pipe/{seed}"
    z.ensure_path(base)
    model = {}  # path -> [data, version]
    try:
        for _ in range(ROUNDS):
            pending = []
            for _ in range(BATCH):
                path = f"{base}/n{rnd.randint(0, 12)}"
                op = rnd.choice(["create", "delete", "set", "get", "exists"])
                data = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 600)))
                # Predict from the model, then update it as the server must.
                if op == "create":
                    expect = ("ok", path) if path not in model else ("err", NodeExistsError)
                    if path not in model:
                        model[path] = [data, 0]
                    pending.append((op, path, z.create_async(path, data), expect))
                elif op == "delete":
                    expect = ("ok", True) if path in model else ("err", NoNodeError)
                    model.pop(path, None)
                    pending.append((op, path, z.delete_async(path), expect))
                elif op == "set":
                    version = rnd.choice([-1, 0, 1])
                    if path not in model:
                        expect = ("err", NoNodeError)
                    elif version not in (-1, model[path][1]):
                        expect = ("err", BadVersionError)
                    else:
                        model[path] = [data, model[path][1] + 1]
                        expect = ("ok", model[path][1])
                    pending.append((op, path, z.set_async(path, data, version), expect))
                elif op == "get":
                    expect = ("ok", tuple(model[path])) if path in model else ("err", NoNodeError)
                    pending.append((op, path, z.get_async(path), expect))
                else:
                    expect = ("ok", path in model)
                    pending.append((op, path, z.exists_async(path), expect))
            for op, path, fut, (kind, want) in pending:
                try:
                    got = fut.get(timeout=30)
                except (NoNodeError, NodeExistsError, BadVersionError) as e:
                    # Any other exception (ConnectionLoss, ...) ends the session as a failure.
                    if kind != "err" or not isinstance(e, want):
                        failures.append(f"{seed} {op} {path}: raised {e!r}, expected {kind} {want}")
                    continue
                if kind == "err":
                    failures.append(f"{seed} {op} {path}: succeeded, expected {want.__name__}")
                    continue
                if op == "set":
                    got = got.version
                elif op == "get":
                    got = (got[0], got[1].version)
                elif op == "exists":
                    got = got is not None
                if got != want:
                    failures.append(f"{seed} {op} {path}: got {got!r}, expected {want!r}")
        if lost:
            failures.append(f"session {seed}: connection state changed: {lost}")
    finally:
        z.stop()
        z.close()


def run_all(hosts):
    failures = []
    threads = [threading.Thread(target=run_session, args=(hosts, s, failures)) for s in range(SESSIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not any(t.is_alive() for t in threads), "a session did not finish"
    assert failures == [], "\n".join(failures[:20])


def test_pipelined_replies_match_a_sequential_model(server):
    run_all(server.hosts)


@pytest.mark.corral_only
def test_pipelining_through_backpressure_loses_nothing(make_server):
    """With a tiny outstanding-request budget corrald keeps pausing and resuming
    each connection; every reply must still be right and in order."""
    srv = make_server(client={"max_outstanding_requests": 3, "max_output_bytes": 65536})
    run_all(srv.hosts)


def test_a_create_refused_for_another_sessions_pending_create_is_answered_after_it_applies(server):
    # A creates a node while B, on another connection, creates the same path
    # and reads it right behind: whichever create wins, B's read must find
    # the node. A refusal decided against A's create still on its way to the
    # log must not reach B before that create is applied (else B reads NONODE
    # right after being told NODEEXISTS).
    from jute import Client, create_body, frame, jint, path_watch_body
    port = int(server.hosts.rsplit(":", 1)[1])
    a, b = Client(port), Client(port)
    a.connect()
    b.connect()
    outcomes = {"a": 0, "b": 0}
    try:
        for i in range(300):
            path = f"/race{i}"
            a.send_raw(frame(jint(i + 1) + jint(1) + create_body(path, b"a")))
            b.send_raw(frame(jint(2 * i + 1) + jint(1) + create_body(path, b"b")) +
                       frame(jint(2 * i + 2) + jint(4) + path_watch_body(path)))
            _, _, err_a, _ = a.reply()
            _, _, err_b, _ = b.reply()
            _, _, err_get, body = b.reply()
            assert sorted([err_a, err_b]) == [-110, 0], (path, err_a, err_b)
            outcomes["a" if err_a == 0 else "b"] += 1
            assert err_get == 0, f"{path}: B was told NODEEXISTS ({err_b}) then read NONODE"
    finally:
        a.close()
        b.close()
    print(f"\ncreates won: {outcomes}")
