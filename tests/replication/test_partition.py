"""Network partitions of a corrald ensemble, on a real (virtual) network.

Each test builds its own network (netns.py): one namespace per server on a
bridge in a "switch" namespace, the test process reaching every server over
its own leg on that switch. A partition loses every packet between two sets
of servers (both ways, silently, as a real network does) and never the test
clients' packets, so a test can still talk to the side that is cut off.

What is proved:
- a leader cut off from the other two of three stops committing (the writes
  sent to it never succeed while it is cut off, its applied zxid does not
  move), the two elect a leader and go on committing; after the heal the old
  leader follows the new one and the three trees are the same, read from
  each server on its own;
- the same for five servers split two (the leader among them) / three;
- compare-and-set on three registers by clients pinned to different servers
  stays linearizable (WGL checker) while partitions come and go.

Every wait polls a condition with a deadline. The servers, the namespaces and
the root namespace's veth are removed when each test ends, pass or fail; on a
failure the servers' logs and the network's state are printed. Without root,
iproute2 or kernel support for namespaces the tests are skipped with the
reason.

The binary comes from $CORRALD (set by meson), else build-test/app/corrald.
"""
import functools
import logging
import os
import random
import subprocess
import threading
import time

import pytest

import netns
import tls_pki
import harness
from harness import stop_kazoo, wait_until as wait_for
from linearizability import Recorder, assert_linearizable

HERE = os.path.dirname(os.path.abspath(__file__))
CORRALD = os.environ.get("CORRALD") or os.path.join(HERE, "..", "..", "build-test", "app",
                                                      "corrald")
PYTHON = "/usr/bin/python3"
CLIENT_PORT = 2181
PEER_PORT = 2888
# kazoo logs a WARNING per dropped connection, and partitions drop many:
# without this they bury the failure (meson shows a failing test's last 100 lines).
logging.getLogger("kazoo").setLevel(logging.ERROR)
ELECTION_TIMEOUT_MS = 1000
ELECTION_S = 30		# deadline for an election to settle (many election timeouts)
CONVERGE_S = 30		# deadline for the trees to be the same everywhere after a heal


# ---------------------------------------------------------------- polling ---



# ---------------------------------------------------------------- servers ---

class Server(harness.Corrald):
    """One corrald in its own namespace (harness.Corrald named s<id>, run
    through `ip netns exec`, which execs it in the same process: signals
    reach it); client and peer addresses are the namespace's veth address.
    Its whole configuration is `config`."""

    def __init__(self, net, sid, workdir, config):
        super().__init__(workdir, name=f"s{sid}", host=net.addr(sid), port=CLIENT_PORT,
                         data_dir=os.path.join(str(workdir), f"s{sid}-data"))
        self.net = net
        self.id = sid
        self.config = config

    @property
    def addr(self):
        return self.host

    def config_dict(self):
        return self.config

    def argv(self):
        return self.net.exec_argv(self.id, super().argv())

    def wait_ready(self, timeout=30):
        return super().wait_ready(timeout)

    def four_letter(self, word, timeout=2):
        """The whole answer, or None when the server cannot be reached."""
        try:
            return harness.four_letter(self.port, word, timeout, self.host)
        except OSError:
            return None

    def status(self):
        """{'mode', 'zxid', 'leader'} from srvr and mntr, or None."""
        srvr = self.four_letter("srvr")
        mntr = self.four_letter("mntr")
        if not srvr or not mntr:
            return None
        st = {"mode": None, "zxid": None, "leader": None}
        for line in srvr.splitlines():
            if line.startswith("Mode:"):
                st["mode"] = line.split(":", 1)[1].strip()
            elif line.startswith("Zxid:"):
                st["zxid"] = int(line.split(":", 1)[1].strip(), 16)
        for line in mntr.splitlines():
            k, _, v = line.partition("\t")
            if k == "corral_leader_id":
                st["leader"] = int(v)
            elif k == "zk_synced_followers":
                st["synced_followers"] = int(v)
        return st


class Ensemble:
    """size servers, ids 1..size, one per namespace of net."""

    def __init__(self, net, workdir, size, extra=None, ensemble=True):
        self.net = net
        self.ids = list(range(1, size + 1))
        members = [{"id": i, "client": f"{net.addr(i)}:{CLIENT_PORT}",
                    "peer": f"{net.addr(i)}:{PEER_PORT}"} for i in self.ids]
        self.servers = {}
        pki = None
        for i in self.ids:
            cfg = {"data_dir": os.path.join(str(workdir), f"s{i}-data"), "log_level": "info",
                   "client": {"listen": [f"{net.addr(i)}:{CLIENT_PORT}"]},
                   "session": {"max_timeout_ms": 60000}}
            if ensemble:
                cfg["ensemble"] = {"id": i, "election_timeout_ms": ELECTION_TIMEOUT_MS,
                                   "members": members}
            if ensemble and tls_pki.peer_tls_wanted():   # replication-partition-tls
                pki = pki or tls_pki.Pki(os.path.join(str(workdir), "peer-pki"))
                cfg["ensemble"]["tls"] = tls_pki.member_peer_tls(pki, i, net.addr(i))
            for k, v in (extra or {}).items():
                if isinstance(v, dict):
                    cfg.setdefault(k, {}).update(v)
                else:
                    cfg[k] = v
            self.servers[i] = Server(net, i, workdir, cfg)
        self.clients = []

    def __getitem__(self, i):
        return self.servers[i]

    def hosts(self, ids=None):
        return ",".join(self.servers[i].hosts for i in (ids or self.ids))

    def start(self):
        for s in self.servers.values():
            s.spawn()
        for s in self.servers.values():
            s.wait_ready()
        return self

    def check_alive(self):
        for s in self.servers.values():
            if s.proc is not None and not s.running():
                raise AssertionError(f"server {s.id} exited with status {s.proc.returncode}; "
                                     f"its log (end):\n{tail(s.log(), 80)}")

    def statuses(self, ids=None):
        return {i: self.servers[i].status() for i in (ids or self.ids)}

    def describe(self, ids=None):
        return "server states: " + ", ".join(
            f"{i}: {st}" for i, st in self.statuses(ids).items()) + "\n" + self.net.describe()

    def stable_leader(self, ids):
        """The leader's id when, among ids, every server answers, exactly
        one is leader, all the others are followers, and all name that
        leader; else None."""
        self.check_alive()
        sts = self.statuses(ids)
        if any(st is None for st in sts.values()):
            return None
        leaders = [i for i, st in sts.items() if st["mode"] == "leader"]
        if len(leaders) != 1:
            return None
        lid = leaders[0]
        if all(st["leader"] == lid and (i == lid or st["mode"] == "follower")
               for i, st in sts.items()):
            return lid
        return None

    def wait_leader(self, ids, what, timeout=ELECTION_S):
        return wait_for(lambda: self.stable_leader(ids), timeout, interval=0.1,
                        what=f"{what} (one leader among servers {ids}, the rest its followers)",
                        detail=lambda: self.describe())

    def kazoo(self, ids=None, timeout=30.0, start_timeout=30):
        """A started kazoo client that may connect to the servers ids only
        (all by default); stopped at teardown."""
        zk = make_kazoo(self.hosts(ids), timeout)
        self.clients.append(zk)
        zk.start(timeout=start_timeout)
        return zk

    def stop_all(self):
        """SIGTERM every server; each must exit 0."""
        stop_kazoo(self.clients)
        self.clients = []
        bad = {}
        for s in self.servers.values():
            rc = s.stop()
            if rc != 0:
                bad[s.id] = rc
        assert not bad, "servers exited with a nonzero status on SIGTERM: " + "; ".join(
            f"server {i}: {rc}, log (end):\n{tail(self.servers[i].log(), 60)}"
            for i, rc in bad.items())

    def teardown(self):
        try:
            stop_kazoo(self.clients, raise_stuck=False)
        finally:
            for s in self.servers.values():
                s.kill()


def hexz(zxid):
    return "none" if zxid is None else f"{zxid:#x}"


FOUR_LETTER_NOISE = "closed: closed after its last reply"


def quiet(text):
    """A server's log without the lines of the test's own four-letter-word
    connections (the polling for leaders adds several a second)."""
    lines = text.splitlines()
    kept = [line for line in lines if FOUR_LETTER_NOISE not in line]
    if len(kept) < len(lines):
        kept.append(f"({len(lines) - len(kept)} lines '... {FOUR_LETTER_NOISE}' left out)")
    return "\n".join(kept)


def tail(text, n):
    return "\n".join(quiet(text).splitlines()[-n:])


def make_kazoo(hosts, timeout=30.0):
    from kazoo.client import KazooClient
    return KazooClient(hosts=hosts, timeout=timeout,
                       connection_retry={"max_tries": -1, "delay": 0.05, "backoff": 1.5,
                                         "max_jitter": 0.05, "max_delay": 0.5},
                       command_retry={"max_tries": 0})




# --------------------------------------------------------------- fixtures ---

_REASON = []


@pytest.fixture(scope="session")
def netns_ok():
    if not _REASON:
        _REASON.append(netns.unavailable_reason())
        netns.sweep_stale()
    if _REASON[0]:
        pytest.skip(_REASON[0])
    if not os.access(CORRALD, os.X_OK):
        pytest.fail(f"no corrald binary at {CORRALD} (build it, or set CORRALD)")


_live = []	# the ensembles of the running test, for report_on_failure


@pytest.fixture
def cluster(netns_ok, tmp_path):
    """Factory: cluster(size, extra=None, ensemble=True) -> a started
    Ensemble on a new Network. Torn down at the end whatever happens:
    clients stopped, servers killed, namespaces and links deleted."""
    made = []

    def make(size, extra=None, ensemble=True):
        net = netns.Network(size).create()
        workdir = tmp_path / f"net{len(made)}"
        workdir.mkdir()
        ens = Ensemble(net, workdir, size, extra=extra, ensemble=ensemble)
        made.append(ens)
        _live.append(ens)
        return ens.start()

    yield make
    problems = []
    for ens in made:
        try:
            ens.teardown()
        finally:
            problems += ens.net.destroy()
    _live.clear()
    assert not problems, f"network teardown left: {problems}"


def report_on_failure(test):
    """On any failure of the test, prints (into the test's captured output,
    which pytest shows with the failure) every server's log and the
    network's state, before the fixtures tear them down."""
    @functools.wraps(test)
    def run(*args, **kwargs):
        try:
            return test(*args, **kwargs)
        except BaseException:
            for ens in _live:
                try:
                    print(f"\n===== {ens.describe()}")
                except Exception as e:
                    print(f"\n===== (state unavailable: {e!r})")
                for s in ens.servers.values():
                    print(f"\n===== server {s.id} ({s.addr}) log, run {s.runs}:\n{quiet(s.log())}")
            raise
    return run


# ------------------------------------------------------------------ trees ---

def tree_digest(zk):
    """Every znode as (path, data, version), sorted, after a sync: read
    through zk's connection, i.e. from the one server it is connected to."""
    zk.sync("/")
    nodes = []
    stack = ["/"]
    while stack:
        p = stack.pop()
        data, stat = zk.get(p)
        nodes.append((p, data, stat.version))
        for c in zk.get_children(p):
            stack.append(("" if p == "/" else p) + "/" + c)
    return tuple(sorted(nodes))


def digest_diff(digests):
    """Which (path, data, version) each server has that another lacks."""
    union = set().union(*digests.values())
    lines = []
    for sid, d in digests.items():
        missing = sorted(union - set(d))
        if missing:
            lines.append(f"server {sid} lacks {len(missing)}: {missing[:10]}")
    return "\n".join(lines)


def wait_converged(ens, timeout=CONVERGE_S):
    """Waits until every server, read on its own connection, has the same
    tree; returns it as {path: (data, version)}."""
    per_server = {i: ens.kazoo([i]) for i in ens.ids}
    last = {}

    def same():
        for i, zk in per_server.items():
            last[i] = tree_digest(zk)
        return len(set(last.values())) == 1

    wait_for(same, timeout, interval=0.2, what="the same tree on every server",
             detail=lambda: digest_diff(last) + "\n" + ens.describe())
    return {p: (d, v) for p, d, v in next(iter(last.values()))}


# ----------------------------------------------------- the network itself ---

CONNECT_PROBE = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()
    print("connected")
except socket.timeout:
    print("timeout")
except OSError as e:
    print("error", e.errno)
"""


def probe_connect(net, src, dst, timeout):
    """Connects from server src's namespace to server dst's client port:
    'connected', 'timeout' or 'error N'."""
    r = subprocess.run(net.exec_argv(src, [PYTHON, "-c", CONNECT_PROBE, net.addr(dst),
                                           str(CLIENT_PORT), str(timeout)]),
                       capture_output=True, text=True, timeout=timeout + 30)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@report_on_failure
def test_a_cut_silently_loses_packets_between_servers_but_never_those_of_the_test_clients(
        cluster):
    """The partition mechanism itself, with two standalone servers: a cut
    makes connections between the two namespaces time out (silence, not an
    error), the test's clients still reach both, and a heal restores it."""
    ens = cluster(2, ensemble=False)
    net = ens.net
    a, b = ens.kazoo([1]), ens.kazoo([2])
    a.create("/on-1", b"one")
    b.create("/on-2", b"two")
    assert probe_connect(net, 1, 2, 5) == "connected"
    assert probe_connect(net, 2, 1, 5) == "connected"

    net.cut(1, 2)
    assert probe_connect(net, 1, 2, 2) == "timeout"
    assert probe_connect(net, 2, 1, 2) == "timeout"
    assert a.get("/on-1")[0] == b"one" and b.get("/on-2")[0] == b"two"
    a.set("/on-1", b"one, while cut")
    assert ens[1].four_letter("ruok") == "imok" and ens[2].four_letter("ruok") == "imok"

    net.heal()
    assert probe_connect(net, 1, 2, 5) == "connected"
    assert probe_connect(net, 2, 1, 5) == "connected"
    assert a.get("/on-1")[0] == b"one, while cut"
    ens.stop_all()


# ------------------------------------------------------- split, then heal ---

def split_and_heal(ens, minority, majority):
    """Cuts minority (the leader among them) from majority and checks:
    writes sent to the minority's servers never succeed and their applied
    zxids stay put while the majority elects a leader of its own and commits;
    after the heal there is one leader, from the majority, every minority
    server follows it, and every server has the same tree."""
    old_leader = ens.stable_leader(ens.ids)
    assert old_leader in minority
    admin = ens.kazoo()
    admin.ensure_path("/part")
    admin.create("/part/shared", b"before the cut")
    # Clients that can only reach one minority server each, two per server:
    # one writes at the cut, the other (idle until then, so that its
    # connection is not closed with the first one's write) once the majority
    # has moved on. Their writes commit while nothing is cut.
    pinned = {i: ens.kazoo([i]) for i in minority}
    pinned_late = {i: ens.kazoo([i]) for i in minority}
    for i in minority:
        pinned[i].create(f"/part/before-cut-via-{i}", b"committed")
        pinned_late[i].exists("/part")

    ens.net.partition(minority, majority)
    t_cut = time.monotonic()
    cut_status = {i: ens[i].status() for i in minority}
    assert all(cut_status.values()), f"a minority server does not answer srvr: {cut_status}"
    cut_zxid = {i: st["zxid"] for i, st in cut_status.items()}
    # Sent at once, while the old leader may still believe it leads...
    pending = [(i, f"/part/minority-early-via-{i}",
                zk.create_async(f"/part/minority-early-via-{i}", b"sent to the minority"))
               for i, zk in pinned.items()]
    new_leader = ens.wait_leader(majority, "the majority to elect a leader of its own")
    t_elected = time.monotonic()
    maj = ens.kazoo(majority)
    for n in range(5):
        maj.create(f"/part/majority-{n}", b"committed by the majority")
    maj.set("/part/shared", b"set by the majority")
    # ... and once the majority has moved on (sent at once if the client is
    # still connected, else queued by kazoo until it reconnects).
    late_connected = {i: zk.connected for i, zk in pinned_late.items()}
    pending += [(i, f"/part/minority-late-via-{i}",
                 zk.create_async(f"/part/minority-late-via-{i}", b"sent to the minority"))
                for i, zk in pinned_late.items()]
    # Each gets a few election timeouts to (wrongly) succeed; an error or no
    # answer at all is what a cut-off server may give.
    deadline = time.monotonic() + 3 * ELECTION_TIMEOUT_MS / 1000
    for i, path, r in pending:
        r.wait(max(0.0, deadline - time.monotonic()))
        assert not (r.ready() and r.successful()), (
            f"create {path} sent to server {i}, cut off from the majority, succeeded "
            f"(majority leader {new_leader})\n{ens.describe()}")
    during = {i: ens[i].status() for i in minority}
    for i in minority:
        assert during[i] is not None, f"server {i} stopped answering srvr\n{ens.describe()}"
        assert during[i]["zxid"] == cut_zxid[i], (
            f"server {i}, cut off from the majority, applied txns: zxid {hexz(cut_zxid[i])} at "
            f"the cut, {hexz(during[i]['zxid'])} now\n{ens.describe()}")
    majority_zxid = ens[new_leader].status()["zxid"]
    assert majority_zxid > max(cut_zxid.values())
    minority_modes = {i: st["mode"] for i, st in during.items()}

    ens.net.heal()
    t_heal = time.monotonic()
    leader = ens.wait_leader(ens.ids, "one leader for every server after the heal")
    t_one_leader = time.monotonic()
    assert leader in majority, (f"after the heal server {leader} leads, but its log lacks "
                                f"what the majority committed while it was cut off")
    for i in minority:
        assert ens[i].status()["mode"] == "follower"
    # The spec: writes in flight at a leader change either commit or get
    # CONNECTIONLOSS; none may stay unanswered.
    outcomes = {}
    for i, path, r in pending:
        wait_for(r.ready, CONVERGE_S, what=f"an answer to the create {path} sent to server {i}")
        outcomes[path] = "ok" if r.successful() else type(r.exception).__name__
    t_answered = time.monotonic()
    tree = wait_converged(ens)
    t_same = time.monotonic()
    assert tree["/part/shared"] == (b"set by the majority", 1)
    for n in range(5):
        assert f"/part/majority-{n}" in tree
    for i in minority:
        assert f"/part/before-cut-via-{i}" in tree
    for path, outcome in outcomes.items():
        if outcome == "ok":
            # Only a write kazoo held back until it reconnected after the heal.
            assert path in tree, f"{path} was acknowledged after the heal but is not in the tree"
        elif path in tree:
            # ConnectionLoss leaves the outcome open (as in ZooKeeper): a
            # late write kazoo queued while it could not connect goes out
            # once the heal lets it reconnect, and may commit through the
            # one leader even if its connection drops before the reply. It
            # must then come after everything the majority committed while
            # cut off. An entry the minority took while cut off would sit at
            # a zxid at or below that: its term would have outlived the
            # majority's later one, so the minority would have committed it.
            czxid = maj.exists(path).czxid
            assert czxid > majority_zxid, (
                f"{path}, sent to the cut-off minority and answered {outcome}, took effect "
                f"at zxid {hexz(czxid)}, not after the majority's {hexz(majority_zxid)} of the "
                f"cut: the minority committed it")
    print(f"\nold leader {old_leader}, cut off with {minority}: modes while cut off "
          f"{minority_modes}; majority leader {new_leader}; after the heal leader {leader}; "
          f"writes sent to the minority: {outcomes} (late writers connected when they "
          f"wrote: {late_connected}); {len(tree)} znodes on every server; "
          f"seconds: cut to majority leader {t_elected - t_cut:.1f}, heal to one leader "
          f"{t_one_leader - t_heal:.1f}, to every minority write answered "
          f"{t_answered - t_heal:.1f}, to the same trees {t_same - t_heal:.1f}")
    ens.stop_all()


@report_on_failure
def test_a_leader_cut_off_from_both_followers_never_commits_and_follows_the_new_leader_after_the_heal(
        cluster):
    ens = cluster(3)
    leader = ens.wait_leader(ens.ids, "the first leader")
    split_and_heal(ens, [leader], [i for i in ens.ids if i != leader])


@report_on_failure
def test_five_servers_split_two_three_commit_only_on_the_three_and_converge_after_the_heal(cluster):
    ens = cluster(5)
    leader = ens.wait_leader(ens.ids, "the first leader")
    follower = next(i for i in ens.ids if i != leader)
    split_and_heal(ens, [leader, follower], [i for i in ens.ids if i not in (leader, follower)])


# -------------------------------------- linearizability under partitions ---

LIN_SERVERS = 5
LIN_CLIENTS_PER_SERVER = 2
LIN_KEYS = ["/lin/r0", "/lin/r1", "/lin/r2"]
CALL_TIMEOUT_S = 5
PROGRESS_OPS = 10	# ops completed by the majority's clients before a heal
# What each round cuts off from the rest (five servers): a leader alone or
# with a follower (the rest elect a new one), followers (the leader stays).
LIN_ROUNDS = ["leader", "leader+follower", "2 followers", "leader", "follower",
              "leader+follower"]


def lin_client(cid, zk, rec, stop, errors, ok_log):
    """CAS on LIN_KEYS through one server: getData (answered by that server
    alone, so not recorded: a follower may be behind, which ZooKeeper's
    plain reads allow), then setData with the version it read (recorded:
    ok, BADVERSION or unknown); or sync + getData (recorded as a read)."""
    from kazoo.exceptions import (BadVersionError, ConnectionLoss, OperationTimeoutError,
                                  SessionExpiredError)
    from kazoo.handlers.threading import KazooTimeoutError
    from kazoo.protocol.states import KazooState
    unknown = (ConnectionLoss, SessionExpiredError, OperationTimeoutError, KazooTimeoutError)
    connected = threading.Event()

    def on_state(state):
        if state == KazooState.CONNECTED:
            connected.set()
        else:
            connected.clear()
    zk.add_listener(on_state)
    if zk.connected:
        connected.set()
    rnd = random.Random(cid)
    n = 0
    try:
        while not stop.is_set():
            # Calls made while disconnected would only fail at once: wait
            # for the connection (or the stop) instead.
            if not connected.wait(0.2):
                continue
            key = rnd.choice(LIN_KEYS)
            if rnd.random() < 0.5:
                try:
                    _, stat = zk.get_async(key).get(CALL_TIMEOUT_S)
                except unknown:
                    continue
                value = f"c{cid}-{n}".encode()
                n += 1
                p = rec.invoke(cid, key, "write", (value, stat.version))
                try:
                    st = zk.set_async(key, value, version=stat.version).get(CALL_TIMEOUT_S)
                    p.ok(st.version)
                    ok_log.append((time.monotonic(), cid))
                except BadVersionError:
                    p.fail("BADVERSION")
                    ok_log.append((time.monotonic(), cid))
                except unknown:
                    p.unknown()
            else:
                p = rec.invoke(cid, key, "read")
                try:
                    zk.sync_async(key).get(CALL_TIMEOUT_S)
                    data, stat = zk.get_async(key).get(CALL_TIMEOUT_S)
                    p.ok((data, stat.version))
                    ok_log.append((time.monotonic(), cid))
                except unknown:
                    p.unknown()
    except Exception as e:
        errors.append(f"client {cid}: {e!r}")


@report_on_failure
def test_compare_and_set_stays_linearizable_while_partitions_come_and_go(cluster, tmp_path):
    ens = cluster(LIN_SERVERS)
    leader = ens.wait_leader(ens.ids, "the first leader")
    admin = ens.kazoo()
    for k in LIN_KEYS:
        admin.ensure_path(k)
    server_of = {}
    clients = {}
    for sid in ens.ids:
        for j in range(LIN_CLIENTS_PER_SERVER):
            cid = len(clients)
            clients[cid] = ens.kazoo([sid])
            server_of[cid] = sid
    rec = Recorder()
    stop = threading.Event()
    errors = []
    ok_log = []
    threads = [threading.Thread(target=lin_client, args=(cid, zk, rec, stop, errors, ok_log),
                                daemon=True) for cid, zk in clients.items()]
    for t in threads:
        t.start()

    def oks_since(t0, cids):
        return sum(1 for t, c in list(ok_log) if t > t0 and c in cids)

    rounds = []
    try:
        for rnd, kind in enumerate(LIN_ROUNDS):
            leader = ens.wait_leader(ens.ids, f"one leader for all before round {rnd}")
            followers = [i for i in ens.ids if i != leader]
            random.Random(rnd).shuffle(followers)
            minority = {"leader": [leader],
                        "leader+follower": [leader, followers[0]],
                        "follower": [followers[0]],
                        "2 followers": followers[:2]}[kind]
            majority = [i for i in ens.ids if i not in minority]
            ens.net.partition(minority, majority)
            new_leader = ens.wait_leader(majority, f"round {rnd}: a leader among {majority}")
            t0 = time.monotonic()
            maj_clients = [c for c, s in server_of.items() if s in majority]
            wait_for(lambda: errors or oks_since(t0, maj_clients) >= PROGRESS_OPS, 20,
                     what=f"round {rnd}: {PROGRESS_OPS} ops done by the majority's clients",
                     detail=ens.describe)
            assert not errors, errors
            ens.net.heal()
            ens.wait_leader(ens.ids, f"round {rnd}: one leader for all after the heal")
            t1 = time.monotonic()
            wait_for(lambda: errors or all(oks_since(t1, [c]) for c in clients), 30,
                     what=f"round {rnd}: an op done by every client after the heal",
                     detail=lambda: f"clients without one: "
                                    f"{[c for c in clients if not oks_since(t1, [c])]}\n"
                                    + ens.describe())
            assert not errors, errors
            rounds.append(f"cut {minority} from {majority}: leader {leader} -> {new_leader}")
    finally:
        stop.set()
        for t in threads:
            t.join(2 * CALL_TIMEOUT_S + 5)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads), "a client thread did not stop"
    history = rec.history()
    acked = sum(1 for op in history if op.kind == "write" and op.status == "ok")
    unknown = sum(1 for op in history if op.status == "unknown")
    assert acked >= 50, f"only {acked} acknowledged writes: the run proves little"
    assert_linearizable(history, initial=(b"", 0),
                        artifact=str(tmp_path / "history-partitions.jsonl"))
    tree = wait_converged(ens)
    print(f"\n{len(history)} ops, {acked} acknowledged writes, {unknown} unknown; "
          + "; ".join(rounds) + f"; linearizable; {len(tree)} znodes on every server")
    ens.stop_all()
