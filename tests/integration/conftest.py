"""The integration tests' harness: a fresh server per test on a free
127.0.0.1 port with a fresh data directory, stopped afterwards whatever
happens.

CORRAL_TEST_TARGET=corrald (default; binary from $CORRALD) or zookeeper (the
Debian package, standalone), so a test can be validated against the
reference. Tests of corral-only behaviour are marked corral_only (the
plugin tests/lib/corral_pytest.py leaves them out for ZooKeeper).
"""
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

import pytest

TARGET = os.environ.get("CORRAL_TEST_TARGET", "corrald")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def yaml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(yaml_value(x) for x in v) + "]"
    if isinstance(v, str):
        return '"' + v.replace('"', '\\"') + '"'
    return str(v)


def yaml_dump(d, indent=0):
    lines = []
    for k, v in d.items():
        if isinstance(v, dict):
            lines.append(" " * indent + f"{k}:")
            lines.extend(yaml_dump(v, indent + 2))
        else:
            lines.append(" " * indent + f"{k}: {yaml_value(v)}")
    return lines


def merge(base, over):
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out.get(k, {}), v) if isinstance(v, dict) else v
    return out


class Server:
    def __init__(self, tmp, overrides, target=None):
        self.target = target or TARGET
        self.tmp = tmp
        self.host = "127.0.0.1"
        self.port = free_port()
        self.hosts = f"{self.host}:{self.port}"
        self.data_dir = os.path.join(tmp, "data")
        self.log_path = os.path.join(tmp, "server.log")
        self.proc = None
        self.overrides = overrides

    def command(self):
        session = merge({"tick_time_ms": 200, "min_timeout_ms": 1000, "max_timeout_ms": 60000},
                        self.overrides.get("session", {}))
        if self.target == "zookeeper":
            cfg = os.path.join(self.tmp, "zoo.cfg")
            with open(cfg, "w") as f:
                f.write(f"tickTime={session['tick_time_ms']}\ndataDir={self.data_dir}\n"
                        f"clientPort={self.port}\nclientPortAddress=127.0.0.1\n"
                        f"minSessionTimeout={session['min_timeout_ms']}\n"
                        f"maxSessionTimeout={session['max_timeout_ms']}\n"
                        "admin.enableServer=false\n4lw.commands.whitelist=*\n")
            java = ["java", "-Dzookeeper.extendedTypesEnabled=true",
                    "-Dznode.container.checkIntervalMs=500", "-Dzookeeper.root.logger=WARN,CONSOLE"]
            classpath = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar"
            if self.overrides.get("audit_log"):
                # its audit log on, and its audit logger (slf4j -> log4j) to stdout
                props = os.path.join(self.tmp, "log4j.properties")
                with open(props, "w") as f:
                    f.write("log4j.rootLogger=WARN, CONSOLE\n"
                            "log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender\n"
                            "log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout\n"
                            "log4j.appender.CONSOLE.layout.ConversionPattern=%-5p %c{1} - %m%n\n"
                            "log4j.logger.org.apache.zookeeper.audit.Slf4jAuditLogger=INFO\n")
                java += ["-Dzookeeper.audit.enable=true", f"-Dlog4j.configuration=file:{props}"]
                classpath += ":/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar"
            return java + ["-cp", classpath, "org.apache.zookeeper.server.ZooKeeperServerMain", cfg]
        corrald = os.environ.get("CORRALD")
        if not corrald:
            pytest.skip("CORRALD is not set")
        config = merge({"data_dir": self.data_dir, "log_level": "debug",
                        "client": {"listen": [self.hosts]}, "session": session,
                        "storage": {"segment_bytes": 4194304}},
                       {k: v for k, v in self.overrides.items() if k != "session"})
        path = os.path.join(self.tmp, "corral.yaml")
        with open(path, "w") as f:
            f.write("\n".join(yaml_dump(config)) + "\n")
        return [corrald, "-c", path]

    def start(self):
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=log)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log_text()}")
            if self.answers_handshake():
                return self
            time.sleep(0.05)
        raise AssertionError(f"server did not listen within 30 s:\n{self.log_text()}")

    def answers_handshake(self):
        """Ready means serving a session (ZooKeeper accepts TCP before it does)."""
        req = (struct.pack(">i", 45) + struct.pack(">iqiq", 0, 0, 10000, 0)
               + struct.pack(">i", 16) + b"\x00" * 16 + b"\x00")
        try:
            with socket.create_connection((self.host, self.port), timeout=2) as s:
                s.sendall(req)
                got = b""
                while len(got) < 4:
                    chunk = s.recv(64)
                    if not chunk:
                        return False
                    got += chunk
                # close the probe's session so it does not linger
                s.sendall(struct.pack(">iii", 8, 1, -11))
                return True
        except OSError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


@pytest.fixture
def make_server():
    """make(**overrides) starts a server of the target; make(target="zookeeper")
    starts Apache ZooKeeper whatever the target (a reference to compare with)."""
    made = []

    def make(target=None, **overrides):
        tmp = tempfile.mkdtemp(prefix="corral-it-")
        srv = Server(tmp, overrides, target)
        made.append(srv)
        return srv.start()

    yield make
    for srv in made:
        srv.stop()
        if srv.proc and srv.proc.returncode not in (0, None, -9) and srv.target == "corrald":
            # a sanitizer report or a crash: show it
            print(srv.log_text())
        shutil.rmtree(srv.tmp, ignore_errors=True)
    bad = [s for s in made if s.target == "corrald" and s.proc and s.proc.returncode not in (0, -9)]
    assert not bad, "corrald did not exit cleanly:\n" + "\n".join(s.log_text()[-4000:] for s in bad)


@pytest.fixture
def server(make_server):
    return make_server()
