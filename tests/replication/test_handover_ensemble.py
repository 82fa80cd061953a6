"""Ensemble members keep their clients across a restart (issue 17, item 3),
each member with a stand-in for systemd's fd store (fakestore.py): a
member's stored connections are held, not read from, until it knows a
reachable leader and has applied up to the zxid of the image, then served;
held past session.max_timeout_ms, they are closed cleanly
(server/handover_hold.h).
"""
import os
import signal
import threading
import time

import pytest
from kazoo.exceptions import KazooException

import harness
from ensembles import Cluster
from fakestore import FakeFdStore

pytestmark = pytest.mark.corral_only


def new_store(tmp_path, sid):
    path = os.path.join(tmp_path, f"s{sid}-store")
    os.makedirs(path, exist_ok=True)
    return FakeFdStore(path)


def through_store(member, store):
    """member's runs start as systemd starts a service with a store."""
    def spawn(env=None, port=None):
        assert not member.running()
        member.runs += 1
        member.prepare(port)
        member.log_path = os.path.join(member.workdir, f"{member.name}-run{member.runs}.log")
        member._log_file = open(member.log_path, "wb")
        member.spawned_at, member.ready_at = time.monotonic(), None
        member.proc = store.spawn(member.argv(),
                                  harness.clean_env(harness.merge(member.extra_env, env)),
                                  member._log_file)
        member.state = "running"
        return member
    member.spawn = spawn


@pytest.fixture
def ensemble(tmp_path):
    cluster = Cluster(tmp_path, 3, config={"session": {"tick_time_ms": 500}})
    stores = {}
    for m in cluster:
        stores[m.id] = new_store(tmp_path, m.id)
        through_store(m, stores[m.id])
    cluster.stores = stores
    yield cluster
    cluster.kill_all()
    for s in stores.values():
        s.close()
    assert cluster.sanitizer_reports() == [], cluster.log_report()


class Writer:
    """A kazoo client pinned to one member, with a session, an ephemeral
    and a watch, writing in a loop; it records every acknowledged write
    and every connection state change."""

    def __init__(self, cluster, sid):
        self.sid = sid
        self.zk = harness.make_kazoo(cluster[sid].client_addr, timeout=10)
        self.states = []
        self.zk.add_listener(lambda st: self.states.append(str(st)))
        self.zk.start(30)
        self.states.clear()
        self.session = self.zk.client_id[0]
        self.zk.create(f"/eph-{sid}", b"e", ephemeral=True)
        self.zk.ensure_path(f"/w-{sid}")
        self.events = []
        self.zk.get(f"/w-{sid}", watch=self.events.append)
        self.acked, self.failed = [], []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        i = 0
        while not self.stop.is_set():
            path = f"/data/{self.sid}-{i}"
            try:
                self.acked.append(self.zk.create(path, b"v", makepath=True))
            except KazooException as e:
                self.failed.append((path, repr(e)))
                time.sleep(0.05)
            i += 1

    def finish(self):
        self.stop.set()
        self.thread.join(30)


def restart(cluster, sid):
    m = cluster[sid]
    m.proc.send_signal(signal.SIGTERM)
    assert m.wait_exit(60) == 0, m.log()
    assert "handed over to systemd's fd store" in m.log()
    m.spawn()
    m.wait_ready(60)
    harness.wait_until(lambda: "client connections taken over from the previous process"
                       in m.log(), 60, what=f"s{sid} to take its clients back", detail=m.log)
    return m.log()


def test_a_rolling_restart_under_load_keeps_every_client_and_every_write(ensemble):
    """Followers first, then the leader, which hands leadership on before it
    hands its clients over. A member's own clients never see a change. What
    this does not prove (not done): that a client of another member keeps
    its connection when its write was on its way to the leader at the leader
    change; that connection is closed as today (CONNECTIONLOSS, the session
    kept), so for the leader's restart such closes are allowed, each with
    the write it lost."""
    leader = ensemble.start()
    writers = {sid: Writer(ensemble, sid) for sid in ensemble.ids}
    harness.wait_until(lambda: all(len(w.acked) > 20 for w in writers.values()), 30,
                       what="every writer to write")
    order = [s for s in ensemble.ids if s != leader] + [leader]
    for sid in order:
        before = {s: len(w.acked) for s, w in writers.items()}
        seen = {s: (len(w.states), len(w.failed)) for s, w in writers.items()}
        log = restart(ensemble, sid)
        assert "1 client connections taken over from the previous process (0 closed)" in log
        ensemble.wait_for_leader(30)
        harness.wait_until(lambda: all(len(w.acked) > before[s] + 5
                                       for s, w in writers.items()), 60,
                           what="every writer to go on writing")
        for s, w in writers.items():
            states, failed = w.states[seen[s][0]:], w.failed[seen[s][1]:]
            if sid != leader or s == sid:
                assert states == [] and failed == [], (sid, s, states, failed)
            else:
                assert states in ([], ["SUSPENDED", "CONNECTED"]), (sid, s, states)
                assert len(failed) == len(states) // 2, (sid, s, states, failed)
                assert all("ConnectionLoss" in f for _, f in failed), failed
    for w in writers.values():
        w.finish()
    for sid, w in writers.items():
        assert w.zk.client_id[0] == w.session
    tree = ensemble.wait_converged()
    for sid, w in writers.items():
        assert set(w.acked) <= set(tree), sid
        assert f"/eph-{sid}" in tree and tree[f"/eph-{sid}"][7] == w.session
    # the watches set before the restarts fire on the next change (kazoo
    # ends a client's one-shot watches itself, with a NONE event, when its
    # connection drops: those closed at the leader change have none left)
    changer = ensemble.client(leader)
    for sid in writers:
        changer.set(f"/w-{sid}", b"1")
    for sid, w in writers.items():
        if w.states:
            continue
        harness.wait_until(lambda: w.events, 10, what=f"s{sid}'s watch to fire")
        assert w.events[0].type == "CHANGED" and w.events[0].path == f"/w-{sid}", \
            (sid, w.events, w.states)
    harness.stop_kazoo([changer] + [w.zk for w in writers.values()])


def test_connections_held_past_the_deadline_are_closed_cleanly(tmp_path):
    cluster = Cluster(tmp_path, 3, config={"session": {"tick_time_ms": 500,
                                                       "max_timeout_ms": 3000}})
    store = new_store(tmp_path, 3)
    through_store(cluster[3], store)
    try:
        cluster.start()
        zk = harness.make_kazoo(cluster[3].client_addr, timeout=10)
        states = []
        zk.add_listener(lambda st: states.append(str(st)))
        zk.start(30)
        zk.create("/acked", b"v")
        cluster[3].proc.send_signal(signal.SIGTERM)
        assert cluster[3].wait_exit(60) == 0
        assert any(n.startswith("conn-") for n in store.names())
        # its ensemble is gone meanwhile: no leader to catch up with
        cluster[1].stop()
        cluster[2].stop()
        cluster[3].spawn()
        cluster[3].wait_ready(60)
        harness.wait_until(lambda: "client connections from systemd's fd store closed: this "
                           "member found no leader in time" in cluster[3].log(), 30,
                           what="the held connection to be closed", detail=cluster[3].log)
        harness.wait_until(lambda: not any(n.startswith("conn-") for n in store.names()), 10,
                           what="the connection to leave the store")
        harness.wait_until(lambda: "SUSPENDED" in states, 10, what="kazoo to see the close")
        cluster[1].start()
        cluster[2].start()
        cluster.wait_for_leader(30)
        harness.wait_until(lambda: zk.connected, 30, what="kazoo to reconnect")
        assert zk.get("/acked")[0] == b"v"
        harness.stop_kazoo([zk])
    finally:
        cluster.kill_all()
        store.close()
    assert cluster.sanitizer_reports() == [], cluster.log_report()
