"""An Apache ZooKeeper 3.8 ensemble on 127.0.0.1, the reference that the
compatibility tests hold corral's ensembles to (Debian's zookeeper package,
/usr/share/java/zookeeper.jar, run with the JVM at /usr/bin/java).

ZooKeeperCluster(workdir, n) has the part of ensembles.Cluster's interface
that those tests use: servers by id with client_port, client_addr, pause()
(SIGSTOP), resume(), kill(), alive(), mntr(), srvr(), mode(); start(),
wait_for_leader(), hosts(), stop_all(), kill_all(), log_report(). Each
server (a harness.Process) has its own directory (zoo.cfg, myid, data)
and a log per run; extra_cfg and jvm_args add to every server's zoo.cfg and
command line (quorum authentication, say).

The configuration is what an operator who wants ZooKeeper's features
writes: server.N=127.0.0.1:QUORUM:ELECTION:participant;127.0.0.1:CLIENT
lines, reconfigEnabled=true, standaloneEnabled=false, every four-letter
word, a super digest (SUPER_DIGEST, for reconfig's WRITE on
/zookeeper/config) and -Dreadonlymode.enabled=true. tickTime is short
(200 ms; syncLimit 5 ticks) so that a follower notices a lost leader
within a second, as a corral ensemble does with its election timeout.
"""
import os

from harness import Process, free_ports, tail, wait_until

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


class ZooKeeperServer(Process):
    """One member: harness.Process named zk<id> in its own directory
    (zoo.cfg, data/myid, a log per run)."""

    def __init__(self, cluster, sid, client_port, quorum_port, election_port):
        super().__init__(os.path.join(cluster.workdir, f"zk{sid}"), f"zk{sid}",
                         port=client_port)
        self.cluster = cluster
        self.id = sid
        self.quorum_port = quorum_port
        self.election_port = election_port
        self.dir = self.workdir

    def __repr__(self):
        return f"<zookeeper {self.id} :{self.client_port} {self.state}>"

    client_port = property(lambda self: self.port)
    client_addr = property(lambda self: self.hosts)

    def server_line(self):
        return (f"server.{self.id}=127.0.0.1:{self.quorum_port}:{self.election_port}:participant;"
                f"127.0.0.1:{self.client_port}")

    def prepare(self, port=None):
        c = self.cluster
        data = os.path.join(self.dir, "data")
        os.makedirs(data, exist_ok=True)
        with open(os.path.join(data, "myid"), "w") as f:
            f.write(f"{self.id}\n")
        self.config_path = os.path.join(self.dir, "zoo.cfg")
        if self.runs == 1:
            with open(self.config_path, "w") as f:
                f.write(f"tickTime={TICK_MS}\ninitLimit=10\nsyncLimit=5\ndataDir={data}\n"
                        "standaloneEnabled=false\nreconfigEnabled=true\n"
                        "4lw.commands.whitelist=*\nadmin.enableServer=false\n"
                        "localSessionsEnabled=true\nlocalSessionsUpgradingEnabled=true\n"
                        f"minSessionTimeout={2 * TICK_MS}\nmaxSessionTimeout=60000\n")
                f.write(c.extra_cfg)
                for s in c.servers.values():
                    f.write(s.server_line() + "\n")

    def argv(self):
        return [JAVA, "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Dreadonlymode.enabled=true", *self.cluster.jvm_args,
                f"-Dzookeeper.DigestAuthenticationProvider.superDigest={self.cluster.super_digest}",
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
                "-Dorg.slf4j.simpleLogger.showDateTime=true",
                "-cp", self.cluster.classpath,
                "org.apache.zookeeper.server.quorum.QuorumPeerMain", self.config_path]

    def stop(self, timeout=30):
        """SIGTERM (a JVM's exit status then says nothing of interest)."""
        try:
            super().stop(timeout)
        except AssertionError:
            pass
        self.state = "stopped"


class ZooKeeperCluster:
    target = "zookeeper"

    def __init__(self, workdir, n, super_digest, extra_cfg="", jvm_args=(), classpath_extra=()):
        self.workdir = str(workdir)
        self.n = n
        self.super_digest = super_digest
        self.extra_cfg = extra_cfg      # more zoo.cfg lines (quorum.auth.*)
        self.jvm_args = list(jvm_args)  # more -D options (a JAAS file)
        self.classpath = ":".join([ZOOKEEPER_JAR, LOGGER_JAR, *classpath_extra])
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
            s.spawn()		# ready when a leader is found
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
            if s.proc is not None:
                s.stop(timeout)
                out[s.id] = 0	# a JVM's exit status on SIGTERM says nothing of interest
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
                parts.append(f"===== zookeeper {s.id} run {run}: {s.name}-run{run}.log =====\n"
                             + tail(s.log(run), per_log))
        return "\n".join(parts)

