"""corralctl against a real corrald: every command's output and exit status,
checked exactly, on data seeded with kazoo; and against servers that cannot
be reached, never answer, answer wrongly, or do not enable the words.

Environment: CORRALD and CORRALCTL, the two binaries (meson sets them).
Run with /usr/bin/python3 (Debian's python3-kazoo)."""
import base64
import datetime
import hashlib
import os
import pty
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest
from kazoo.client import KazooClient
from kazoo.security import make_digest_acl

import harness
from harness import free_port

CORRALD = os.environ.get("CORRALD")
CORRALCTL = os.environ.get("CORRALCTL")

pytestmark = pytest.mark.skipif(not CORRALD or not CORRALCTL,
                                reason="CORRALD and CORRALCTL must be set")

STATUS_LABELS = ["server", "mode", "version", "zxid", "znodes", "connections", "outstanding",
                 "latency min/avg/max", "packets received/sent", "watches", "ephemerals",
                 "data size", "sessions", "log fsyncs", "log entries/fsync", "log state", "uptime"]
SRVR_LABELS = STATUS_LABELS[:9]


SUPER_PASSWORD = "ctl-super"
SUPER_DIGEST = "super:" + base64.b64encode(
    hashlib.sha1(f"super:{SUPER_PASSWORD}".encode()).digest()).decode()


class Corrald(harness.Corrald):
    """One corrald on a free 127.0.0.1 port with a fresh data directory,
    started from the command line alone (-d, -l); with words, from a
    corral.yaml that enables just those four-letter words; with ensemble,
    the one member of an ensemble with reconfig on and a super user."""

    def __init__(self, words=None, ensemble=False):
        config = {}
        peer = None
        if ensemble:
            peer = f"127.0.0.1:{free_port()}"
            config = {"auth": {"super_digest": SUPER_DIGEST}}
        elif words is not None:
            config = {"client": {"four_letter_words": list(words)}}
        super().__init__(tempfile.mkdtemp(prefix="corralctl-test-"), config=config,
                         port=free_port(), ready="session")
        self.data_dir = os.path.join(self.tmp, "data")
        self.peer = peer
        if ensemble:
            self.config["ensemble"] = {"id": 1, "reconfig": True, "election_timeout_ms": 200,
                                       "members": [{"id": 1, "client": self.hosts,
                                                    "peer": peer}]}
        self.options_only = words is None and not ensemble

    def argv(self):
        if self.options_only:
            return [self.binary, "-d", self.data_dir, "-l", self.hosts]
        return super().argv()

    def start(self):
        return super().start(timeout=30)

    def word(self, w):
        return self.four_letter(w)

    def mntr(self):
        return dict(line.split("\t", 1) for line in self.word("mntr").splitlines())

    def kazoo(self):
        zk = KazooClient(hosts=self.hosts, timeout=10)
        zk.start(timeout=10)
        return zk


def recv_until_closed(s, limit=None):
    got = b""
    while limit is None or len(got) < limit:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


@pytest.fixture
def make_corrald():
    made = []

    def make(words=None, ensemble=False):
        srv = Corrald(words, ensemble)
        made.append(srv)
        return srv.start()

    yield make
    for srv in made:
        srv.stop()
    try:
        for srv in made:
            assert srv.proc.returncode == 0, \
                f"corrald exited with {srv.proc.returncode}:\n{srv.log()[-4000:]}"
    finally:
        for srv in made:
            shutil.rmtree(srv.tmp, ignore_errors=True)


@pytest.fixture
def corrald(make_corrald):
    return make_corrald()


def ctl(*args, server=None, env=None, stdout=None, timeout=60):
    """Runs corralctl; returns (exit status, stdout bytes, stderr text)."""
    argv = [CORRALCTL] + (["-s", server] if server else []) + list(args)
    full_env = {k: v for k, v in os.environ.items() if k != "CORRAL_SERVER"}
    full_env.update(env or {})
    r = subprocess.run(argv, stdout=stdout if stdout is not None else subprocess.PIPE,
                       stderr=subprocess.PIPE, env=full_env, timeout=timeout)
    return r.returncode, r.stdout, r.stderr.decode()


def ctl_text(*args, **kw):
    rc, out, err = ctl(*args, **kw)
    return rc, out.decode(), err


# ---- usage, --help, --version ----

def test_version_is_the_builds():
    rc, out, err = ctl_text("--version")
    corrald_version = subprocess.run([CORRALD, "--version"], capture_output=True, text=True,
                                     check=True).stdout
    assert (rc, err) == (0, "")
    assert out == corrald_version.replace("corrald", "corralctl", 1)
    assert re.fullmatch(r"corralctl \d+\.\d+\.\d+\S*\n", out)


def test_help_documents_commands_options_and_exit_statuses():
    rc, out, err = ctl_text("--help")
    assert (rc, err) == (0, "")
    assert out.startswith("Usage: corralctl [-s HOST:PORT] [-t TIMEOUT_MS] [--auth USER:PASSWORD] "
                          "[--json] COMMAND [ARGS]\n")
    for text in ["ruok", "status", "ls PATH", "get PATH", "stat PATH", "tree [PATH]",
                 "create PATH [DATA]", "set PATH DATA", "delete PATH", "members list",
                 "members add ID PEER_HOST:PORT CLIENT_HOST:PORT [--observer]",
                 "members remove ID", "members transfer-leader [ID]",
                 "--server=HOST:PORT", "--timeout=MS", "--max-nodes=N", "--max-depth=N",
                 "--auth=USER:PASSWORD", "--observer", "--json",
                 "getacl PATH", "setacl PATH ACL", "sessions [list]",
                 "watches [path|session]", "health", "  0   success; health: healthy",
                 "$CORRAL_SERVER", "127.0.0.1:2181", "Exit status:", "  0   success",
                 "  1   the server answered", "  2   the server could not be reached",
                 "  64  bad usage"]:
        assert text in out
    assert ctl_text("-h") == (0, out, "")


USAGE = ("Usage: corralctl [-s HOST:PORT] [-t TIMEOUT_MS] [--auth USER:PASSWORD] [--json] COMMAND [ARGS]\n"
         "       corralctl --help | --version\n"
         "Commands: ruok, status, ls PATH, get PATH, stat PATH,\n"
         "          tree [--max-nodes N] [--max-depth N] [PATH],\n"
         "          create PATH [DATA], set PATH DATA, delete PATH,\n"
         "          members list, members add ID PEER_HOST:PORT CLIENT_HOST:PORT [--observer],\n"
         "          members remove ID, members transfer-leader [ID],\n"
         "          backup FILE, getacl PATH, setacl PATH ACL, sessions [list],\n"
         "          sessions close ID, watches [path|session], health, doctor [CONFIG]\n"
         "Try 'corralctl --help' for more.\n")


@pytest.mark.parametrize("args,message", [
    ([], "no command"),
    (["frob"], "unknown command 'frob'"),
    (["ls"], "ls: PATH is missing"),
    (["get"], "get: PATH is missing"),
    (["stat"], "stat: PATH is missing"),
    (["ls", "/a", "/b"], "ls: unexpected argument '/b'"),
    (["ruok", "/x"], "ruok: unexpected argument '/x'"),
    (["ls", "app"], "ls: 'app' is not a path: it must start with '/'"),
    (["create"], "create: PATH is missing"),
    (["set", "/a"], "set: DATA is missing"),
    (["delete", "/a", "/b"], "delete: unexpected argument '/b'"),
    (["create", "a", "x"], "create: 'a' is not a path: it must start with '/'"),
    (["tree", "app"], "tree: 'app' is not a path: it must start with '/'"),
    (["backup"], "backup: FILE is missing"),
    (["backup", "a", "b"], "backup: unexpected argument 'b'"),
    (["-t", "abc", "ruok"], "-t: 'abc' is not a timeout in ms (1 to 3600000)"),
    (["-t", "0", "ruok"], "-t: '0' is not a timeout in ms (1 to 3600000)"),
    (["ls", "/", "--max-nodes", "5"], "--max-nodes and --max-depth are for tree only"),
    (["tree", "--max-nodes", "-1"], "--max-nodes: '-1' is not a count (0: no limit)"),
    (["tree", "--max-depth", "x"], "--max-depth: 'x' is not a depth"),
    (["-s", "host:99999", "ruok"], "server 'host:99999': bad port '99999'"),
    (["-s", "[::1", "ruok"], "server '[::1': expected [IPV6]:PORT"),
    (["-s", "a:1,b:2", "ruok"], "server 'a:1,b:2': one server only, not a list"),
    (["--auth", "nocolon", "ls", "/"], "--auth: expected USER:PASSWORD"),
    (["--auth", "a:b", "ruok"], "--auth is for commands that open a session, not ruok"),
    (["--auth", "a:b", "status"], "--auth is for commands that open a session, not status"),
    (["ls", "/", "--observer"], "--observer is for members add only"),
    (["members"], "members: a subcommand is missing: list, add, remove or transfer-leader"),
    (["members", "frob"], "members: unknown subcommand 'frob'"),
    (["members", "list", "x"], "members list: unexpected argument 'x'"),
    (["members", "list", "--observer"], "--observer is for members add only"),
    (["members", "remove", "2", "--observer"], "--observer is for members add only"),
    (["members", "add"], "members add: ID is missing"),
    (["members", "add", "4"], "members add: PEER_HOST:PORT is missing"),
    (["members", "add", "4", "127.0.0.1:2888"], "members add: CLIENT_HOST:PORT is missing"),
    (["members", "add", "4", "a:1", "b:2", "c:3"], "members add: unexpected argument 'c:3'"),
    (["members", "add", "0", "a:1", "b:2"], "members add: '0' is not a server id (1 to 255)"),
    (["members", "add", "256", "a:1", "b:2"], "members add: '256' is not a server id (1 to 255)"),
    (["members", "add", "x", "a:1", "b:2"], "members add: 'x' is not a server id (1 to 255)"),
    (["members", "add", "4", "127.0.0.1", "b:2"],
     "members add: '127.0.0.1' is not HOST:PORT (an IPv6 address in brackets)"),
    (["members", "add", "4", "a:1", "b:0"],
     "members add: 'b:0' is not HOST:PORT (an IPv6 address in brackets)"),
    (["members", "add", "4", "::1:2888", "b:2"],
     "members add: '::1:2888' is not HOST:PORT (an IPv6 address in brackets)"),
    (["members", "add", "4", "a:1,server.9=b:2", "c:3"],
     "members add: 'a:1,server.9=b:2' is not HOST:PORT (an IPv6 address in brackets)"),
    (["members", "add", "4", "a:1", "b:2;c:3"],
     "members add: 'b:2;c:3' is not HOST:PORT (an IPv6 address in brackets)"),
    (["members", "remove"], "members remove: ID is missing"),
    (["members", "remove", "1", "2"], "members remove: unexpected argument '2'"),
    (["members", "transfer-leader", "0"],
     "members transfer-leader: '0' is not a server id (1 to 255)"),
    (["members", "transfer-leader", "1", "2"], "members transfer-leader: unexpected argument '2'"),
])
def test_bad_usage_exits_64_with_usage(args, message):
    assert ctl_text(*args) == (64, "", f"corralctl: {message}\n{USAGE}")


def test_unknown_option_exits_64():
    rc, out, err = ctl_text("--frob", "ruok")
    assert (rc, out) == (64, "")
    assert err.endswith(USAGE) and "frob" in err


# ---- ruok ----

def test_ruok_answers_imok(corrald):
    assert ctl_text("ruok", server=corrald.hosts) == (0, "imok\n", "")


def test_ruok_takes_the_server_from_corral_server(corrald):
    assert ctl_text("ruok", env={"CORRAL_SERVER": corrald.hosts}) == (0, "imok\n", "")
    # -s wins over the environment
    port = free_port()
    assert ctl_text("-s", corrald.hosts, "ruok", env={"CORRAL_SERVER": f"127.0.0.1:{port}"}) \
        == (0, "imok\n", "")


def test_ruok_against_a_closed_port_exits_2():
    port = free_port()
    assert ctl_text("ruok", server=f"127.0.0.1:{port}") == (
        2, "", f"corralctl: 127.0.0.1:{port}: cannot connect: Connection refused\n")


def test_every_command_against_a_closed_port_exits_2():
    port = free_port()
    for args in (["status"], ["ls", "/"], ["get", "/"], ["stat", "/"], ["tree"]):
        assert ctl_text(*args, server=f"127.0.0.1:{port}") == (
            2, "", f"corralctl: 127.0.0.1:{port}: cannot connect: Connection refused\n"), args


def test_unresolvable_host_exits_2():
    rc, out, err = ctl_text("ruok", server="no-such-host.invalid:2181")
    assert (rc, out) == (2, "")
    assert err.startswith("corralctl: no-such-host.invalid:2181: cannot resolve the host name: ")


@pytest.fixture
def silent_listener():
    """Accepts connections (the kernel's backlog) but never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    yield f"127.0.0.1:{s.getsockname()[1]}"
    s.close()


@pytest.mark.parametrize("args", [["ruok"], ["status"], ["ls", "/"], ["tree"]])
def test_a_server_that_never_answers_times_out_with_exit_2(silent_listener, args):
    start = time.monotonic()
    assert ctl_text("-t", "300", *args, server=silent_listener) == (
        2, "", f"corralctl: {silent_listener}: no answer within 300 ms\n")
    assert time.monotonic() - start < 10


@pytest.fixture
def answering_server():
    """A fake server: answers every connection with the given bytes, then closes."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    answer = {"bytes": b""}
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                c, _ = s.accept()
            except OSError:
                return
            with c:
                c.settimeout(5)
                try:
                    c.recv(4)
                    c.sendall(answer["bytes"])
                except OSError:
                    pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()

    def set_answer(b):
        answer["bytes"] = b
        return f"127.0.0.1:{s.getsockname()[1]}"

    yield set_answer
    stop.set()
    s.close()
    t.join(timeout=5)


def test_ruok_with_another_answer_exits_1(answering_server):
    where = answering_server(b"nope\n\x01")
    assert ctl_text("ruok", server=where) == (
        1, "", f"corralctl: {where}: the server answered ruok with 'nope\\n\\x01', not 'imok'\n")
    where = answering_server(b"")
    assert ctl_text("ruok", server=where) == (
        1, "", f"corralctl: {where}: the server closed the connection without answering ruok\n")


def test_ruok_not_in_the_whitelist_exits_1(make_corrald):
    srv = make_corrald(words=["srvr"])
    assert srv.word("ruok") == "ruok is not executed because it is not in the whitelist.\n"
    assert ctl_text("ruok", server=srv.hosts) == (
        1, "", f"corralctl: {srv.hosts}: ruok is not enabled on the server "
               "(not in its four-letter-word whitelist)\n")


# ---- status ----

def status_rows(out):
    lines = out.splitlines()
    width = len(lines[0]) - len(lines[0][len("server"):].lstrip())
    rows = []
    for line in lines:
        label, value = line[:width].rstrip(), line[width:]
        assert line[width - 2:width] == "  " and not value.startswith(" "), line
        rows.append((label, value))
    return rows


def test_status_shows_srvr_and_mntr(corrald):
    zk = corrald.kazoo()
    zk.create("/s/a", b"12345", makepath=True)
    zk.create("/s/e", b"xy", ephemeral=True)
    zk.get("/s/a", watch=lambda e: None)
    rc, out, err = ctl_text("status", server=corrald.hosts)
    assert (rc, err) == (0, "")
    rows = status_rows(out)
    assert [label for label, _ in rows] == STATUS_LABELS
    # every label padded to the longest one, two spaces, then the value
    assert all(line[len("packets received/sent"):].startswith("  ") for line in out.splitlines())
    got = dict(rows)
    srvr = dict(line.split(": ", 1) for line in corrald.word("srvr").splitlines())
    mntr = corrald.mntr()
    zk.stop()
    zk.close()
    assert got["server"] == corrald.hosts
    assert got["mode"] == "standalone"
    assert got["version"] == srvr["Zookeeper version"]
    assert got["zxid"] == srvr["Zxid"] == mntr["corral_last_zxid"]
    assert got["znodes"] == srvr["Node count"] == "7"  # / zookeeper quota config s a e
    assert re.fullmatch(r"\d+", got["connections"]) and int(got["connections"]) >= 2
    assert got["outstanding"] == "0"
    # the average as Java prints a double, as ZooKeeper does: 0.0, 0.25, 0.3333
    assert re.fullmatch(r"\d+/\d+\.\d+(E-?\d+)?/\d+ ms", got["latency min/avg/max"])
    assert re.fullmatch(r"\d+/\d+", got["packets received/sent"])
    assert got["watches"] == "1"
    assert got["ephemerals"] == "1"
    assert got["data size"] == "7 bytes"
    assert got["sessions"] == "1"
    assert got["log fsyncs"] == mntr["corral_log_fsyncs"] and int(got["log fsyncs"]) > 0
    assert got["log entries/fsync"] == mntr["corral_log_entries_per_fsync"]
    assert got["log state"] == "ok"
    assert re.fullmatch(r"(\d+d )?(\d+h )?(\d+m )?\d+s", got["uptime"])


def test_status_without_mntr_shows_srvr_and_says_so(make_corrald):
    srv = make_corrald(words=["srvr"])
    rc, out, err = ctl_text("status", server=srv.hosts)
    assert rc == 0
    rows = status_rows(out)
    assert [label for label, _ in rows] == SRVR_LABELS
    assert dict(rows)["mode"] == "standalone"
    assert dict(rows)["znodes"] == "4"
    assert err == (f"corralctl: {srv.hosts}: mntr is not enabled on the server (not in its "
                   "four-letter-word whitelist): watches, ephemerals, data size, sessions, log "
                   "and uptime are not shown\n")


def test_status_with_mntr_only_shows_everything(make_corrald):
    srv = make_corrald(words=["mntr"])
    rc, out, err = ctl_text("status", server=srv.hosts)
    assert (rc, err) == (0, "")
    rows = dict(status_rows(out))
    assert list(rows) == STATUS_LABELS
    assert rows["version"] == srv.mntr()["zk_version"]


def test_status_with_neither_word_exits_1(make_corrald):
    srv = make_corrald(words=["isro"])
    assert ctl_text("status", server=srv.hosts) == (
        1, "", f"corralctl: {srv.hosts}: neither srvr nor mntr is enabled on the server "
               "(not in its four-letter-word whitelist)\n")


def test_status_from_something_else_exits_1(answering_server):
    where = answering_server(b"HTTP/1.0 400 Bad Request\r\n\r\n")
    assert ctl_text("status", server=where) == (
        1, "", f"corralctl: {where}: the answers to srvr and mntr do not parse: "
               "not a ZooKeeper server?\n")


# ---- reads: ls, get, stat, tree ----

ALL_BYTES = bytes(range(256))


@pytest.fixture
def seeded(corrald):
    zk = corrald.kazoo()
    zk.create("/app/config", b"key=value\n", makepath=True)
    zk.create("/app/bin", ALL_BYTES)
    zk.create("/app/empty", b"")
    zk.create("/app/text", b"hello")
    zk.create("/app/bin/z")
    zk.create("/app/bin/a")
    zk.create("/app/bin/a/deep", b"d")
    zk.create("/app/B")
    zk.create("/app/\u00e9t\u00e9")     # UTF-8, sorts after ASCII by bytes
    zk.create("/app/Z-1")
    zk.create("/locks")
    zk.stop()
    zk.close()
    return corrald


def test_ls_prints_children_sorted(seeded):
    assert ctl_text("ls", "/app", server=seeded.hosts) == (
        0, "B\nZ-1\nbin\nconfig\nempty\ntext\n\u00e9t\u00e9\n", "")
    assert ctl_text("ls", "/", server=seeded.hosts) == (0, "app\nlocks\nzookeeper\n", "")
    assert ctl_text("ls", "/locks", server=seeded.hosts) == (0, "", "")
    assert ctl_text("ls", "/zookeeper", server=seeded.hosts) == (0, "config\nquota\n", "")


def test_get_prints_raw_bytes(seeded):
    assert ctl("get", "/app/bin", server=seeded.hosts) == (0, ALL_BYTES, "")
    assert ctl("get", "/app/config", server=seeded.hosts) == (0, b"key=value\n", "")
    assert ctl("get", "/app/text", server=seeded.hosts) == (0, b"hello", "")
    assert ctl("get", "/app/empty", server=seeded.hosts) == (0, b"", "")
    assert ctl("get", "/locks", server=seeded.hosts) == (0, b"", "")


def run_on_a_tty(*args):
    """Runs corralctl with stdout on a pseudo-terminal; returns (status, output, stderr)."""
    master, slave = pty.openpty()
    try:
        out = b""
        p = subprocess.Popen([CORRALCTL] + list(args), stdout=slave, stderr=subprocess.PIPE)
        os.close(slave)
        slave = None
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the other side is closed
                break
            if not chunk:
                break
            out += chunk
        err = p.stderr.read().decode()
        p.stderr.close()
        return p.wait(timeout=30), out, err
    finally:
        os.close(master)
        if slave is not None:
            os.close(slave)


def test_get_on_a_terminal_ends_with_a_newline(seeded):
    # the terminal turns "\n" into "\r\n"
    assert run_on_a_tty("-s", seeded.hosts, "get", "/app/text") == (0, b"hello\r\n", "")
    assert run_on_a_tty("-s", seeded.hosts, "get", "/app/config") == (0, b"key=value\r\n", "")
    assert run_on_a_tty("-s", seeded.hosts, "get", "/app/empty") == (0, b"", "")


def iso(ms):
    t = datetime.datetime.fromtimestamp(ms // 1000, tz=datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{ms % 1000:03d}Z"


def expected_stat(st):
    return (f"cZxid = {hex(st.czxid)}\n"
            f"ctime = {st.ctime} ({iso(st.ctime)})\n"
            f"mZxid = {hex(st.mzxid)}\n"
            f"mtime = {st.mtime} ({iso(st.mtime)})\n"
            f"pZxid = {hex(st.pzxid)}\n"
            f"cversion = {st.cversion}\n"
            f"dataVersion = {st.version}\n"
            f"aclVersion = {st.aversion}\n"
            f"ephemeralOwner = {hex(st.ephemeralOwner)}\n"
            f"dataLength = {st.dataLength}\n"
            f"numChildren = {st.numChildren}\n")


def test_stat_prints_every_field(seeded):
    zk = seeded.kazoo()
    try:
        zk.set("/app/text", b"hello again")
        zk.set("/app/text", b"hello there")
        zk.set_acls("/app/text", zk.get_acls("/app/text")[0])
        zk.create("/app/text/kid")
        zk.delete("/app/text/kid")
        zk.create("/app/text/kid2")
        zk.create("/app/eph", b"e", ephemeral=True)
        for path in ["/app/text", "/app/bin", "/app/eph", "/", "/locks"]:
            st = zk.exists(path)
            assert ctl_text("stat", path, server=seeded.hosts) == (0, expected_stat(st), ""), path
        st = zk.exists("/app/text")
        assert (st.version, st.aversion, st.cversion, st.numChildren) == (2, 1, 3, 1)
        assert zk.exists("/app/eph").ephemeralOwner == zk.client_id[0] != 0
    finally:
        zk.stop()
        zk.close()


def test_stat_time_is_utc_iso8601(seeded):
    rc, out, err = ctl_text("stat", "/app/text", server=seeded.hosts)
    assert (rc, err) == (0, "")
    m = re.search(r"^ctime = (\d+) \((\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\)$", out, re.M)
    assert m
    ms = int(m.group(1))
    assert abs(ms / 1000 - time.time()) < 600
    parsed = datetime.datetime.strptime(m.group(2), "%Y-%m-%dT%H:%M:%S.%fZ")
    assert parsed.replace(tzinfo=datetime.timezone.utc).timestamp() == ms / 1000


TREE = """/
  app
    B
    Z-1
    bin
      a
        deep
      z
    config
    empty
    text
    \u00e9t\u00e9
  locks
  zookeeper
    config
    quota
"""


def test_tree_prints_the_subtree_indented_and_sorted(seeded):
    assert ctl_text("tree", server=seeded.hosts) == (0, TREE, "")
    assert ctl_text("tree", "/", server=seeded.hosts) == (0, TREE, "")
    assert ctl_text("tree", "/app/bin", server=seeded.hosts) == (
        0, "/app/bin\n  a\n    deep\n  z\n", "")
    assert ctl_text("tree", "/app/bin/a/deep", server=seeded.hosts) == (0, "/app/bin/a/deep\n", "")


def test_tree_max_depth(seeded):
    assert ctl_text("tree", "--max-depth", "1", server=seeded.hosts) == (
        0, "/\n  app\n  locks\n  zookeeper\n", "")
    assert ctl_text("tree", "/app/bin", "--max-depth=0", server=seeded.hosts) == (
        0, "/app/bin\n", "")
    assert ctl_text("tree", "--max-depth", "2", "/app", server=seeded.hosts) == (
        0, "/app\n  B\n  Z-1\n  bin\n    a\n    z\n  config\n  empty\n  text\n  \u00e9t\u00e9\n", "")


def test_tree_max_nodes_says_where_it_stopped(seeded):
    assert ctl_text("tree", "--max-nodes", "5", server=seeded.hosts) == (
        0, "/\n  app\n    B\n    Z-1\n    bin\n",
        "corralctl: tree: stopped after 5 nodes (--max-nodes); more remain\n")
    # exactly as many as there are: nothing to say
    assert ctl_text("tree", "--max-nodes", str(TREE.count("\n")), server=seeded.hosts) == (
        0, TREE, "")
    assert ctl_text("tree", "--max-nodes", "0", server=seeded.hosts) == (0, TREE, "")


def test_tree_stops_at_10000_nodes_by_default(corrald):
    zk = corrald.kazoo()
    try:
        zk.create("/many")
        for start in range(0, 10050, 1000):
            t = zk.transaction()
            for i in range(start, min(start + 1000, 10050)):
                t.create(f"/many/n{i:05d}")
            assert all(r == f"/many/n{i:05d}" for i, r in zip(range(start, start + 1000), t.commit()))
    finally:
        zk.stop()
        zk.close()
    rc, out, err = ctl_text("tree", "/many", server=corrald.hosts)
    assert (rc, err) == (0, "corralctl: tree: stopped after 10000 nodes (--max-nodes); more remain\n")
    assert out == "/many\n" + "".join(f"  n{i:05d}\n" for i in range(9999))
    rc, out, err = ctl_text("tree", "/many", "--max-nodes", "20000", server=corrald.hosts)
    assert (rc, err) == (0, "")
    assert out.count("\n") == 10051
    rc, out, err = ctl_text("ls", "/many", server=corrald.hosts)
    assert (rc, err, out) == (0, "", "".join(f"n{i:05d}\n" for i in range(10050)))


@pytest.mark.parametrize("command", ["ls", "get", "stat", "tree"])
def test_no_such_node_exits_1(seeded, command):
    assert ctl_text(command, "/nope", server=seeded.hosts) == (
        1, "", "corralctl: /nope: no such node\n")
    assert ctl_text(command, "/app/text/nope", server=seeded.hosts) == (
        1, "", "corralctl: /app/text/nope: no such node\n")


@pytest.mark.parametrize("path", ["/app/", "/app//text", "/app/./text", "/app/../app",
                                  "/app/\x01"])
@pytest.mark.parametrize("command", ["ls", "get", "stat", "tree"])
def test_invalid_path_exits_64(command, path):
    assert ctl_text(command, path, server="127.0.0.1:1") == (
        64, "", f"corralctl: {command}: '{path}' is not a valid znode path\n{USAGE}")


def test_unreadable_node_exits_1(seeded):
    zk = seeded.kazoo()
    try:
        zk.add_auth("digest", "admin:secret")
        zk.create("/private", b"secret", acl=[make_digest_acl("admin", "secret", all=True)])
        zk.create("/private/child", acl=[make_digest_acl("admin", "secret", all=True)])
    finally:
        zk.stop()
        zk.close()
    for command in ["get", "ls"]:
        assert ctl_text(command, "/private", server=seeded.hosts) == (
            1, "", "corralctl: /private: not authorized (NOAUTH)\n")
    # exists needs no READ (as in ZooKeeper)
    assert ctl_text("stat", "/private", server=seeded.hosts)[0] == 0
    # tree shows what it may and says what it may not
    assert ctl_text("tree", server=seeded.hosts) == (
        1, TREE.replace("  locks\n", "  locks\n  private\n"),
        "corralctl: /private: not authorized (NOAUTH)\n")


def test_reads_close_their_session(seeded):
    assert seeded.mntr()["zk_global_sessions"] == "0"
    for args in (["ls", "/app"], ["get", "/app/text"], ["stat", "/app"], ["tree"],
                 ["get", "/nope"], ["tree", "--max-nodes", "2"]):
        ctl(*args, server=seeded.hosts)
        assert seeded.mntr()["zk_global_sessions"] == "0", args


def test_output_write_error_exits_1(seeded):
    with open("/dev/full", "wb") as full:
        rc, out, err = ctl("get", "/app/bin", server=seeded.hosts, stdout=full)
    assert rc == 1
    assert err == "corralctl: cannot write the output: No space left on device\n"


# ---- writes ----

def test_create_set_delete_change_the_tree_as_another_client_sees_it(corrald):
    srv = corrald
    assert ctl_text("create", "/app", "v1", server=srv.hosts) == (0, "/app\n", "")
    assert ctl_text("create", "/app/empty", server=srv.hosts) == (0, "/app/empty\n", "")
    zk = srv.kazoo()
    try:
        data, stat = zk.get("/app")
        assert (data, stat.version, stat.ephemeralOwner) == (b"v1", 0, 0)
        assert zk.get("/app/empty")[0] == b""
        assert [(a.perms, a.id.scheme, a.id.id) for a in zk.get_acls("/app")[0]] == \
            [(31, "world", "anyone")]
        assert ctl_text("set", "/app", "v2", server=srv.hosts) == (0, "", "")
        data, stat = zk.get("/app")
        assert (data, stat.version) == (b"v2", 1)
        assert ctl_text("create", "/app", "again", server=srv.hosts) == \
            (1, "", "corralctl: /app: already exists\n")
        assert ctl_text("delete", "/app", server=srv.hosts) == \
            (1, "", "corralctl: /app: has children\n")
        assert ctl_text("set", "/nope", "x", server=srv.hosts) == \
            (1, "", "corralctl: /nope: no such node\n")
        assert ctl_text("create", "/no/parent", server=srv.hosts) == \
            (1, "", "corralctl: /no/parent: no such node\n")
        assert ctl_text("delete", "/app/empty", server=srv.hosts) == (0, "", "")
        assert ctl_text("delete", "/app", server=srv.hosts) == (0, "", "")
        assert zk.exists("/app") is None
    finally:
        zk.stop()
        zk.close()


# ---- --auth ----

def test_auth_adds_a_digest_identity_before_the_command(seeded):
    zk = seeded.kazoo()
    try:
        zk.add_auth("digest", "admin:secret")
        zk.create("/private", b"secret", acl=[make_digest_acl("admin", "secret", all=True)])
    finally:
        zk.stop()
        zk.close()
    assert ctl("get", "/private", server=seeded.hosts) == (
        1, b"", "corralctl: /private: not authorized (NOAUTH)\n")
    assert ctl("--auth", "admin:secret", "get", "/private", server=seeded.hosts) == (
        0, b"secret", "")
    assert ctl("--auth=admin:wrong", "get", "/private", server=seeded.hosts) == (
        1, b"", "corralctl: /private: not authorized (NOAUTH)\n")
    assert ctl_text("--auth", "admin:secret", "set", "/private", "new", server=seeded.hosts) == \
        (0, "", "")
    assert ctl("--auth", "admin:secret", "get", "/private", server=seeded.hosts)[1] == b"new"


# ---- members ----

def members_table(rows):
    """The table members list prints: columns padded to the widest cell, two
    spaces apart, the last one not padded."""
    rows = [["id", "role", "peer", "client", "state"]] + rows
    widths = [max(len(r[k]) for r in rows) for k in range(4)]
    return "".join("  ".join(r[k].ljust(widths[k]) for k in range(4)) + "  " + r[4] + "\n"
                   for r in rows)


def zookeeper_config(srv):
    zk = srv.kazoo()
    try:
        return zk.get("/zookeeper/config")[0].decode()
    finally:
        zk.stop()
        zk.close()


@pytest.mark.parametrize("args", [["list"], ["add", "2", "127.0.0.1:1", "127.0.0.1:2"],
                                  ["remove", "2"], ["transfer-leader"]])
def test_members_of_a_standalone_server_exits_1(corrald, args):
    assert ctl_text("--auth", f"super:{SUPER_PASSWORD}", "members", *args,
                    server=corrald.hosts) == (
        1, "", f"corralctl: {corrald.hosts}: /zookeeper/config lists no members: the server "
               "is not part of an ensemble (standalone)\n")


@pytest.mark.parametrize("args", [["list"], ["add", "2", "127.0.0.1:1", "127.0.0.1:2"],
                                  ["remove", "2"], ["transfer-leader", "2"]])
def test_members_against_a_closed_port_exits_2(args):
    port = free_port()
    assert ctl_text("members", *args, server=f"127.0.0.1:{port}") == (
        2, "", f"corralctl: 127.0.0.1:{port}: cannot connect: Connection refused\n")


@pytest.fixture
def one_member(make_corrald):
    return make_corrald(ensemble=True)


def test_members_list_shows_the_one_member_as_leader(one_member):
    srv = one_member
    version = zookeeper_config(srv).rsplit("version=", 1)[1]
    assert ctl_text("members", "list", server=srv.hosts) == (
        0, members_table([["1", "participant", srv.peer, srv.hosts, "leader"]])
        + f"version: 0x{version}\nleader: 1\n", "")


def test_members_add_and_remove_an_observer_change_zookeeper_config(one_member):
    srv = one_member
    auth = ["--auth", f"super:{SUPER_PASSWORD}"]
    peer9, client9 = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    line1 = f"server.1={srv.peer}:0:participant;{srv.hosts}"
    line9 = f"server.9={peer9}:0:observer;{client9}"
    # changes need WRITE on /zookeeper/config
    assert ctl_text("members", "add", "9", peer9, client9, "--observer", server=srv.hosts) == (
        1, "", "corralctl: /zookeeper/config: not authorized (NOAUTH): changing the members "
               "needs WRITE on /zookeeper/config (e.g. --auth super:PASSWORD)\n")
    rc, out, err = ctl_text(*auth, "members", "add", "9", peer9, client9, "--observer",
                            server=srv.hosts)
    assert (rc, err) == (0, "")
    config = zookeeper_config(srv)
    assert out == config + "\n"
    lines = config.split("\n")
    assert lines[:2] == [line1, line9] and re.fullmatch(r"version=[0-9a-f]+", lines[2])
    # an observer that is not running: shown, unreachable
    assert ctl_text("members", "list", server=srv.hosts) == (
        0, members_table([["1", "participant", srv.peer, srv.hosts, "leader"],
                          ["9", "observer", peer9, client9, "unreachable"]])
        + f"version: 0x{lines[2][len('version='):]}\nleader: 1\n", "")
    assert ctl_text(*auth, "members", "add", "9", peer9, client9, server=srv.hosts) == (
        1, "", "corralctl: server 9 is a member already (remove it first to change its "
               "addresses or role)\n")
    rc, out, err = ctl_text(*auth, "members", "remove", "9", server=srv.hosts)
    assert (rc, err) == (0, "")
    config = zookeeper_config(srv)
    assert out == config + "\n"
    assert config.split("\n")[0] == line1 and len(config.split("\n")) == 2
    assert int(config.rsplit("=", 1)[1], 16) > int(lines[2].rsplit("=", 1)[1], 16)


def test_members_remove_and_transfer_leader_refuse_what_cannot_be(one_member):
    srv = one_member
    auth = ["--auth", f"super:{SUPER_PASSWORD}"]
    before = zookeeper_config(srv)
    assert ctl_text(*auth, "members", "remove", "7", server=srv.hosts) == (
        1, "", "corralctl: server 7 is not a member\n")
    assert ctl_text(*auth, "members", "remove", "1", server=srv.hosts) == (
        1, "", "corralctl: server 1 leads and leaves, and no other member answers\n")
    assert ctl_text(*auth, "members", "transfer-leader", "7", server=srv.hosts) == (
        1, "", "corralctl: server 7 is not a member\n")
    assert ctl_text(*auth, "members", "transfer-leader", "1", server=srv.hosts) == (
        0, "leader: 1 (already)\n", "")
    assert zookeeper_config(srv) == before


def test_members_add_and_remove_json(one_member):
    import json
    srv = one_member
    auth = ["--auth", f"super:{SUPER_PASSWORD}", "--json"]
    peer9, client9 = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    rc, out, err = ctl_text(*auth, "members", "add", "9", peer9, client9, "--observer",
                            server=srv.hosts)
    assert (rc, err) == (0, "")
    assert json.loads(out) == {"config": zookeeper_config(srv)}
    got = json.loads(ctl_text("--json", "members", "list", server=srv.hosts)[1])
    assert [(m["id"], m["role"], m["state"]) for m in got["members"]] == \
        [(1, "participant", "leader"), (9, "observer", "unreachable")]
    rc, out, err = ctl_text(*auth, "members", "remove", "9", server=srv.hosts)
    assert (rc, err) == (0, "")
    assert json.loads(out) == {"config": zookeeper_config(srv)}
    rc, out, err = ctl_text(*auth, "members", "remove", "9", server=srv.hosts)
    assert (rc, out) == (1, "")
