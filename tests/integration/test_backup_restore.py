"""Online backup, restore, point-in-time recovery and dump, end to end:
`corralctl backup` from a running corrald under a kazoo write load,
`corrald --verify FILE`, `corrald restore` (from a backup, and to a zxid or
a time from the archive of storage.archive_dir), `corrald dump`, and a
restored server started and read back with kazoo.

A dump is the comparison: `corrald dump` prints every node's path, Stat,
ACL and data, sorted, so two states are equal when their dumps are equal
byte for byte. Environment: CORRALD and CORRALCTL (meson sets them)."""
import base64
import hashlib
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time

import pytest
from kazoo.client import KazooClient

import harness
from harness import free_port, wait_until

pytestmark = pytest.mark.corral_only

CORRALD = os.environ.get("CORRALD")
CORRALCTL = os.environ.get("CORRALCTL")
SUPER_PASSWORD = "backup-super"
SUPER_DIGEST = "super:" + base64.b64encode(
    hashlib.sha1(f"super:{SUPER_PASSWORD}".encode()).digest()).decode()


def run(*argv, check=True):
    p = subprocess.run(list(argv), capture_output=True, text=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"{argv} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


def dump(*sources, at=None):
    argv = [CORRALD, "dump"] + (["--at-zxid", str(at)] if at is not None else []) + list(sources)
    return run(*argv).stdout


def dump_zxid(text):
    first = text.splitlines()[0]
    assert first.startswith("# corral dump: zxid 0x"), first
    return int(first.split("zxid ")[1].split(",")[0], 16)


def backup(srv, path, auth=True, check=True):
    argv = [CORRALCTL, "-s", srv.hosts, "-t", "30000"]
    if auth:
        argv += ["--auth", f"super:{SUPER_PASSWORD}"]
    return run(*(argv + ["backup", path]), check=check)


def mntr(srv):
    return harness.mntr(srv.port, 10, srv.host)


def client(hosts):
    zk = KazooClient(hosts=hosts, timeout=10)
    zk.start(timeout=15)
    return zk


class Writer(threading.Thread):
    """Creates, sets and deletes nodes without pause until stopped."""

    def __init__(self, hosts):
        super().__init__(daemon=True)
        self.zk = client(hosts)
        self.stop_event = threading.Event()
        self.done = 0
        self.error = None
        self.zk.ensure_path("/load")

    def run(self):
        i = 0
        try:
            while not self.stop_event.is_set():
                self.zk.create(f"/load/n{i}", b"v" * (i % 300))
                if i % 3 == 0:
                    self.zk.set(f"/load/n{i}", b"changed")
                if i % 5 == 0 and i > 0:
                    self.zk.delete(f"/load/n{i - 5}")
                i += 1
                self.done += 1
        except Exception as e:  # reported by the test
            self.error = e

    def stop(self):
        self.stop_event.set()
        self.join(30)
        self.zk.stop()
        self.zk.close()


def wait_for(cond, what, timeout=30):
    wait_until(cond, timeout, what=what)


class FromFile(harness.Corrald):
    """A corrald run with a configuration file the test wrote, on a given
    port; ready when it serves a session."""

    def __init__(self, tmp, config_path, port, data_dir=None):
        super().__init__(tmp, name=os.path.basename(config_path), port=port, data_dir=data_dir,
                         ready="session")
        self.given = config_path

    def prepare(self, port=None):
        harness.Process.prepare(self, port)
        self.config_path = self.given


def server_on(data_dir, config_extra=""):
    """A corrald (not started) configured for an existing data directory."""
    tmp = tempfile.mkdtemp(prefix="corral-restored-")
    port = free_port()
    config = os.path.join(tmp, "corral.yaml")
    with open(config, "w") as f:
        f.write(f"data_dir: {data_dir}\nclient:\n  listen: [\"127.0.0.1:{port}\"]\n"
                f"session:\n  tick_time_ms: 200\n  min_timeout_ms: 1000\n" + config_extra)
    return FromFile(tmp, config, port, data_dir)


def start_on(data_dir, config_extra=""):
    """A corrald on an existing data directory (a restored one)."""
    return server_on(data_dir, config_extra).start(timeout=30)


def read_tree(zk, path="/"):
    """{path: data} of every node under path, as a client sees it."""
    out = {}
    stack = [path]
    while stack:
        p = stack.pop()
        data, _ = zk.get(p)
        out[p] = data
        for c in zk.get_children(p):
            stack.append(("" if p == "/" else p) + "/" + c)
    return out


def dump_tree(text):
    """{path: data} from a dump (data printed escaped; the tests write ASCII)."""
    out, path = {}, None
    for line in text.splitlines()[1:]:
        if not line.startswith("  "):
            path = line
        elif line.startswith("  data: "):
            v = line[len("  data: "):]
            out[path] = None if v == "null" else v[1:-1].encode()
    return out


@pytest.fixture
def tmpdir_path():
    d = tempfile.mkdtemp(prefix="corral-backup-test-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_backup_under_write_load_restores_the_tree_at_its_zxid(make_server, tmpdir_path):
    srv = make_server(auth={"super_digest": SUPER_DIGEST}, storage={"snapshot_entries": 500})
    writer = Writer(srv.hosts)
    writer.start()
    wait_for(lambda: writer.done >= 300, "the write load to start")
    file = os.path.join(tmpdir_path, "b.snap")
    out = backup(srv, file).stdout
    done_at_backup = writer.done
    # writes go on after the backup (it never held them)
    wait_for(lambda: writer.done >= done_at_backup + 200, "writes after the backup")
    writer.stop()
    assert writer.error is None, writer.error
    assert out.startswith("backup at zxid 0x"), out

    verified = run(CORRALD, "--verify", file).stdout
    assert verified.rstrip().endswith(": sound"), verified
    from_backup = dump(file)
    zxid = dump_zxid(from_backup)
    assert f"zxid {hex(zxid)}" in out and f"zxid {hex(zxid)}" in verified

    wait_for(lambda: mntr(srv).get("corral_backups_sent") == "1", "mntr to count the backup")
    assert mntr(srv)["corral_backup_streaming"] == "0"
    # the source's own files (read while it runs) at the backup's zxid
    assert dump(srv.data_dir, at=zxid) == from_backup
    assert dump(srv.data_dir) != from_backup   # the load went on past it

    restored = os.path.join(tmpdir_path, "restored")
    os.mkdir(restored, 0o700)            # an empty directory made beforehand is kept
    msg = run(CORRALD, "restore", file, restored).stdout
    assert f"restored zxid {hex(zxid)}" in msg
    assert dump(restored) == from_backup
    assert os.stat(restored).st_mode & 0o777 == 0o700
    again_into = run(CORRALD, "restore", file, restored, check=False)
    assert again_into.returncode == 1 and "not an empty directory" in again_into.stderr

    # a server on it serves that tree
    srv.stop()
    again = start_on(restored)
    try:
        zk = client(again.hosts)
        seen = read_tree(zk)
        expected = dump_tree(from_backup)
        # /zookeeper/config is the new cluster's, as /zookeeper/quota's are built in
        for p in [p for p in expected if p.startswith("/zookeeper")]:
            expected.pop(p)
            seen.pop(p, None)
        assert seen == expected
        zk.create("/after-restore", b"x")
        zk.stop()
        zk.close()
    finally:
        again.stop()
    assert again.proc.returncode == 0, again.log_text()


def test_backup_needs_the_super_user(make_server, tmpdir_path):
    srv = make_server(auth={"super_digest": SUPER_DIGEST})
    file = os.path.join(tmpdir_path, "b.snap")
    p = backup(srv, file, auth=False, check=False)
    assert p.returncode == 1
    assert "needs the super user" in p.stderr
    assert not os.path.exists(file) and not os.path.exists(file + ".tmp")
    # a flood of them costs at most 10 log lines per 10 s
    for _ in range(25):
        assert backup(srv, file, auth=False, check=False).returncode == 1
    assert srv.log_text().count("backup refused") <= 10
    # and the server goes on serving
    zk = client(srv.hosts)
    zk.create("/still", b"here")
    zk.stop()
    zk.close()


def test_a_restore_that_stopped_before_raft_meta_is_refused_not_started_over(make_server,
                                                                            tmpdir_path):
    """A restore (or import-zookeeper) into the data directory itself writes
    the snapshot, then raft.meta; stopped between the two (killed, power
    lost), the directory holds the tree and no raft.meta. corrald refuses it
    (exit 74, one line naming raft.meta and the snapshot) and leaves it as it
    is. It used to bootstrap a new cluster into it (raft.meta, a log) and then
    stop on the snapshot as another cluster's, the directory changed."""
    srv = make_server(auth={"super_digest": SUPER_DIGEST})
    zk = client(srv.hosts)
    zk.create("/kept", b"restored data")
    zk.stop()
    zk.close()
    file = os.path.join(tmpdir_path, "b.snap")
    backup(srv, file)
    srv.stop()
    restored = os.path.join(tmpdir_path, "restored")
    run(CORRALD, "restore", file, restored)
    os.unlink(os.path.join(restored, "raft.meta"))     # what the stop left
    snaps = sorted(os.listdir(os.path.join(restored, "snap")))
    again = server_on(restored)
    again.spawn()
    try:
        status = again.wait_exit(60)
    except Exception:
        again.kill()
        raise AssertionError(f"corrald started on a directory without raft.meta:\n"
                             f"{again.log_text()}")
    log = again.log_text()
    assert status == harness.EXIT_DATA_DIR, f"exit {status}:\n{log}"
    assert f"{restored}/raft.meta is missing but a snapshot exists" in log, log
    assert os.path.join(restored, "snap", snaps[-1]) in log, log
    # nothing was bootstrapped beside the snapshot, which is as it was
    left = os.listdir(restored)
    assert "raft.meta" not in left and "wal" not in left, left
    assert sorted(os.listdir(os.path.join(restored, "snap"))) == snaps
    assert "/kept" in dump(restored)


def test_a_damaged_backup_is_refused_by_verify_and_restore(make_server, tmpdir_path):
    srv = make_server(auth={"super_digest": SUPER_DIGEST})
    zk = client(srv.hosts)
    for i in range(50):
        zk.create(f"/n{i}", b"data %d" % i)
    zk.stop()
    zk.close()
    good = os.path.join(tmpdir_path, "good.snap")
    backup(srv, good)
    raw = open(good, "rb").read()
    flipped = os.path.join(tmpdir_path, "flipped.snap")
    with open(flipped, "wb") as f:
        f.write(raw[:len(raw) // 2] + bytes([raw[len(raw) // 2] ^ 0x40]) + raw[len(raw) // 2 + 1:])
    cut = os.path.join(tmpdir_path, "cut.snap")
    with open(cut, "wb") as f:
        f.write(raw[:len(raw) - 100])
    for bad in (flipped, cut):
        v = run(CORRALD, "--verify", bad, check=False)
        assert v.returncode == 1
        assert v.stdout.startswith(f"DAMAGED: {bad}: checksum mismatch"), v.stdout
        target = os.path.join(tmpdir_path, "restored-" + os.path.basename(bad))
        r = run(CORRALD, "restore", bad, target, check=False)
        assert r.returncode == 1
        assert f"{bad}: checksum mismatch" in r.stderr, r.stderr
        assert not os.path.exists(target)
        d = run(CORRALD, "dump", bad, check=False)
        assert d.returncode == 1 and "checksum mismatch" in d.stderr
    assert run(CORRALD, "--verify", good).returncode == 0


@pytest.fixture(params=["same_file_system", "other_file_system"])
def archive_dir(request, tmpdir_path):
    """The archive beside the data directory (hard links), or on another
    file system (copies): /dev/shm, a tmpfs."""
    if request.param == "same_file_system":
        yield os.path.join(tmpdir_path, "archive")
        return
    if not os.path.isdir("/dev/shm") or os.stat("/dev/shm").st_dev == os.stat(tmpdir_path).st_dev:
        pytest.skip("no second file system at /dev/shm")
    d = tempfile.mkdtemp(prefix="corral-archive-", dir="/dev/shm")
    yield os.path.join(d, "archive")
    shutil.rmtree(d, ignore_errors=True)


def test_point_in_time_restore_undoes_a_bad_write(make_server, tmpdir_path, archive_dir):
    archive = archive_dir
    srv = make_server(storage={"snapshot_entries": 100, "segment_bytes": 1048576,
                               "keep_snapshots": 1, "archive_dir": archive})
    zk = client(srv.hosts)
    zk.create("/app", b"config")
    for i in range(1200):
        zk.create(f"/app/n{i}", b"x" * 1000)
    good_zxid = zk.exists("/app/n1199").mzxid
    dump_then = dump(srv.data_dir)      # the tree as it was, taken then
    assert dump_zxid(dump_then) == good_zxid
    time.sleep(0.01)                    # a later millisecond for the bad write
    bad_time_ms = int(time.time() * 1000) - 1
    # the bad write, and more after it
    zk.delete("/app", recursive=True)
    for i in range(1500):
        zk.create(f"/later{i}", b"y" * 1000)
    zk.stop()
    zk.close()

    # the data directory no longer reaches back: the archive does
    assert os.listdir(os.path.join(archive, "wal")), "no log segment was archived"
    alone = run(CORRALD, "restore", "--to-zxid", str(good_zxid), srv.data_dir,
                os.path.join(tmpdir_path, "from-data-dir"), check=False)
    assert alone.returncode == 1 and "do not reach back" in alone.stderr, alone.stderr

    by_zxid = os.path.join(tmpdir_path, "by-zxid")
    run(CORRALD, "restore", "--to-zxid", hex(good_zxid), archive, srv.data_dir, by_zxid)
    assert dump(by_zxid) == dump_then
    assert dump(archive, srv.data_dir, at=good_zxid) == dump_then

    by_time = os.path.join(tmpdir_path, "by-time")
    out = run(CORRALD, "restore", "--to-time", str(bad_time_ms), archive, srv.data_dir,
              by_time).stdout
    assert f"zxid {hex(good_zxid)}" in out
    assert dump(by_time) == dump_then

    # the restored server serves /app again
    srv.stop()
    again = start_on(by_zxid)
    try:
        zk = client(again.hosts)
        assert zk.get("/app")[0] == b"config"
        assert len(zk.get_children("/app")) == 1200
        assert zk.exists("/later0") is None
        zk.stop()
        zk.close()
    finally:
        again.stop()


def ensemble_config(tmp, data_dir, cluster, client_port, peer_port, server_id=1,
                    first_client_port=None, first_peer_port=None):
    """Server server_id of an ensemble whose initial member is server 1 (at
    first_*: this one's ports when it is server 1)."""
    path = os.path.join(tmp, f"{cluster}-{server_id}.yaml")
    first_client_port = first_client_port or client_port
    first_peer_port = first_peer_port or peer_port
    with open(path, "w") as f:
        f.write(f"data_dir: {data_dir}\n"
                f"auth:\n  super_digest: \"{SUPER_DIGEST}\"\n"
                f"session:\n  tick_time_ms: 200\n  min_timeout_ms: 1000\n"
                f"client:\n  listen: [\"127.0.0.1:{client_port}\"]\n"
                f"ensemble:\n  id: {server_id}\n  cluster: {cluster}\n  reconfig: true\n"
                f"  election_timeout_ms: 200\n  peer_listen: \"127.0.0.1:{peer_port}\"\n"
                f"  members:\n"
                f"    - {{ id: 1, client: \"127.0.0.1:{first_client_port}\", "
                f"peer: \"127.0.0.1:{first_peer_port}\" }}\n")
    return path


def start_member(config, port, tmp, wait=True):
    """A member of an ensemble; one waiting to be added serves no session
    until it is (wait=False: started only)."""
    srv = FromFile(tmp, config, port)
    if wait:
        return srv.start(timeout=30)
    return srv.spawn()


def peer_listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def cluster_of(verify_output):
    return verify_output.split("cluster ")[1].split(",")[0]


def test_a_restored_ensemble_member_gets_a_new_cluster_identity(tmpdir_path):
    old_port, old_peer = free_port(), free_port()
    old_cfg = ensemble_config(tmpdir_path, os.path.join(tmpdir_path, "old"), "old",
                              old_port, old_peer)
    old = start_member(old_cfg, old_port, tmpdir_path)
    try:
        wait_for(lambda: run(CORRALCTL, "-s", old.hosts, "create", "/x", "1",
                             check=False).returncode == 0, "a leader")
        zk = client(old.hosts)
        for i in range(20):
            zk.create(f"/x/n{i}", b"%d" % i)
        zk.stop()
        zk.close()
        file = os.path.join(tmpdir_path, "old.snap")
        backup(old, file)
    finally:
        old.stop()
    old_cluster = cluster_of(run(CORRALD, "--verify", file).stdout)
    assert old_cluster == hashlib.sha256(b"old").hexdigest()[:32]

    # the old cluster's name would make the restored member one of it: refused
    new_port, new_peer = free_port(), free_port()
    same = ensemble_config(tmpdir_path, os.path.join(tmpdir_path, "unused"), "old",
                           new_port, new_peer)
    r = run(CORRALD, "restore", "-c", same, file, os.path.join(tmpdir_path, "same"), check=False)
    assert r.returncode == 1 and "old cluster's name" in r.stderr, r.stderr
    assert not os.path.exists(os.path.join(tmpdir_path, "same"))

    new_dir = os.path.join(tmpdir_path, "new")
    new_cfg = ensemble_config(tmpdir_path, new_dir, "new", new_port, new_peer)
    run(CORRALD, "restore", "-c", new_cfg, file, new_dir)
    new = start_member(new_cfg, new_port, tmpdir_path)
    second = None
    try:
        wait_for(lambda: run(CORRALCTL, "-s", new.hosts, "get", "/x/n7",
                             check=False).stdout == "7", "the restored member to serve")
        file2 = os.path.join(tmpdir_path, "new.snap")
        backup(new, file2)
        # another server joins the restored one: it is added, and gets the tree
        port2, peer2 = free_port(), free_port()
        cfg2 = ensemble_config(tmpdir_path, os.path.join(tmpdir_path, "second"), "new", port2,
                               peer2, server_id=2, first_client_port=new_port,
                               first_peer_port=new_peer)
        second = start_member(cfg2, port2, tmpdir_path, wait=False)
        # added once it is up (its peer port listens), as the procedure says:
        # the leader catches a second voter up before it votes, and refuses
        # one that does not answer (NEWCONFIGNOQUORUM)
        wait_for(lambda: peer_listening(peer2), "the joining server's peer port")
        run(CORRALCTL, "-s", new.hosts, "--auth", f"super:{SUPER_PASSWORD}", "members", "add",
            "2", f"127.0.0.1:{peer2}", f"127.0.0.1:{port2}")
        wait_for(lambda: run(CORRALCTL, "-s", second.hosts, "get", "/x/n7",
                             check=False).stdout == "7", "the joined member to serve the tree")
        # a follower serves backups too: the same cluster, the same tree
        file3 = os.path.join(tmpdir_path, "follower.snap")
        backup(second, file3)
        assert cluster_of(run(CORRALD, "--verify", file3).stdout) == \
            hashlib.sha256(b"new").hexdigest()[:32]
        assert dump_tree(dump(file3))["/x/n7"] == b"7"
    finally:
        if second:
            second.stop()
        new.stop()
    for srv in (old, new, second):
        assert srv.proc.returncode == 0, srv.log_text()[-4000:]
    new_cluster = cluster_of(run(CORRALD, "--verify", file2).stdout)
    assert new_cluster == hashlib.sha256(b"new").hexdigest()[:32]
    assert new_cluster != old_cluster


def test_the_archive_must_not_be_the_data_directory(tmpdir_path):
    data = os.path.join(tmpdir_path, "data")
    config = os.path.join(tmpdir_path, "corral.yaml")
    with open(config, "w") as f:
        f.write(f"data_dir: {data}\nstorage:\n  archive_dir: {data}/\n")
    p = run(CORRALD, "-c", config, "--check-config", check=False)
    assert p.returncode == 78
    assert f"storage.archive_dir: {data}/ is the data directory" in p.stderr, p.stderr


def raw_backup_request(hosts):
    """A session that authenticates as the super user, asks for a backup and
    then never reads: the socket, left open, is returned."""
    host, port = hosts.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(struct.pack(">i", 45) + struct.pack(">iqiq", 0, 0, 10000, 0)
              + struct.pack(">i", 16) + b"\x00" * 16 + b"\x00")
    got = b""
    while len(got) < 4 or len(got) < 4 + struct.unpack(">i", got[:4])[0]:
        got += s.recv(4096)
    auth = f"super:{SUPER_PASSWORD}".encode()
    body = struct.pack(">ii", -4, 100) + struct.pack(">i", 0) + struct.pack(">i", 6) + b"digest" \
        + struct.pack(">i", len(auth)) + auth
    s.sendall(struct.pack(">i", len(body)) + body)
    got = b""
    while len(got) < 20:
        got += s.recv(4096)
    assert struct.unpack(">iqi", got[4:20])[2] == 0, "addauth refused"
    s.sendall(struct.pack(">iii", 8, 7, 5002))
    return s


def test_a_client_that_stops_reading_a_backup_frees_the_slot(make_server, tmpdir_path):
    srv = make_server(auth={"super_digest": SUPER_DIGEST}, client={"frame_timeout_ms": 500})
    zk = client(srv.hosts)
    for i in range(16):     # 16 MB: more than the socket buffers hold
        zk.create(f"/big{i}", b"z" * 1000000)
    zk.stop()
    zk.close()
    stalled = raw_backup_request(srv.hosts)
    try:
        wait_for(lambda: "streaming to" in srv.log_text(), "the stalled backup to start")
        file = os.path.join(tmpdir_path, "b.snap")
        busy = backup(srv, file, check=False)
        # refused while the stalled one holds the slot (unless it ended already)
        assert busy.returncode == 0 or "another backup is streaming" in busy.stderr, busy.stderr
        wait_for(lambda: "stopped reading" in srv.log_text(), "the stalled backup to end")
        wait_for(lambda: mntr(srv).get("corral_backups_failed") == "1", "mntr to count it")
        backup(srv, file)
        assert run(CORRALD, "--verify", file).returncode == 0
    finally:
        stalled.close()


def test_backup_from_apache_zookeeper_says_it_serves_none(make_server, tmpdir_path):
    zk = make_server(target="zookeeper")
    file = os.path.join(tmpdir_path, "b.snap")
    p = backup(zk, file, check=False)
    assert p.returncode == 1
    assert "does not serve backups (not corral?)" in p.stderr, p.stderr
    assert not os.path.exists(file) and not os.path.exists(file + ".tmp")


@pytest.mark.parametrize("args,message", [
    (["dump"], "corrald dump: no SOURCE given"),
    (["dump", "--at-zxid", "x", "d"], "corrald dump: --at-zxid: 'x' is not a zxid"),
    (["dump", "--bogus", "d"], "corrald dump: bad option '--bogus'"),
    (["restore", "f"], "corrald restore: SOURCE and DATA_DIR are needed"),
    (["restore", "--to-zxid", "abc", "f", "d"], "corrald restore: --to-zxid: 'abc' is not a zxid"),
    (["restore", "--to-time", "yesterday", "f", "d"], "corrald restore: --to-time: 'yesterday'"),
    (["restore", "--to-zxid", "5", "--to-time", "5", "f", "d"],
     "corrald restore: --to-zxid or --to-time, not both"),
    (["restore", "-c"], "corrald restore: a value is missing after '-c'"),
])
def test_dump_and_restore_usage_errors_exit_64(args, message):
    p = run(CORRALD, *args, check=False)
    assert p.returncode == 64
    assert p.stderr.startswith(message), p.stderr


def test_a_backup_file_has_no_point_in_time(tmpdir_path):
    file = os.path.join(tmpdir_path, "b.snap")
    open(file, "wb").write(b"x")
    p = run(CORRALD, "restore", "--to-zxid", "5", file, os.path.join(tmpdir_path, "d"), check=False)
    assert p.returncode == 1 and "a backup holds one zxid" in p.stderr, p.stderr
