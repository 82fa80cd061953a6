"""Membership of a corral ensemble: /zookeeper/config, servers that join
later, removing a member, reconfig's refusals, leadership transfer, and
ensemble configurations that stop startup.

Each test starts its own ensemble of real corrald processes on 127.0.0.1
(ensemble.reconfig on, a super user), on ports outside the kernel's
ephemeral range that were free when chosen, and drives it with kazoo and
corralctl over real sockets. Every wait polls a condition with a deadline.
Every server is stopped when the test ends, pass or fail (SIGTERM, which
must end it with status 0; SIGKILL after a deadline); on a failure the
servers' logs are printed.

What is proved:
- getConfig (/zookeeper/config) lists the three members in ZooKeeper's
  format, the same on every server, and corralctl members list shows them;
- a fourth server started empty (its id not among the members) joins when
  added, with corralctl members add or kazoo's reconfig, catches up (its
  tree, read from it alone after a sync, is the others'), and counts in the
  quorum: with one of the original three killed, the four commit only with it;
- a one-voter ensemble's second voter is caught up before it votes: not
  up, it is refused with NEWCONFIGNOQUORUM and the leader leads on; started
  once the leader found it down, it joins; with a snapshot install that
  takes 8 s (a big tree's), it joins;
- corralctl members remove takes a follower out of /zookeeper/config and
  writes go on;
- reconfig without WRITE on /zookeeper/config is NoAuth, with reconfig off
  ReconfigDisabled, with a stale curConfigId BadVersion;
- corralctl members transfer-leader 2 makes server 2 the leader;
- a duplicate member id or a member without a peer address stops corrald
  with status 78 and FILE:LINE: KEY.

The binaries come from $CORRALD and $CORRALCTL (set by meson), else build-test.
"""
import base64
import hashlib
import logging
import os
import re
import signal
import subprocess

import pytest
from kazoo import exceptions as kx

import harness
from harness import free_ports
from harness import wait_until as wait_for
from walfile import wal_segments

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(HERE, "..", "..", "build-test")
CORRALD = os.environ.get("CORRALD") or os.path.join(BUILD, "app", "corrald")
CORRALCTL = os.environ.get("CORRALCTL") or os.path.join(BUILD, "ctl", "corralctl")

EXIT_CONFIG = 78		# corrald's status for a bad configuration (README, main.c)
SUPER_PASSWORD = "corral-super"
SUPER_DIGEST = "super:" + base64.b64encode(
    hashlib.sha1(f"super:{SUPER_PASSWORD}".encode()).digest()).decode()
AUTH = ["--auth", f"super:{SUPER_PASSWORD}"]
ELECTION_TIMEOUT_MS = 1000
SETTLE_S = 30		# deadline for an election or a change of members to settle
CATCH_UP_S = 60		# deadline for a new server to catch up

logging.getLogger("kazoo").setLevel(logging.ERROR)

# kazoo 2.8 knows no exception for ZRECONFIGDISABLED (-123) and fails on the
# unknown code; newer versions call it ReconfigDisabledError.
ReconfigDisabledError = getattr(kx, "ReconfigDisabledError", None)
if ReconfigDisabledError is None or getattr(ReconfigDisabledError, "code", None) != -123:
    ReconfigDisabledError = kx._zookeeper_exception(-123)(
        type("ReconfigDisabledError", (kx.ZookeeperError,), {}))


# ---------------------------------------------------------------- helpers ---



def four_letter(port, word, timeout=5):
    """The whole answer to a four-letter word; None when the server cannot
    be reached."""
    try:
        return harness.four_letter(port, word, timeout)
    except OSError:
        return None


def mntr(port):
    text = four_letter(port, "mntr")
    return None if text is None else harness.parse_mntr(text)


def ctl(*args, timeout=60):
    """Runs corralctl; returns (status, stdout, stderr)."""
    env = {k: v for k, v in os.environ.items() if k != "CORRAL_SERVER"}
    r = subprocess.run([CORRALCTL] + list(args), capture_output=True, text=True, env=env,
                       timeout=timeout)
    return r.returncode, r.stdout, r.stderr


def make_kazoo(hosts, timeout=10.0):
    return harness.make_kazoo(hosts, timeout, randomize=True)


def tree_digest(zk):
    """sha256 of path, data and version of every znode, walked from / through
    zk (connected to one server alone), after a sync."""
    zk.sync("/")
    h = hashlib.sha256()
    stack = ["/"]
    count = 0
    while stack:
        path = stack.pop()
        data, st = zk.get(path)
        h.update(f"{path}\0{st.version}\0{len(data)}\0".encode() + data)
        count += 1
        kids = sorted(zk.get_children(path), reverse=True)
        stack.extend((path.rstrip("/") + "/" + k) for k in kids)
    return h.hexdigest(), count


def config_lines(data):
    """/zookeeper/config's data: (server lines, version text)."""
    lines = data.decode().split("\n")
    assert re.fullmatch(r"version=[0-9a-f]+", lines[-1]), lines
    return lines[:-1], lines[-1][len("version="):]


# ---------------------------------------------------------------- servers ---

class Server(harness.Corrald):
    """A member (harness.Corrald named s<id> on its fixed client port) whose
    whole configuration is `config` (set by the Ensemble)."""

    def __init__(self, sid, workdir, client_port, peer_port):
        super().__init__(workdir, name=f"s{sid}", port=client_port,
                         data_dir=os.path.join(str(workdir), f"s{sid}-data"))
        self.id = sid
        self.client_port = client_port
        self.peer_port = peer_port
        self.config = None
        self.killed = False

    @property
    def peer(self):
        return f"127.0.0.1:{self.peer_port}"

    def spec(self, role="participant"):
        """This server as a reconfig's joining server and a /zookeeper/config line."""
        return (f"server.{self.id}=127.0.0.1:{self.peer_port}:0:{role};"
                f"127.0.0.1:{self.client_port}")

    def config_dict(self):
        return self.config

    def start(self):
        """Spawns it; wait_listening() waits."""
        return self.spawn()

    def wait_listening(self, timeout=30):
        """Its client port answers ruok (it may not know a leader yet)."""
        def ready():
            assert self.running(), f"server {self.id} exited with {self.proc.returncode}:\n" \
                                   f"{self.log()[-4000:]}"
            return four_letter(self.client_port, "ruok", timeout=2) == "imok"
        wait_for(ready, timeout, what=f"server {self.id} to answer ruok")

    def mntr(self):
        return mntr(self.client_port) if self.running() else None

    def kill(self):
        super().kill()
        self.killed = True

    def stop(self, timeout=30):
        """SIGTERM; returns the exit status (SIGKILL and None after the deadline)."""
        try:
            return super().stop(timeout)
        except AssertionError:
            return None

    def log(self, run=None):
        """Its log, without the lines of the test's own four-letter-word
        connections (they bury the rest)."""
        return "".join(line for line in super().log(run).splitlines(keepends=True)
                       if not line.endswith("closed: closed after its last reply\n"))


class Ensemble:
    """Servers 1..n as the initial members, and any that join later."""

    def __init__(self, workdir, n=3, reconfig=True, extra=None):
        self.workdir = workdir
        self.reconfig = reconfig
        self.extra = extra or {}    # configuration sections of every server
        self.servers = {}
        ports = free_ports(2 * n)
        for i in range(1, n + 1):
            self.servers[i] = Server(i, workdir, ports[2 * i - 2], ports[2 * i - 1])
        self.members = [{"id": s.id, "client": s.hosts, "peer": s.peer}
                        for s in self.servers.values()]
        for s in self.servers.values():
            s.config = self.config_for(s.id)

    def config_for(self, sid, extra=None):
        cfg = {"data_dir": os.path.join(str(self.workdir), f"s{sid}-data"),
               "log_level": "info",
               "auth": {"super_digest": SUPER_DIGEST},
               "ensemble": {"id": sid, "reconfig": self.reconfig,
                            "election_timeout_ms": ELECTION_TIMEOUT_MS,
                            "members": [dict(m) for m in self.members]}}
        for more in (self.extra, extra or {}):
            for k, v in more.items():
                if isinstance(v, dict):
                    cfg.setdefault(k, {}).update(v)
                else:
                    cfg[k] = v
        return cfg

    def add_server(self, sid):
        """A server that joins later: not among the members, peer_listen set,
        an empty data directory. Started, not yet added."""
        client, peer = free_ports(2)
        s = Server(sid, self.workdir, client, peer)
        s.config = self.config_for(sid, {"client": {"listen": [s.hosts]},
                                         "ensemble": {"peer_listen": s.peer}})
        self.servers[sid] = s
        s.start()
        s.wait_listening()
        return s

    def start(self):
        for s in self.servers.values():
            s.start()
        for s in self.servers.values():
            s.wait_listening()
        self.wait_leader()
        return self

    def live(self):
        return [s for s in self.servers.values() if s.running()]

    def states(self):
        """{id: (zk_server_state, corral_leader_id)} of the running servers."""
        out = {}
        for s in self.live():
            m = s.mntr() or {}
            out[s.id] = (m.get("zk_server_state"), m.get("corral_leader_id"))
        return out

    def agreed_leader(self, among=None):
        """The leader every running server (or those in among) names, when it
        says it leads and the others follow it; else None."""
        st = self.states()
        ids = among or list(st)
        names = {st.get(i, (None, None))[1] for i in ids}
        if len(names) != 1:
            return None
        name = names.pop()
        if not name or name == "0" or int(name) not in st:
            return None
        leader = int(name)
        if st[leader][0] != "leader":
            return None
        if any(st[i][0] not in ("follower", "observer") for i in ids if i != leader):
            return None
        return leader

    def wait_leader(self, among=None, timeout=SETTLE_S):
        return wait_for(lambda: self.agreed_leader(among), timeout,
                        what="the servers to agree on one leader", detail=self.describe)

    def describe(self):
        return f"states: {self.states()}"

    def logs(self):
        out = []
        for s in self.servers.values():
            out.append(f"---- server {s.id} ({s.log_path}) ----\n{s.log()[-6000:]}")
        return "\n".join(out)

    def stop(self):
        """Stops every server; returns {id: status} of those that were running."""
        statuses = {}
        for s in self.servers.values():
            if s.running():
                s.proc.send_signal(signal.SIGTERM)
        for s in self.servers.values():
            if s.proc is not None and not s.killed:
                statuses[s.id] = s.stop()
        return statuses


@pytest.fixture
def ensemble(tmp_path, request):
    """Factory: ensemble(n=3, reconfig=True, extra=None) -> a started
    Ensemble with a leader (extra: configuration sections of every server);
    every server stopped at teardown, each with status 0."""
    made = []
    failures_before = request.session.testsfailed

    def make(n=3, reconfig=True, extra=None):
        ens = Ensemble(tmp_path, n=n, reconfig=reconfig, extra=extra)
        made.append(ens)
        return ens.start()

    yield make
    for ens in made:
        if request.session.testsfailed > failures_before:
            print(ens.logs())   # shown with the failure
        statuses = ens.stop()
        bad = {i: rc for i, rc in statuses.items() if rc != 0}
        assert not bad, f"servers did not stop cleanly on SIGTERM: {bad}\n{ens.logs()}"


@pytest.fixture
def kazoo():
    """Factory: kazoo(hosts, auth=False) -> a started client (auth: as the
    super user), stopped at teardown."""
    made = []

    def make(hosts, auth=False):
        zk = make_kazoo(hosts)
        made.append(zk)
        zk.start(timeout=15)
        if auth:
            zk.add_auth("digest", f"super:{SUPER_PASSWORD}")
        return zk

    yield make
    for zk in made:
        try:
            zk.stop()
            zk.close()
        except Exception:
            pass


def seed(zk, prefix="/data", count=50):
    """Nodes with data, some changed twice (versions), some deleted."""
    zk.ensure_path(prefix)
    for i in range(count):
        zk.create(f"{prefix}/n{i:03d}", f"value {i}".encode() * (i % 7))
    for i in range(0, count, 3):
        zk.set(f"{prefix}/n{i:03d}", b"changed")
        zk.set(f"{prefix}/n{i:03d}", b"changed again")
    for i in range(1, count, 5):
        zk.delete(f"{prefix}/n{i:03d}")


def config_of(ens, kazoo, sid):
    """/zookeeper/config as server sid alone has it, after a sync."""
    zk = kazoo(ens.servers[sid].hosts)
    zk.sync("/")
    return zk.get("/zookeeper/config")[0]


# ------------------------------------------------------------------ tests ---

def test_get_config_lists_the_three_members_in_zookeepers_format(ensemble, kazoo):
    ens = ensemble()
    expected = [ens.servers[i].spec() for i in (1, 2, 3)]
    datas = []
    for sid in (1, 2, 3):
        data = config_of(ens, kazoo, sid)
        lines, version = config_lines(data)
        assert lines == expected, f"server {sid}"
        assert int(version, 16) > 0
        datas.append(data)
    assert datas[0] == datas[1] == datas[2]
    # readable by anyone, writable by no one but the super user (by default)
    zk = kazoo(ens.servers[1].hosts)
    acl, _ = zk.get_acls("/zookeeper/config")
    assert [(a.perms, a.id.scheme, a.id.id) for a in acl] == [(1, "world", "anyone")]


def test_members_list_shows_each_members_role_addresses_state_version_and_leader(ensemble, kazoo):
    ens = ensemble()
    leader = ens.wait_leader()
    _, version = config_lines(config_of(ens, kazoo, 1))
    rc, out, err = ctl("-s", ens.servers[3].hosts, "members", "list")
    assert (rc, err) == (0, ""), out
    rows = [line.split() for line in out.splitlines()]
    assert rows[0] == ["id", "role", "peer", "client", "state"]
    assert rows[1:4] == [[str(i), "participant", ens.servers[i].peer, ens.servers[i].hosts,
                          "leader" if i == leader else "follower"] for i in (1, 2, 3)]
    assert out.splitlines()[4:] == [f"version: 0x{version}", f"leader: {leader}"]
    # a member that cannot be reached is shown as such; the list still works
    follower = next(i for i in (1, 2, 3) if i != leader)
    ens.servers[follower].kill()
    rc, out, err = ctl("-s", ens.servers[leader].hosts, "members", "list")
    assert (rc, err) == (0, "")
    assert out.splitlines()[follower].split()[-1] == "unreachable"
    assert out.splitlines()[-1] == f"leader: {leader}"


def commits_within(result, seconds):
    """Whether an async write succeeds within seconds."""
    try:
        result.get(timeout=seconds)
        return True
    except Exception:
        return False


def check_joined_server_takes_part(ens, kazoo, s4, reply):
    """After server 4 was added: the reply and every server's config list
    it, it follows the leader, its tree is the others', and with one of the
    original three killed the four commit with it and not without it."""
    lines, _ = config_lines(reply)
    assert lines == [ens.servers[i].spec() for i in (1, 2, 3, 4)]
    leader = ens.wait_leader(timeout=CATCH_UP_S)
    for sid in (1, 2, 3, 4):
        assert config_of(ens, kazoo, sid) == reply, f"server {sid}'s /zookeeper/config"
    # its tree, read from it alone after a sync, is the others'
    digests = {sid: tree_digest(kazoo(ens.servers[sid].hosts)) for sid in (1, 2, 3, 4)}
    assert digests[4] == digests[1] == digests[2] == digests[3], digests
    assert digests[4][1] > 40
    # one of the original three gone: 3 of 4 is the quorum, server 4 among them
    victim = next(i for i in (1, 2, 3) if i != leader)
    third = next(i for i in (1, 2, 3) if i not in (leader, victim))
    ens.servers[victim].kill()
    zk = kazoo(s4.hosts)
    zk.create("/after-kill", b"committed by 3 of 4")
    clients = {sid: kazoo(ens.servers[sid].hosts) for sid in (leader, third)}
    for sid, z in list(clients.items()) + [(4, zk)]:
        z.sync("/")
        assert z.get("/after-kill")[0] == b"committed by 3 of 4", f"server {sid}"
    # server 4 gone too: two of four are no quorum (they would be of three)
    s4.kill()
    committed = commits_within(clients[third].create_async("/without-4", b"must not commit"),
                               3 * ELECTION_TIMEOUT_MS / 1000)
    assert not committed, "a write committed on 2 of the 4 members: server 4 does not count"


def test_a_server_added_with_corralctl_members_add_joins_catches_up_and_counts_in_the_quorum(
        ensemble, kazoo):
    ens = ensemble()
    seed(kazoo(ens.servers[1].hosts))
    s4 = ens.add_server(4)
    assert s4.mntr()["zk_server_state"] == "looking"
    rc, out, err = ctl("-s", ens.servers[2].hosts, *AUTH, "members", "add", "4", s4.peer,
                       s4.hosts)
    assert (rc, err) == (0, ""), out
    check_joined_server_takes_part(ens, kazoo, s4, out.rstrip("\n").encode())


def joining_server(ens, sid):
    """Server sid as add_server makes it, but not started."""
    client, peer = free_ports(2)
    s = Server(sid, ens.workdir, client, peer)
    s.config = ens.config_for(sid, {"client": {"listen": [s.hosts]},
                                    "ensemble": {"peer_listen": s.peer}})
    ens.servers[sid] = s
    return s


def test_a_second_voter_that_is_not_up_is_refused_with_newconfignoquorum_and_the_leader_leads_on(
        ensemble, kazoo):
    """A one-voter ensemble adding a voter: the new members' quorum needs
    it, so it is caught up with the log before it votes. Not up, it cannot
    be: the reconfig fails with NEWCONFIGNOQUORUM, as ZooKeeper's does, and
    the leader keeps its majority, its clients and the members. (Appended
    at once, the change cost the leader its majority, and the new server,
    never sent the entry, could not vote: the ensemble stood still.) Up, it
    is added, and both commit."""
    ens = ensemble(n=1)
    s1 = ens.servers[1]
    zk = kazoo(s1.hosts)
    s2 = joining_server(ens, 2)
    # the leader gives up on a new voter it cannot connect to after 2 s:
    # the refusal comes within corralctl's default wait for an answer (5 s)
    rc, out, err = ctl("-s", s1.hosts, *AUTH, "members", "add", "2", s2.peer, s2.hosts)
    assert rc == 1 and "NEWCONFIGNOQUORUM" in err, (rc, out, err)
    assert s1.mntr()["zk_server_state"] == "leader"
    assert "stopped leading" not in s1.log()
    zk.create("/still-leading", b"one voter")
    lines, _ = config_lines(config_of(ens, kazoo, 1))
    assert lines == [s1.spec()]
    s2.start()
    s2.wait_listening()
    rc, out, err = ctl("-s", s1.hosts, *AUTH, "members", "add", "2", s2.peer, s2.hosts)
    assert (rc, err) == (0, ""), out
    lines, _ = config_lines(out.rstrip("\n").encode())
    assert lines == [s1.spec(), s2.spec()]
    ens.wait_leader()
    zk.create("/two-voters", b"committed by both")
    for sid in (1, 2):
        assert config_of(ens, kazoo, sid) == out.rstrip("\n").encode(), f"server {sid}"
        z = kazoo(ens.servers[sid].hosts)
        z.sync("/")
        assert z.get("/two-voters")[0] == b"committed by both", f"server {sid}"


def compacted_one_voter_ensemble(ensemble, kazoo, extra=None):
    """A one-voter ensemble whose log no longer starts at its first entry
    (snapshots every 100 entries, 1 MiB segments, one snapshot kept), so a
    new server can only get the tree as a snapshot. Returns (ens, client)."""
    ens = ensemble(n=1, extra={"storage": {"snapshot_entries": 100, "segment_bytes": 1048576,
                                           "keep_snapshots": 1}, **(extra or {})})
    s1 = ens.servers[1]
    zk = kazoo(s1.hosts)
    zk.ensure_path("/big")
    for i in range(20):
        zk.create(f"/big/n-{i}", b"")
    futs = [zk.set_async(f"/big/n-{i % 20}", (b"%06d" % i) * 170) for i in range(3000)]
    for f in futs:
        f.get(60)
    wait_for(lambda: wal_segments(s1.data_dir)[0][0] > 1, 60,
             what="server 1's log to be compacted after a snapshot")
    return ens, zk


def check_second_voter_joined(ens, kazoo, zk, out):
    s1, s2 = ens.servers[1], ens.servers[2]
    lines, _ = config_lines(out.rstrip("\n").encode())
    assert lines == [s1.spec(), s2.spec()]
    ens.wait_leader()
    zk.create("/two-voters", b"committed by both")
    z2 = kazoo(s2.hosts)
    z2.sync("/")
    assert z2.get("/two-voters")[0] == b"committed by both"
    assert tree_digest(z2) == tree_digest(zk)


def test_a_second_voter_whose_catch_up_takes_over_5_s_joins(ensemble, kazoo):
    """A one-voter ensemble adding a voter whose first catch-up round is a
    snapshot that takes longer than 5 s to install, as a big tree's does
    (10,000,000 znodes load in 13-25 s on this machine; here a fault switch
    makes the new server's install take 8 s): the round goes on while the
    leader's connection to the server is up, and the server joins with the
    tree. libraft's own limit, a 5 s round, refused every such reconfig with
    NEWCONFIGNOQUORUM."""
    ens, zk = compacted_one_voter_ensemble(ensemble, kazoo)
    s1 = ens.servers[1]
    s2 = joining_server(ens, 2)
    s2.extra_env = {"CORRAL_FAULT_SNAPSHOT_INSTALL_DELAY_MS": "8000"}
    s2.start()
    s2.wait_listening()
    rc, out, err = ctl("-s", s1.hosts, *AUTH, "--timeout", "60000", "members", "add", "2",
                       s2.peer, s2.hosts)
    assert (rc, err) == (0, ""), (rc, out, err)
    assert "the snapshot's install takes 8000 ms more" in s2.log()
    check_second_voter_joined(ens, kazoo, zk, out)


def test_a_second_voter_started_after_the_leader_found_it_down_joins(ensemble, kazoo):
    """A one-voter ensemble adding a voter that is started only once the
    leader has tried to connect to it and failed, and whose snapshot takes
    3 s to install: while the leader cannot reach it, the catch-up round
    may last 2 s; it connects on the leader's next try, and from then on the
    round may last 30 s (a big tree's transfer), so it is caught up and
    joins. (Held to 2 s, the round is given up during the install, and the
    reconfig fails with NEWCONFIGNOQUORUM.)"""
    ens, zk = compacted_one_voter_ensemble(ensemble, kazoo, {"log_level": "debug"})
    s1 = ens.servers[1]
    s2 = joining_server(ens, 2)
    s2.extra_env = {"CORRAL_FAULT_SNAPSHOT_INSTALL_DELAY_MS": "3000"}
    add = subprocess.Popen([CORRALCTL, "-s", s1.hosts, *AUTH, "--timeout", "60000", "members",
                            "add", "2", s2.peer, s2.hosts],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: f"peer 2 at {s2.peer}: connect:" in s1.log(), SETTLE_S,
                 what="server 1 to try server 2 and find it down")
        s2.start()
        s2.wait_listening()
        out, err = add.communicate(timeout=90)
    finally:
        if add.poll() is None:
            add.kill()
            add.communicate()
    assert (add.returncode, err) == (0, ""), (add.returncode, out, err, s1.log()[-3000:])
    assert "the snapshot's install takes 3000 ms more" in s2.log()
    check_second_voter_joined(ens, kazoo, zk, out)


def test_members_remove_whose_answer_is_lost_reads_the_change_back(ensemble, kazoo):
    """With one follower stopped, the leader removes the other: the new
    members (the leader and the stopped one) need the stopped one for their
    quorum, so the leader loses its majority before the change commits and
    closes its clients, corralctl's with the answer unsent. corralctl says
    so and reads the members back until the change shows; the follower
    back, the change commits, and corralctl prints it and exits 0, as if
    answered."""
    ens = ensemble(n=3)
    leader = ens.wait_leader()
    stopped, gone = [i for i in (1, 2, 3) if i != leader]
    lead = ens.servers[leader]
    ens.servers[stopped].proc.send_signal(signal.SIGSTOP)
    p = None
    try:
        env = {k: v for k, v in os.environ.items() if k != "CORRAL_SERVER"}
        p = subprocess.Popen([CORRALCTL, "-s", lead.hosts, *AUTH, "--timeout", "60000",
                              "members", "remove", str(gone)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        wait_for(lambda: "this server stopped leading" in lead.log(), SETTLE_S,
                 what=f"server {leader} to lose its majority and close its clients")
        assert p.poll() is None, p.communicate()
        ens.servers[stopped].proc.send_signal(signal.SIGCONT)
        out, err = p.communicate(timeout=90)
    finally:
        ens.servers[stopped].proc.send_signal(signal.SIGCONT)
        if p and p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0, (out, err)
    assert "no answer to the change" in err and "reading the members back" in err, err
    lines, _ = config_lines(out.rstrip("\n").encode())
    assert lines == [ens.servers[i].spec() for i in sorted((leader, stopped))], out


def test_a_server_added_with_kazoo_reconfig_joins_catches_up_and_counts_in_the_quorum(
        ensemble, kazoo):
    ens = ensemble()
    seed(kazoo(ens.servers[3].hosts))
    s4 = ens.add_server(4)
    zk = kazoo(ens.servers[1].hosts, auth=True)
    data, stat = zk.reconfig(joining=s4.spec(), leaving=None, new_members=None)
    check_joined_server_takes_part(ens, kazoo, s4, data)


def test_kazoo_reconfig_through_a_follower_adding_two_voters_not_up_fails_with_newconfignoquorum(
        ensemble, kazoo):
    """Two voters adding two more: the four need one of the new ones for
    their quorum, so both are caught up first; not up, they cannot be, and
    the follower that took the reconfig answers NEWCONFIGNOQUORUM (the
    leader's refusal, through the log). The members stay the two, and
    writes go on."""
    ens = ensemble(n=2)
    leader = ens.wait_leader()
    follower = 3 - leader
    # kazoo's default 10 s session: it drops a connection that received
    # nothing for 2/3 of it (its ping is answered behind the reconfig, in
    # order), so the refusal must come sooner, as ZooKeeper's (at once) does:
    # the leader gives up on a new voter it cannot connect to after 2 s (5 s,
    # libraft's default, had kazoo lose the connection)
    zk = kazoo(ens.servers[follower].hosts, auth=True)
    joining = [joining_server(ens, sid) for sid in (3, 4)]
    with pytest.raises(kx.NewConfigNoQuorumError):
        zk.reconfig(joining=",".join(s.spec() for s in joining), leaving=None,
                    new_members=None)
    lines, _ = config_lines(config_of(ens, kazoo, follower))
    assert lines == [ens.servers[1].spec(), ens.servers[2].spec()]
    zk.create("/after-refusal", b"two voters")
    assert ens.agreed_leader() == leader


def test_members_remove_of_a_follower_takes_it_out_of_the_configuration_and_writes_go_on(
        ensemble, kazoo):
    ens = ensemble()
    leader = ens.wait_leader()
    gone = next(i for i in (1, 2, 3) if i != leader)
    stay = [i for i in (1, 2, 3) if i != gone]
    rc, out, err = ctl("-s", ens.servers[gone].hosts, *AUTH, "members", "remove", str(gone))
    assert (rc, err) == (0, ""), out
    lines, _ = config_lines(out.rstrip("\n").encode())
    assert lines == [ens.servers[i].spec() for i in stay]
    for sid in stay:
        assert config_of(ens, kazoo, sid) == out.rstrip("\n").encode(), f"server {sid}"
    # the leader has one follower left
    wait_for(lambda: (ens.servers[leader].mntr() or {}).get("zk_learners") == "1", SETTLE_S,
             what="the leader to count one follower",
             detail=lambda: str(ens.servers[leader].mntr()))
    # writes go on, through either remaining server
    for sid in stay:
        zk = kazoo(ens.servers[sid].hosts)
        zk.create(f"/written-through-{sid}", b"after the removal")
    for sid in stay:
        zk = kazoo(ens.servers[sid].hosts)
        zk.sync("/")
        assert sorted(c for c in zk.get_children("/") if c.startswith("written")) == \
            [f"written-through-{i}" for i in stay]
    rc, out, err = ctl("-s", ens.servers[leader].hosts, "members", "list")
    assert rc == 0
    assert [line.split()[0] for line in out.splitlines()[1:3]] == [str(i) for i in stay]


def test_reconfig_without_write_on_zookeeper_config_fails_with_noauth(ensemble, kazoo):
    ens = ensemble()
    before = config_of(ens, kazoo, 1)
    zk = kazoo(ens.servers[1].hosts)
    with pytest.raises(kx.NoAuthError):
        zk.reconfig(joining=None, leaving="3", new_members=None)
    # another digest identity is not enough either
    zk.add_auth("digest", "alice:secret")
    with pytest.raises(kx.NoAuthError):
        zk.reconfig(joining=None, leaving="3", new_members=None)
    rc, out, err = ctl("-s", ens.servers[2].hosts, "members", "remove", "3")
    assert (rc, out) == (1, "")
    assert "not authorized (NOAUTH)" in err
    rc, out, err = ctl("-s", ens.servers[2].hosts, "members", "transfer-leader")
    assert (rc, out) == (1, "")
    assert "not authorized (NOAUTH)" in err
    for sid in (1, 2, 3):
        assert config_of(ens, kazoo, sid) == before


def test_reconfig_with_reconfig_disabled_fails_with_reconfig_disabled(ensemble, kazoo):
    ens = ensemble(reconfig=False)
    before = config_of(ens, kazoo, 1)
    for sid in (1, 2, 3):   # the leader and the followers alike
        zk = kazoo(ens.servers[sid].hosts, auth=True)
        with pytest.raises(ReconfigDisabledError):
            zk.reconfig(joining=None, leaving="3", new_members=None)
    leader = ens.wait_leader()
    # a follower leaves: corralctl sends the change to the leader (when the
    # leader itself leaves it picks a follower, which this test is not about)
    leaving = next(i for i in (3, 2, 1) if i != leader)
    rc, out, err = ctl("-s", ens.servers[1].hosts, *AUTH, "members", "remove", str(leaving))
    assert (rc, out) == (1, "")
    # corralctl sends a change to the leader
    assert err == (f"corralctl: server {leader} ({ens.servers[leader].hosts}): reconfig is "
                   "disabled on the server (ensemble.reconfig is off) (RECONFIGDISABLED)\n")
    assert config_of(ens, kazoo, 1) == before


def test_reconfig_with_a_stale_config_version_fails_with_badversion(ensemble, kazoo):
    ens = ensemble()
    leader = ens.wait_leader()
    follower = next(i for i in (1, 2, 3) if i != leader)
    before = config_of(ens, kazoo, 1)
    _, version = config_lines(before)
    current = int(version, 16)
    # through the leader: a server that leaves never hears of the commit that
    # removes it, so it could not answer the last reconfig below
    zk = kazoo(ens.servers[leader].hosts, auth=True)
    for stale in (current - 1, current + 1):
        with pytest.raises(kx.BadVersionError):
            zk.reconfig(joining=None, leaving=str(follower), new_members=None, from_config=stale)
    assert config_of(ens, kazoo, 1) == before
    # the current version is accepted
    data, _ = zk.reconfig(joining=None, leaving=str(follower), new_members=None,
                          from_config=current)
    lines, new_version = config_lines(data)
    assert lines == [ens.servers[i].spec() for i in (1, 2, 3) if i != follower]
    assert int(new_version, 16) > current


def transfer_leader(ens, target):
    """corralctl members transfer-leader TARGET, as an operator runs it: a
    transfer the leader accepted can still lapse (Raft gives the target one
    election timeout to take over, which a loaded machine can miss); the
    tool then says so, exits 1 and the leader is unchanged, and the
    operator tries again. Returns the successful run's output."""
    for attempt in range(3):
        rc, out, err = ctl("-s", ens.servers[1].hosts, *AUTH, "members", "transfer-leader",
                           str(target))
        if rc == 0:
            # a lapsed transfer that took effect late: the retry finds it done
            if attempt and out == f"leader: {target} (already)\n":
                out = f"leader: {target}\n"
            return out, err
        assert rc == 1 and f"but server {target} does not lead after" in err, (rc, out, err)
        ens.wait_leader()
    raise AssertionError(f"three transfers to server {target} lapsed: {err}")


def test_members_transfer_leader_2_makes_server_2_the_leader(ensemble, kazoo):
    ens = ensemble()
    leader = ens.wait_leader()
    if leader == 2:     # start from another leader
        assert transfer_leader(ens, 3) == ("leader: 3\n", "")
        assert ens.wait_leader() == 3
    assert transfer_leader(ens, 2) == ("leader: 2\n", "")
    wait_for(lambda: ens.agreed_leader() == 2, SETTLE_S,
             what="every server to name server 2 the leader", detail=ens.describe)
    # the new leader commits, whichever server takes the write
    for sid in (1, 2, 3):
        kazoo(ens.servers[sid].hosts).create(f"/after-transfer-{sid}")
    zk = kazoo(ens.servers[2].hosts)
    assert sorted(c for c in zk.get_children("/") if c.startswith("after")) == \
        [f"after-transfer-{i}" for i in (1, 2, 3)]
    assert ens.agreed_leader() == 2
    # asking again changes nothing
    assert ctl("-s", ens.servers[3].hosts, *AUTH, "members", "transfer-leader", "2") == \
        (0, "leader: 2 (already)\n", "")


MEMBERS_YAML = """\
data_dir: {data_dir}
ensemble:
  id: 1
  members:
    - {{ id: 1, client: "127.0.0.1:{c1}", peer: "127.0.0.1:{p1}" }}
{second}
"""


@pytest.mark.parametrize("second,line,key,message", [
    ('    - {{ id: 1, client: "127.0.0.1:{c2}", peer: "127.0.0.1:{p2}" }}', 6,
     "ensemble.members[1]", "id 1 is also member 0's (line 5)"),
    ('    - {{ id: 2, client: "127.0.0.1:{c2}" }}', 6,
     "ensemble.members[1]", "member 2 has no peer address"),
], ids=["duplicate_id", "missing_peer"])
def test_a_bad_ensemble_config_stops_corrald_with_status_78_naming_file_line_key(
        tmp_path, second, line, key, message):
    c1, p1, c2, p2 = free_ports(4)
    path = tmp_path / "corral.yaml"
    path.write_text(MEMBERS_YAML.format(data_dir=tmp_path / "data", c1=c1, p1=p1,
                                        second=second.format(c2=c2, p2=p2)))
    env = {k: v for k, v in os.environ.items() if k not in ("JOURNAL_STREAM", "NOTIFY_SOCKET")}
    proc = subprocess.Popen([CORRALD, "-c", str(path)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert proc.returncode == EXIT_CONFIG, err
    assert f"{path}:{line}: {key}: {message}" in err
    assert four_letter(c1, "ruok", timeout=1) is None    # it never listened
