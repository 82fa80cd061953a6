"""What clients see of a 3-server ensemble, held to Apache ZooKeeper 3.8:
the four-letter words of a leader and a follower.

CORRAL_TEST_TARGET=corrald (default) runs them against corrald ensembles
(cluster.py), CORRAL_TEST_TARGET=zookeeper against a ZooKeeper ensemble
configured the same way (zookeeper_ensemble.py: reconfigEnabled, a super
digest, readonlymode.enabled). The same assertions hold on both; where
corral differs on purpose, the test says so and the README lists it.

What is proved:
- srvr, conf and mntr of a leader and a follower have ZooKeeper's lines.

Every wait polls a condition with a deadline (cluster.wait_until).
"""
import base64
import hashlib
import logging
import os
import re

import pytest
from kazoo.client import KazooClient

from cluster import Cluster, four_letter, stop_kazoo, wait_until
import zookeeper_ensemble

TARGET = os.environ.get("CORRAL_TEST_TARGET", "corrald")
SUPER_PASSWORD = "compat-super"
SUPER_DIGEST = "super:" + base64.b64encode(
    hashlib.sha1(f"super:{SUPER_PASSWORD}".encode()).digest()).decode()
SESSION_TIMEOUT_S = 30		# longer than any cut-off here: sessions outlive it

logging.getLogger("kazoo").setLevel(logging.CRITICAL)


@pytest.fixture
def ensemble3(tmp_path, request):
    """A started 3-server ensemble of the target, with reconfig, read-only
    mode and a super user; stopped (and its logs attached on failure) at the
    end."""
    if TARGET == "zookeeper":
        why = zookeeper_ensemble.available()
        if why:
            pytest.fail(f"the ZooKeeper ensemble cannot run: {why}")
        c = zookeeper_ensemble.ZooKeeperCluster(tmp_path, 3, SUPER_DIGEST)
    else:
        c = Cluster(tmp_path, 3, config={
            "ensemble": {"reconfig": True, "read_only": True},
            "auth": {"super_digest": SUPER_DIGEST}})
    request.node._corral_clusters = [c]
    try:
        c.start()
        yield c
    finally:
        statuses = c.stop_all()
        problems = [f"server {sid}: status {rc}" for sid, rc in statuses.items() if rc != 0]
        problems += c.sanitizer_reports()
        if problems:
            pytest.fail("at teardown:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def clients():
    made = []

    def make(hosts, read_only=False, auth=False, start=True):
        zk = KazooClient(hosts=hosts, timeout=SESSION_TIMEOUT_S, read_only=read_only,
                         auth_data=[("digest", f"super:{SUPER_PASSWORD}")] if auth else None,
                         connection_retry={"max_tries": -1, "delay": 0.05, "backoff": 1,
                                           "max_jitter": 0.01, "max_delay": 0.1},
                         command_retry={"max_tries": 0})
        zk.states = []
        zk.keeper_states = []
        zk.add_listener(zk.states.append)
        callback = zk._session_callback

        def recording(state, zk=zk, callback=callback):
            zk.keeper_states.append(state)
            return callback(state)

        zk._session_callback = recording
        made.append(zk)
        if start:
            zk.start(30)
        return zk

    yield make
    stop_kazoo(made, raise_stuck=False)


# ------------------------------------------------------- four-letter words

CONF_KEYS = ["clientPort", "secureClientPort", "dataDir", "dataDirSize", "dataLogDir",
             "dataLogSize", "tickTime", "maxClientCnxns", "minSessionTimeout",
             "maxSessionTimeout", "clientPortListenBacklog", "serverId", "initLimit",
             "syncLimit", "electionAlg", "electionPort", "quorumPort", "peerType"]


def test_leader_and_follower_words_have_zookeepers_ensemble_lines(ensemble3, clients):
    c = ensemble3
    lid = c.wait_for_leader()
    zk = clients(c.hosts())
    config = zk.get("/zookeeper/config")[0].decode()
    wait_until(lambda: c[lid].mntr().get("zk_synced_followers") == "2", 20,
               what="the leader to count two synced followers")
    for s in c:
        leader = s.id == lid
        srvr = four_letter(s.client_port, "srvr").rstrip("\n").split("\n")
        assert f"Mode: {'leader' if leader else 'follower'}" in srvr
        assert bool(re.fullmatch(r"Proposal sizes last/min/max: -?\d+/-?\d+/-?\d+",
                                 srvr[-1])) == leader, srvr
        conf = four_letter(s.client_port, "conf")
        head, _, membership = conf.partition("membership: \n")
        assert membership == config, (conf, config)
        keys = [ln.split("=", 1)[0] for ln in head.split("\n") if ln]
        # corral elects with Raft: no electionAlg (README)
        assert keys == [k for k in CONF_KEYS if TARGET == "zookeeper" or k != "electionAlg"]
        kv = dict(ln.split("=", 1) for ln in head.split("\n") if ln)
        mine = next(ln for ln in config.split("\n") if ln.startswith(f"server.{s.id}="))
        host_ports = mine.split("=", 1)[1].split(";")[0].split(":")
        assert (kv["quorumPort"], kv["electionPort"]) == (host_ports[1], host_ports[2])
        assert kv["serverId"] == str(s.id) and kv["peerType"] == "0"
        mntr = s.mntr()
        assert mntr["zk_server_state"] == ("leader" if leader else "follower")
        assert mntr["zk_peer_state"] == ("leading - broadcast" if leader
                                         else "following - broadcast")
        assert mntr["zk_quorum_size"] == "3"
        if leader:
            assert (mntr["zk_learners"], mntr["zk_synced_followers"],
                    mntr["zk_synced_non_voting_followers"], mntr["zk_synced_observers"]) \
                == ("2", "2", "0", "0"), mntr
            for k in ("zk_pending_syncs", "zk_leader_uptime", "zk_last_proposal_size",
                      "zk_max_proposal_size", "zk_min_proposal_size"):
                assert re.fullmatch(r"-?\d+", mntr[k]), (k, mntr.get(k))
        else:
            assert "zk_learners" not in mntr
