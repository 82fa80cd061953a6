"""corralctl's operator verbs (getacl, setacl, sessions, watches, health)
and --json for the reads and writes, against a live standalone corrald and
a 3-server ensemble. Every --json answer is parsed with json.loads and
checked against what kazoo sees.

Environment: CORRALD and CORRALCTL (meson sets them)."""
import base64
import hashlib
import json
import os
import subprocess

import pytest
from kazoo.security import make_acl, make_digest_acl

import harness
from ensembles import Cluster
from harness import wait_until

CORRALD = os.environ.get("CORRALD")
CORRALCTL = os.environ.get("CORRALCTL")

pytestmark = pytest.mark.skipif(not CORRALD or not CORRALCTL,
                                reason="CORRALD and CORRALCTL must be set")

SUPER_PASSWORD = "ops-super"
SUPER_DIGEST = "super:" + base64.b64encode(
    hashlib.sha1(f"super:{SUPER_PASSWORD}".encode()).digest()).decode()
WORDS = ["ruok", "srvr", "stat", "mntr", "conf", "cons", "dump", "wchp", "wchc", "wchs"]


def ctl(server, *args, timeout=60):
    """Runs corralctl -s server ARGS: (exit status, stdout text, stderr text)."""
    env = {k: v for k, v in os.environ.items() if k != "CORRAL_SERVER"}
    r = subprocess.run([CORRALCTL, "-s", server] + list(args), capture_output=True, text=True,
                       env=env, timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def ctl_json(server, *args):
    rc, out, err = ctl(server, "--json", *args)
    assert rc == 0, (rc, out, err)
    assert out.count("\n") == 1 and out.endswith("\n"), out
    return json.loads(out)


class Target:
    """Where the verbs run: servers (each a harness.Corrald), the one
    corralctl and kazoo talk to, and a way to stop one."""

    def __init__(self, kind, servers, cluster=None):
        self.kind = kind
        self.servers = servers
        self.cluster = cluster
        self.clients = []

    @property
    def server(self):
        return self.servers[0].hosts

    def kazoo(self, server=None):
        zk = harness.make_kazoo((server or self.servers[0]).hosts)
        zk.start(timeout=30)
        self.clients.append(zk)
        return zk


def make_target(request, tmp_path):
    config = {"client": {"four_letter_words": WORDS}, "auth": {"super_digest": SUPER_DIGEST}}
    if request.param == "zookeeper":
        if not os.path.exists(harness.ZK_CLASSPATH.split(":")[1]):
            pytest.skip("Apache ZooKeeper (Debian's zookeeper package) is not installed")
        srv = harness.ZooKeeper(str(tmp_path), system={
            "zookeeper.DigestAuthenticationProvider.superDigest": SUPER_DIGEST})
        srv.start(timeout=60)
        t = Target("zookeeper", [srv])
    elif request.param == "standalone":
        srv = harness.Corrald(str(tmp_path), config=config)
        srv.start(timeout=30)
        t = Target("standalone", [srv])
    else:
        c = Cluster(tmp_path, 3, election_timeout_ms=300, config=config)
        c.start()
        t = Target("ensemble", list(c), cluster=c)
    return t


def end_target(t):
    harness.stop_kazoo(t.clients, raise_stuck=False)
    if t.cluster:
        t.cluster.stop_all()
    else:
        t.servers[0].stop()
    for s in t.servers:
        if t.kind != "zookeeper":
            assert not s.sanitizer_reports(), s.sanitizer_reports()


@pytest.fixture(params=["standalone", "ensemble"])
def target(request, tmp_path):
    """corrald: standalone, or a 3-server ensemble (corral's own verbs)."""
    t = make_target(request, tmp_path)
    yield t
    end_target(t)


@pytest.fixture(params=["standalone", "ensemble", "zookeeper"])
def any_target(request, tmp_path):
    """corrald, or Apache ZooKeeper 3.8 for what ZooKeeper serves too."""
    t = make_target(request, tmp_path)
    yield t
    end_target(t)


# ---- reads and writes with --json ----

def test_reads_and_writes_json_match_kazoo(any_target):
    target = any_target
    zk = target.kazoo()
    zk.create("/j", b"one\x00\xff\"quote\"", makepath=True)
    zk.create("/j/b")
    zk.create("/j/a")
    s = target.server
    assert ctl_json(s, "ls", "/j") == {"path": "/j", "children": ["a", "b"]}
    got = ctl_json(s, "get", "/j")
    data, st = zk.get("/j")
    assert got["data"] == data.decode("latin-1")
    assert got["stat"] == {
        "cZxid": st.czxid, "ctime": st.ctime, "mZxid": st.mzxid, "mtime": st.mtime,
        "pZxid": st.pzxid, "cversion": st.cversion, "dataVersion": st.version,
        "aclVersion": st.aversion, "ephemeralOwner": st.ephemeralOwner,
        "dataLength": st.dataLength, "numChildren": st.numChildren}
    assert ctl_json(s, "stat", "/j")["stat"] == got["stat"]
    assert ctl_json(s, "create", "/j/c", "x") == {"path": "/j/c"}
    assert ctl_json(s, "set", "/j/c", "y") == {"path": "/j/c", "ok": True}
    zk.sync("/j/c")
    assert zk.get("/j/c")[0] == b"y"
    assert ctl_json(s, "delete", "/j/c") == {"path": "/j/c", "ok": True}
    zk.sync("/j")
    assert zk.exists("/j/c") is None
    assert ctl_json(s, "ruok") == {"server": s, "answer": "imok"}
    status = ctl_json(s, "status")
    assert status["mode"] == target.servers[0].mode()
    assert status["mntr"]["zk_server_state"] == status["mode"]
    rc, out, err = ctl(s, "--json", "get", "/nothing")
    assert (rc, out) == (1, "") and "no such node" in err


def test_tree_members_backup_json(target, tmp_path):
    zk = target.kazoo()
    zk.create("/t/a/x", makepath=True)
    zk.create("/t/b")
    s = target.server
    assert ctl_json(s, "tree", "/t") == {"path": "/t", "nodes": ["/t", "/t/a", "/t/a/x", "/t/b"],
                                         "truncated": False}
    assert ctl_json(s, "tree", "--max-nodes", "2", "/t")["truncated"] is True

    backup = str(tmp_path / "b.corral")
    got = ctl_json(s, "--auth", f"super:{SUPER_PASSWORD}", "backup", backup)
    assert got["file"] == backup and got["bytes"] == os.path.getsize(backup)
    assert int(got["zxid"], 16) > 0 and len(got["cluster"]) == 32
    verify = harness.run_corrald(["--verify", backup])
    assert verify.returncode == 0, verify.stderr
    assert got["zxid"] in verify.stdout + verify.stderr

    if target.kind == "standalone":
        rc, out, err = ctl(s, "--json", "members", "list")
        assert (rc, out) == (1, "") and "standalone" in err
        return
    got = ctl_json(s, "members", "list")
    leader = target.cluster.leader()
    assert [(m["id"], m["role"], m["client"]) for m in got["members"]] == \
        [(sv.id, "participant", sv.client_addr) for sv in target.servers]
    assert got["leader"] == leader and got["leader_disputed"] is False
    assert sorted(m["state"] for m in got["members"]) == ["follower", "follower", "leader"]
    data, _ = zk.get("/zookeeper/config")
    assert f"version={got['version']}" in data.decode()
    assert ctl_json(s, "--auth", f"super:{SUPER_PASSWORD}", "members", "transfer-leader",
                    str(leader)) == {"leader": leader, "already": True}
    other = [sv.id for sv in target.servers if sv.id != leader][0]
    assert ctl_json(s, "--auth", f"super:{SUPER_PASSWORD}", "-t", "30000", "members",
                    "transfer-leader", str(other)) == {"leader": other, "already": False}
    wait_until(lambda: target.cluster.leader() == other, 30, what=f"server {other} leads")


# ---- getacl, setacl ----

def test_getacl_and_setacl(any_target):
    target = any_target
    zk = target.kazoo()
    acl = [make_digest_acl("alice", "pw", read=True, write=True, admin=True),
           make_acl("world", "anyone", read=True)]
    zk.create("/acl", b"", acl=acl)
    s = target.server
    got = ctl_json(s, "getacl", "/acl")
    acls, st = zk.get_acls("/acl")
    assert got["path"] == "/acl" and got["aversion"] == st.aversion == 0
    assert [(a["scheme"], a["id"], a["perms_bits"]) for a in got["acl"]] == \
        [(a.id.scheme, a.id.id, a.perms) for a in acls]
    assert [a["perms"] for a in got["acl"]] == ["rwa", "r"]
    rc, out, err = ctl(s, "getacl", "/acl")
    assert (rc, err) == (0, "")
    assert out == f"digest:{acls[0].id.id}:rwa\nworld:anyone:r\n"

    rc, out, err = ctl(s, "setacl", "/acl", "world:anyone:cdrwa")
    assert (rc, out) == (1, "") and "not authorized (NOAUTH)" in err
    assert ctl_json(s, "--auth", "alice:pw", "setacl", "/acl",
                    "world:anyone:cdrwa,ip:127.0.0.1:r") == \
        {"path": "/acl", "acl": "world:anyone:cdrwa,ip:127.0.0.1:r"}
    zk.sync("/acl")
    acls, st = zk.get_acls("/acl")
    assert [(a.id.scheme, a.id.id, a.perms) for a in acls] == \
        [("world", "anyone", 31), ("ip", "127.0.0.1", 1)]
    assert st.aversion == 1
    rc, out, err = ctl(s, "setacl", "/acl", "world:anyone:rx")
    assert rc == 64 and "perms are letters of cdrwa" in err
    rc, out, err = ctl(s, "setacl", "/nothing", "world:anyone:r")
    assert rc == 1 and "no such node" in err


# ---- sessions, watches ----

def test_sessions_lists_clients_with_ephemerals(any_target):
    target = any_target
    member = target.servers[-1]
    zk = target.kazoo(member)
    zk.create("/eph-a", ephemeral=True)
    zk.create("/eph-b", ephemeral=True)
    sid = zk.client_id[0]
    local = zk._connection._socket.getsockname()
    got = ctl_json(member.hosts, "sessions")
    assert got["server"] == member.hosts
    mine = [x for x in got["sessions"] if x["session_id_int"] == sid]
    assert len(mine) == 1, got
    assert mine[0]["session_id"] == hex(sid)
    assert mine[0]["client"] == f"{local[0]}:{local[1]}"
    assert mine[0]["timeout_ms"] == zk._session_timeout
    assert sorted(mine[0]["ephemerals"]) == ["/eph-a", "/eph-b"]
    rc, out, err = ctl(member.hosts, "sessions")
    assert (rc, err) == (0, "")
    line = [ln for ln in out.splitlines() if ln.startswith(hex(sid) + " ")]
    assert len(line) == 1 and f"{local[0]}:{local[1]}" in line[0]
    assert line[0].split()[-1] in ("/eph-a,/eph-b", "/eph-b,/eph-a")


def test_sessions_close_ends_a_session_and_its_ephemerals(target):
    from kazoo.protocol.states import KazooState
    victim_server = target.servers[-1]
    if target.kind == "ensemble":   # a follower: corralctl must find the leader
        leader = target.cluster.leader()
        victim_server = [sv for sv in target.servers if sv.id != leader][-1]
    victim = target.kazoo(victim_server)
    watcher = target.kazoo()
    states = []
    victim.add_listener(states.append)
    victim.create("/gone", ephemeral=True)
    sid = victim.client_id[0]
    seen = []
    watcher.exists("/gone", watch=seen.append)
    auth = ["--auth", f"super:{SUPER_PASSWORD}"]
    rc, out, err = ctl(victim_server.hosts, "sessions", "close", hex(sid))
    assert (rc, out) == (1, "") and "needs the super user" in err
    assert watcher.exists("/gone") is not None
    assert ctl_json(victim_server.hosts, *auth, "sessions", "close", hex(sid)) == \
        {"closed": hex(sid)}
    wait_until(lambda: seen, 30, what="the ephemeral's deletion seen by a watcher")
    assert seen[0].type == "DELETED" and seen[0].path == "/gone"
    wait_until(lambda: KazooState.LOST in states, 30, what="the victim's session lost")
    rc, out, err = ctl(victim_server.hosts, *auth, "sessions", "close", str(sid))
    assert (rc, out) == (1, "") and f"no session {hex(sid)}" in err
    rc, out, err = ctl(victim_server.hosts, *auth, "sessions", "close", "xyz")
    assert rc == 64


def test_sessions_and_watches_need_their_words(tmp_path):
    srv = harness.Corrald(str(tmp_path), config={"client": {"four_letter_words": ["ruok"]}})
    srv.start(timeout=30)
    try:
        for args, word in [(["sessions"], "cons"), (["watches", "path"], "wchp"),
                           (["watches", "session"], "wchc")]:
            rc, out, err = ctl(srv.hosts, *args)
            assert (rc, out) == (1, "")
            assert f"{word} is not enabled on the server" in err
    finally:
        srv.stop()


def test_watches_by_path_and_by_session(any_target):
    target = any_target
    member = target.servers[-1]
    zk = target.kazoo(member)
    zk.create("/w")
    zk.get("/w", watch=lambda e: None)
    zk.get_children("/w", watch=lambda e: None)
    sid = hex(zk.client_id[0])
    by_path = ctl_json(member.hosts, "watches", "path")
    assert by_path["by"] == "path"
    assert sid in by_path["watches"]["/w"]
    by_session = ctl_json(member.hosts, "watches", "session")
    assert by_session["by"] == "session"
    assert "/w" in by_session["watches"][sid]
    rc, out, err = ctl(member.hosts, "watches", "path")
    assert rc == 0 and f"/w\n\t{sid}\n" in out
    rc, out, err = ctl(member.hosts, "watches", "frob")
    assert rc == 64


# ---- health ----

def test_health_healthy_then_degraded_then_unreachable(target):
    zk = target.kazoo()
    zk.create("/h", b"x")
    s = target.server
    got = ctl_json(s, "health")
    assert got["health"] == "healthy" and got["quorum"] is True
    assert len(got["members"]) == len(target.servers)
    for m in got["members"]:
        assert m["reachable"] and m["alarms"] == [] and m["zxid_lag"] >= 0
    if target.kind == "standalone":
        assert got["members"][0]["state"] == "standalone"
        assert int(got["members"][0]["zxid"], 16) == target.servers[0].zxid()
        target.servers[0].stop()
        rc, out, err = ctl(s, "--json", "health")
        assert (rc, out) == (2, "") and "cannot be reached" in err
        return
    leader = target.cluster.leader()
    assert [m["id"] for m in got["members"] if m["state"] == "leader"] == [leader]
    follower = [sv for sv in target.servers if sv.id != leader][-1]
    follower.stop()
    rc, out, err = ctl(s if target.servers[0] is not follower else target.cluster[leader].hosts,
                       "--json", "health")
    assert rc == 1, (out, err)
    got = json.loads(out)
    assert got["health"] == "degraded" and got["quorum"] is True
    down = [m for m in got["members"] if m["id"] == follower.id][0]
    assert down["reachable"] is False and down["state"] == "unreachable"
    rc, out, err = ctl(s if target.servers[0] is not follower else target.cluster[leader].hosts,
                       "health")
    assert rc == 1 and "health: degraded" in out


# ---- doctor ----

def doctor_checks(config_path):
    rc, out, err = ctl("127.0.0.1:1", "--json", "doctor", config_path)
    got = json.loads(out)
    checks = {c["check"]: c for c in got["checks"]}
    worst = max(["ok", "warn", "fail"].index(c["status"]) for c in got["checks"])
    assert got["result"] == ["ok", "warn", "fail"][worst]
    assert rc == (0 if worst == 0 else 1), (rc, out, err)
    assert got["config"] == config_path
    return checks


def free_bytes(path):
    vfs = os.statvfs(path)
    return vfs.f_bavail * vfs.f_frsize


def check_machine(checks, data_dir, max_connections, free_before):
    """free_before: the data directory's free bytes just before doctor ran.
    The other tests of a parallel run write to the same disk meanwhile, so
    doctor's figure is checked against the range seen around its run."""
    import resource
    assert checks["config"]["status"] == "ok"
    assert f"client.max_connections {max_connections}" in checks["config"]["detail"]
    assert checks["data_dir"]["value"] == data_dir
    assert checks["fdatasync"]["status"] in ("ok", "warn")
    avg, worst = checks["fdatasync"]["value"].removesuffix(" ms").split("/")
    assert 0 <= float(avg) <= float(worst)
    free_after = free_bytes(data_dir)
    slack = 64 << 20
    assert (min(free_before, free_after) - slack <= int(checks["free_space"]["value"])
            <= max(free_before, free_after) + slack), (free_before, free_after)
    assert int(checks["open_files"]["value"]) == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert checks["io_uring"]["status"] == "ok"    # corrald itself runs here
    assert checks["clock"]["value"] in ("synchronised", "unsynchronised")
    assert not os.listdir(data_dir) or not any(n.startswith(".corralctl-doctor")
                                                 for n in os.listdir(data_dir))


def test_doctor_on_the_real_disk(target):
    s = target.servers[0]
    free_before = free_bytes(s.data_dir)
    checks = doctor_checks(s.config_path)
    check_machine(checks, s.data_dir, 4096, free_before)
    assert checks["data_dir"]["status"] == "ok"
    members = {k: v for k, v in checks.items() if k.startswith("member ")}
    assert len(members) == (3 if target.kind == "ensemble" else 0)
    for sv in (target.servers if members else []):
        m = members[f"member {sv.id}"]
        srvr = dict(ln.split(": ", 1) for ln in sv.four_letter("srvr").splitlines() if ": " in ln)
        assert m["status"] == "ok" and m["value"] == "reachable"
        assert m["detail"] == (f"peer {sv.peer_addr} accepts, client {sv.client_addr} accepts, "
                               f"version {srvr['Zookeeper version'].split(',')[0]}")
    if target.kind == "ensemble":
        stopped = target.servers[-1]
        stopped.stop()
        checks = doctor_checks(s.config_path)
        assert checks[f"member {stopped.id}"]["status"] == "warn"
        assert checks[f"member {stopped.id}"]["value"] == "unreachable"


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_doctor_on_tmpfs(tmp_path):
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mnt)], check=True)
    try:
        config = tmp_path / "corral.yaml"
        config.write_text(f"data_dir: {mnt}\nclient:\n  max_connections: 100\n")
        free_before = free_bytes(str(mnt))
        checks = doctor_checks(str(config))
        check_machine(checks, str(mnt), 100, free_before)
        assert checks["data_dir"]["status"] == "warn"
        assert "tmpfs" in checks["data_dir"]["detail"]
        assert checks["free_space"]["status"] == "warn"     # 64 MiB < 1 GiB
        rc, out, err = ctl("127.0.0.1:1", "doctor", str(config))
        assert rc == 1 and "on tmpfs" in out and out.endswith(")\n")
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_doctor_without_a_config_says_so(tmp_path):
    checks = doctor_checks(str(tmp_path / "missing.yaml"))
    assert checks["config"]["status"] == "fail"
    assert "No such file" in checks["config"]["detail"]
