"""Peer authentication held to Apache ZooKeeper 3.8: an ensemble whose
members must authenticate each other forms and replicates, and a stranger
that reaches a member's peer port and does not authenticate is closed and
changes no leader.

CORRAL_TEST_TARGET=corrald (default): members with ensemble.secret_file, a
stranger that speaks corral's old, unauthenticated peer protocol (a
RequestVote that would win any election). CORRAL_TEST_TARGET=zookeeper:
ZooKeeper's quorum SASL (quorum.auth.enableSasl, learnerRequireSasl,
serverRequireSasl, DIGEST-MD5 from a JAAS file), a stranger that sends the
election port ZooKeeper's initial message and then no valid authentication.
The two protocols differ (corral's is not ZooKeeper's quorum protocol); what
is compared is what a member does with a stranger."""
import os
import struct

import pytest

from ensembles import Cluster
from peerauth import (PeerConnection, assert_leader_kept_and_served, assert_replicates,
                      cluster_tag, request_vote_frame)
import zookeeper_ensemble

TARGET = os.environ.get("CORRAL_TEST_TARGET", "corrald")
SUPER_DIGEST = "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
JAAS = """QuorumServer {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_member="the ensemble's secret";
};
QuorumLearner {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    username="member"
    password="the ensemble's secret";
};
"""
QUORUM_SASL = ("quorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\n"
               "quorum.auth.serverRequireSasl=true\n"
               "quorum.auth.learner.saslLoginContext=QuorumLearner\n"
               "quorum.auth.server.saslLoginContext=QuorumServer\n")


@pytest.fixture
def ensemble3(tmp_path, request):
    """A started 3-server ensemble of the target whose members authenticate
    each other."""
    if TARGET == "zookeeper":
        why = zookeeper_ensemble.available()
        if why:
            pytest.fail(f"the ZooKeeper ensemble cannot run: {why}")
        jaas = tmp_path / "jaas.conf"
        jaas.write_text(JAAS)
        c = zookeeper_ensemble.ZooKeeperCluster(
            tmp_path / "zk", 3, SUPER_DIGEST, extra_cfg=QUORUM_SASL,
            jvm_args=[f"-Djava.security.auth.login.config={jaas}"])
    else:
        secret = tmp_path / "secret"
        secret.write_text("the ensemble's secret, 32 bytes.\n")
        os.chmod(secret, 0o600)
        c = Cluster(tmp_path / "corral", 3, config={"ensemble": {"secret_file": str(secret)}})
    request.node._corral_clusters = [c]
    try:
        c.start()
        yield c
    finally:
        c.stop_all()
        reports = c.sanitizer_reports()
        assert not reports, reports


def peer_port(c, sid):
    return c[sid].election_port if TARGET == "zookeeper" else c[sid].peer_port


def stranger_speaks(c, sid):
    """A connection to server sid's peer port that says what a peer would
    say, without authenticating."""
    s = PeerConnection("127.0.0.1", peer_port(c, sid))
    if TARGET == "zookeeper":
        # QuorumCnxManager's initial message (protocol version 2, sid 99,
        # its address), then a QuorumAuthPacket with a token of no SASL
        addr = b"127.0.0.1:1"
        s.send(struct.pack(">qqi", -65535, 99, len(addr)) + addr)
        s.send(struct.pack(">qii", 0, 0, 16) + os.urandom(16))
    else:
        s.send(request_vote_frame(cluster_tag(c.name), 99, term=10 ** 6, last_index=10 ** 12,
                                  last_term=10 ** 6))
    return s


def test_an_ensemble_whose_members_authenticate_each_other_replicates(ensemble3):
    assert_replicates(ensemble3, "/authenticated")


def test_a_stranger_that_does_not_authenticate_is_closed_and_changes_no_leader(ensemble3):
    c = ensemble3
    lid = c.wait_for_leader()
    for sid in c.ids:
        s = stranger_speaks(c, sid)
        assert s.closed_by_server(20), f"server {sid} kept the stranger's connection open"
        s.close()
    assert_leader_kept_and_served(c, lid)
