"""The audit log (corrald: audit_log: true, server/audit.h; ZooKeeper:
zookeeper.audit.enable=true): a record for every write a client asks, when
it is answered: who (session, authenticated users, client address) did
what (operation, path, node type, ACL, result), as ZooKeeper's
tab-separated key=value line; and one per ephemeral node a session's end
deletes. The same tests run against ZooKeeper 3.8 (CORRAL_TEST_TARGET=
zookeeper) and pass there, but for what is marked corrald's own. Reads are
not audited; corrald's log is off by default and a reload turns it on."""
import signal
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError, NodeExistsError
from kazoo.security import make_acl

import harness


def records(srv):
    """The audit records in the server's output, each a dict of its fields."""
    out = []
    for line in srv.log_text().splitlines():
        if "session=" in line and "\toperation=" in line:
            fields = line[line.index("session="):].split("\t")
            out.append(dict(f.split("=", 1) for f in fields))
    return out


def server_records(srv):
    """The server's own records (ZKAuditProvider's: no session), each a dict."""
    out = []
    for line in srv.log_text().splitlines():
        if "\toperation=server" in line and "session=" not in line:
            fields = line[line.index("user="):].split("\t")
            out.append(dict(f.split("=", 1) for f in fields))
    return out


def wait_records(srv, count, timeout=10):
    end = time.monotonic() + timeout
    while True:
        got = records(srv)
        if len(got) >= count or time.monotonic() > end:
            return got
        time.sleep(0.05)


def client(srv, auth=None):
    zk = KazooClient(hosts=srv.hosts, auth_data=auth)
    zk.start()
    return zk


def test_every_write_is_audited_with_who_and_what(make_server):
    srv = make_server(audit_log=True)
    zk = client(srv)
    sid = "0x%x" % zk.client_id[0]
    try:
        zk.create("/a", b"1")
        seq = zk.create("/a/s-", b"", ephemeral=True, sequence=True)
        zk.set("/a", b"2")
        zk.get("/a")                      # reads are not audited
        zk.exists("/a/none")
        zk.set_acls("/a", [make_acl("world", "anyone", read=True, write=True)])
        with pytest.raises(NodeExistsError):
            zk.create("/a")
        with pytest.raises(NoNodeError):
            zk.delete("/nothing")
        tx = zk.transaction()
        tx.create("/m", b"")
        tx.set_data("/a", b"3")
        tx.commit()
        tx = zk.transaction()
        tx.create("/m", b"")
        tx.commit()                       # fails: NODEEXISTS
        zk.delete("/m")
    finally:
        zk.stop()                         # its end deletes the ephemeral
        zk.close()
    got = wait_records(srv, 11)
    want = [
        ("create", "/a", "success"), ("create", seq, "success"), ("setData", "/a", "success"),
        ("setAcl", "/a", "success"), ("create", "/a", "failure"), ("delete", "/nothing", "failure"),
        ("create", "/m", "success"), ("setData", "/a", "success"),
        ("multiOperation", None, "failure"), ("delete", "/m", "success"),
        ("ephemeralZNodeDeletionOnSessionCloseOrExpire", seq, "success"),
    ]
    assert [(r["operation"], r.get("znode"), r["result"]) for r in got] == want, got
    for r in got[:10]:
        assert r["session"] == sid and r["ip"] == "127.0.0.1" and r["user"] == "127.0.0.1", r
    # the server deleted the ephemeral: no client address, the server's user
    assert got[10]["session"] == sid and "ip" not in got[10] and got[10]["user"], got[10]
    assert got[0]["znode_type"] == "persistent"
    assert got[1]["znode_type"] == "ephemeral_sequential"
    assert got[3]["acl"] == "world:anyone:rw"
    assert got[4]["znode_type"] == "persistent"     # a failed create says what was asked
    assert got[6]["znode_type"] == "persistent"     # a create inside the multi
    assert "acl" not in got[2] and "znode_type" not in got[2]
    if srv.target == "corrald":
        # corrald also gives a create's ACL (ZooKeeper only setAcl's)
        assert got[0]["acl"] == "world:anyone:rwcda"


def test_digest_identities_are_users(make_server):
    srv = make_server(audit_log=True)
    zk = client(srv, auth=[("digest", "alice:secret")])
    try:
        zk.create("/private", b"x", acl=[make_acl("auth", "", all=True)])
        zk.set_acls("/private", [make_acl("auth", "", read=True, admin=True)])
        got = wait_records(srv, 2)
    finally:
        zk.stop()
        zk.close()
    assert got[0]["user"] == "alice,127.0.0.1", got
    assert (got[0]["operation"], got[0]["result"]) == ("create", "success")
    acl = got[1]["acl"].split(":")
    if srv.target == "corrald":
        # the ACL as stored: the auth scheme became the digest identity
        assert acl[:2] == ["digest", "alice"] and acl[-1] == "ra", got[1]
    else:
        # ZooKeeper's: as the request had it
        assert got[1]["acl"] == "auth:null:ra", got[1]


@pytest.mark.corral_only
def test_a_client_s_bytes_cannot_forge_fields_or_records(make_server):
    srv = make_server(audit_log=True)
    zk = client(srv, auth=[("digest", "ev\til\nsession=0x0:pw")])
    try:
        with pytest.raises(Exception):
            zk.create("/bad\npath")
        zk.create("/ok")
        got = wait_records(srv, 2)
    finally:
        zk.stop()
        zk.close()
    assert len(got) == 2 and all(r["user"] == "ev?il?session=0x0,127.0.0.1" for r in got), got
    assert got[0]["znode"] == "/bad?path" and got[0]["result"] == "failure", got


def test_the_server_s_start_and_stop_are_recorded(make_server):
    """ZooKeeper's serverStart (success) once the server serves, and
    serverStop (invoked) when it is asked to stop, by the user the server
    runs as; nothing of either with audit off."""
    import getpass
    me = getpass.getuser()
    srv = make_server(audit_log=True)
    start = {"user": me, "operation": "serverStart", "result": "success"}
    end = time.monotonic() + 10
    while not server_records(srv) and time.monotonic() < end:
        time.sleep(0.05)
    assert server_records(srv) == [start], srv.log_text()[-2000:]
    srv.stop()
    assert server_records(srv) == [start, {"user": me, "operation": "serverStop",
                                           "result": "invoked"}], srv.log_text()[-2000:]
    quiet = make_server()
    quiet.stop()
    assert server_records(quiet) == []


@pytest.mark.corral_only
def test_a_server_that_cannot_start_records_the_failure(tmp_path):
    """serverStart with result=failure, as ZooKeeper's, when corrald cannot
    take its client port (another socket listens there)."""
    import os
    import socket
    import subprocess
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        config = tmp_path / "corral.yaml"
        config.write_text(f"data_dir: {tmp_path}/data\naudit_log: true\n"
                          f"client:\n  listen: [\"127.0.0.1:{port}\"]\n")
        p = subprocess.run([os.environ["CORRALD"], "-c", str(config)], capture_output=True,
                           text=True, timeout=60, env=harness.clean_env())
    out = p.stdout + p.stderr
    assert p.returncode != 0, out
    lines = [x[x.index("user="):] for x in out.splitlines() if "\toperation=server" in x]
    assert len(lines) == 1 and lines[0].endswith("\toperation=serverStart\tresult=failure"), out


@pytest.mark.corral_only
def test_off_by_default_and_on_after_a_reload(make_server):
    srv = make_server()
    zk = client(srv)
    try:
        zk.create("/before", b"")
        assert records(srv) == []
        # audit_log: true in the file, then SIGHUP
        srv.rewrite_config({"audit_log": True})
        srv.proc.send_signal(signal.SIGHUP)
        end = time.monotonic() + 10
        while "configuration reloaded from" not in srv.log_text():
            assert time.monotonic() < end, srv.log_text()[-2000:]
            time.sleep(0.05)
        zk.create("/after", b"")
        got = wait_records(srv, 1)
    finally:
        zk.stop()
        zk.close()
    assert [(r["operation"], r["znode"]) for r in got] == [("create", "/after")], got


def journal_entries(sock):
    """Entries sent with journald's native protocol to sock, each a dict."""
    out = []
    sock.setblocking(False)
    while True:
        try:
            data = sock.recv(1 << 20)
        except BlockingIOError:
            return out
        entry, i = {}, 0
        while i < len(data):
            nl = data.index(b"\n", i)
            line = data[i:nl]
            if b"=" in line:
                k, v = line.split(b"=", 1)
                i = nl + 1
            else:   # KEY\n, 64-bit little-endian length, value, \n
                k, n = line, int.from_bytes(data[nl + 1:nl + 9], "little")
                v = data[nl + 9:nl + 9 + n]
                i = nl + 9 + n + 1
            entry[k.decode()] = v.decode(errors="replace")
        out.append(entry)


@pytest.mark.corral_only
def test_records_carry_their_journal_fields(make_server, tmp_path):
    """Under systemd (stderr is the journal's stream) a record goes to
    journald with its own fields. corrald runs in a mount namespace where
    /run/systemd/journal/socket is the test's socket."""
    import os
    import shutil
    import socket
    import subprocess
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare for a private /run/systemd/journal")
    srv = make_server(audit_log=True)
    srv.stop()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "socket"))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    log_path = str(tmp_path / "journal-run.log")
    with open(log_path, "w"):
        pass
    st = os.stat(log_path)
    env = harness.clean_env({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    script = ('mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/journal && '
              f'mount --bind {tmp_path} /run/systemd/journal && exec "$@"')
    with open(log_path, "a") as log:
        srv.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                     script, "sh"] + srv.argv(), stdout=log, stderr=log,
                                    env=env)
    srv.state = "running"
    end = time.monotonic() + 30
    while not harness.serves_sessions(srv.host, srv.port):
        assert srv.proc.poll() is None and time.monotonic() < end, open(log_path).read()
        time.sleep(0.05)
    zk = client(srv, auth=[("digest", "bob:pw")])
    try:
        zk.create("/j", b"")
        with pytest.raises(NoNodeError):
            zk.set("/nope", b"")
        sid = "0x%x" % zk.client_id[0]
        end = time.monotonic() + 10
        got = []
        while len(got) < 3 and time.monotonic() < end:
            got += [e for e in journal_entries(sock)
                    if e.get("MESSAGE_ID") == "1e4c0b6d27a94d0f9a3b7c1f0e2d5a0f"]
            time.sleep(0.05)
    finally:
        zk.stop()
        zk.close()
        sock.close()
    assert len(got) == 3, got
    started, ok, failed = got
    assert started["OPERATION"] == "serverStart" and started["RESULT"] == "success", started
    assert "SESSION_ID" not in started and started["USER"] and started["PRIORITY"] == "6", started
    assert ok["OPERATION"] == "create" and ok["RESULT"] == "success" and ok["PATH"] == "/j", ok
    assert ok["SESSION_ID"] == sid and ok["USER"] == "bob,127.0.0.1", ok
    assert ok["CLIENT_ADDRESS"].startswith("127.0.0.1:") and ok["ZNODE_TYPE"] == "persistent", ok
    assert int(ok["ZXID"], 16) > 0 and ok["PRIORITY"] == "6", ok
    assert ok["MESSAGE"].startswith(f"session={sid}\tuser=bob,127.0.0.1\tip=127.0.0.1\t"), ok
    assert failed["OPERATION"] == "setData" and failed["RESULT"] == "failure", failed
    assert failed["ERROR"] == "NONODE" and failed["PATH"] == "/nope" and "ZXID" not in failed
    assert failed["PRIORITY"] == "5", failed
