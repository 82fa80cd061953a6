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


class Pinned:
    """A kazoo client pinned to one member, recording every connection
    state change; run() loops in a thread of its own once started."""

    def __init__(self, cluster, sid):
        self.sid = sid
        self.zk = harness.make_kazoo(cluster[sid].client_addr, timeout=10)
        self.states = []
        self.zk.add_listener(lambda st: self.states.append(str(st)))
        self.zk.start(30)
        self.states.clear()
        self.session = self.zk.client_id[0]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def finish(self):
        self.stop.set()
        self.thread.join(30)


class Writer(Pinned):
    """With a session, an ephemeral and a watch, writing in a loop; it
    records every acknowledged write."""

    def __init__(self, cluster, sid):
        super().__init__(cluster, sid)
        self.zk.create(f"/eph-{sid}", b"e", ephemeral=True)
        self.zk.ensure_path(f"/w-{sid}")
        self.events = []
        self.zk.get(f"/w-{sid}", watch=self.events.append)
        self.acked, self.failed = [], []
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
    """Followers first, then the leader, which drains before it hands
    leadership on: it refuses the forwarded writes it will not log, says
    which it took (all committed), and the other members send the refused
    ones to the next leader (server/forward_park.h). No client of any
    member sees a change or a failure, and every acknowledged write is in
    the tree."""
    leader = ensemble.start()
    writers = {sid: Writer(ensemble, sid) for sid in ensemble.ids}
    harness.wait_until(lambda: all(len(w.acked) > 20 for w in writers.values()), 30,
                       what="every writer to write")
    order = [s for s in ensemble.ids if s != leader] + [leader]
    for sid in order:
        before = {s: len(w.acked) for s, w in writers.items()}
        log = restart(ensemble, sid)
        assert "1 client connections taken over from the previous process (0 closed)" in log
        ensemble.wait_for_leader(30)
        harness.wait_until(lambda: all(len(w.acked) > before[s] + 5
                                       for s, w in writers.items()), 60,
                           what="every writer to go on writing")
        for s, w in writers.items():
            assert w.states == [] and w.failed == [], (sid, s, w.states, w.failed)
    for w in writers.values():
        w.finish()
    for sid, w in writers.items():
        assert w.zk.client_id[0] == w.session
        assert w.states == [] and w.failed == [], (sid, w.states, w.failed)
    tree = ensemble.wait_converged()
    for sid, w in writers.items():
        assert set(w.acked) <= set(tree), sid
        assert f"/eph-{sid}" in tree and tree[f"/eph-{sid}"][7] == w.session
    # the watches set before the restarts fire on the next change
    changer = ensemble.client(leader)
    for sid in writers:
        changer.set(f"/w-{sid}", b"1")
    for sid, w in writers.items():
        harness.wait_until(lambda: w.events, 10, what=f"s{sid}'s watch to fire")
        assert w.events[0].type == "CHANGED" and w.events[0].path == f"/w-{sid}", \
            (sid, w.events, w.states)
    harness.stop_kazoo([changer] + [w.zk for w in writers.values()])


class Pipeliner(Pinned):
    """Keeping `depth` sequential creates in flight (async), each batch
    followed on the same connection by a read of the nodes it creates:
    the read must see them."""

    def __init__(self, cluster, sid, depth=8):
        super().__init__(cluster, sid)
        self.zk.ensure_path(f"/p-{sid}")
        self.acked, self.failed, self.unseen = [], [], []
        self.depth = depth
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            batch = []
            for _ in range(self.depth):
                batch.append(self.zk.create_async(f"/p-{self.sid}/n-", b"v", sequence=True))
            reads = [self.zk.get_children_async(f"/p-{self.sid}")]
            for a in batch:
                try:
                    self.acked.append(a.get(30))
                except KazooException as e:
                    self.failed.append(repr(e))
            try:
                seen = {f"/p-{self.sid}/{c}" for c in reads[0].get(30)}
                self.unseen += [p for p in self.acked[-len(batch):] if p not in seen]
            except KazooException as e:
                self.failed.append(repr(e))


def test_a_leader_restart_under_pipelined_writes_loses_nothing(ensemble):
    """Each member's client keeps several creates in flight, and a read
    behind them, while the leader restarts: none fails, none is applied
    twice (the sequential nodes are exactly the acknowledged ones), and
    each read sees the creates sent before it on its connection."""
    leader = ensemble.start()
    pipes = {sid: Pipeliner(ensemble, sid) for sid in ensemble.ids}
    harness.wait_until(lambda: all(len(p.acked) > 50 for p in pipes.values()), 30,
                       what="every client to write")
    for _ in range(2):
        before = {s: len(p.acked) for s, p in pipes.items()}
        log = restart(ensemble, leader)
        assert "1 client connections taken over from the previous process (0 closed)" in log
        leader = ensemble.wait_for_leader(30)
        harness.wait_until(lambda: all(len(p.acked) > before[s] + 20
                                       for s, p in pipes.items()), 60,
                           what="every client to go on writing")
    for p in pipes.values():
        p.finish()
    tree = ensemble.wait_converged()
    for sid, p in pipes.items():
        assert p.states == [] and p.failed == [] and p.unseen == [], \
            (sid, p.states, p.failed[:3], p.unseen[:3])
        assert p.zk.connected
        children = {k for k in tree if k.startswith(f"/p-{sid}/")}
        assert children == set(p.acked), (sid, len(children), len(p.acked))
    harness.stop_kazoo([p.zk for p in pipes.values()])


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
