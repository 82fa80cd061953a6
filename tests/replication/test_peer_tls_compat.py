"""Mutual TLS between ensemble members, held to Apache ZooKeeper 3.8: an
ensemble whose members speak TLS to each other and require each other's
certificate forms and replicates, and a stranger that reaches a member's
peer port with a certificate of another CA, or in plaintext, is closed and
changes no leader.

CORRAL_TEST_TARGET=corrald (default): members with ensemble.tls (each a
certificate of the run's CA naming its peer host). CORRAL_TEST_TARGET=zookeeper:
ZooKeeper's sslQuorum with PEM key and trust stores (ssl.quorum.*), client
authentication as ZooKeeper requires it by default. The two peer protocols
differ (corral's is not ZooKeeper's quorum protocol); what is compared is
what a member does with a stranger, and that the ensemble works."""
import os
import socket
import ssl
import struct

import pytest

import tls_pki
import zookeeper_ensemble
from ensembles import Cluster
from peerauth import (PeerConnection, assert_leader_kept_and_served, assert_replicates,
                      cluster_tag, request_vote_frame)

TARGET = os.environ.get("CORRAL_TEST_TARGET", "corrald")
SUPER_DIGEST = "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
# ZooKeeper's quorum TLS loads Netty's classes (UnifiedServerSocket); without
# them on the class path its election listener thread dies at the first
# connection it accepts, silently.
NETTY_JARS = ["netty-handler", "netty-transport", "netty-buffer", "netty-codec", "netty-common",
              "netty-resolver", "netty-transport-native-epoll",
              "netty-transport-native-unix-common"]


@pytest.fixture
def pki(tmp_path):
    p = tls_pki.Pki(str(tmp_path / "pki"))
    p.make_ca("rogue-ca", "/O=Rogue/CN=Rogue CA")
    p.issue("rogue", "/O=Corral Test/CN=server 1", ca="rogue-ca",
            peer_hosts=["127.0.0.1", "localhost"])
    return p


def zookeeper_ssl_quorum(tmp_path, pki):
    pki.issue("member", "/O=Corral Test/CN=member", peer_hosts=["127.0.0.1", "localhost"])
    keystore = tmp_path / "member-keystore.pem"
    keystore.write_text(open(pki.key("member")).read() + open(pki.cert("member")).read())
    os.chmod(keystore, 0o600)
    extra = ("sslQuorum=true\n"
             f"ssl.quorum.keyStore.location={keystore}\nssl.quorum.keyStore.type=PEM\n"
             f"ssl.quorum.trustStore.location={pki.ca_file()}\n"
             "ssl.quorum.trustStore.type=PEM\n")
    c = zookeeper_ensemble.ZooKeeperCluster(
        tmp_path / "zk", 3, SUPER_DIGEST, extra_cfg=extra,
        classpath_extra=[f"/usr/share/java/{j}.jar" for j in NETTY_JARS])
    return c


@pytest.fixture
def ensemble3(tmp_path, pki, request):
    """A started 3-server ensemble of the target with mutual TLS between
    its members."""
    if TARGET == "zookeeper":
        why = zookeeper_ensemble.available()
        if why:
            pytest.fail(f"the ZooKeeper ensemble cannot run: {why}")
        c = zookeeper_ssl_quorum(tmp_path, pki)
    else:
        c = Cluster(tmp_path / "corral", 3)
        c.peer_tls = True
        c._pki = pki
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


def refused_with_rogue_certificate(port, pki, timeout=20):
    """How the member at port ends a TLS connection that presents a
    certificate of another CA: "alert" when it refuses the certificate in
    the handshake (TLS 1.3: the member judges the client's certificate after
    the client's part of the handshake is done, and its verdict comes as an
    alert), else what it did ("open", "eof", "reset"). Nothing is sent after
    the handshake, so a member that took the certificate would be waiting
    for a peer's first message."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE     # the stranger does not care who the member is
    ctx.load_cert_chain(pki.cert("rogue"), pki.key("rogue"))
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s = ctx.wrap_socket(raw)
    except ssl.SSLError as e:
        return "alert", e
    except (ConnectionResetError, BrokenPipeError) as e:
        return "reset", e
    try:
        s.settimeout(3)
        return ("eof" if s.recv(4096) == b"" else "data"), None
    except ssl.SSLError as e:
        return "alert", e
    except (ConnectionResetError, BrokenPipeError) as e:
        return "reset", e
    except socket.timeout:
        return "open", None
    finally:
        s.close()


def plaintext_stranger(c, sid):
    """A plaintext connection to server sid's peer port that says what a
    peer would say."""
    s = PeerConnection("127.0.0.1", peer_port(c, sid))
    if TARGET == "zookeeper":
        # QuorumCnxManager's initial message: protocol version 2, sid 99
        addr = b"127.0.0.1:1"
        s.send(struct.pack(">qqi", -65535, 99, len(addr)) + addr)
    else:
        s.send(request_vote_frame(cluster_tag(c.name), 99, term=10 ** 6, last_index=10 ** 12,
                                  last_term=10 ** 6))
    return s


def test_an_ensemble_with_mutual_tls_between_its_members_replicates(ensemble3):
    assert_replicates(ensemble3, "/over-tls")


def test_a_stranger_with_another_cas_certificate_or_plaintext_is_closed_and_changes_no_leader(
        ensemble3, pki):
    c = ensemble3
    lid = c.wait_for_leader()
    for sid in c.ids:
        how, detail = refused_with_rogue_certificate(peer_port(c, sid), pki)
        assert how == "alert", (f"server {sid} did not refuse a peer certificate of another "
                                f"CA in the handshake: {how} {detail}")
        s = plaintext_stranger(c, sid)
        assert s.closed_by_server(20), f"server {sid} kept a plaintext stranger's connection open"
        s.close()
    assert_leader_kept_and_served(c, lid)
