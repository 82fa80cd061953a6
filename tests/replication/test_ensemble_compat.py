"""What clients see of a 3-server ensemble, held to Apache ZooKeeper 3.8:
reconfig's server strings and argument checks, read-only mode when a member
loses the quorum, and the four-letter words of a leader and a follower.

CORRAL_TEST_TARGET=corrald (default) runs them against corrald ensembles
(cluster.py), CORRAL_TEST_TARGET=zookeeper against a ZooKeeper ensemble
configured the same way (zookeeper_ensemble.py: reconfigEnabled, a super
digest, readonlymode.enabled). The same assertions hold on both; where
corral differs on purpose, the test says so and the README lists it.

What is proved:
- Curator's EnsembleTracker reads /zookeeper/config (ZooKeeper's parser,
  which refuses equal quorum and election ports);
- a member added with reconfig reads back from /zookeeper/config exactly as
  written (its election port too), and goes again with leaving; the node's
  watchers hear of the change, its version is -1, as ZooKeeper's; a stale
  config version is BADVERSION (kazoo's TestReconfig, as its suite runs it);
- malformed reconfig arguments are BADARGUMENTS (or MARSHALLINGERROR where
  ZooKeeper cannot read a number) even without WRITE on /zookeeper/config,
  which a well-formed one without it is refused for (NOAUTH): the arguments
  are checked first;
- a member cut off from the quorum, a follower or the leader, closes its
  clients' connections at once;
  then it takes canBeReadOnly clients read-only (isro, srvr, mntr say so):
  a new session, or a client whose session it cannot resume (one without
  ephemerals, a local session in ZooKeeper's terms) after an expired
  answer; it refuses clients that cannot be read-only and sessions with
  ephemerals (global ones), which it never resumes. Writes are NOTREADONLY.
  When the quorum is back the read-only sessions end, and the others resume
  their sessions, ephemerals intact;
- zkCli.sh's config and reconfig print what they print against ZooKeeper;
- srvr, conf and mntr of a leader and a follower have ZooKeeper's lines.

Every wait polls a condition with a deadline (cluster.wait_until).
"""
import base64
import hashlib
import logging
import os
import re
import socket
import struct

import pytest
from kazoo import exceptions as kx
from kazoo.client import KazooClient
from kazoo.protocol.states import KazooState, KeeperState

from ensembles import Cluster
from harness import four_letter, free_ports, stop_kazoo, wait_until
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


# ------------------------------------------------------------- reconfig ---

CURATOR_JARS = ["/usr/share/java/curator-framework.jar", "/usr/share/java/curator-client.jar",
                "/usr/share/java/zookeeper.jar"]


def curator_connection_string(config):
    """What Curator's EnsembleTracker makes of /zookeeper/config's data
    (curator/EnsembleConfig.java): the client addresses, as a set."""
    import subprocess
    missing = [j for j in CURATOR_JARS if not os.path.exists(j)]
    assert not missing, f"Curator's jars are missing: {missing} (scripts/deps.sh test)"
    r = subprocess.run(["java", "-cp", ":".join(CURATOR_JARS),
                        os.path.join(os.path.dirname(__file__), "curator", "EnsembleConfig.java")],
                       input=config, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=60)
    out = r.stdout.decode().strip()
    assert r.returncode == 0, f"EnsembleTracker refuses {config!r}: {out}"
    return set(out.split(","))


def test_curators_ensemble_tracker_reads_zookeeper_config(ensemble3, clients):
    """Curator follows the ensemble by parsing /zookeeper/config with
    ZooKeeper's own QuorumServer, which refuses a server line whose quorum
    and election ports are equal."""
    zk = clients(ensemble3.hosts())
    config, _ = zk.get("/zookeeper/config")
    assert curator_connection_string(config) == {s.client_addr for s in ensemble3}

def test_a_reconfig_server_string_reads_back_as_written_then_leaves(ensemble3, clients):
    """kazoo's TestReconfig.test_add_remove_observer."""
    zk = clients(ensemble3.hosts(), auth=True)
    version = zk.server_version()
    assert version >= (3, 5), version		# kazoo's suite skips reconfig below
    # Curator's EnsembleTracker follows the members with a watch on
    # /zookeeper/config: a reconfig fires it
    events = []
    watcher = clients(ensemble3.hosts())
    watcher.get("/zookeeper/config", watch=events.append)
    p1, p2, p3 = free_ports(3)
    joining = f"server.100=0.0.0.0:{p1}:{p2}:observer;0.0.0.0:{p3}"
    data, stat = zk.reconfig(joining=joining, leaving=None, new_members=None)
    assert joining.encode() in data.split(b"\n"), data
    config, stat2 = zk.get("/zookeeper/config")
    assert joining.encode() in config.split(b"\n"), config
    assert stat.version == stat2.version == -1 and stat.mzxid == stat2.mzxid > 0, (stat, stat2)
    wait_until(lambda: events, 20, what="the watch on /zookeeper/config to fire")
    assert [(e.type, e.path) for e in events] == [("CHANGED", "/zookeeper/config")]
    assert curator_connection_string(config) >= {s.client_addr for s in ensemble3}

    data, _ = zk.reconfig(joining=None, leaving="100", new_members=None)
    assert joining.encode() not in data
    curver = int(data.decode().split("\n")[-1].split("=")[1], 16)
    with pytest.raises(kx.BadVersionError):
        zk.reconfig(joining=joining, leaving=None, new_members=None, from_config=curver + 1)


def test_reconfig_checks_its_arguments_before_write_on_zookeeper_config(ensemble3, clients):
    """kazoo's TestReconfig.test_bad_input and test_no_super_auth, and the
    other ways a server string can be wrong, asked without the super user:
    ZooKeeper parses the arguments before it checks WRITE."""
    zk = clients(ensemble3.hosts())
    bad = {
        "some thing": kx.BadArgumentsError,
        "server.101=127.0.0.1:5000": kx.BadArgumentsError,		# no election port
        "server.101=127.0.0.1:5000:5000;5001": kx.BadArgumentsError,	# the same two ports
        "server.101=127.0.0.1:5000:5001:observer": kx.BadArgumentsError,	# no client port
        "server.101=127.0.0.1:5000:5001:leader;5002": kx.BadArgumentsError,	# no such role
        "server.x=127.0.0.1:5000:5001;5002": kx.MarshallingError,	# the id is no number
    }
    for joining, error in bad.items():
        with pytest.raises(error):
            zk.reconfig(joining=joining, leaving=None, new_members=None)
    with pytest.raises(kx.MarshallingError):
        zk.reconfig(joining=None, leaving="abc", new_members=None)
    # well-formed: now WRITE decides
    with pytest.raises(kx.NoAuthError):
        zk.reconfig(joining="server.999=0.0.0.0:1234:2345:observer;3456", leaving=None,
                    new_members=None)
    with pytest.raises(kx.NoAuthError):
        zk.reconfig(joining=None, leaving="3", new_members=None)


def test_zkcli_config_and_reconfig_answer_as_against_zookeeper(ensemble3, clients):
    """zkCli.sh's config and reconfig, with and without the super user."""
    import subprocess
    zk = clients(ensemble3.hosts())
    config = zk.get("/zookeeper/config")[0].decode()
    p1, p2, p3 = free_ports(3)
    joining = f"server.100=0.0.0.0:{p1}:{p2}:observer;0.0.0.0:{p3}"
    cmds = ["config", f"reconfig -add {joining}", "reconfig -add some",
            f"addauth digest super:{SUPER_PASSWORD}", f"reconfig -add {joining}",
            "reconfig -remove 100", "reconfig -remove 100 -v 1"]
    script = []
    for i, cmd in enumerate(cmds):
        script += [f"ls /__mark{i}", cmd]
    r = subprocess.run(["/usr/share/zookeeper/bin/zkCli.sh", "-server", ensemble3.hosts()],
                       input="\n".join(script + ["quit"]) + "\n", stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=120)
    parts, k = {}, None
    for ln in r.stdout.split("\n"):
        m = re.fullmatch(r"Node does not exist: /__mark(\d+)", ln)
        if m:
            k = int(m.group(1))
            parts[k] = []
        elif k is not None and ln.strip() and not ln.startswith(("SLF4J", "WATCHER::",
                                                                     "WatchedEvent")):
            parts[k].append(ln)
    assert len(parts) == len(cmds), r.stdout
    assert parts[0] == config.split("\n")
    assert parts[1] == ["Insufficient permission : "]
    assert parts[2] == ["Arguments are not valid : "]
    assert parts[4][0] == "Committed new configuration:"
    assert joining in parts[4][1:]
    assert parts[4][1:-1] == sorted(config.split("\n")[:-1] + [joining],
                                    key=lambda ln: int(ln.split("=")[0].split(".")[1]))
    assert parts[5][0] == "Committed new configuration:" and joining not in parts[5]
    assert parts[6] == ["version No is not valid : "]


# ------------------------------------------------------------ read-only ---

def raw_connect(port, session_id=0, passwd=b"\0" * 16, read_only=True, timeout=10):
    """A ConnectRequest; returns the ConnectResponse's (session id, timeout,
    read-only) or None when the server closes without one."""
    body = (struct.pack(">iqiq", 0, 0, SESSION_TIMEOUT_S * 1000, session_id)
            + struct.pack(">i", len(passwd)) + passwd + (b"\1" if read_only else b"\0"))
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        got = b""
        try:
            while len(got) < 4 or len(got) < 4 + struct.unpack(">i", got[:4])[0]:
                b = s.recv(4096)
                if not b:
                    break
                got += b
        except ConnectionResetError:
            pass
        if len(got) < 4 + 20:
            return None
        _, timeout_ms, sid = struct.unpack(">iiq", got[4:20])
        return sid, timeout_ms, got[-1:] == b"\1"


def op(async_result, timeout=20):
    """A kazoo request's answer, waited for with a deadline (a request on a
    connection that never answers would otherwise wait for ever)."""
    return async_result.get(timeout=timeout)


def isro(port):
    try:
        return four_letter(port, "isro", 3)
    except OSError:
        return None


@pytest.mark.parametrize("member", ["follower", "leader"])
def test_a_member_cut_off_from_the_quorum_serves_read_only_as_zookeeper_does(ensemble3, clients,
                                                                            member):
    c = ensemble3
    lid = c.wait_for_leader()
    f = lid if member == "leader" else next(s.id for s in c if s.id != lid)
    port = c[f].client_port
    others = [s.id for s in c if s.id != f]
    writer = clients(c.hosts(first=next(s.id for s in c if s.id != f)))
    op(writer.create_async("/data", b"before"))
    # On the member that will be cut off: a client that cannot be read-only
    # and one that can, both holding ephemerals (global sessions), and a
    # read-only client without any.
    rw = clients(c[f].client_addr)
    ro_global = clients(c[f].client_addr, read_only=True)
    ro_local = clients(c[f].client_addr, read_only=True)
    for zk in (rw, ro_global, ro_local):
        op(zk.sync_async("/"))
        assert op(zk.get_async("/data"))[0] == b"before"
        assert zk.client_state == KeeperState.CONNECTED
    op(rw.create_async("/rw-ephemeral", b"", ephemeral=True))
    op(ro_global.create_async("/ro-ephemeral", b"", ephemeral=True))
    ids = {zk: zk.client_id for zk in (rw, ro_global, ro_local)}
    marks = {zk: len(zk.states) for zk in ids}

    for sid in others:
        c[sid].pause()

    # 1. The member closes every client's connection (ZooKeeper: when it
    # stops following or leading; corral: when it stands for election, or
    # stops leading).
    wait_until(lambda: all(KazooState.SUSPENDED in zk.states[marks[zk]:] for zk in ids), 15,
               what="every client on the cut-off member to lose its connection",
               detail=lambda: {zk.client_id[0]: (zk.states, zk.client_state) for zk in ids})

    # 2. It becomes a read-only server, and says so.
    wait_until(lambda: isro(port) == "ro", 20, what="isro to answer ro")
    srvr = four_letter(port, "srvr").split("\n")
    assert srvr[1] == "READ-ONLY mode; serving only read-only clients", srvr
    assert "Mode: read-only" in srvr, srvr
    assert c[f].mntr()["zk_server_state"] == "read-only"

    # 3. A new read-only client is served: reads, and NOTREADONLY for writes.
    fresh = clients(c[f].client_addr, read_only=True)
    assert fresh.client_state == KeeperState.CONNECTED_RO
    assert op(fresh.get_async("/data"))[0] == b"before"
    with pytest.raises(kx.NotReadOnlyCallError):
        op(fresh.create_async("/refused", b""))
    with pytest.raises(kx.NotReadOnlyCallError):
        op(fresh.set_async("/data", b"refused"))

    # 4. The read-only client whose session the member cannot resume is told
    # it expired, and comes back with a read-only session of its own.
    wait_until(lambda: ro_local.client_state == KeeperState.CONNECTED_RO, 20,
               what="the read-only client without ephemerals to come back read-only",
               detail=lambda: (ro_local.states, ro_local.keeper_states))
    assert KeeperState.EXPIRED_SESSION in ro_local.keeper_states
    assert ro_local.client_id[0] != ids[ro_local][0]
    assert op(ro_local.get_async("/data"))[0] == b"before"

    # 5. Refused: a client that cannot be read-only, and a session with
    # ephemerals (not resumed, not told it expired: the quorum still has it).
    assert raw_connect(port, read_only=False) is None
    assert raw_connect(port, *ids[ro_global], read_only=True) is None
    assert raw_connect(port, *ids[rw], read_only=True) is None
    assert rw.client_state != KeeperState.CONNECTED
    assert ro_global.client_state not in (KeeperState.CONNECTED, KeeperState.CONNECTED_RO)
    assert KeeperState.EXPIRED_SESSION not in ro_global.keeper_states + rw.keeper_states

    # 6. The quorum is back: read-only sessions end, the others resume.
    for sid in others:
        c[sid].resume()
    c.wait_for_leader(60)
    wait_until(lambda: all(zk.client_state == KeeperState.CONNECTED
                           for zk in (rw, ro_global, ro_local, fresh)), 60,
               what="every client to be connected read-write again",
               detail=lambda: {zk.client_id[0]: zk.client_state
                               for zk in (rw, ro_global, ro_local, fresh)})
    assert rw.client_id == ids[rw] and ro_global.client_id == ids[ro_global]
    assert op(rw.exists_async("/rw-ephemeral")) and op(rw.exists_async("/ro-ephemeral"))
    op(rw.set_async("/data", b"after"))
    assert isro(port) == "rw"


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
