"""kazoo across a leader crash: a client connected to the leader when it is
SIGKILLed moves to another server and keeps its session (same id, no
LOST), its ephemeral stays, its Lock stays held by it alone (a second
client cannot take it and gets it only once the first releases it), its
Election leadership and its Party membership stay."""
import threading
import time

import pytest

from harness import wait_until

RETRY = {"max_tries": -1, "delay": 0.1, "backoff": 1, "max_delay": 0.5, "max_jitter": 0.05}


def peer_port(zk):
    """The port of the server a kazoo client is connected to (None when not
    connected)."""
    try:
        return zk._connection._socket.getpeername()[1]
    except (AttributeError, OSError):
        return None


def test_a_kazoo_session_with_its_ephemeral_lock_election_and_party_survives_a_leader_sigkill(
        ensemble):
    from kazoo.exceptions import LockTimeout
    from kazoo.protocol.states import KazooState

    c = ensemble(3)
    old = c.first_leader
    f1, f2 = [s for s in c.ids if s != old]
    a = ensemble.kazoo(c.hosts(first=old), timeout=10.0, command_retry=RETRY)
    b = ensemble.kazoo(c.hosts(first=f1), timeout=10.0, command_retry=RETRY)
    assert peer_port(a) == c[old].client_port, "client A should start on the leader"
    session = a.client_id
    a_states = []
    a.add_listener(lambda st: a_states.append(st))

    a.create("/k/eph", b"a's", ephemeral=True, makepath=True)
    lock_a = a.Lock("/k/lock", "A")
    assert lock_a.acquire(timeout=10)
    pa = a.Party("/k/party", "A")
    pa.join()
    pb = b.Party("/k/party", "B")
    pb.join()
    a_leads, a_quit, b_leads = threading.Event(), threading.Event(), threading.Event()
    el_a = a.Election("/k/election", "A")
    el_b = b.Election("/k/election", "B")

    def lead_a():
        a_leads.set()
        a_quit.wait(120)
    ta = threading.Thread(target=el_a.run, args=(lead_a,), daemon=True)
    ta.start()
    assert a_leads.wait(15), "A did not win the election"
    tb = threading.Thread(target=el_b.run, args=(b_leads.set,), daemon=True)
    tb.start()
    wait_until(lambda: el_b.contenders() == ["A", "B"], 15, what="B to contend behind A")

    # the crash
    t_kill = time.monotonic()
    c[old].kill()
    new = c.wait_for_leader(30, not_id=old)
    t_leader = time.monotonic() - t_kill
    wait_until(lambda: a.state == KazooState.CONNECTED and peer_port(a) not in
               (None, c[old].client_port), 30, what="client A to reconnect to another server")
    t_back = time.monotonic() - t_kill
    print(f"\nleader {old} SIGKILLed: server {new} leads after {t_leader:.2f} s; client A "
          f"back on port {peer_port(a)} after {t_back:.2f} s; A's states: {a_states}")

    assert KazooState.SUSPENDED in a_states, "A never lost its connection: the test proves little"
    assert KazooState.LOST not in a_states, f"A's session was lost: {a_states}"
    assert a.client_id == session, "A's session changed"
    # the ephemeral, as every live server sees it
    for sid in (f1, f2):
        zk = ensemble.kazoo(c.hosts(only=[sid]))
        zk.sync("/k")
        st = zk.exists("/k/eph")
        assert st is not None and st.ephemeralOwner == session[0], (sid, st)
        # the lock: one node, A's
        kids = zk.get_children("/k/lock")
        assert len(kids) == 1, (sid, kids)
        assert zk.exists("/k/lock/" + kids[0]).ephemeralOwner == session[0]
        assert sorted(zk.Party("/k/party")) == ["A", "B"], sid
    assert lock_a.is_acquired
    assert lock_a.contenders() == ["A"]

    # B cannot take the lock while A holds it; it gets it once A releases
    lock_b = b.Lock("/k/lock", "B")
    with pytest.raises(LockTimeout):
        lock_b.acquire(timeout=2)
    got_b = threading.Event()
    tl = threading.Thread(target=lambda: lock_b.acquire(timeout=60) and got_b.set(), daemon=True)
    tl.start()
    wait_until(lambda: lock_a.contenders() == ["A", "B"], 15, what="B to queue behind A")
    assert not got_b.is_set(), "B got the lock while A holds it"
    lock_a.release()
    assert got_b.wait(15), "B did not get the lock after A released it"
    assert lock_b.contenders() == ["B"]
    lock_b.release()

    # the election: A still leads, B has not; when A steps down, B leads
    assert el_a.contenders() == ["A", "B"], el_a.contenders()
    assert not b_leads.is_set(), "B became leader while A leads"
    a_quit.set()
    assert b_leads.wait(15), "B did not lead after A stepped down"
    ta.join(15)
    tb.join(15)

    # the party: both still members; A leaves, B stays
    pa.leave()
    b.sync("/k/party")
    assert list(b.Party("/k/party")) == ["B"]

    # the old leader comes back and has it all
    c[old].start()
    c.wait_converged(c.ids, timeout=60)
    wait_until(lambda: c.leader() == new and c[old].mode() == "follower", 20,
               what=f"server {old} to follow {new}")
