"""The integration tests' fixtures: a fresh server per test on a free
127.0.0.1 port with a fresh data directory, stopped afterwards whatever
happens (the servers themselves are tests/lib/harness.py's).

CORRAL_TEST_TARGET=corrald (default; binary from $CORRALD) or zookeeper (the
Debian package, standalone), so a test can be validated against the
reference. Tests of corral-only behaviour are marked corral_only (the
plugin tests/lib/corral_pytest.py leaves them out for ZooKeeper).
"""
import os
import shutil
import tempfile

import pytest

import harness

TARGET = os.environ.get("CORRAL_TEST_TARGET", "corrald")


def Server(tmp, overrides, target=None):
    """A server of the target (not started) with the suite's settings: tick
    200 ms, session timeouts 1000..60000 ms, corrald at log level debug with
    4 MiB log segments; overrides are corral.yaml keys (session.* and
    znode.enforce_quota apply to ZooKeeper too). It knows its target (srv.target)."""
    target = target or TARGET
    session = harness.merge({"tick_time_ms": 200, "min_timeout_ms": 1000,
                             "max_timeout_ms": 60000}, overrides.get("session"))
    if target == "zookeeper":
        system = {"zookeeper.extendedTypesEnabled": "true",
                  "znode.container.checkIntervalMs": 500}
        if (overrides.get("znode") or {}).get("enforce_quota"):
            system["zookeeper.enforceQuota"] = "true"
        classpath = None
        if overrides.get("audit_log"):
            # its audit log on, and its audit logger (slf4j -> log4j) to stdout
            props = os.path.join(tmp, "log4j.properties")
            with open(props, "w") as f:
                f.write("log4j.rootLogger=WARN, CONSOLE\n"
                        "log4j.appender.CONSOLE=org.apache.log4j.ConsoleAppender\n"
                        "log4j.appender.CONSOLE.layout=org.apache.log4j.PatternLayout\n"
                        "log4j.appender.CONSOLE.layout.ConversionPattern=%-5p %c{1} - %m%n\n"
                        "log4j.logger.org.apache.zookeeper.audit.Slf4jAuditLogger=INFO\n")
            system.update({"zookeeper.audit.enable": "true",
                           "log4j.configuration": f"file:{props}"})
            classpath = (harness.ZK_CLASSPATH + ":/usr/share/java/slf4j-log4j12.jar"
                         ":/usr/share/java/log4j-1.2.jar")
        srv = harness.ZooKeeper(tmp, properties={
            "tickTime": session["tick_time_ms"], "minSessionTimeout": session["min_timeout_ms"],
            "maxSessionTimeout": session["max_timeout_ms"]}, system=system, classpath=classpath)
    else:
        if not os.environ.get("CORRALD"):
            pytest.skip("CORRALD is not set")
        config = harness.merge({"log_level": "debug", "session": session,
                                "storage": {"segment_bytes": 4194304}},
                               {k: v for k, v in overrides.items() if k != "session"})
        srv = harness.Corrald(tmp, config=config, data_dir=os.path.join(tmp, "data"),
                              port=harness.free_port(), ready="session")
    srv.target = target
    return srv


@pytest.fixture
def make_server():
    """make(**overrides) starts a server of the target; make(target="zookeeper")
    starts Apache ZooKeeper whatever the target (a reference to compare with)."""
    made = []

    def make(target=None, **overrides):
        srv = Server(tempfile.mkdtemp(prefix="corral-it-"), overrides, target)
        made.append(srv)
        return srv.start(timeout=30)

    yield make
    for srv in made:
        srv.stop()
    bad = [s for s in made if s.target == "corrald" and s.proc and s.proc.returncode not in (0, -9)]
    bad += [s for s in made if s.target == "corrald" and s.sanitizer_reports()]
    for srv in made:
        if srv not in bad:
            shutil.rmtree(srv.tmp, ignore_errors=True)
    assert not bad, "corrald did not exit cleanly:\n" + "\n".join(
        s.log_text()[-4000:] for s in bad)


@pytest.fixture
def server(make_server):
    return make_server()
