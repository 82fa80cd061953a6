"""An ensemble of corrald processes on 127.0.0.1 for the replication tests.

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

Ports: every client and peer port is outside the kernel's ephemeral range
(clients reconnect in tight loops while a server is down; with a listening
port inside that range a client's socket can, rarely, be given the same port
and connect to itself, and the restart then finds the port taken), checked
free, and never handed out twice by this process. A restart reuses the
server's ports: the membership is fixed.

Nothing here sleeps in place of a condition: every wait polls with a
deadline and says what it waited for when it gives up.
"""
import hashlib
import os
import random
import re
import signal
import socket
import struct
import subprocess
import threading
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
CORRALD = os.environ.get("CORRALD") or os.path.join(HERE, "..", "..", "build-test", "app",
                                                      "corrald")

EXIT_CANNOT_LISTEN = 71

# ---------------------------------------------------------------- ports -----

_used_ports = set()
_ports_lock = threading.Lock()
_rnd = random.Random(int.from_bytes(os.urandom(8), "little"))


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
        return low, high
    except OSError:
        return 32768, 60999


def _bindable(port):
    for kind in (socket.SOCK_STREAM,):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_ports(count):
    """`count` distinct free 127.0.0.1 ports outside the ephemeral range,
    never handed out before by this process."""
    low, high = _ephemeral_range()
    out = []
    for _ in range(20000):
        if len(out) == count:
            return out
        p = _rnd.randrange(10000, 65535)
        if low <= p <= high:
            continue
        with _ports_lock:
            if p in _used_ports:
                continue
            if not _bindable(p):
                continue
            _used_ports.add(p)
        out.append(p)
    raise RuntimeError(f"could not find {count} free ports outside {low}-{high}")


# ------------------------------------------------------- four-letter words --

def four_letter(port, word, timeout=5.0):
    """Sends a four-letter word, returns the whole answer (the server closes
    after it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(word.encode())
        chunks = []
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks).decode(errors="replace")


def parse_mntr(text):
    out = {}
    for line in text.splitlines():
        if "\t" in line:
            k, v = line.split("\t", 1)
            out[k.strip()] = v.strip()
    return out


def parse_srvr(text):
    out = {}
    for line in text.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
    return out


def wait_until(pred, timeout, interval=0.05, what="condition", detail=None):
    """Polls pred() until it returns something true (and returns it), or
    raises AssertionError naming `what` (and detail(), when given) once
    `timeout` seconds have passed. Every replication test polls with it."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= end:
            extra = f"\n{detail()}" if detail else ""
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}{extra}")
        time.sleep(interval)


# ------------------------------------------------------------------ kazoo ---

def make_kazoo(hosts, timeout=10.0, randomize=False, command_retry=None):
    """A kazoo client (not started) that tries `hosts` in the order given
    (so a test decides which server a client talks to first), reconnects
    with a short backoff, and by default does not retry commands by itself
    (a test must see every ConnectionLoss; the recipes need retries: pass
    command_retry)."""
    from kazoo.client import KazooClient
    return KazooClient(hosts=hosts, timeout=timeout, randomize_hosts=randomize,
                       connection_retry={"max_tries": -1, "delay": 0.05, "backoff": 1,
                                         "max_jitter": 0.01, "max_delay": 0.1},
                       command_retry=command_retry or {"max_tries": 0})


def stop_kazoo(clients, timeout=30, raise_stuck=True):
    """Stops clients in parallel; raises when one does not stop in time
    (unless raise_stuck is false: a teardown after a failure)."""
    threads = []
    for zk in clients:
        def run(zk=zk):
            try:
                zk.stop()
                zk.close()
            except Exception:
                pass
        t = threading.Thread(target=run, daemon=True)
        t.start()
        threads.append(t)
    end = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.1, end - time.monotonic()))
    stuck = sum(t.is_alive() for t in threads)
    if stuck and raise_stuck:
        raise AssertionError(f"{stuck} kazoo clients did not stop within {timeout} s")


# ------------------------------------------------------- the write-ahead log

SEGMENT_HEADER = 64
RECORD_HEADER = 40


def wal_segments(data_dir):
    """[(first index, path)] of a data directory's log segments, in order."""
    d = os.path.join(str(data_dir), "wal")
    if not os.path.isdir(d):
        return []
    out = []
    for n in os.listdir(d):
        if len(n) == 20 and n.endswith(".seg"):
            out.append((int(n[:16], 16), os.path.join(d, n)))
    return sorted(out)


def wal_last_index(data_dir):
    """The index of the last whole record in a (stopped) server's log, or
    None when it has none. Walks the records as corrald does (length,
    crc32), stopping at the first that does not check out (a torn tail)."""
    import zlib
    last = None
    for _, path in wal_segments(data_dir):
        with open(path, "rb") as f:
            b = f.read()
        if len(b) < SEGMENT_HEADER or b[:8] != b"CORRALWL":
            continue
        off = SEGMENT_HEADER
        while off + RECORD_HEADER <= len(b):
            length, crc = struct.unpack(">II", b[off:off + 8])
            if length < RECORD_HEADER or off + length > len(b):
                break
            if zlib.crc32(b[off + 8:off + length]) != crc:
                break
            last = struct.unpack(">Q", b[off + 8:off + 16])[0]
            off += (length + 7) & ~7
    return last


# ---------------------------------------------------------------- servers ---

_POLL_LINE = re.compile(r"^<7>connection \d+ from \S+ closed: closed after its last reply$")

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "SUMMARY: UndefinedBehaviorSanitizer")


class Server:
    """One member of the ensemble. state: 'new', 'running', 'paused',
    'stopped' (SIGTERM, exited), 'killed' (SIGKILL)."""

    def __init__(self, cluster, sid, client_port, peer_port):
        self.cluster = cluster
        self.id = sid
        self.client_port = client_port
        self.peer_port = peer_port
        self.data_dir = os.path.join(cluster.workdir, f"s{sid}-data")
        self.proc = None
        self.runs = 0
        self.state = "new"
        self.log_path = None
        self.exits = []          # (run, how, returncode) for every run that ended
        self._log_file = None

    def __repr__(self):
        return f"<server {self.id} :{self.client_port} {self.state}>"

    @property
    def client_addr(self):
        return f"127.0.0.1:{self.client_port}"

    @property
    def peer_addr(self):
        return f"127.0.0.1:{self.peer_port}"

    def config(self):
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
        for k, v in c.extra_config.items():
            if isinstance(v, dict):
                cfg.setdefault(k, {}).update(v)
            else:
                cfg[k] = v
        return cfg

    def spawn(self):
        assert self.proc is None or self.proc.poll() is not None, f"server {self.id} is running"
        self.runs += 1
        os.makedirs(self.data_dir, exist_ok=True)
        path = os.path.join(self.cluster.workdir, f"s{self.id}.yaml")
        with open(path, "w") as f:
            yaml.safe_dump(self.config(), f, sort_keys=False)
        self.config_path = path
        self.log_path = os.path.join(self.cluster.workdir, f"s{self.id}-run{self.runs}.log")
        env = dict(os.environ)
        env.pop("JOURNAL_STREAM", None)   # log to stderr (our file), not journald
        env.pop("NOTIFY_SOCKET", None)
        env.pop("LISTEN_FDS", None)
        env.pop("LISTEN_PID", None)
        env.update(getattr(self, "extra_env", {}))   # a test's fault switches, this server only
        self._log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen([CORRALD, "-c", path], stdin=subprocess.DEVNULL,
                                     stdout=self._log_file, stderr=subprocess.STDOUT, env=env)
        self.started_at = time.monotonic()
        self.state = "running"
        return self

    def wait_ready(self, timeout=60):
        """Ready = the process accepts a connection and answers ruok."""
        end = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self._ended("exited", rc)
                raise ServerExited(self, rc)
            try:
                with socket.create_connection(("127.0.0.1", self.client_port), timeout=1) as s:
                    s.settimeout(2)
                    s.sendall(b"ruok")
                    if s.recv(16) == b"imok":
                        return time.monotonic() - self.started_at
            except OSError:
                pass
            if time.monotonic() >= end:
                raise AssertionError(f"server {self.id} did not answer ruok within {timeout} s; "
                                     f"its log:\n{tail(self.log(), 4000)}")
            time.sleep(0.02)

    def start(self, timeout=60):
        self.spawn()
        self.wait_ready(timeout)
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def alive(self):
        """Running and not stopped by SIGSTOP: can answer."""
        return self.running() and self.state == "running"

    def _ended(self, how, rc):
        self.exits.append((self.runs, how, rc))
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def stop(self, timeout=30):
        """SIGTERM and wait; returns the exit status."""
        if not self.running():
            return self.proc.returncode if self.proc else None
        if self.state == "paused":
            self.resume()
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)
            self._ended("SIGKILL after SIGTERM timed out", self.proc.returncode)
            self.state = "killed"
            raise AssertionError(f"server {self.id} did not stop within {timeout} s of SIGTERM")
        self._ended("SIGTERM", rc)
        self.state = "stopped"
        return rc

    def kill(self):
        """SIGKILL (a crash) and reap."""
        if self.running():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)
            self._ended("SIGKILL", self.proc.returncode)
        self.state = "killed"

    def pause(self):
        assert self.running() and self.state == "running", f"server {self.id}: {self.state}"
        self.proc.send_signal(signal.SIGSTOP)
        self.state = "paused"

    def resume(self):
        assert self.running() and self.state == "paused", f"server {self.id}: {self.state}"
        self.proc.send_signal(signal.SIGCONT)
        self.state = "running"

    def restart(self, timeout=60):
        """SIGTERM if running, then start again on the same ports and data."""
        if self.running():
            self.stop()
        return self.start(timeout)

    # -- what it says about itself

    def mntr(self, timeout=3.0):
        return parse_mntr(four_letter(self.client_port, "mntr", timeout))

    def srvr(self, timeout=3.0):
        return parse_srvr(four_letter(self.client_port, "srvr", timeout))

    def mode(self):
        """zk_server_state, or None when the server does not answer."""
        if not self.alive():
            return None
        try:
            return self.mntr().get("zk_server_state")
        except OSError:
            return None

    def zxid(self):
        return int(self.srvr()["Zxid"], 16)

    def log(self, run=None):
        run = run or self.runs
        p = os.path.join(self.cluster.workdir, f"s{self.id}-run{run}.log")
        try:
            with open(p, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def logs(self):
        return [(r, self.log(r)) for r in range(1, self.runs + 1)]


class ServerExited(AssertionError):
    def __init__(self, server, rc):
        self.server = server
        self.rc = rc
        super().__init__(f"server {server.id} exited with status {rc} before it was ready; "
                         f"its log:\n{tail(server.log(), 4000)}")


def tail(text, n):
    return text if len(text) <= n else "...\n" + text[-n:]


# ---------------------------------------------------------------- cluster ---

class Cluster:
    def __init__(self, workdir, n, election_timeout_ms=1000, config=None, name="corral-test",
                 log_level="info", observers=()):
        assert n in (1, 3, 5, 7), n
        self.workdir = str(workdir)
        self.n = n
        self.election_timeout_ms = election_timeout_ms
        self.extra_config = config or {}
        self.name = name
        self.log_level = log_level
        self.observers = set(observers)	# ids bootstrapped as non-voting members
        self.servers = {}
        self._assign_ports()

    def _assign_ports(self):
        ports = free_ports(2 * self.n)
        self.servers = {}
        for i in range(1, self.n + 1):
            self.servers[i] = Server(self, i, ports[2 * i - 2], ports[2 * i - 1])

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
            for run, text in s.logs():
                out.append((s.id, run, text))
        return out

    def sanitizer_reports(self):
        bad = []
        for sid, run, text in self.all_logs():
            for mark in SANITIZER_MARKS:
                k = text.find(mark)
                if k >= 0:
                    bad.append(f"server {sid} run {run}:\n{text[max(0, k - 200):k + 4000]}")
                    break
        return bad

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
