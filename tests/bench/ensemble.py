#!/usr/bin/python3
"""Benchmarks a 3-server corral ensemble against a 3-server Apache ZooKeeper 3.8
ensemble on this machine, one system at a time (never both at once).

Each ensemble runs on 127.0.0.1, ports outside the kernel's ephemeral range,
every server's data in its own directory under --workdir (one disk). Both
fsync before they acknowledge (ZooKeeper forceSync=yes, its default; corrald
always). The ZooKeeper JVMs get the heap settings compare.py gives the
standalone one: none, the JVM's default (as Debian's zkServer.sh).

For each system, on one fresh ensemble:
  - writes: loadgen create and set, 8 connections x 32 outstanding, spread
    round-robin over the three servers, then all on the leader;
  - reads: loadgen get with every connection on one follower, then spread
    over the three;
  - CPU: each server's and loadgen's CPU time during each run (cores used);
  - RSS of each server after those runs;
  - failover, --trials times: a client (one session, one synchronous setData
    after another, reconnecting at once to the next server of its list on a
    lost connection) writes while the leader is killed with SIGKILL; the time
    from the kill to the reply of the first successful write sent after it.
    The killed server is restarted and the ensemble settles before the next.

Usage: tests/bench/ensemble.py [--corrald PATH] [--loadgen PATH] [--duration 5]
                               [--trials 5] [--systems zookeeper,corral]
                               [--workdir DIR] [--markdown] [--json-out FILE]
                               [--peer-tls]
Run it with `bash tests/bench/run-ensemble.sh`, which builds and installs what
it needs. It is run by hand, not by CI or meson test.
"""
import argparse
import json
import os
import random
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import CORRAL_ENV, disk_fdatasync_us, rss_mb  # noqa: E402

HOST = "127.0.0.1"
N = 3
ZK_TICK_MS, ZK_INIT_LIMIT, ZK_SYNC_LIMIT = 2000, 10, 5   # Debian's zoo.cfg (ZooKeeper's sample)
CLK_TCK = os.sysconf("SC_CLK_TCK")
ZK_CLASSPATH = ["/usr/share/java/zookeeper.jar", "/usr/share/java/slf4j-log4j12.jar",
                "/usr/share/java/log4j-1.2.jar"]
# warnings, and the quorum's story (elections, leader, followers' sync) at info
ZK_LOG4J = """log4j.rootLogger=WARN, CONSOLE
log4j.logger.org.apache.zookeeper.server.quorum=INFO
log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender
log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout
log4j.appender.CONSOLE.layout.ConversionPattern=%d{ISO8601} - %-5p [%t:%C{1}@%L] - %m%n
"""

# (key, loadgen workload, where the connections go: "all" | "leader" | "follower")
RUNS = [
    ("create-all", "create", "all"), ("create-leader", "create", "leader"),
    ("set-all", "set", "all"), ("set-leader", "set", "leader"),
    ("get-one", "get", "follower"), ("get-all", "get", "all"),
]
LABELS = {
    "create-all": "create (sequential), clients spread over 3 servers",
    "create-leader": "create (sequential), all clients on the leader",
    "set-all": "setData, clients spread over 3 servers",
    "set-leader": "setData, all clients on the leader",
    "get-one": "getData, all clients on 1 server (a follower)",
    "get-all": "getData, clients spread over 3 servers",
}

_used_ports = set()


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    """A free 127.0.0.1 port outside the ephemeral range (no client socket can
    take it while a server is down), never handed out before in this run."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low, high = (int(x) for x in f.read().split())
    candidates = [p for p in range(10000, 60000) if not low <= p <= high and p not in _used_ports]
    random.shuffle(candidates)
    for p in candidates:
        with socket.socket() as s:
            try:
                s.bind((HOST, p))
            except OSError:
                continue
        _used_ports.add(p)
        return p
    raise SystemExit("no free port outside the ephemeral range")


def four_letter(port, word, timeout=2.0):
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as s:
            s.sendall(word.encode())
            out = b""
            while True:
                b = s.recv(65536)
                if not b:
                    return out.decode(errors="replace")
                out += b
    except OSError:
        return ""


def srvr(port):
    """(mode, zxid) from srvr, or (None, None) when the server does not answer one."""
    mode = zxid = None
    for line in four_letter(port, "srvr").splitlines():
        if line.startswith("Mode: "):
            mode = line[6:].strip()
        elif line.startswith("Zxid: "):
            zxid = int(line[6:].strip(), 16)
    return mode, zxid


def cpu_s(pid):
    """utime + stime of a process (all its threads), in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except OSError:
        return 0.0


def machine_busy_s():
    """CPU time the whole machine spent busy (all processes, kernel), in seconds."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / CLK_TCK   # not idle, not iowait


DISK = None   # the block device under --workdir (e.g. "vda"), for /proc/diskstats


def diskstats():
    """(writes, flushes, ms the device was busy) of DISK so far, or None."""
    try:
        with open("/proc/diskstats") as f:
            for line in f:
                p = line.split()
                # 4 writes completed, 10 ms doing I/O, 15 flushes completed
                # (Documentation/admin-guide/iostats.rst; flushes since 5.5)
                if p[2] == DISK and len(p) >= 20:
                    return int(p[7]), int(p[18]), int(p[12])
    except OSError:
        pass
    return None


class Ensemble:
    """Three servers of one kind on 127.0.0.1: start, kill, restart, find the leader."""

    def __init__(self, kind, workdir, corrald, election_timeout_ms, peer_tls=False):
        self.kind, self.corrald, self.election_timeout_ms = kind, corrald, election_timeout_ms
        self.dir = tempfile.mkdtemp(prefix=kind + "-", dir=workdir)
        self.pki = None
        if peer_tls and kind == "corral":   # --peer-tls: ensemble.tls on every member
            sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../lib"))
            import tls_pki
            self.pki = tls_pki.Pki(os.path.join(self.dir, "pki"))
            self.peer_tls = [tls_pki.member_peer_tls(self.pki, i + 1, HOST) for i in range(N)]
        self.client = [free_port() for _ in range(N)]
        self.peer = [free_port() for _ in range(N)]
        self.election = [free_port() for _ in range(N)]   # ZooKeeper only
        self.procs = [None] * N
        with open(os.path.join(self.dir, "log4j.properties"), "w") as f:
            f.write(ZK_LOG4J)
        for i in range(N):
            os.makedirs(self.sdir(i), exist_ok=True)
            self.write_config(i)

    def sdir(self, i):
        return os.path.join(self.dir, f"s{i + 1}")

    def write_config(self, i):
        d = self.sdir(i)
        if self.kind == "corral":
            members = "".join(f'    - {{ id: {j + 1}, client: "{HOST}:{self.client[j]}", '
                              f'peer: "{HOST}:{self.peer[j]}" }}\n' for j in range(N))
            tls = "" if not self.pki else "  tls:\n" + "".join(
                f"    {k}: {v}\n" for k, v in self.peer_tls[i].items())
            with open(os.path.join(d, "corral.yaml"), "w") as f:
                f.write(f"data_dir: {d}/data\nlog_level: info\nensemble:\n  id: {i + 1}\n"
                        f"  election_timeout_ms: {self.election_timeout_ms}\n  members:\n{members}"
                        + tls)
            return
        os.makedirs(os.path.join(d, "data"), exist_ok=True)
        with open(os.path.join(d, "data", "myid"), "w") as f:
            f.write(f"{i + 1}\n")
        servers = "".join(f"server.{j + 1}={HOST}:{self.peer[j]}:{self.election[j]}\n" for j in range(N))
        with open(os.path.join(d, "zoo.cfg"), "w") as f:
            f.write(f"tickTime={ZK_TICK_MS}\ninitLimit={ZK_INIT_LIMIT}\nsyncLimit={ZK_SYNC_LIMIT}\n"
                    f"dataDir={d}/data\nclientPort={self.client[i]}\nclientPortAddress={HOST}\n"
                    "forceSync=yes\nadmin.enableServer=false\nmaxClientCnxns=0\n"
                    "4lw.commands.whitelist=*\nglobalOutstandingLimit=100000\n" + servers)

    def command(self, i):
        d = self.sdir(i)
        if self.kind == "corral":
            return [self.corrald, "-c", os.path.join(d, "corral.yaml")]
        # Debian's zookeeper.jar names its dependencies in its manifest, but
        # no slf4j binding: log4j's, so the elections are logged. No heap
        # flags, as compare.py and Debian's zkServer.sh.
        return ["java", "-Dlog4j.configuration=file:" + os.path.join(self.dir, "log4j.properties"),
                "-cp", ":".join(ZK_CLASSPATH),
                "org.apache.zookeeper.server.quorum.QuorumPeerMain", os.path.join(d, "zoo.cfg")]

    def start(self, i):
        with open(os.path.join(self.sdir(i), "server.log"), "a") as logf:
            logf.write(f"==== started {time.strftime('%H:%M:%S')}: {' '.join(self.command(i))}\n")
            logf.flush()
            self.procs[i] = subprocess.Popen(self.command(i), stdin=subprocess.DEVNULL,
                                             stdout=logf, stderr=subprocess.STDOUT,
                                             env=CORRAL_ENV if self.kind == "corral" else None)

    def start_all(self):
        for i in range(N):
            self.start(i)
        return self.wait_settled(120)

    def alive(self, i):
        return self.procs[i] is not None and self.procs[i].poll() is None

    def roles(self):
        return [srvr(self.client[i]) if self.alive(i) else (None, None) for i in range(N)]

    def wait_settled(self, timeout):
        """Until every live server answers srvr as leader or follower, one
        leader, all at the same zxid (nothing is written meanwhile); returns
        the leader's index."""
        end = time.monotonic() + timeout
        last, serving = None, False
        while time.monotonic() < end:
            for i in range(N):
                if self.procs[i] is not None and self.procs[i].poll() is not None:
                    self.fail(f"server {i + 1} exited with status {self.procs[i].returncode}")
            last = self.roles()
            modes = [m for m, _ in last]
            zxids = {z for _, z in last}
            if modes.count("leader") == 1 and modes.count("follower") == N - 1:
                if not serving:
                    # each gives a session (which writes: then the zxids meet;
                    # before any write ZooKeeper's leader reports its new
                    # epoch's zxid, its followers 0)
                    serving = all(self.serves(i) for i in range(N))
                    continue
                if len(zxids) == 1:
                    return modes.index("leader")
            time.sleep(0.05)
        self.fail(f"the ensemble did not settle in {timeout} s: srvr says {last}")

    def serves(self, i):
        """Answers a ConnectRequest with a session (then closes it)."""
        try:
            c = Client([self.client[i]], timeout=2)
            c.connect_once(self.client[i])
            c.close_session()
            return True
        except OSError:
            return False

    def leader(self):
        modes = [m for m, _ in self.roles()]
        return modes.index("leader") if modes.count("leader") == 1 else None

    def kill(self, i):
        if self.alive(i):
            self.procs[i].send_signal(signal.SIGKILL)
            self.procs[i].wait()

    def stop_all(self):
        for p in self.procs:
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            if p and p.poll() is None:
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    log(f"{self.kind}: a server did not stop on SIGTERM in 20 s; SIGKILL")
                    p.kill()
                    p.wait()

    def fail(self, why):
        """Stops everything and exits, with the tail of every server's log."""
        log(f"{self.kind} ensemble: {why}")
        for i in range(N):
            path = os.path.join(self.sdir(i), "server.log")
            try:
                with open(path) as f:
                    tail = f.readlines()[-30:]
            except OSError:
                tail = []
            log(f"---- {path} (last {len(tail)} lines)\n" + "".join(tail))
        self.stop_all()
        raise SystemExit(f"{self.kind} ensemble failed: {why} (logs kept in {self.dir})")


# --- a minimal ZooKeeper client for the failover writer ----------------------

class Client:
    """One session; synchronous requests; on a lost connection it goes on to
    the next server of its list at once (no back-off) and resumes the session."""

    def __init__(self, ports, timeout):
        self.ports, self.timeout = ports, timeout
        self.sock, self.session, self.passwd, self.last_zxid, self.xid = None, 0, b"\0" * 16, 0, 0
        self.next = 0

    def _recv_exact(self, n):
        out = b""
        while len(out) < n:
            b = self.sock.recv(n - len(out))
            if not b:
                raise ConnectionError("closed by the server")
            out += b
        return out

    def _frame(self):
        (n,) = struct.unpack(">i", self._recv_exact(4))
        return self._recv_exact(n)

    def connect_once(self, port):
        self.sock = socket.create_connection((HOST, port), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        body = struct.pack(">iqiqi", 0, self.last_zxid, 30000, self.session, 16) + self.passwd + b"\0"
        self.sock.sendall(struct.pack(">i", len(body)) + body)
        r = self._frame()
        _, timeout, session = struct.unpack(">iiq", r[:16])
        if timeout <= 0:          # the session expired: a new one
            self.sock.close()
            self.sock, self.session, self.passwd = None, 0, b"\0" * 16
            raise ConnectionError("session expired")
        (plen,) = struct.unpack(">i", r[16:20])
        self.session, self.passwd, self.port = session, r[20:20 + plen], port

    def connect(self, deadline):
        while time.monotonic() < deadline:
            port = self.ports[self.next % len(self.ports)]
            try:
                self.connect_once(port)
                return
            except (OSError, struct.error):
                if self.sock:
                    self.sock.close()
                self.sock = None
                self.next += 1
                time.sleep(0.005)
        raise TimeoutError("no server took the session")

    def call(self, body):
        """Sends one request, returns its reply's err; skips pings and events."""
        self.xid += 1
        frame = struct.pack(">i", self.xid) + body
        self.sock.sendall(struct.pack(">i", len(frame)) + frame)
        while True:
            r = self._frame()
            xid, zxid, err = struct.unpack(">iqi", r[:16])
            if xid == self.xid:
                if zxid > self.last_zxid:
                    self.last_zxid = zxid
                return err

    def set_data(self, path, data):
        p = path.encode()
        return self.call(struct.pack(">ii", 5, len(p)) + p + struct.pack(">i", len(data)) + data +
                         struct.pack(">i", -1))

    def create(self, path, data):
        p = path.encode()
        acl = struct.pack(">iii", 1, 31, 5) + b"world" + struct.pack(">i", 6) + b"anyone"
        return self.call(struct.pack(">ii", 1, len(p)) + p + struct.pack(">i", len(data)) + data + acl +
                         struct.pack(">i", 0))

    def close_session(self):
        try:
            if self.sock:
                self.call(struct.pack(">i", -11))
        except (OSError, struct.error):
            pass
        finally:
            if self.sock:
                self.sock.close()
            self.sock = None


class Writer(threading.Thread):
    """setData in a loop; records (sent, done, ok, port, err) of each attempt."""

    def __init__(self, ports, path):
        super().__init__(daemon=True)
        self.client, self.path = Client(ports, timeout=10), path
        self.events, self.stop, self.lock = [], threading.Event(), threading.Lock()
        self.error = None

    def successes_since(self, t):
        with self.lock:
            return [e for e in self.events if e[0] >= t and e[2]]

    def run(self):
        c = self.client
        try:
            while not self.stop.is_set():
                if c.sock is None:
                    c.connect(time.monotonic() + 60)
                t0 = time.monotonic()
                try:
                    err = c.set_data(self.path, b"x" * 100)
                except (OSError, struct.error) as e:
                    with self.lock:
                        self.events.append((t0, time.monotonic(), False, c.port, repr(e)))
                    c.sock.close()
                    c.sock = None
                    c.next += 1
                    continue
                with self.lock:
                    self.events.append((t0, time.monotonic(), err == 0, c.port, err))
                if err != 0:
                    time.sleep(0.001)
            c.close_session()
        except Exception as e:  # noqa: BLE001: reported by the main thread
            self.error = e


def failover(ens, trials):
    """kill -9 of the leader under a writing client, trials times; ms each."""
    times, details = [], []
    setup = Client(ens.client, timeout=10)
    setup.connect(time.monotonic() + 30)
    path = f"/failover-{os.getpid()}"
    if setup.create(path, b"") not in (0, -110):
        ens.fail(f"create {path} failed")
    setup.close_session()
    for t in range(trials):
        leader = ens.wait_settled(120)
        # the writer starts on a follower (where two clients in three are)
        order = [(leader + k) % N for k in (1, 2, 0)]
        w = Writer([ens.client[i] for i in order], path)
        w.start()
        time.sleep(1.0)
        if not w.successes_since(0):
            ens.fail(f"trial {t + 1}: the writer made no successful write in 1 s ({w.error})")
        t_kill = time.monotonic()
        ens.kill(leader)
        end = t_kill + 60
        first = None
        while time.monotonic() < end and first is None and w.error is None:
            s = w.successes_since(t_kill)
            first = s[0] if s else None
            time.sleep(0.002)
        w.stop.set()
        w.join(15)
        if first is None:
            ens.fail(f"trial {t + 1}: no successful write within 60 s of killing server {leader + 1} "
                     f"(writer: {w.error}; its last attempts: {w.events[-5:]})")
        ms = (first[1] - t_kill) * 1000
        failed = [e for e in w.events if e[1] >= t_kill and not e[2]]
        new_leader = ens.leader()
        details.append({"killed": leader + 1, "ms": ms, "failed_attempts": len(failed),
                        "first_error": str(failed[0][4]) if failed else None,
                        "written_via": ens.client.index(first[3]) + 1,
                        "new_leader": new_leader + 1 if new_leader is not None else None,
                        "attempts": [(round((e[0] - t_kill) * 1000), round((e[1] - t_kill) * 1000),
                                      ens.client.index(e[3]) + 1, str(e[4])) for e in failed]})
        times.append(ms)
        log(f"{ens.kind} failover {t + 1}: killed leader {leader + 1}, first write after {ms:.0f} ms "
            f"(via server {details[-1]['written_via']}, {len(failed)} failed attempts before, "
            f"first: {details[-1]['first_error']}), new leader {details[-1]['new_leader']}"
            + (f"; failed attempts (ms from the kill: sent, ended, server, error): {details[-1]['attempts']}"
               if ms > 2000 else ""))
        ens.start(leader)
    ens.wait_settled(120)
    return times, details


def loadgen(args, ens, key, workload, where, leader):
    if where == "all":
        targets = list(range(N))
    elif where == "leader":
        targets = [leader]
    else:
        targets = [(leader + 1) % N]
    servers = ",".join(f"{HOST}:{ens.client[i]}" for i in targets)
    cmd = [args.loadgen, "--servers", servers, "--workload", workload, "--json", "--label", ens.kind,
           "--connections", "8", "--outstanding", "32", "--duration", str(args.duration)]
    cpu0 = [cpu_s(p.pid) for p in ens.procs]
    busy0 = machine_busy_s()
    disk0 = diskstats()
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=600)
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.monotonic() - t0
    cpu1 = [cpu_s(p.pid) for p in ens.procs]
    r_busy = (machine_busy_s() - busy0) / wall
    disk1 = diskstats()
    if p.returncode not in (0, 1) or not out.strip():
        ens.fail(f"{' '.join(cmd)} exited with {p.returncode}: {err.strip()}")
    r = json.loads(out.strip().splitlines()[-1])
    if r["errors"]:
        log(f"{ens.kind} {key}: loadgen counted {r['errors']} errors: {err.strip()}")
    r["servers"] = [i + 1 for i in targets]
    r["cores"] = {f"s{i + 1}": (cpu1[i] - cpu0[i]) / wall for i in range(N)}
    r["loadgen_cpu_s"] = ru.ru_utime + ru.ru_stime   # cumulative; differenced by the caller
    r["wall_s"] = wall
    r["machine_cores"] = r_busy
    if disk0 and disk1:   # the whole device: every process's I/O, not only the servers'
        r["disk"] = {"writes_per_s": (disk1[0] - disk0[0]) / wall, "flushes_per_s": (disk1[1] - disk0[1]) / wall,
                     "busy": (disk1[2] - disk0[2]) / 1000 / wall}
    return r


def run_system(kind, args, workdir):
    ens = Ensemble(kind, workdir, args.corrald, args.election_timeout_ms, args.peer_tls)
    res = {}
    try:
        t0 = time.monotonic()
        leader = ens.start_all()
        res["start_s"] = time.monotonic() - t0
        log(f"{kind}: ensemble up in {res['start_s']:.1f} s, leader server {leader + 1}")
        prev = resource.getrusage(resource.RUSAGE_CHILDREN)
        prev = prev.ru_utime + prev.ru_stime
        for key, workload, where in ([] if args.failover_only else RUNS):
            leader = ens.wait_settled(60)
            r = loadgen(args, ens, key, workload, where, leader)
            r["cores"]["loadgen"] = (r["loadgen_cpu_s"] - prev) / r["wall_s"]
            prev = r.pop("loadgen_cpu_s")
            # the rest of the machine: other processes, and the kernel's work
            # (softirqs, kworkers) that is not charged to a process
            r["cores"]["other"] = max(0.0, r.pop("machine_cores") - sum(r["cores"].values()))
            r["leader"] = leader + 1
            res[key] = r
            log(f"{kind} {key}: {r['ops_per_s']:.0f} ops/s p50 {r['p50_us']:.0f} p99 {r['p99_us']:.0f} us "
                f"on servers {r['servers']} (leader {leader + 1}); cores "
                + " ".join(f"{k} {v:.2f}" for k, v in r["cores"].items())
                + (" disk {writes_per_s:.0f} writes/s {flushes_per_s:.0f} flushes/s busy {busy:.0%}".format(
                    **r["disk"]) if "disk" in r else ""))
        leader = ens.wait_settled(60)
        res["rss_mb"] = {f"s{i + 1}": rss_mb(ens.procs[i].pid) for i in range(N)}
        res["rss_leader"] = leader + 1
        log(f"{kind} RSS after the runs: {res['rss_mb']} (leader s{leader + 1})")
        res["failover_ms"], res["failover"] = failover(ens, args.trials)
    finally:
        ens.stop_all()
    if not args.keep:
        shutil.rmtree(ens.dir, ignore_errors=True)
    return res


def machine(workdir):
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    disk = "?"
    try:
        src = subprocess.run(["findmnt", "-no", "SOURCE", "--target", workdir], capture_output=True,
                             text=True).stdout.strip()
        dev = os.path.basename(src)
        pk = subprocess.run(["lsblk", "-ndo", "PKNAME", src], capture_output=True, text=True).stdout.strip()
        dev = pk or dev
        with open(f"/sys/block/{dev}/queue/scheduler") as f:
            sched = f.read().split("[")[1].split("]")[0]
        with open(f"/sys/block/{dev}/queue/rotational") as f:
            rot = "rotational" if f.read().strip() == "1" else "non-rotational"
        size = subprocess.run(["lsblk", "-ndo", "SIZE", f"/dev/{dev}"], capture_output=True,
                              text=True).stdout.strip()
        disk = f"/dev/{dev} {size}, {rot}, scheduler {sched}"
        global DISK
        DISK = dev
    except (OSError, IndexError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "mem_gib": round(mem, 1), "disk": disk,
            "kernel": os.uname().release}


def fmt_lat(r):
    return f"{r['p50_us']:.0f} / {r['p99_us']:.0f}"


def print_report(args, m, disk, res):
    z, c = res.get("zookeeper"), res.get("corral")
    systems = [(k, res[k]) for k in ("zookeeper", "corral") if k in res]
    names = {"zookeeper": "ZooKeeper", "corral": "corral"}
    md = args.markdown
    print(f"Machine: {m['cpu']}, {m['cores']} cores, {m['mem_gib']} GiB, {m['disk']}, Linux {m['kernel']}")
    if disk:
        print("Disk (fio, 4 KiB write + fdatasync): write {write_mean_us:.0f} µs + fdatasync mean "
              "{sync_mean_us:.0f} µs, p50 {sync_p50_us:.0f}, p99 {sync_p99_us:.0f}".format(**disk))
    print(f"Load average (1, 5, 15 min) when the run began: {' '.join(f'{x:.2f}' for x in m['loadavg_before'])}")
    print(f"Command: bash tests/bench/run-ensemble.sh {' '.join(sys.argv[1:])}")
    print(f"Settings: 3 servers each on 127.0.0.1; loadgen 8 connections x 32 outstanding, 100-byte values, "
          f"{args.duration:g} s per run after 0.5 s warm-up; corral ensemble.election_timeout_ms "
          f"{args.election_timeout_ms}; ZooKeeper 3.8.0 tickTime {ZK_TICK_MS} ms, initLimit {ZK_INIT_LIMIT}, "
          f"syncLimit {ZK_SYNC_LIMIT} (Debian's zoo.cfg), forceSync=yes, JVM default heap")
    print()
    if md:
        head = "| workload |" + "".join(f" {names[k]} ops/s |" for k, _ in systems)
        if z and c:
            head += " ratio |"
        head += "".join(f" {names[k]} p50 / p99 µs |" for k, _ in systems)
        print(head)
        print("|---|" + "---:|" * (head.count("|") - 2))
    runs = [run for run in RUNS if all(run[0] in r for _, r in systems)]
    for key, _, _ in runs:
        vals = [r[key] for _, r in systems]
        if md:
            row = f"| {LABELS[key]} |" + "".join(f" {v['ops_per_s']:.0f} |" for v in vals)
            if z and c:
                row += f" {c[key]['ops_per_s'] / max(z[key]['ops_per_s'], 1):.1f}x |"
            row += "".join(f" {fmt_lat(v)} |" for v in vals)
            print(row)
        else:
            print(f"{key:14}" + "".join(f"  {k} {r[key]['ops_per_s']:9.0f}/s p50/p99 {fmt_lat(r[key])} us"
                                        for k, r in systems))
    if runs:
        print_cpu(systems, runs, names, md)
    print_failover(args, systems, names, md)


def print_cpu(systems, runs, names, md):
    scale = {k: r["get-all"]["ops_per_s"] / max(r["get-one"]["ops_per_s"], 1) for k, r in systems}
    if md:
        row = "| getData: 3 servers / 1 server |" + "".join(f" {scale[k]:.2f} |" for k, _ in systems)
        print(row + (" |" if len(systems) == 2 else "") + " |" * len(systems))
    else:
        print("get scaling 3/1: " + " ".join(f"{k} {v:.2f}" for k, v in scale.items()))
    print()
    # CPU: where the two cores went in each run
    if md:
        print("| CPU during the run (cores: s1 s2 s3 loadgen rest-of-machine; L = leader)"
              + (f", disk {DISK} (flushes/s, busy)" if DISK else "") + " |"
              + "".join(f" {names[k]} |" for k, _ in systems))
        print("|---|" + "---|" * len(systems))
    for key, _, _ in runs:
        cells = []
        for _, r in systems:
            cr = r[key]["cores"]
            cells.append(" ".join(f"{cr[f's{i + 1}']:.2f}{'L' if r[key]['leader'] == i + 1 else ''}"
                                  for i in range(N)) + f" {cr['loadgen']:.2f} {cr['other']:.2f}"
                         + (f"; {r[key]['disk']['flushes_per_s']:.0f}/s {r[key]['disk']['busy']:.0%}"
                            if "disk" in r[key] else ""))
        if md:
            print(f"| {LABELS[key]} |" + "".join(f" {x} |" for x in cells))
        else:
            print(f"cores {key:14} " + "   ".join(cells))
    print()


def print_failover(args, systems, names, md):
    if md:
        print("| failover: kill -9 of the leader to the first successful write |"
              + "".join(f" {names[k]} |" for k, _ in systems))
        print("|---|" + "---:|" * len(systems))
        print("| election settings |" + "".join(
            f" election_timeout_ms {args.election_timeout_ms} |" if k == "corral" else
            f" tickTime {ZK_TICK_MS} ms x initLimit {ZK_INIT_LIMIT} / syncLimit {ZK_SYNC_LIMIT} |"
            for k, _ in systems))
        print("| each trial, ms |" + "".join(f" {', '.join(f'{x:.0f}' for x in r['failover_ms'])} |"
                                          for _, r in systems))
        print("| median, ms |" + "".join(f" {statistics.median(r['failover_ms']):.0f} |" for _, r in systems))
        print()
        print("| RSS after the runs, MB |" + "".join(f" {names[k]} |" for k, _ in systems))
        print("|---|" + "---:|" * len(systems))
        for i in range(N):
            print(f"| server {i + 1} |" + "".join(
                f" {r['rss_mb'][f's{i + 1}']:.0f}{' (leader)' if r['rss_leader'] == i + 1 else ''} |"
                for _, r in systems))
        print("| total |" + "".join(f" {sum(r['rss_mb'].values()):.0f} |" for _, r in systems))
    else:
        for k, r in systems:
            print(f"{k} failover ms: {', '.join(f'{x:.0f}' for x in r['failover_ms'])}; "
                  f"median {statistics.median(r['failover_ms']):.0f}")
            print(f"{k} RSS MB: {r['rss_mb']} (leader s{r['rss_leader']})")


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--corrald", default=os.path.join(here, "../../build-rel/app/corrald"))
    ap.add_argument("--loadgen", default=os.path.join(here, "../../build-rel/tests/bench/loadgen"))
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--election-timeout-ms", type=int, default=1000)
    ap.add_argument("--systems", default="zookeeper,corral")
    ap.add_argument("--failover-only", action="store_true",
                    help="skip the throughput runs: only the failover trials")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--keep", action="store_true", help="keep the data directories and logs")
    ap.add_argument("--no-fio", action="store_true")
    ap.add_argument("--peer-tls", action="store_true",
                    help="corral's members with mutual TLS between them (ensemble.tls)")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--json-out", default=None, help="also write every figure to this JSON file")
    args = ap.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="corral-ensemble-", dir="/var/tmp")
    os.makedirs(workdir, exist_ok=True)
    m = machine(workdir)
    m["loadavg_before"] = os.getloadavg()
    log(f"machine: {m}")
    disk = None if args.no_fio else disk_fdatasync_us(workdir)
    res = {}
    for kind in args.systems.split(","):
        res[kind] = run_system(kind, args, workdir)
    if not args.keep and not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    print_report(args, m, disk, res)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"machine": m, "disk": disk, "args": vars(args), "results": res}, f, indent=1)


if __name__ == "__main__":
    main()
