"""Start and stop the two servers under test: Apache ZooKeeper (the Debian
package) and corrald, with the same settings.

Both get: tickTime 200 ms, min/max session timeout 1000/60000 ms, extended
types (TTL) on, a container/TTL check every CONTAINER_CHECK_MS, the super digest
for "super:test", every four-letter word allowed, listening on 127.0.0.1 on a
free port.
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time

TICK_MS = 200
MIN_TIMEOUT_MS = 1000
MAX_TIMEOUT_MS = 60000
CONTAINER_CHECK_MS = 500
SUPER_AUTH = b"super:test"
SUPER_DIGEST = "super:D/InIHSb7yEEbrWz8b9l71RjZJU="  # base64(sha1("super:test"))

ZK_CLASSPATH = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar"
# a logging backend so that ZooKeeper's log says something (stderr, into server.log)
ZK_LOG_JAR = "/usr/share/java/slf4j-simple.jar"
ZK_MAIN = "org.apache.zookeeper.server.ZooKeeperServerMain"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serving(port):
    """srvr answers "Mode: ..." once the server serves requests (ZooKeeper answers
    ruok, and accepts connections, before it does)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"srvr")
            out = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                out += chunk
            return b"Mode:" in out
    except OSError:
        return False


class Server:
    name = "?"

    def __init__(self):
        self.proc = None
        self.port = None
        self.tmp = tempfile.mkdtemp(prefix="corral-diff-%s-" % self.name)
        self.log_path = os.path.join(self.tmp, "server.log")

    def _spawn(self, argv, env=None):
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s; log:\n%s" % (self.name, self.proc.returncode,
                                                                    self.log_tail()))
            if _serving(self.port):
                return
            time.sleep(0.1)
        raise RuntimeError("%s did not answer srvr in %ss; log:\n%s" % (self.name, timeout,
                                                                        self.log_tail()))

    def log_tail(self, n=4000):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()

    def cleanup(self):
        """Remove the data directory and the log (kept if DIFF_KEEP_TMP is set)."""
        if not os.environ.get("DIFF_KEEP_TMP"):
            shutil.rmtree(self.tmp, ignore_errors=True)


class ZooKeeper(Server):
    name = "zookeeper"

    def start(self):
        self.port = free_port()
        data = os.path.join(self.tmp, "data")
        os.makedirs(data)
        cfg = os.path.join(self.tmp, "zoo.cfg")
        with open(cfg, "w") as f:
            f.write("\n".join([
                "tickTime=%d" % TICK_MS,
                "minSessionTimeout=%d" % MIN_TIMEOUT_MS,
                "maxSessionTimeout=%d" % MAX_TIMEOUT_MS,
                "dataDir=%s" % data,
                "clientPort=%d" % self.port,
                "clientPortAddress=127.0.0.1",
                "admin.enableServer=false",
                "4lw.commands.whitelist=*",
                "forceSync=no",
                "",
            ]))
        java = os.environ.get("JAVA", "/usr/bin/java")
        cp = os.environ.get("ZK_CLASSPATH", ZK_CLASSPATH)
        if os.path.exists(ZK_LOG_JAR):
            cp += ":" + ZK_LOG_JAR
        self._spawn([
            java, "-Xmx256m", "-cp", cp,
            "-Dzookeeper.extendedTypesEnabled=true",
            "-Dznode.container.checkIntervalMs=%d" % CONTAINER_CHECK_MS,
            "-Dzookeeper.DigestAuthenticationProvider.superDigest=%s" % SUPER_DIGEST,
            ZK_MAIN, cfg,
        ])
        self.wait_ready()
        return self


class Corrald(Server):
    name = "corrald"

    def __init__(self, binary):
        self.binary = binary
        super().__init__()

    def start(self):
        self.port = free_port()
        data = os.path.join(self.tmp, "data")
        os.makedirs(data)
        cfg = os.path.join(self.tmp, "corral.yaml")
        with open(cfg, "w") as f:
            f.write("\n".join([
                "data_dir: %s" % data,
                "log_level: debug",
                "client:",
                "  listen: [\"127.0.0.1:%d\"]" % self.port,
                "  four_letter_words: [conf, cons, crst, dirs, dump, envi, ruok, srst, srvr, stat,"
                " wchc, wchp, wchs, mntr, isro]",
                "session:",
                "  tick_time_ms: %d" % TICK_MS,
                "  min_timeout_ms: %d" % MIN_TIMEOUT_MS,
                "  max_timeout_ms: %d" % MAX_TIMEOUT_MS,
                "znode:",
                "  extended_types: true",
                "  container_check_interval_ms: %d" % CONTAINER_CHECK_MS,
                "auth:",
                "  super_digest: \"%s\"" % SUPER_DIGEST,
                "",
            ]))
        self._spawn([self.binary, "-c", cfg])
        self.wait_ready(timeout=30)
        return self
