"""A leader lost without a word (SIGKILL) while its followers' clients
have writes on their way to it: a follower cannot know which of those the
leader logged, so nothing is sent again (server/forward_park.h). Every
write is acknowledged and in the tree, or failed with CONNECTIONLOSS; none
is applied twice; the sessions are kept."""
import threading

import pytest
from kazoo.exceptions import ConnectionLoss, KazooException

import harness
from ensembles import Cluster

pytestmark = pytest.mark.corral_only


class Tagged:
    """A kazoo client pinned to one member keeping `depth` sequential
    creates in flight (async), each with data of its own (a tag), so a
    write applied twice shows as two nodes with one tag."""

    def __init__(self, cluster, sid, depth=8):
        self.sid = sid
        self.zk = harness.make_kazoo(cluster[sid].client_addr, timeout=10)
        self.zk.start(30)
        self.session = self.zk.client_id[0]
        self.zk.ensure_path(f"/t-{sid}")
        self.acked, self.lost, self.other = {}, set(), []
        self.depth = depth
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        n = 0
        while not self.stop.is_set():
            batch = []
            for _ in range(self.depth):
                tag = f"{self.sid}-{n}".encode()
                n += 1
                batch.append((tag, self.zk.create_async(f"/t-{self.sid}/n-", tag,
                                                        sequence=True)))
            for tag, a in batch:
                try:
                    self.acked[tag] = a.get(30)
                except ConnectionLoss:
                    self.lost.add(tag)
                except KazooException as e:
                    self.other.append((tag, repr(e)))
            if self.lost and not self.zk.connected:
                harness.wait_until(lambda: self.zk.connected or self.stop.is_set(), 30,
                                   what=f"s{self.sid}'s client to reconnect")

    def finish(self):
        self.stop.set()
        self.thread.join(60)


def test_writes_on_their_way_to_a_killed_leader_end_acknowledged_or_in_connectionloss(tmp_path):
    cluster = Cluster(tmp_path, 3, config={"session": {"tick_time_ms": 500}})
    try:
        leader = cluster.start()
        followers = [s for s in cluster.ids if s != leader]
        writers = {sid: Tagged(cluster, sid) for sid in followers}
        harness.wait_until(lambda: all(len(w.acked) > 50 for w in writers.values()), 30,
                           what="every writer to write")
        cluster[leader].kill()
        cluster.wait_for_leader(30)
        before = {s: len(w.acked) for s, w in writers.items()}
        harness.wait_until(lambda: all(len(w.acked) > before[s] + 50
                                       for s, w in writers.items()), 60,
                           what="every writer to write through the new leader")
        for w in writers.values():
            w.finish()
        tree = cluster.wait_converged(followers)
        for sid, w in writers.items():
            assert w.other == [], (sid, w.other[:3])
            assert w.zk.client_id[0] == w.session
            nodes = {p: v[0] for p, v in tree.items() if p.startswith(f"/t-{sid}/")}
            tags = list(nodes.values())
            assert len(tags) == len(set(tags)), f"s{sid}: a write applied twice"
            for tag, path in w.acked.items():
                assert nodes.get(path) == tag, (sid, tag, path)
            # what is in the tree was acknowledged, or its outcome was unknown
            assert set(tags) <= set(w.acked) | w.lost, (sid, set(tags) - set(w.acked) - w.lost)
            print(f"s{sid}: {len(w.acked)} acknowledged, {len(w.lost)} CONNECTIONLOSS, "
                  f"{len(set(tags) & w.lost)} of those applied")
        harness.stop_kazoo([w.zk for w in writers.values()])
    finally:
        cluster.kill_all()
    assert cluster.sanitizer_reports() == [], cluster.log_report()
