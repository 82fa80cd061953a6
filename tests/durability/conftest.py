"""Fixtures for the durability tests: run corrald on a data directory, kill
it, restart it, look at its log; walk the write-ahead log's records.

Self-contained on purpose (no dependency on tests/integration). Every wait
is bounded; every corrald started here is killed at teardown, and every
kazoo client stopped.

The binary comes from $CORRALD (set by meson), else build-test/app/corrald.
"""
import os
import signal
import socket
import struct
import subprocess
import threading
import time
import zlib

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
CORRALD = os.environ.get("CORRALD") or os.path.join(HERE, "..", "..", "build-test", "app",
                                                      "corrald")

EXIT_DATA_DIR = 74

_used_ports = set()
_ports_lock = threading.Lock()


def free_port():
    """A free 127.0.0.1 port never handed out before in this process, so a
    client of an old (killed) corrald can never reach a new one by mistake."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with _ports_lock:
            if port not in _used_ports:
                _used_ports.add(port)
                return port
    raise RuntimeError("no fresh free port")


def four_letter(port, word, timeout=10):
    """Sends a four-letter word, returns the whole answer (corrald closes after it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(word.encode())
        chunks = []
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks).decode()


def mntr(port):
    out = {}
    for line in four_letter(port, "mntr").splitlines():
        if "\t" in line:
            k, v = line.split("\t", 1)
            out[k] = v
    return out


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Polls pred() until it is true (returns its value) or the deadline passes."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Corrald:
    """One corrald on one data directory; each start() may use a new port."""

    def __init__(self, workdir, data_dir, config=None, name="corrald"):
        self.workdir = str(workdir)
        self.data_dir = str(data_dir)
        self.config = config or {}
        self.name = name
        self.proc = None
        self.port = None
        self.runs = 0
        self.log_path = None
        self.spawned_at = None
        self.ready_at = None
        self.config_path = None

    @property
    def hosts(self):
        return f"127.0.0.1:{self.port}"

    def _write_config(self):
        cfg = {"data_dir": self.data_dir, "log_level": "info",
               "client": {"listen": [self.hosts]}}
        for k, v in self.config.items():
            if isinstance(v, dict):
                cfg.setdefault(k, {}).update(v)
            else:
                cfg[k] = v
        self.config_path = os.path.join(self.workdir, f"{self.name}-{self.runs}.yaml")
        with open(self.config_path, "w") as f:
            yaml.safe_dump(cfg, f)

    def spawn(self, env=None, port=None):
        """Starts corrald without waiting for it to be ready."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.runs += 1
        self.port = port or free_port()
        self._write_config()
        self.log_path = os.path.join(self.workdir, f"{self.name}-{self.runs}.log")
        full_env = dict(os.environ)
        full_env.pop("JOURNAL_STREAM", None)	# log to stderr, not journald
        full_env.pop("NOTIFY_SOCKET", None)
        for k in ("CORRAL_FAULT_FSYNC_FAIL_AT", "CORRAL_FAULT_SNAPSHOT_STOP"):
            full_env.pop(k, None)
        if env:
            full_env.update(env)
        self._log_file = open(self.log_path, "wb")
        self.spawned_at = time.monotonic()
        self.ready_at = None
        self.proc = subprocess.Popen([CORRALD, "-c", self.config_path], stdin=subprocess.DEVNULL,
                                     stdout=self._log_file, stderr=subprocess.STDOUT, env=full_env)
        return self

    def start(self, env=None, port=None, timeout=60):
        self.spawn(env=env, port=port)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=60):
        """Ready = accepts a connection and answers ruok with imok."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            rc = self.proc.poll()
            if rc is not None:
                raise AssertionError(f"{self.name} exited with status {rc} before it was "
                                     f"ready; its log:\n{self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.settimeout(2)
                    s.sendall(b"ruok")
                    if s.recv(16) == b"imok":
                        self.ready_at = time.monotonic()
                        return self.ready_at - self.spawned_at
            except OSError:
                pass
            time.sleep(0.02)
        raise AssertionError(f"{self.name} was not ready within {timeout} s; its log:\n{self.log()}")

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout=30):
        try:
            return self.proc.wait(timeout)
        finally:
            self._close_log()

    def _close_log(self):
        f = getattr(self, "_log_file", None)
        if f and self.proc.poll() is not None:
            f.close()
            self._log_file = None

    def stop(self, timeout=30):
        """SIGTERM and wait; returns the exit status."""
        if not self.running():
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.wait_exit(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not stop within {timeout} s of SIGTERM")

    def kill(self):
        """SIGKILL (a crash) and reap."""
        if self.running():
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(30)
            self._close_log()

    def log(self):
        if not self.log_path or not os.path.exists(self.log_path):
            return ""
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def logs(self):
        """Every run's log, oldest first."""
        out = []
        for i in range(1, self.runs + 1):
            p = os.path.join(self.workdir, f"{self.name}-{i}.log")
            if os.path.exists(p):
                with open(p, "rb") as f:
                    out.append(f.read().decode(errors="replace"))
        return out


@pytest.fixture
def corrald(tmp_path):
    """Factory: corrald(data_dir=None, config=None, name=...) -> Corrald (not started)."""
    made = []

    def make(data_dir=None, config=None, name=None):
        name = name or f"corrald{len(made)}"
        d = data_dir or (tmp_path / f"{name}-data")
        c = Corrald(tmp_path, d, config=config, name=name)
        made.append(c)
        return c

    yield make
    for c in made:
        if c.proc is not None and c.proc.poll() is None:
            c.proc.kill()
            c.proc.wait(30)


def run_corrald(args, timeout=60, env=None):
    full_env = dict(os.environ)
    full_env.pop("JOURNAL_STREAM", None)
    if env:
        full_env.update(env)
    return subprocess.run([CORRALD] + list(args), capture_output=True, text=True,
                          timeout=timeout, env=full_env)


def verify(data_dir):
    return run_corrald(["--verify", str(data_dir)])


# kazoo clients: short reconnect backoff so that stop() after a crash is quick.

def make_kazoo(hosts, timeout=10.0):
    from kazoo.client import KazooClient
    return KazooClient(hosts=hosts, timeout=timeout,
                       connection_retry={"max_tries": -1, "delay": 0.05, "backoff": 1,
                                         "max_jitter": 0.01, "max_delay": 0.1},
                       command_retry={"max_tries": 0})


def stop_kazoo(clients, timeout=30):
    """Stops clients in parallel (each stop() may wait for a reconnect
    attempt to end); raises when one does not stop in time."""
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
    if stuck:
        raise AssertionError(f"{stuck} kazoo clients did not stop within {timeout} s")


@pytest.fixture
def kazoo():
    """Factory: kazoo(hosts, timeout=10) -> a started KazooClient, stopped at teardown."""
    made = []

    def make(hosts, timeout=10.0, start_timeout=15):
        zk = make_kazoo(hosts, timeout)
        made.append(zk)
        zk.start(timeout=start_timeout)
        return zk

    yield make
    stop_kazoo(made)


# The write-ahead log's format (storage/wal.h, storage/wal.c).

SEGMENT_HEADER = 64
RECORD_HEADER = 40


class Record:
    __slots__ = ("offset", "length", "crc", "index", "term", "batch", "type", "payload_len",
                 "padded")

    def __repr__(self):
        return (f"Record(offset={self.offset}, index={self.index}, batch={self.batch}, "
                f"type={self.type}, length={self.length})")


def segment_files(data_dir):
    d = os.path.join(str(data_dir), "wal")
    names = sorted(n for n in os.listdir(d) if len(n) == 20 and n.endswith(".seg"))
    return [os.path.join(d, n) for n in names]


def read_records(path, check=True):
    """Walks a segment's records as corrald does; with check, every one must
    check out (length, crc32, payload length)."""
    with open(path, "rb") as f:
        b = f.read()
    assert b[:8] == b"CORRALWL", f"{path}: not a segment"
    assert struct.unpack(">I", b[60:64])[0] == zlib.crc32(b[:60]), f"{path}: header crc"
    first = struct.unpack(">Q", b[40:48])[0]
    recs = []
    off = SEGMENT_HEADER
    while off + RECORD_HEADER <= len(b):
        length, crc = struct.unpack(">II", b[off:off + 8])
        if length == 0:
            break
        r = Record()
        r.offset, r.length, r.crc = off, length, crc
        r.index, r.term, r.batch = struct.unpack(">QQQ", b[off + 8:off + 32])
        r.type = b[off + 32]
        r.payload_len = struct.unpack(">I", b[off + 36:off + 40])[0]
        r.padded = (length + 7) & ~7
        if check:
            assert length >= RECORD_HEADER and off + length <= len(b), f"{path}@{off}: length"
            assert zlib.crc32(b[off + 8:off + length]) == crc, f"{path}@{off}: crc"
            assert r.payload_len == length - RECORD_HEADER, f"{path}@{off}: payload length"
            assert r.index == (recs[-1].index + 1 if recs else first), f"{path}@{off}: index"
        recs.append(r)
        off += r.padded
    return recs


def all_records(data_dir):
    """[(segment path, [Record...])...] in index order."""
    return [(p, read_records(p)) for p in segment_files(data_dir)]


def file_digests(directory):
    out = {}
    for root, _, files in os.walk(str(directory)):
        for n in files:
            p = os.path.join(root, n)
            with open(p, "rb") as f:
                out[os.path.relpath(p, str(directory))] = zlib.crc32(f.read())
    return out
