"""The tests' one harness for servers: start, stop, kill, pause and restart
corrald (and, as the reference to compare with, Apache ZooKeeper
standalone), on free ports and fresh data directories, each run logging to
its own file. Every suite builds on it: integration and ctl (a server per
test), durability (a data directory restarted and crashed), replication
(lib/ensembles.py puts members of this class together), differential.

- Ports: free_port() / free_ports(n) hand out 127.0.0.1 ports outside the
  kernel's ephemeral range, never twice in one process (a client of a
  killed server can never reach a new one by mistake, and a client
  reconnecting in a tight loop can never be given a listening port).
- Four-letter words: four_letter(), parse_mntr(), parse_srvr(), mntr().
- wait_until(): every wait polls a condition with a deadline and names
  what it waited for when it gives up; nothing sleeps in its place.
- make_kazoo() / stop_kazoo(): kazoo clients with a short reconnect
  backoff, stopped in parallel.
- Corrald: one corrald process; ZooKeeper: one Apache ZooKeeper.

The corrald binary comes from $CORRALD (meson sets it), else
build-test/app/corrald of this checkout.
"""
import os
import random
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
EXIT_DATA_DIR = 74
EXIT_CONFIG = 78

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "SUMMARY: UndefinedBehaviorSanitizer")

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
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
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
            if p in _used_ports or not _bindable(p):
                continue
            _used_ports.add(p)
        out.append(p)
    raise RuntimeError(f"could not find {count} free ports outside {low}-{high}")


def free_port():
    return free_ports(1)[0]


# ------------------------------------------------------- four-letter words --

def four_letter(port, word, timeout=5.0, host="127.0.0.1"):
    """Sends a four-letter word, returns the whole answer (the server closes
    after it)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
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


def mntr(port, timeout=5.0, host="127.0.0.1"):
    return parse_mntr(four_letter(port, "mntr", timeout, host))


def serves_sessions(host, port, timeout=2):
    """A ConnectRequest is answered (then the probe's session is closed):
    ready in the sense a client cares about (ZooKeeper accepts connections,
    and answers ruok, before it serves sessions)."""
    req = (struct.pack(">i", 45) + struct.pack(">iqiq", 0, 0, 10000, 0)
           + struct.pack(">i", 16) + b"\x00" * 16 + b"\x00")
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(req)
            got = b""
            while len(got) < 4:
                chunk = s.recv(64)
                if not chunk:
                    return False
                got += chunk
            s.sendall(struct.pack(">iii", 8, 1, -11))
            return True
    except OSError:
        return False


def answers_ruok(host, port):
    try:
        with socket.create_connection((host, port), timeout=1) as s:
            s.settimeout(2)
            s.sendall(b"ruok")
            return s.recv(16) == b"imok"
    except OSError:
        return False


def wait_until(pred, timeout, interval=0.05, what="condition", detail=None):
    """Polls pred() until it returns something true (and returns it), or
    raises AssertionError naming `what` (and detail(), when given) once
    `timeout` seconds have passed."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= end:
            extra = f"\n{detail()}" if detail else ""
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what}{extra}")
        time.sleep(interval)


def rss_bytes(pid):
    """A process's resident set size now (VmRSS)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def tail(text, n):
    return text if len(text) <= n else "...\n" + text[-n:]


# ------------------------------------------------------------------ kazoo ---

def make_kazoo(hosts, timeout=10.0, randomize=False, command_retry=None):
    """A kazoo client (not started) that tries `hosts` in the order given,
    reconnects with a short backoff, and by default does not retry commands
    by itself (a test must see every ConnectionLoss; recipes need retries:
    pass command_retry)."""
    from kazoo.client import KazooClient
    return KazooClient(hosts=hosts, timeout=timeout, randomize_hosts=randomize,
                       connection_retry={"max_tries": -1, "delay": 0.05, "backoff": 1,
                                         "max_jitter": 0.01, "max_delay": 0.1},
                       command_retry=command_retry or {"max_tries": 0})


def stop_kazoo(clients, timeout=30, raise_stuck=True):
    """Stops clients in parallel (each stop() may wait for a reconnect
    attempt to end); raises when one does not stop in time (unless
    raise_stuck is false: a teardown after a failure)."""
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


# ---------------------------------------------------------------- servers ---

def merge(base, over):
    """base with over's keys laid on it, dictionaries merged key by key."""
    out = dict(base)
    for k, v in (over or {}).items():
        out[k] = merge(out.get(k) or {}, v) if isinstance(v, dict) else v
    return out


def clean_env(extra=None):
    """The environment for a server: it logs to stderr (our file), not to
    journald, and is no systemd service; fault switches only when asked."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("JOURNAL_STREAM", "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID",
                        "LISTEN_FDNAMES", "CREDENTIALS_DIRECTORY")
           and not k.startswith("CORRAL_FAULT_")}
    env.update(extra or {})
    return env


class ServerExited(AssertionError):
    def __init__(self, server, rc):
        self.server = server
        self.rc = rc
        super().__init__(f"{server.name} exited with status {rc} before it was ready; "
                         f"its log:\n{tail(server.log(), 4000)}")


class Process:
    """A server process, run after run. state: 'new', 'running', 'paused',
    'stopped' (SIGTERM, exited), 'killed' (SIGKILL). Each run logs to
    WORKDIR/NAME-runN.log, with WORKDIR its working directory; `exits`
    lists (run, how, status) of every run that ended."""

    ready_probe = "ruok"    # or "session"

    def __init__(self, workdir, name, host="127.0.0.1", port=None):
        self.workdir = str(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.name = name
        self.host = host
        self.port = port
        self.fixed_port = port is not None
        self.proc = None
        self.runs = 0
        self.state = "new"
        self.exits = []
        self.log_path = None
        self.spawned_at = self.ready_at = None
        self.extra_env = {}     # for every run of this server (a test's fault switches)
        self._log_file = None

    tmp = property(lambda self: self.workdir)
    started_at = property(lambda self: self.spawned_at)

    @property
    def hosts(self):
        return f"{self.host}:{self.port}"

    def __repr__(self):
        return f"<{self.name} {self.hosts} {self.state}>"

    def argv(self):
        raise NotImplementedError

    def prepare(self, port=None):
        """Before each run: its port (`port`, else the fixed one, else a new
        one), its files."""
        if port is not None:
            self.port = port
        elif not self.fixed_port or self.port is None:
            self.port = free_port()

    def spawn(self, env=None, port=None):
        """Starts a run without waiting for it to be ready (on `port`, when
        given, for this run)."""
        assert not self.running(), f"{self.name} is running"
        self.runs += 1
        self.prepare(port)
        self.log_path = os.path.join(self.workdir, f"{self.name}-run{self.runs}.log")
        self._log_file = open(self.log_path, "wb")
        self.spawned_at = time.monotonic()
        self.ready_at = None
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                     stdout=self._log_file, stderr=subprocess.STDOUT,
                                     env=clean_env(merge(self.extra_env, env)),
                                     cwd=self.workdir)
        self.state = "running"
        return self

    def is_ready(self):
        if self.ready_probe == "session":
            return serves_sessions(self.host, self.port)
        return answers_ruok(self.host, self.port)

    def wait_ready(self, timeout=60):
        """Polls until the run is ready (ruok answered, or a session served);
        returns the seconds since spawn. Raises ServerExited if it exits."""
        end = time.monotonic() + timeout
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self._ended("exited", rc)
                self.state = "stopped"
                raise ServerExited(self, rc)
            if self.is_ready():
                self.ready_at = time.monotonic()
                return self.ready_at - self.spawned_at
            if time.monotonic() >= end:
                raise AssertionError(f"{self.name} was not ready within {timeout} s; "
                                     f"its log:\n{tail(self.log(), 4000)}")
            time.sleep(0.02)

    def start(self, env=None, timeout=60, port=None):
        self.spawn(env, port)
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

    def wait_exit(self, timeout=30):
        rc = self.proc.wait(timeout)
        if self._log_file is not None:
            self._ended("exited", rc)
            self.state = "stopped"
        return rc

    def stop(self, timeout=30):
        """SIGTERM and wait; returns the exit status. A server that does not
        stop in time is killed and the test fails."""
        if not self.running():
            if self.proc is not None and self._log_file is not None:
                self._ended("exited", self.proc.returncode)
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
            raise AssertionError(f"{self.name} did not stop within {timeout} s of SIGTERM")
        self._ended("SIGTERM", rc)
        self.state = "stopped"
        return rc

    def kill(self):
        """SIGKILL (a crash) and reap."""
        if self.running():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)
            self._ended("SIGKILL", self.proc.returncode)
        elif self.proc is not None and self._log_file is not None:
            self._ended("exited", self.proc.returncode)
        self.state = "killed"

    def pause(self):
        assert self.alive(), f"{self.name}: {self.state}"
        self.proc.send_signal(signal.SIGSTOP)
        self.state = "paused"

    def resume(self):
        assert self.running() and self.state == "paused", f"{self.name}: {self.state}"
        self.proc.send_signal(signal.SIGCONT)
        self.state = "running"

    def restart(self, timeout=60):
        """SIGTERM if running, then start again."""
        if self.running():
            self.stop()
        return self.start(timeout=timeout)

    # -- its logs

    def log(self, run=None):
        """One run's log (the last by default)."""
        run = run or self.runs
        try:
            with open(os.path.join(self.workdir, f"{self.name}-run{run}.log"), "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def logs(self):
        """Every run's log, oldest first."""
        return [self.log(r) for r in range(1, self.runs + 1)]

    def log_text(self):
        """Every run's log as one text."""
        return "".join(self.logs())

    def sanitizer_reports(self):
        bad = []
        for run, text in enumerate(self.logs(), 1):
            for mark in SANITIZER_MARKS:
                k = text.find(mark)
                if k >= 0:
                    bad.append(f"{self.name} run {run}:\n{text[max(0, k - 200):k + 4000]}")
                    break
        return bad

    # -- what it says about itself

    def four_letter(self, word, timeout=5.0):
        return four_letter(self.port, word, timeout, self.host)

    def mntr(self, timeout=3.0):
        return parse_mntr(self.four_letter("mntr", timeout))

    def srvr(self, timeout=3.0):
        return parse_srvr(self.four_letter("srvr", timeout))

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


class Corrald(Process):
    """One corrald. config: corral.yaml's keys as a dict, merged over
    {data_dir, log_level info, client.listen [host:port]}. A new port for
    every run unless `port` is given (fixed_port)."""

    def __init__(self, workdir, name="corrald", config=None, data_dir=None, host="127.0.0.1",
                 port=None, argv_prefix=(), ready="ruok", binary=None):
        super().__init__(workdir, name, host, port)
        self.config = dict(config or {})
        self.data_dir = str(data_dir) if data_dir else os.path.join(self.workdir, f"{name}-data")
        self.argv_prefix = list(argv_prefix)
        self.ready_probe = ready
        self.binary = os.path.abspath(binary or CORRALD)
        self.config_path = None

    def config_dict(self):
        return merge({"data_dir": self.data_dir, "log_level": "info",
                      "client": {"listen": [self.hosts]}}, self.config)

    def prepare(self, port=None):
        super().prepare(port)
        os.makedirs(self.data_dir, exist_ok=True)
        self.config_path = os.path.join(self.workdir, f"{self.name}-run{self.runs}.yaml")
        with open(self.config_path, "w") as f:
            yaml.safe_dump(self.config_dict(), f, sort_keys=False)

    def argv(self):
        return self.argv_prefix + [self.binary, "-c", self.config_path]

    def rewrite_config(self, changes):
        """Lays changes over the configuration and writes it again, to the
        file the running corrald reads (then SIGHUP it to reload)."""
        self.config = merge(self.config, changes)
        with open(self.config_path, "w") as f:
            yaml.safe_dump(self.config_dict(), f, sort_keys=False)


def run_corrald(args, timeout=60, env=None):
    """corrald run as a command (--verify, --version, ...): its CompletedProcess."""
    return subprocess.run([CORRALD] + list(args), capture_output=True, text=True,
                          timeout=timeout, env=clean_env(env))


ZK_CLASSPATH = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar"
ZK_LOG_JAR = "/usr/share/java/slf4j-simple.jar"     # a backend, so its log says something
ZK_MAIN = "org.apache.zookeeper.server.ZooKeeperServerMain"


class ZooKeeper(Process):
    """Apache ZooKeeper (Debian's package), standalone, on 127.0.0.1.
    properties: zoo.cfg lines beyond dataDir and the client port;
    system: -D properties; classpath: instead of zookeeper.jar with
    slf4j-simple (another logging backend). Ready when it serves a session."""

    ready_probe = "session"

    def __init__(self, workdir, name="zookeeper", properties=None, system=None, port=None,
                 classpath=None):
        super().__init__(workdir, name, "127.0.0.1", port)
        self.classpath = classpath
        self.data_dir = os.path.join(self.workdir, f"{name}-data")
        self.properties = merge({"tickTime": 2000, "admin.enableServer": "false",
                                 "4lw.commands.whitelist": "*"}, properties)
        self.system = dict(system or {})

    def prepare(self, port=None):
        super().prepare(port)
        os.makedirs(self.data_dir, exist_ok=True)
        self.config_path = os.path.join(self.workdir, f"{self.name}.cfg")
        props = merge(self.properties, {"dataDir": self.data_dir, "clientPort": self.port,
                                        "clientPortAddress": "127.0.0.1"})
        with open(self.config_path, "w") as f:
            f.write("".join(f"{k}={v}\n" for k, v in props.items()))

    def argv(self):
        cp = self.classpath
        if cp is None:
            cp = os.environ.get("ZK_CLASSPATH", ZK_CLASSPATH)
            if os.path.exists(ZK_LOG_JAR):
                cp += ":" + ZK_LOG_JAR
        return ([os.environ.get("JAVA", "java"), "-Xmx256m", "-cp", cp]
                + [f"-D{k}={v}" for k, v in self.system.items()] + [ZK_MAIN, self.config_path])
