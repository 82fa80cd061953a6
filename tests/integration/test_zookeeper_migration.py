"""From Apache ZooKeeper 3.8 to corral, offline: `corrald import-zookeeper`.

A real ZooKeeper (Debian's) runs a workload with kazoo: every node kind
(persistent, sequential, ephemeral, container, TTL), the ACL schemes world,
digest, ip and auth, multi (one that fails), setData, setACL, deletes,
sessions closed and sessions left open with their ephemerals, over 100,000
znodes with a small snapCount, so the data directory holds several
snapshots and logs. A full dump of ZooKeeper's live answers (every path,
data, every Stat field, ACL) is taken; ZooKeeper is killed (SIGKILL: its
last log keeps its preallocated zero tail); corral imports the directory,
starts on it and must answer the same dump. A session left open in
ZooKeeper reconnects to corral with its id and the password ZooKeeper gave
it, and finds its ephemeral. One run writes gzip snapshots, one snappy. Damaged inputs
(a truncated log, a bad checksum, a snapshot of a newer format) fail with
the file and offset named, and leave no data directory behind.

Environment: CORRALD (meson sets it)."""
import base64
import fcntl
import glob
import hashlib
import os
import shutil
import struct
import subprocess
import zlib

import pytest
from kazoo.client import KazooClient
from kazoo.security import ACL, Id, make_digest_acl

import harness
import jute
from harness import Corrald, ZooKeeper

pytestmark = pytest.mark.corral_only

CORRALD = os.environ.get("CORRALD") or harness.CORRALD
SUPER_PASSWORD = "migration-super"
SUPER_DIGEST = "super:" + base64.b64encode(
    hashlib.sha1(f"super:{SUPER_PASSWORD}".encode()).digest()).decode()
# creates of the workload (it deletes one in 700 of them): a tree of more
# than TREE znodes, the 100,000
NODES = 100200
TREE = 100000
# Nodes that are each server's own: corral keeps its membership there.
OWN = ("/zookeeper/config",)


def import_zookeeper(zk_dir, data_dir, *extra, check=True, want=None):
    """corrald import-zookeeper. When it fails on the tree's digest and
    ZooKeeper's dump (want) is given, the failure names the nodes that
    differ: the import is made again with --accept-digest-mismatch and its
    `corrald dump` compared with want."""
    p = subprocess.run([CORRALD, "import-zookeeper", *extra, zk_dir, data_dir],
                       capture_output=True, text=True, timeout=300, env=harness.clean_env())
    if check and p.returncode != 0 and want is not None and "differs from ZooKeeper's" in p.stderr:
        seen = data_dir + ".mismatch"
        subprocess.run([CORRALD, "import-zookeeper", "--accept-digest-mismatch", *extra, zk_dir,
                        seen], capture_output=True, timeout=300, env=harness.clean_env())
        assert False, f"import failed {p.returncode}:\n{p.stdout}\n{p.stderr}\n" \
                      f"nodes that differ from ZooKeeper's: {dump_differences(seen, want)}"
    if check:
        assert p.returncode == 0, f"import failed {p.returncode}:\n{p.stdout}\n{p.stderr}"
    return p


def corral_dump(data_dir):
    """{path: (stat, data line)} of `corrald dump` of a data directory."""
    out = subprocess.run([CORRALD, "dump", data_dir], capture_output=True, text=True,
                         timeout=300, env=harness.clean_env()).stdout
    nodes, path = {}, None
    for line in out.splitlines():
        if line.startswith("/"):
            path = line
            nodes[path] = [{}, None]
        elif line.startswith("  stat: ") and path:
            nodes[path][0] = {k: int(v, 0) for k, v in
                              (f.split("=") for f in line[len("  stat: "):].split())}
        elif line.startswith("  data: ") and path:
            nodes[path][1] = line[len("  data: "):]
    return nodes


def dump_differences(data_dir, want, limit=5):
    """The first nodes whose presence or Stat differ between ZooKeeper's
    dump (want) and the tree imported into data_dir."""
    got = corral_dump(data_dir)
    mine = {p for p in got if not p.startswith("/zookeeper/")}
    theirs = {p for p in want if not p.startswith("/zookeeper/")}
    out = [f"missing {p}" for p in sorted(theirs - mine)[:limit]]
    out += [f"extra {p} {got[p]}" for p in sorted(mine - theirs)[:limit]]
    for p in sorted(theirs & mine):
        stat = want[p][1] or {}
        diff = {k: (v, got[p][0].get(k)) for k, v in stat.items() if got[p][0].get(k) != v}
        if diff and len(out) < 3 * limit:
            out.append(f"{p}: (ZooKeeper's, imported) {diff}")
    return out or "none by Stat (the data, then)"


def super_client(hosts):
    zk = KazooClient(hosts=hosts, timeout=30, auth_data=[("digest", f"super:{SUPER_PASSWORD}")])
    zk.start(timeout=30)
    return zk


def full_dump(port):
    """{path: (data, stat, acl)} of every node, read as the super user with
    pipelined requests (a raw client: kazoo's would take most of the run)."""
    c = jute.Client(port, timeout=60)
    c.connect(timeout=30000)
    c.request("auth", jute.encode_body("auth", {"scheme": "digest",
                                                "auth": f"super:{SUPER_PASSWORD}".encode()}), xid=-4)
    assert c.reply()[2] == 0
    out, level = {}, ["/"]
    while level:
        following = []
        for k in range(0, len(level), 200):
            chunk = level[k:k + 200]
            for path in chunk:
                body = jute.path_watch_body(path)
                c.request("getData", body)
                c.request("getACL", jute.encode_body("getACL", {"path": path}))
                c.request("getChildren", body)
            for path in chunk:
                got = [c.read_reply(op) for op in ("getData", "getACL", "getChildren")]
                assert all(g["err"] == 0 for g in got), (path, got)
                data, acl, children = (g["body"] or {} for g in got)
                if path not in OWN:
                    out[path] = (data.get("data"), data.get("stat"), sorted(acl.get("acl") or []))
                base = path.rstrip("/")
                following.extend(f"{base}/{name}" for name in children.get("children") or [])
        level = following
    c.close()
    return out


def wait_all(results):
    for r in results:
        r.get(timeout=60)


def bulk_create(port, nodes):
    """Many creates, pipelined on one raw connection (kazoo's would take
    most of the run)."""
    c = jute.Client(port, timeout=60)
    c.connect()
    for k in range(0, len(nodes), 500):
        chunk = nodes[k:k + 500]
        for path, data in chunk:
            c.request("create", jute.create_body(path, data))
        for _ in chunk:
            assert c.reply()[2] == 0
    c.call("closeSession")
    c.close()


def raw_creates(port, creates):
    """Containers and TTL nodes (kazoo has no call for them)."""
    c = jute.Client(port)
    c.connect()
    for op, args in creates:
        _, _, err, _ = c.call(op, jute.encode_body(op, {"acl": jute.OPEN_ACL, **args}))
        assert err == 0, (op, args, err)
    c.call("closeSession")
    c.close()


def workload(hosts, port, nodes):
    """Drives ZooKeeper through every kind of txn; returns the clients left
    open (their sessions live, each with an ephemeral)."""
    zk = super_client(hosts)
    zk.add_auth("digest", "alice:secret")
    zk.create("/app", b"root of the app")
    groups = nodes // 100
    bulk_create(port, [(f"/app/g{g}", b"") for g in range(groups)]
                + [(f"/app/g{i % groups}/n{i}", b"v%d" % i) for i in range(nodes - groups)])
    wait_all([zk.set_async(f"/app/g{g}/n{g}", b"changed %d" % g) for g in range(0, nodes // 100, 3)])
    wait_all([zk.delete_async(f"/app/g{g}/n{g}") for g in range(1, nodes // 100, 7)])
    for i in range(30):
        zk.create("/seq/item-", b"s", sequence=True, makepath=True)
        zk.create("/seq/ephseq-", b"", sequence=True, ephemeral=True)
    raw_creates(port, [("createContainer", {"path": "/cont", "flags": 4}),
                       ("createContainer", {"path": "/cont-empty", "flags": 4}),
                       ("createTTL", {"path": "/ttl", "flags": 5, "ttl": 3600 * 1000,
                                      "data": b"lives an hour"}),
                       ("createTTL", {"path": "/ttl-seq-", "flags": 6, "ttl": 7200 * 1000})])
    zk.create("/cont/child", b"in a container")
    digest = make_digest_acl("bob", "pw", read=True, write=True)
    zk.create("/acl/digest", b"d", acl=[digest], makepath=True)
    zk.create("/acl/ip", b"i", acl=[ACL(31, Id("ip", "127.0.0.1"))])
    zk.create("/acl/auth", b"a", acl=[ACL(31, Id("auth", ""))])
    zk.create("/acl/changed", b"c")
    zk.set_acls("/acl/changed", [ACL(1, Id("world", "anyone")), digest])
    zk.set("/acl/changed", b"c2")
    t = zk.transaction()
    t.create("/multi", b"m")
    t.create("/multi/a", b"")
    t.set_data("/app", b"set in a multi")
    t.delete("/app/g2/n2")
    t.check("/app", 1)
    assert all(not isinstance(r, Exception) for r in t.commit())
    t = zk.transaction()
    t.create("/multi/never", b"")
    t.check("/app", 99)
    assert any(isinstance(r, Exception) for r in t.commit())
    closed = KazooClient(hosts=hosts, timeout=10)
    closed.start(timeout=30)
    closed.create("/gone", b"", ephemeral=True)
    closed.stop()
    closed.close()
    live = []
    for k in range(2):
        c = KazooClient(hosts=hosts, timeout=30)
        c.start(timeout=30)
        c.create(f"/live{k}", b"ephemeral of a live session", ephemeral=True)
        live.append(c)
    zk.stop()
    zk.close()
    return live


def last_txn_an_error(port):
    """A create that fails: ZooKeeper logs an error txn, the last of the log
    (the connection then drops without closing its session)."""
    c = jute.Client(port)
    c.connect()
    _, _, err, _ = c.call("create", jute.create_body("/app"))
    assert err == -110, err     # NODEEXISTS
    c.close()


def run_zookeeper(tmp, name, nodes, system, stop="kill"):
    """ZooKeeper with the workload; returns (its data dir, the dump, the
    live sessions' (id, password, ephemeral path))."""
    zk = ZooKeeper(str(tmp), name=name, system=merge_system(system))
    zk.start(timeout=90)
    try:
        live = workload(zk.hosts, zk.port, nodes)
        want = full_dump(zk.port)
        last_txn_an_error(zk.port)
        sessions = [(c.client_id[0], c.client_id[1], f"/live{k}") for k, c in enumerate(live)]
    finally:
        zk.kill() if stop == "kill" else zk.stop()
    for c in live:
        harness.stop_kazoo([c], timeout=5, raise_stuck=False)
    return zk.data_dir, want, sessions


def merge_system(extra):
    return {"zookeeper.extendedTypesEnabled": "true",
            "zookeeper.DigestAuthenticationProvider.superDigest": SUPER_DIGEST,
            "zookeeper.snapCount": "4000", **extra}


@pytest.fixture(scope="module")
def zookeeper_plain(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("zk-plain")
    return (tmp,) + run_zookeeper(tmp, "zookeeper", NODES, {})


def corral_on(tmp, data_dir):
    srv = Corrald(str(tmp), name="corrald", data_dir=data_dir,
                  config={"auth": {"super_digest": SUPER_DIGEST}})
    srv.start(timeout=90)
    return srv


def assert_session_resumes(port, sid, passwd, path):
    """A client of the session reconnects with its password and finds its
    ephemeral (the connection then drops without closing the session)."""
    c = jute.Client(port, timeout=30)
    r = c.handshake(timeout_ms=30000, session_id=sid, passwd=passwd)
    assert r["sessionId"] == sid and r["timeOut"] > 0, r
    c.request("exists", jute.path_watch_body(path))
    got = c.read_reply("exists")
    assert got["err"] == 0 and got["body"]["stat"]["ephemeralOwner"] == sid, got
    c.close()


def check_import(tmp, zk_dir, want, sessions, data_dir=None):
    if data_dir is None:
        data_dir = os.path.join(str(tmp), "imported")
        os.mkdir(data_dir, 0o700)   # an empty one, as tmpfiles.d makes it, keeps its mode
    p = import_zookeeper(zk_dir, data_dir, want=want)
    assert os.stat(data_dir).st_mode & 0o777 == 0o700
    assert "the tree's digest equals ZooKeeper's" in p.stdout, p.stdout
    srv = corral_on(tmp, data_dir)
    try:
        reader = super_client(srv.hosts)
        got = full_dump(srv.port)
        missing = sorted(set(want) - set(got))[:5]
        extra = sorted(set(got) - set(want))[:5]
        assert not missing and not extra, f"missing {missing}, extra {extra}"
        diff = [(p, want[p], got[p]) for p in sorted(want) if want[p] != got[p]][:5]
        assert not diff, diff
        # Sessions ZooKeeper had come back with their id and password: one
        # through kazoo, closed after; one raw, left open for the export.
        sid, passwd, path = sessions[0]
        c = KazooClient(hosts=srv.hosts, timeout=30, client_id=(sid, passwd))
        c.start(timeout=30)
        assert c.client_id[0] == sid
        assert c.get(path)[1].ephemeralOwner == sid
        c.stop()
        c.close()
        assert_session_resumes(srv.port, *sessions[1])
        # A wrong password is still refused.
        sid, passwd, _ = sessions[0]
        raw = jute.Client(srv.port)
        r = raw.handshake(session_id=sid, passwd=bytes(16))
        assert r["timeOut"] <= 0 or r["sessionId"] != sid, r
        raw.close()
        # corral's zxids continue above ZooKeeper's.
        last = max(max(s["czxid"], s["mzxid"], s["pzxid"]) for _, s, _ in want.values())
        reader.create("/after", b"")
        assert reader.exists("/after").czxid > last
        final = full_dump(srv.port)
        reader.stop()
        reader.close()
    finally:
        srv.stop()
    return data_dir, final


def test_import_matches_zookeeper_dump(zookeeper_plain):
    tmp, zk_dir, want, sessions = zookeeper_plain
    assert len(glob.glob(os.path.join(zk_dir, "version-2", "snapshot.*"))) >= 2
    assert len(glob.glob(os.path.join(zk_dir, "version-2", "log.*"))) >= 2
    assert len(want) > TREE
    check_import(tmp, zk_dir, want, sessions)


def test_import_gzip_snapshots_and_export_back(tmp_path):
    zk_dir, want, sessions = run_zookeeper(
        tmp_path, "zookeeper-gz", 2000,
        {"zookeeper.snapshot.compression.method": "gz", "zookeeper.snapCount": "600"},
        stop="stop")
    snaps = glob.glob(os.path.join(zk_dir, "version-2", "snapshot.*"))
    newest = max(snaps, key=lambda p: int(p.split("snapshot.")[1].split(".")[0], 16))
    assert newest.endswith(".gz"), snaps
    data_dir, final = check_import(tmp_path, zk_dir, want, sessions)
    # And back: corral's export, loaded by ZooKeeper, answers the same dump.
    back = ZooKeeper(str(tmp_path), name="zookeeper-back", system=merge_system({}))
    p = subprocess.run([CORRALD, "export-zookeeper", data_dir, back.data_dir],
                       capture_output=True, text=True, timeout=120, env=harness.clean_env())
    assert p.returncode == 0, (p.stdout, p.stderr)
    back.start(timeout=90)
    try:
        got = full_dump(back.port)
        # A session ZooKeeper had, carried through corral, resumes in ZooKeeper.
        assert_session_resumes(back.port, *sessions[1])
    finally:
        back.stop()
    assert sorted(got) == sorted(final)
    diff = [(p, final[p], got[p]) for p in sorted(final) if final[p] != got[p]][:5]
    assert not diff, diff


def log_records(path):
    """(offset, length) of each record of a ZooKeeper txn log."""
    with open(path, "rb") as f:
        data = f.read()
    out, pos = [], 16
    while pos + 12 <= len(data):
        _, n = struct.unpack_from(">qi", data, pos)
        if n == 0:
            break
        out.append((pos, 12 + n + 1))
        pos += 12 + n + 1
    return out


def damaged_copy(tmp, zk_dir, name):
    copy = os.path.join(str(tmp), name)
    # sparse: ZooKeeper's logs are 64 MB each, mostly holes
    subprocess.run(["cp", "-a", "--sparse=always", zk_dir, copy], check=True)
    files = os.path.join(copy, "version-2")
    logs = sorted(glob.glob(os.path.join(files, "log.*")), key=lambda p: int(p.rsplit(".", 1)[1], 16))
    snaps = sorted(glob.glob(os.path.join(files, "snapshot.*")),
                   key=lambda p: int(p.split("snapshot.")[1].split(".")[0], 16))
    return copy, logs, snaps


def assert_refused(tmp, zk_dir, file, offset, *extra):
    target = os.path.join(str(tmp), "refused")
    p = import_zookeeper(zk_dir, target, *extra, check=False)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert f"{file}: offset {offset}:" in p.stderr, p.stderr
    assert not os.path.exists(target)
    assert not glob.glob(os.path.join(str(tmp), ".refused.import-*"))
    return p.stderr


def test_import_refuses_a_truncated_log(zookeeper_plain, tmp_path):
    _, zk_dir, _, _ = zookeeper_plain
    copy, logs, _ = damaged_copy(tmp_path, zk_dir, "truncated")
    offset, length = log_records(logs[-1])[-3]
    with open(logs[-1], "r+b") as f:
        f.truncate(offset + length // 2)
    err = assert_refused(tmp_path, copy, logs[-1], offset)
    assert "cut short" in err and "--accept-torn-tail" in err, err
    # The operator's choice: up to the record before it.
    p = import_zookeeper(copy, os.path.join(str(tmp_path), "torn"), "--accept-torn-tail")
    assert "imported" in p.stdout


def test_import_refuses_a_bad_checksum(zookeeper_plain, tmp_path):
    _, zk_dir, _, _ = zookeeper_plain
    copy, logs, _ = damaged_copy(tmp_path, zk_dir, "checksum")
    offset, length = log_records(logs[-1])[len(log_records(logs[-1])) // 2]
    with open(logs[-1], "r+b") as f:
        f.seek(offset + 12 + 20)
        b = f.read(1)
        f.seek(offset + 12 + 20)
        f.write(bytes([b[0] ^ 0x55]))
    err = assert_refused(tmp_path, copy, logs[-1], offset)
    assert "Adler-32" in err, err


def test_import_refuses_a_newer_snapshot_format(zookeeper_plain, tmp_path):
    _, zk_dir, _, _ = zookeeper_plain
    copy, _, snaps = damaged_copy(tmp_path, zk_dir, "newer")
    with open(snaps[-1], "r+b") as f:
        f.seek(4)
        f.write(struct.pack(">i", 3))
    err = assert_refused(tmp_path, copy, snaps[-1], 4)
    assert "format version 3" in err, err


def test_import_skips_a_damaged_snapshot(zookeeper_plain, tmp_path):
    """As ZooKeeper does: the snapshot before it, and the logs from there;
    the tree's digest still equals the one ZooKeeper logged last."""
    _, zk_dir, want, _ = zookeeper_plain
    copy, _, snaps = damaged_copy(tmp_path, zk_dir, "snapshot")
    with open(snaps[-1], "r+b") as f:
        f.truncate(os.path.getsize(snaps[-1]) // 2)
    p = import_zookeeper(copy, os.path.join(str(tmp_path), "older"), want=want)
    assert f"skipping a damaged snapshot: {snaps[-1]}: offset" in p.stderr, p.stderr
    assert "1 newer snapshot was damaged and skipped" in p.stdout, p.stdout
    assert "the tree's digest equals ZooKeeper's" in p.stdout, p.stdout


def tamper_snapshot(snap, path, old, new):
    """Changes path's data in a plain snapshot from old to new (as long) and
    seals it again (SnapStream's Adler-32 of all before each seal): a sound
    file whose tree is not the one ZooKeeper logged."""
    b = bytearray(open(snap, "rb").read())
    at = b.find(jute.jbuf(path) + jute.jbuf(old))
    assert at > 0 and len(old) == len(new)
    at += 4 + len(path) + 4
    b[at:at + len(new)] = new
    reseal(b)
    open(snap, "wb").write(bytes(b))


def reseal(b):
    """Seals an edited plain snapshot (a bytearray) again."""
    seal = struct.pack(">i", 1) + b"/"
    # the end: the nodes' end mark, a seal, the digest (zxid, version,
    # digest), a seal
    second = len(b) - 13
    first = second - 20 - 13
    assert b[second + 8:] == seal and b[first + 8:first + 13] == seal
    b[first:first + 8] = struct.pack(">q", zlib.adler32(bytes(b[:first])))
    b[second:second + 8] = struct.pack(">q", zlib.adler32(bytes(b[:second])))


def cut_node(snap, path):
    """Takes path's node out of a plain snapshot and seals it again: the
    snapshot a fuzzy one is when the node was deleted after its parent was
    written and before its own turn came."""
    b = bytearray(open(snap, "rb").read())
    key = jute.jbuf(path)
    at = b.find(key)
    assert at > 0 and b.find(key, at + 1) < 0, (snap, path)
    data_len = struct.unpack_from(">i", b, at + len(key))[0]
    # the path, the data, the ACL's number, the StatPersisted (60 bytes)
    del b[at:at + len(key) + 4 + max(data_len, 0) + 8 + 60]
    reseal(b)
    open(snap, "wb").write(bytes(b))


def log_deletes(path):
    """(zxid, path) of each delete txn of a ZooKeeper txn log."""
    with open(path, "rb") as f:
        data = f.read()
    out = []
    for offset, length in log_records(path):
        txn = data[offset + 12:offset + length - 1]
        _, _, zxid, _, op = struct.unpack_from(">qiqqi", txn)     # TxnHeader
        if op == 2:
            n = struct.unpack_from(">i", txn, 32)[0]
            out.append((zxid, txn[36:36 + n].decode()))
    return out


def test_a_delete_the_fuzzy_snapshot_already_missed_still_moves_the_parents_pzxid(
        zookeeper_plain, tmp_path):
    """ZooKeeper writes its snapshot while txns go on: a node deleted after
    its parent was written and before its own turn is not in the snapshot,
    and its parent is there with the pzxid from before the delete. The
    delete, replayed, finds no node; ZooKeeper's DataTree.deleteNode moves
    the parent's pzxid all the same, and so does the import: its tree's
    digest is the one ZooKeeper logged and the parent's Stat is ZooKeeper's."""
    _, zk_dir, want, _ = zookeeper_plain
    copy, logs, snaps = damaged_copy(tmp_path, zk_dir, "fuzzy")
    zxid, path = next(d for log in logs for d in log_deletes(log) if d[1].startswith("/app/g"))
    # the newest snapshot that has the node (one taken just before the
    # delete may, being fuzzy, have missed it already)
    key = jute.jbuf(path)
    newest = next(s for s in reversed(snaps) if key in open(s, "rb").read())
    for s in snaps[snaps.index(newest) + 1:]:
        os.remove(s)
    cut_node(newest, path)
    parent = path.rsplit("/", 1)[0]
    data_dir = os.path.join(str(tmp_path), "imported")
    p = import_zookeeper(copy, data_dir, want=want)
    assert "the tree's digest equals ZooKeeper's" in p.stdout, p.stdout
    dump = corral_dump(data_dir)
    assert dump[parent][0]["pzxid"] == want[parent][1]["pzxid"] >= zxid, (dump[parent], want[parent])


def test_a_tree_whose_digest_differs_is_refused_or_with_the_option_written_with_a_warning(
        zookeeper_plain, tmp_path):
    """A snapshot that checks out but holds another tree than the one
    ZooKeeper logged (one node's data changed): the import refuses it and
    writes nothing; with --accept-digest-mismatch it writes it, warning,
    and `corrald dump` shows the node as the snapshot had it."""
    _, zk_dir, want, _ = zookeeper_plain
    copy, _, snaps = damaged_copy(tmp_path, zk_dir, "tampered")
    assert want["/app/g101/n101"][0] == b"v101"   # written once, early: in every snapshot
    tamper_snapshot(snaps[-1], "/app/g101/n101", b"v101", b"V101")
    refused = os.path.join(str(tmp_path), "refused")
    p = import_zookeeper(copy, refused, check=False)
    assert p.returncode == 1 and "the imported tree's digest" in p.stderr and \
        "differs from ZooKeeper's" in p.stderr and "nothing was written" in p.stderr, p.stderr
    assert not os.path.exists(refused)
    seen = os.path.join(str(tmp_path), "seen")
    p = import_zookeeper(copy, seen, "--accept-digest-mismatch")
    assert "warning: the imported tree's digest" in p.stderr and \
        "--accept-digest-mismatch" in p.stderr, p.stderr
    assert "digest equals" not in p.stdout, p.stdout
    got = corral_dump(seen)
    assert got["/app/g101/n101"][1] == '"V101"', got["/app/g101/n101"]
    assert dump_differences(seen, want) == "none by Stat (the data, then)"
    # what a suite's import that fails on the digest reports
    with pytest.raises(AssertionError, match=r"nodes that differ from ZooKeeper's: none by Stat"):
        import_zookeeper(copy, os.path.join(str(tmp_path), "checked"), want=want)


def mount_tmpfs(path):
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512m,mode=700", "tmpfs", path],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): "
                    f"{r.stderr.strip()}")


def test_an_import_removes_what_a_killed_import_left_and_refuses_beside_a_live_one(
        zookeeper_plain, tmp_path):
    """An import writes beside its target, into .NAME.import-XXXXXX, and
    renames that at the end: one killed before leaves it, as big as the
    tree. While an import lives it holds a lock on its directory: the next
    import into NAME refuses while one is held, before reading ZooKeeper,
    and removes one nobody holds, saying so."""
    _, zk_dir, want, _ = zookeeper_plain
    target = os.path.join(str(tmp_path), "target")
    live = os.path.join(str(tmp_path), ".target.import-Ab12Cd")
    os.mkdir(live)
    fd = os.open(live, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        p = import_zookeeper(zk_dir, target, check=False)
        assert p.returncode == 1, (p.stdout, p.stderr)
        assert f"{live}: another import into the same directory is writing it now" in p.stderr, \
            p.stderr
        assert os.path.isdir(live) and not os.path.exists(target)
    finally:
        os.close(fd)    # its import ended: what it wrote is left over now
    killed = os.path.join(str(tmp_path), ".target.import-Ef34Gh")
    os.makedirs(os.path.join(killed, "snap"))
    with open(os.path.join(killed, "snap", "snapshot.0000000000000001"), "wb") as f:
        f.write(b"cut short")
    other = os.path.join(str(tmp_path), ".other.import-Ij56Kl")     # another target's
    os.mkdir(other)
    p = import_zookeeper(zk_dir, target, want=want)
    for d in (live, killed):
        assert f"removing {d}, left by an import that did not finish" in p.stderr, p.stderr
        assert not os.path.exists(d)
    assert os.path.isdir(other)
    assert "the tree's digest equals ZooKeeper's" in p.stdout, p.stdout


@pytest.mark.parametrize("mounted", ["data_dir", "wal"])
def test_import_into_a_data_dir_on_a_file_system_of_its_own(zookeeper_plain, tmp_path, mounted):
    """A data directory that is a mount point (a disk of its own at
    /var/lib/corral), or that holds wal/ as the log device's mount point,
    cannot be replaced by a rename (EBUSY, EXDEV): the import is written
    into it (a file system's lost+found is no content), and corrald serves
    ZooKeeper's tree and sessions from it, its log on the mount in the
    second case."""
    tmp, zk_dir, want, sessions = zookeeper_plain
    data_dir = os.path.join(str(tmp_path), "imported")
    os.mkdir(data_dir, 0o700)
    point = data_dir if mounted == "data_dir" else os.path.join(data_dir, "wal")
    os.makedirs(point, exist_ok=True)
    mount_tmpfs(point)
    try:
        os.mkdir(os.path.join(point, "lost+found"))    # as a fresh ext4 has it
        check_import(tmp_path, zk_dir, want, sessions, data_dir=data_dir)
        if mounted == "wal":
            assert any(n.endswith(".seg") for n in os.listdir(point)), os.listdir(point)
    finally:
        if subprocess.run(["umount", point], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", point], capture_output=True)


def test_import_reads_logs_kept_apart(zookeeper_plain, tmp_path):
    """ZooKeeper's dataLogDir: the logs in a directory of their own."""
    _, zk_dir, want, _ = zookeeper_plain
    copy, logs, _ = damaged_copy(tmp_path, zk_dir, "snapshots")
    log_dir = os.path.join(str(tmp_path), "logs", "version-2")
    os.makedirs(log_dir)
    for log in logs:
        shutil.move(log, log_dir)
    p = import_zookeeper(copy, os.path.join(str(tmp_path), "apart"),
                         "--log-dir", os.path.dirname(log_dir), want=want)
    assert f"from {len(logs)} log files" in p.stdout or "log files" in p.stdout, p.stdout
    assert "the tree's digest equals ZooKeeper's" in p.stdout, p.stdout
    # Without it, only the snapshot: the import says so.
    p = import_zookeeper(copy, os.path.join(str(tmp_path), "without"))
    assert "no log file was read" in p.stderr and "--log-dir" in p.stderr, p.stderr


def test_import_snappy_snapshots(tmp_path):
    zk_dir, want, sessions = run_zookeeper(
        tmp_path, "zookeeper-snappy", 1000,
        {"zookeeper.snapshot.compression.method": "snappy", "zookeeper.snapCount": "400"},
        stop="stop")
    snaps = glob.glob(os.path.join(zk_dir, "version-2", "snapshot.*"))
    newest = max(snaps, key=lambda p: int(p.split("snapshot.")[1].split(".")[0], 16))
    assert newest.endswith(".snappy"), snaps
    check_import(tmp_path, zk_dir, want, sessions)
