"""mntr, /metrics and the AdminServer's commands on an ensemble's leader
and followers: ZooKeeper's quorum figures where ZooKeeper has them (the
learners and proposal sizes on the leader alone, as ZooKeeper's leader
registers them), the election time on every member, the update latency of
a write made through a follower counted there, and /metrics reading the
same table as mntr on each server."""
import json
import urllib.request

from harness import wait_until


def http(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.read().decode()


def samples(port):
    return dict(line.rsplit(" ", 1) for line in http(port, "/metrics").splitlines()
                if line and not line.startswith("#"))


LEADER_ONLY = ["zk_learners", "zk_synced_followers", "zk_synced_non_voting_followers",
               "zk_synced_observers", "zk_pending_syncs", "zk_leader_uptime",
               "zk_last_proposal_size", "zk_max_proposal_size", "zk_min_proposal_size"]


def test_leader_and_followers_report_zookeepers_figures(ensemble):
    c = ensemble(3, admin=True)
    lid = c.first_leader
    wait_until(lambda: c[lid].mntr().get("zk_synced_followers") == "2", 20,
               what="two synced followers")
    follower = next(s for s in c if s.id != lid)
    zk = ensemble.kazoo(c.hosts(only=[follower.id]))
    zk.create("/through-a-follower", b"x")
    terms = set()
    for s in c:
        m = s.mntr()
        want_state = "leader" if s.id == lid else "follower"
        assert m["zk_server_state"] == want_state, (s.id, m)
        assert m["zk_peer_state"] == ("leading - broadcast" if s.id == lid
                                      else "following - broadcast"), (s.id, m)
        assert m["zk_quorum_size"] == "3"
        for k in LEADER_ONLY:
            assert (k in m) == (s.id == lid), (s.id, k)
        # every member started knowing no leader and came to know one
        assert int(m["zk_cnt_election_time"]) >= 1, (s.id, m)
        terms.add(m["corral_raft_term"])
        p = samples(s.admin_port)
        assert p["quorum_size"] == "3" and p["corral_raft_term"] == m["corral_raft_term"]
        assert ("learners" in p) == (s.id == lid)
        assert p["election_time_count"] == m["zk_cnt_election_time"]
        leader = json.loads(http(s.admin_port, "/commands/leader"))
        assert leader["is_leader"] == (s.id == lid) and leader["leader_id"] == lid, leader
        assert leader["error"] is None
        view = json.loads(http(s.admin_port, "/commands/voting_view"))["current_config"]
        assert sorted(view) == ["1", "2", "3"], view
        assert json.loads(http(s.admin_port, "/commands/zabstate"))["zabstate"] == "broadcast"
    assert len(terms) == 1, terms
    # the write's latency counts where its client is: the follower
    assert int(follower.mntr()["zk_cnt_updatelatency"]) >= 2	# session + create
