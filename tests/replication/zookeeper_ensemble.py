"""An Apache ZooKeeper 3.8 ensemble on 127.0.0.1, the reference that the
compatibility tests hold corral's ensembles to (Debian's zookeeper package,
/usr/share/java/zookeeper.jar, run with the JVM at /usr/bin/java).

ZooKeeperCluster(workdir, n) has the part of cluster.Cluster's interface
that those tests use: servers by id with client_port, client_addr, pause()
(SIGSTOP), resume(), kill(), alive(), mntr(), srvr(), mode(); start(),
wait_for_leader(), hosts(), stop_all(), kill_all(), log_report(). Each
server has its own directory (zoo.cfg, myid, data) and its log.

The configuration is what an operator who wants ZooKeeper's features
writes: server.N=127.0.0.1:QUORUM:ELECTION:participant;127.0.0.1:CLIENT
lines, reconfigEnabled=true, standaloneEnabled=false, every four-letter
word, a super digest (SUPER_DIGEST, for reconfig's WRITE on
/zookeeper/config) and -Dreadonlymode.enabled=true. tickTime is short
(200 ms; syncLimit 5 ticks) so that a follower notices a lost leader
within a second, as a corral ensemble does with its election timeout.
"""
import os
import signal
import subprocess

from cluster import four_letter, free_ports, parse_mntr, parse_srvr, tail, wait_until

JAVA = os.environ.get("JAVA", "/usr/bin/java")
ZOOKEEPER_JAR = "/usr/share/java/zookeeper.jar"
LOGGER_JAR = "/usr/share/java/slf4j-simple.jar"
TICK_MS = 200


def available():
    """Why a ZooKeeper ensemble cannot run here, or None when it can."""
    if not os.access(JAVA, os.X_OK):
        return f"{JAVA} is missing (Debian: default-jre-headless)"
    if not os.path.exists(ZOOKEEPER_JAR):
        return f"{ZOOKEEPER_JAR} is missing (Debian: zookeeper)"
    return None


class ZooKeeperServer:
    def __init__(self, cluster, sid, client_port, quorum_port, election_port):
        self.cluster = cluster
        self.id = sid
        self.client_port = client_port
        self.quorum_port = quorum_port
        self.election_port = election_port
        self.dir = os.path.join(cluster.workdir, f"zk{sid}")
        self.proc = None
        self.state = "new"
        self.runs = 0
        self._log_file = None

    def __repr__(self):
        return f"<zookeeper {self.id} :{self.client_port} {self.state}>"

    @property
    def client_addr(self):
        return f"127.0.0.1:{self.client_port}"

    def server_line(self):
        return (f"server.{self.id}=127.0.0.1:{self.quorum_port}:{self.election_port}:participant;"
                f"127.0.0.1:{self.client_port}")

    def log_path(self, run=None):
        return os.path.join(self.dir, f"run{run or self.runs}.log")

    def spawn(self):
        c = self.cluster
        data = os.path.join(self.dir, "data")
        os.makedirs(data, exist_ok=True)
        with open(os.path.join(data, "myid"), "w") as f:
            f.write(f"{self.id}\n")
        cfg = os.path.join(self.dir, "zoo.cfg")
        if self.runs == 0:
            with open(cfg, "w") as f:
                f.write(f"tickTime={TICK_MS}\ninitLimit=10\nsyncLimit=5\ndataDir={data}\n"
                        "standaloneEnabled=false\nreconfigEnabled=true\n"
                        "4lw.commands.whitelist=*\nadmin.enableServer=false\n"
                        "localSessionsEnabled=true\nlocalSessionsUpgradingEnabled=true\n"
                        f"minSessionTimeout={2 * TICK_MS}\nmaxSessionTimeout=60000\n")
                for s in c.servers.values():
                    f.write(s.server_line() + "\n")
        self.runs += 1
        self._log_file = open(self.log_path(), "wb")
        argv = [JAVA, "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Dreadonlymode.enabled=true",
                f"-Dzookeeper.DigestAuthenticationProvider.superDigest={c.super_digest}",
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
                "-Dorg.slf4j.simpleLogger.showDateTime=true",
                "-cp", f"{ZOOKEEPER_JAR}:{LOGGER_JAR}",
                "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg]
        self.proc = subprocess.Popen(argv, cwd=self.dir, stdin=subprocess.DEVNULL,
                                     stdout=self._log_file, stderr=subprocess.STDOUT)
        self.state = "running"
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def alive(self):
        return self.running() and self.state == "running"

    def pause(self):
        assert self.alive(), f"server {self.id}: {self.state}"
        self.proc.send_signal(signal.SIGSTOP)
        self.state = "paused"

    def resume(self):
        assert self.running() and self.state == "paused", f"server {self.id}: {self.state}"
        self.proc.send_signal(signal.SIGCONT)
        self.state = "running"

    def kill(self):
        if self.running():
            self.proc.kill()
            self.proc.wait(30)
        self.state = "killed"
        self._close_log()

    def stop(self, timeout=30):
        if self.running():
            if self.state == "paused":
                self.resume()
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        self.state = "stopped"
        self._close_log()

    def _close_log(self):
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def mntr(self, timeout=3.0):
        return parse_mntr(four_letter(self.client_port, "mntr", timeout))

    def srvr(self, timeout=3.0):
        return parse_srvr(four_letter(self.client_port, "srvr", timeout))

    def mode(self):
        """zk_server_state; None when the server does not answer or serves
        no requests (ZooKeeper answers mntr only while it serves)."""
        if not self.alive():
            return None
        try:
            return self.mntr().get("zk_server_state")
        except OSError:
            return None

    def log(self, run=None):
        try:
            with open(self.log_path(run), "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""


class ZooKeeperCluster:
    target = "zookeeper"

    def __init__(self, workdir, n, super_digest):
        self.workdir = str(workdir)
        self.n = n
        self.super_digest = super_digest
        ports = free_ports(3 * n)
        self.servers = {i: ZooKeeperServer(self, i, *ports[3 * (i - 1):3 * i])
                        for i in range(1, n + 1)}

    def __getitem__(self, sid):
        return self.servers[sid]

    def __iter__(self):
        return iter(self.servers.values())

    @property
    def ids(self):
        return list(self.servers)

    def start(self, timeout=90):
        for s in self:
            s.spawn()
        return self.wait_for_leader(timeout)

    def leader(self):
        """The id of the one server in mode leader while every other
        answering server follows (ZooKeeper names no leader id in mntr)."""
        modes = {s.id: s.mode() for s in self if s.alive()}
        leaders = [sid for sid, m in modes.items() if m == "leader"]
        if len(leaders) != 1 or any(m not in ("leader", "follower", "observer")
                                    for m in modes.values()):
            return None
        return leaders[0]

    def wait_for_leader(self, timeout=90, not_id=None):
        def pred():
            for s in self:
                if s.proc is not None and s.proc.poll() is not None:
                    raise AssertionError(f"zookeeper {s.id} exited with {s.proc.returncode}:\n"
                                         + tail(s.log(), 4000))
            lid = self.leader()
            return lid if lid is not None and lid != not_id else None
        return wait_until(pred, timeout, interval=0.1,
                          what="a ZooKeeper leader that every running server follows",
                          detail=self.describe)

    def describe(self):
        return ", ".join(f"{s.id}:{s.mode() if s.alive() else s.state}" for s in self)

    def hosts(self, first=None, only=None):
        ids = self.ids if only is None else list(only)
        if first is not None:
            k = ids.index(first)
            ids = ids[k:] + ids[:k]
        return ",".join(self.servers[i].client_addr for i in ids)

    def stop_all(self, timeout=30):
        for s in self:
            if s.running():
                if s.state == "paused":
                    s.resume()
                s.proc.terminate()
        out = {}
        for s in self:
            if s.proc is None:
                continue
            try:
                s.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                s.proc.kill()
                s.proc.wait(30)
            s.state = "stopped"
            s._close_log()
            out[s.id] = 0		# a JVM's exit status on SIGTERM says nothing of interest
        return out

    def kill_all(self):
        for s in self:
            s.kill()

    def sanitizer_reports(self):
        return []

    def log_report(self, per_log=6000):
        parts = []
        for s in self:
            for run in range(1, s.runs + 1):
                parts.append(f"===== zookeeper {s.id} run {run}: {s.log_path(run)} =====\n"
                             + tail(s.log(run), per_log))
        return "\n".join(parts)

