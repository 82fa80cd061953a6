"""An ensemble of corrald processes on 127.0.0.1 (the replication tests'
and any other suite's): members are tests/lib/harness.py's Corrald.

Cluster(workdir, n) writes one configuration per server (an `ensemble`
section with every member, see /work/spec/ensemble.md), each server with its
own data directory and its own log file per run, and starts, stops (SIGTERM),
kills (SIGKILL), pauses (SIGSTOP), resumes (SIGCONT) and restarts servers one
at a time. Servers are numbered by their ensemble id, 1..n.

What a server says about itself comes from its four-letter words: mntr's
zk_server_state and corral_leader_id, srvr's Zxid. leader() is the id of the
one leader every running server agrees on (or None); wait_for_leader() polls
for it with a deadline. tree_state() walks one server's tree through a kazoo
client connected to that server alone and returns path -> (data, version,
...), digest() its hash; wait_converged() polls until every given server
holds the same tree.

Ports come from harness.free_ports (outside the ephemeral range, never
twice). A restart reuses the server's ports: the membership is fixed.

CORRAL_PEER_TLS=1 in the environment gives every member of every cluster
mutual TLS between peers (ensemble.tls): a CA in the cluster's directory,
and for each member a certificate naming its peer host (tests/lib/tls_pki.py);
the replication suites run so as replication-*-tls (meson).

Nothing here sleeps in place of a condition: every wait polls with a
deadline and says what it waited for when it gives up.
"""
import hashlib
import os
import re
import signal
import subprocess
import time

import tls_pki
from harness import (EXIT_CANNOT_LISTEN, Corrald, ServerExited, free_ports,
                     make_kazoo, merge, stop_kazoo, tail, wait_until)

_POLL_LINE = re.compile(r"^<7>connection \d+ from \S+ closed: closed after its last reply$")


# ---------------------------------------------------------------- servers ---

class Member(Corrald):
    """One member of the ensemble (harness.Corrald named s<id>, on its fixed
    client port), configured from the cluster's membership."""

    def __init__(self, cluster, sid, client_port, peer_port):
        super().__init__(cluster.workdir, name=f"s{sid}", port=client_port,
                         data_dir=os.path.join(cluster.workdir, f"s{sid}-data"))
        self.cluster = cluster
        self.id = sid
        self.peer_port = peer_port
        self.peer_host = "127.0.0.1"

    def __repr__(self):
        return f"<server {self.id} :{self.client_port} {self.state}>"

    client_port = property(lambda self: self.port)
    client_addr = property(lambda self: self.hosts)
    peer_addr = property(lambda self: f"{self.peer_host}:{self.peer_port}")

    def config_dict(self):
        c = self.cluster
        cfg = {
            "data_dir": self.data_dir,
            "log_level": c.log_level,
            "client": {"listen": [self.client_addr]},
            "session": {"max_timeout_ms": 60000},
            "ensemble": {
                "id": self.id,
                "cluster": c.name,
                "election_timeout_ms": c.election_timeout_ms,
                "members": [dict({"id": s.id, "client": s.client_addr, "peer": s.peer_addr},
                                 **({"role": "observer"} if s.id in c.observers else {}))
                            for s in c.servers.values()],
            },
        }
        if c.admin:
            cfg["admin"] = {"listen": f"127.0.0.1:{self.admin_port}"}
        if c.peer_tls:
            cfg["ensemble"]["tls"] = tls_pki.member_peer_tls(c.peer_pki(), self.id,
                                                             self.peer_host)
        return merge(cfg, c.extra_config)


# ---------------------------------------------------------------- cluster ---

class Cluster:
    def __init__(self, workdir, n, election_timeout_ms=1000, config=None, name="corral-test",
                 log_level="info", observers=(), admin=False):
        assert n in (1, 3, 5, 7), n
        self.workdir = str(workdir)
        self.n = n
        self.election_timeout_ms = election_timeout_ms
        self.extra_config = config or {}
        self.name = name
        self.log_level = log_level
        self.observers = set(observers)	# ids bootstrapped as non-voting members
        self.admin = admin		# each server's HTTP endpoint on a port of its own
        self.peer_tls = tls_pki.peer_tls_wanted()
        self._pki = None
        self.servers = {}
        self._assign_ports()

    def _assign_ports(self):
        ports = free_ports(2 * self.n)
        admin_ports = free_ports(self.n) if self.admin else [None] * self.n
        self.servers = {}
        for i in range(1, self.n + 1):
            self.servers[i] = Member(self, i, ports[2 * i - 2], ports[2 * i - 1])
            self.servers[i].admin_port = admin_ports[i - 1]

    def peer_pki(self):
        """The cluster's CA for its members' peer certificates (made once)."""
        if self._pki is None:
            self._pki = tls_pki.Pki(os.path.join(self.workdir, "peer-pki"))
        return self._pki

    def __getitem__(self, sid):
        return self.servers[sid]

    def __iter__(self):
        return iter(self.servers.values())

    @property
    def ids(self):
        return list(self.servers)

    # -- lifecycle

    def start(self, timeout=60, leader_timeout=30):
        """Starts every server, waits until each answers and one leader is
        agreed on; returns the leader's id. A port taken between the check
        and corrald's bind (another test run on this machine) gets the whole
        ensemble new ports, at most three times."""
        for attempt in range(3):
            for s in self:
                s.spawn()
            try:
                for s in self:
                    s.wait_ready(timeout)
                break
            except ServerExited as e:
                if e.rc != EXIT_CANNOT_LISTEN or attempt == 2:
                    raise
                for s in self:
                    s.kill()
                old = self.servers
                self._assign_ports()
                for sid, s in self.servers.items():   # keep the run counters: logs stay apart
                    s.runs = old[sid].runs
        return self.wait_for_leader(leader_timeout)

    def stop_all(self, timeout=30):
        """SIGTERM to every running server at once (a lone survivor may wait
        for the others), then wait for each. {id: status}."""
        for s in self:
            if s.running():
                if s.state == "paused":
                    s.resume()
                s.proc.send_signal(signal.SIGTERM)
        out = {}
        end = time.monotonic() + timeout
        for s in self:
            if s.proc is None or s.state in ("killed", "stopped"):
                continue
            try:
                rc = s.proc.wait(max(0.1, end - time.monotonic()))
                s._ended("SIGTERM", rc)
                s.state = "stopped"
                out[s.id] = rc
            except subprocess.TimeoutExpired:
                s.proc.kill()
                s.proc.wait(30)
                s._ended("SIGKILL after SIGTERM timed out", s.proc.returncode)
                s.state = "killed"
                out[s.id] = f"did not stop within {timeout} s of SIGTERM"
        return out

    def kill_all(self):
        for s in self:
            if s.running():
                s.kill()

    # -- who leads

    def modes(self):
        return {s.id: s.mode() for s in self}

    def leader(self):
        """The id of the leader every answering server agrees on: exactly one
        answering server says leader and every answering server names it in
        corral_leader_id. None otherwise."""
        views = {}
        for s in self:
            if not s.alive():
                continue
            try:
                m = s.mntr()
            except OSError:
                return None
            views[s.id] = (m.get("zk_server_state"), m.get("corral_leader_id"))
        leaders = [sid for sid, (state, _) in views.items() if state == "leader"]
        if len(leaders) != 1:
            return None
        lid = leaders[0]
        if any(v[1] != str(lid) for v in views.values()):
            return None
        return lid

    def wait_for_leader(self, timeout=30, not_id=None):
        """Polls until leader() names a server (other than not_id); returns
        its id."""
        def pred():
            lid = self.leader()
            if lid is not None and lid != not_id:
                return lid
            return None
        try:
            return wait_until(pred, timeout, interval=0.02,
                              what="one leader that every running server agrees on"
                                   + (f" (not server {not_id})" if not_id else ""))
        except AssertionError as e:
            raise AssertionError(f"{e}; modes now: {self.describe()}") from None

    def describe(self):
        out = []
        for s in self:
            if not s.alive():
                out.append(f"{s.id}:{s.state}")
                continue
            try:
                m = s.mntr()
                out.append(f"{s.id}:{m.get('zk_server_state')}(leader "
                           f"{m.get('corral_leader_id')})")
            except OSError as e:
                out.append(f"{s.id}:no answer ({e})")
        return ", ".join(out)

    def followers(self, leader_id=None):
        lid = leader_id if leader_id is not None else self.leader()
        return [s.id for s in self if s.id != lid]

    # -- clients

    def hosts(self, first=None, only=None):
        """A connect string. first: this server's address leads the list (the
        others follow in id order from there); only: just these servers."""
        ids = self.ids if only is None else list(only)
        if first is not None:
            k = ids.index(first)
            ids = ids[k:] + ids[:k]
        return ",".join(self.servers[i].client_addr for i in ids)

    def client(self, sid, timeout=10.0, start_timeout=30):
        """A started kazoo client connected to server sid alone."""
        zk = make_kazoo(self.servers[sid].client_addr, timeout)
        try:
            zk.start(timeout=start_timeout)
        except Exception:
            stop_kazoo([zk])
            raise
        return zk

    # -- state

    def tree_state(self, sid, sync=True, skip=("/zookeeper",), timeout=60):
        """path -> (data, version, cversion, aversion, czxid, mzxid, pzxid,
        ephemeralOwner) of every znode on server sid, read by a client
        connected to that server alone (after a sync, so the server has
        applied at least what the leader had committed). Levels are read
        with pipelined requests."""
        zk = self.client(sid)
        try:
            if sync:
                zk.sync_async("/").get(timeout)
            out = {}
            level = ["/"]
            while level:
                kids = [zk.get_children_async(p) for p in level]
                datas = [zk.get_async(p) for p in level]
                nxt = []
                for p, k, d in zip(level, kids, datas):
                    data, st = d.get(timeout)
                    out[p] = (data, st.version, st.cversion, st.aversion, st.czxid, st.mzxid,
                              st.pzxid, st.ephemeralOwner)
                    for c in k.get(timeout):
                        cp = (p.rstrip("/") + "/" + c)
                        if cp not in skip:
                            nxt.append(cp)
                level = nxt
            return out
        finally:
            stop_kazoo([zk])

    @staticmethod
    def digest(state):
        h = hashlib.sha256()
        for p in sorted(state):
            h.update(repr((p,) + tuple(state[p])).encode())
        return h.hexdigest()[:16]

    def digests(self, ids=None, sync=True):
        ids = ids or [s.id for s in self if s.alive()]
        return {sid: self.tree_state(sid, sync=sync) for sid in ids}

    def wait_converged(self, ids=None, timeout=60):
        """Polls until every server in ids (default: every answering one)
        holds the same tree and reports the same Zxid; returns the common
        tree state. On timeout the assertion names the paths that differ."""
        ids = ids or [s.id for s in self if s.alive()]
        end = time.monotonic() + timeout
        last = None
        while True:
            try:
                states = self.digests(ids)
                ds = {sid: self.digest(st) for sid, st in states.items()}
                # the walks' own sessions are txns too: the last one's close
                # may still be on its way to some servers, so the Zxids get
                # a moment of their own to agree
                zxids = {}
                if len(set(ds.values())) == 1:
                    def same_zxid():
                        zxids.update({sid: self.servers[sid].zxid() for sid in ids})
                        return len(set(zxids.values())) == 1
                    try:
                        wait_until(same_zxid, 5, what="equal Zxids")
                        return states[ids[0]]
                    except AssertionError:
                        pass
                last = (states, ds, zxids)
            except Exception as e:   # a server still catching up may refuse the session
                last = ("error", repr(e))
            if time.monotonic() >= end:
                raise AssertionError(f"servers {ids} did not converge within {timeout} s:\n"
                                     + describe_divergence(last))
            time.sleep(0.2)

    # -- logs

    def all_logs(self):
        out = []
        for s in self:
            for run, text in enumerate(s.logs(), 1):
                out.append((s.id, run, text))
        return out

    def sanitizer_reports(self):
        return [r for s in self for r in s.sanitizer_reports()]

    def log_report(self, per_log=6000):
        """Every run's log (the tail), without the debug lines of the test's
        own four-letter-word connections."""
        parts = []
        for sid, run, text in self.all_logs():
            lines = text.splitlines()
            kept = [ln for ln in lines if not _POLL_LINE.match(ln)]
            if len(kept) != len(lines):
                kept.append(f"({len(lines) - len(kept)} lines 'connection N from ... closed: "
                            "closed after its last reply' left out)")
            text = "\n".join(kept)
            exits = [e for e in self.servers[sid].exits if e[0] == run]
            how = f" ({exits[0][1]}, status {exits[0][2]})" if exits else ""
            parts.append(f"===== server {sid} run {run}{how}: "
                         f"{os.path.join(self.workdir, f's{sid}-run{run}.log')} =====\n"
                         + tail(text, per_log))
        return "\n".join(parts)


def describe_divergence(last):
    if last is None:
        return "(no attempt finished)"
    if last[0] == "error":
        return f"last attempt failed: {last[1]}"
    states, ds, zxids = last
    lines = [f"digests: {ds}", f"zxids: { {k: hex(v) for k, v in zxids.items()} }"]
    ids = list(states)
    ref = states[ids[0]]
    for sid in ids[1:]:
        st = states[sid]
        missing = sorted(set(ref) - set(st))
        extra = sorted(set(st) - set(ref))
        changed = sorted(p for p in set(ref) & set(st) if ref[p] != st[p])
        lines.append(f"server {sid} vs server {ids[0]}: {len(missing)} missing, "
                     f"{len(extra)} extra, {len(changed)} different")
        for p in missing[:5]:
            lines.append(f"  missing on {sid}: {p}")
        for p in extra[:5]:
            lines.append(f"  only on {sid}: {p}")
        for p in changed[:5]:
            lines.append(f"  {p}: {ids[0]} has {ref[p]!r:.200}, {sid} has {st[p]!r:.200}")
    return "\n".join(lines)
