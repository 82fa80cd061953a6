"""A live move from Apache ZooKeeper 3.8 to corral: `corrald
import-zookeeper --follow HOST:PORT` imports a running ZooKeeper's data
directory, keeps applying what it appends to its logs, and once ZooKeeper
stops, applies its last txns and becomes corrald serving on ZooKeeper's
address. kazoo clients and a Java client connected to ZooKeeper, each with an ephemeral and a
watch, and a writer running: after the cut-over every client has the same
session id, its ephemeral is there, its watch fires on the next change, and
every write ZooKeeper acknowledged is in corral.

Environment: CORRALD (meson sets it)."""
import os
import shutil
import signal
import subprocess
import threading

import pytest
import yaml

import harness
from harness import ZooKeeper, make_kazoo, wait_until

pytestmark = pytest.mark.corral_only

CORRALD = os.environ.get("CORRALD") or harness.CORRALD


class Writer(threading.Thread):
    """Creates /w/n<i> one after the other; remembers what was acknowledged."""

    def __init__(self, hosts):
        super().__init__(daemon=True)
        self.zk = make_kazoo(hosts, timeout=30)
        self.zk.start(timeout=30)
        self.zk.ensure_path("/w")
        self.acked, self.stop_flag = [], threading.Event()

    def run(self):
        i = 0
        while not self.stop_flag.is_set():
            try:
                self.zk.create(f"/w/n{i}", b"%d" % i)
                self.acked.append(i)
            except Exception:
                self.stop_flag.wait(0.05)
            i += 1


HERE = os.path.dirname(os.path.abspath(__file__))


def java_client(tmp, hosts):
    """The Java client (java/CutoverClient.java), compiled here, started."""
    if not shutil.which("javac"):
        pytest.skip("javac missing")
    out = os.path.join(str(tmp), "java")
    os.makedirs(out, exist_ok=True)
    subprocess.run(["javac", "-nowarn", "-d", out, "-cp", harness.ZK_CLASSPATH,
                    os.path.join(HERE, "java", "CutoverClient.java")], check=True, timeout=120)
    log = os.path.join(str(tmp), "java-client.log")
    with open(log, "w") as f:
        p = subprocess.Popen(["java", "-cp", f"{out}:{harness.ZK_CLASSPATH}", "CutoverClient",
                              hosts, "/java-eph"], stdout=f, stderr=subprocess.DEVNULL)
    return p, log


def output(path):
    with open(path) as f:
        return f.read()


def test_live_cut_over_keeps_sessions_ephemerals_watches_and_writes(tmp_path):
    zk = ZooKeeper(str(tmp_path), system={"zookeeper.snapCount": "100"})
    zk.start(timeout=90)
    port, hosts = zk.port, zk.hosts
    clients = []
    setup = make_kazoo(hosts, timeout=30)
    setup.start(timeout=30)
    setup.create("/watched", b"before")
    for k in range(2):
        c = make_kazoo(hosts, timeout=30)
        c.start(timeout=30)
        c.create(f"/eph{k}", b"", ephemeral=True)
        events = []
        c.get("/watched", watch=events.append)
        clients.append((c, c.client_id[0], events))
    java, java_log = java_client(tmp_path, hosts)
    wait_until(lambda: "READY" in output(java_log), 60, what="the Java client")
    java_sid = int(output(java_log).split("READY ")[1].split()[0])
    writer = Writer(hosts)
    writer.start()
    wait_until(lambda: len(writer.acked) > 50, 30, what="writes to ZooKeeper")

    data_dir = os.path.join(str(tmp_path), "corral-data")
    cfg = os.path.join(str(tmp_path), "corral.yaml")
    with open(cfg, "w") as f:
        yaml.safe_dump({"log_level": "info", "data_dir": data_dir}, f)
    log = os.path.join(str(tmp_path), "follow.log")
    with open(log, "w") as out:
        follower = subprocess.Popen([CORRALD, "import-zookeeper", "-c", cfg, "--follow", hosts,
                                     zk.data_dir, data_dir], stdout=out, stderr=subprocess.STDOUT,
                                    env=harness.clean_env())
    try:
        wait_until(lambda: "following" in output(log), 60, what="the import to follow",
                   detail=lambda: output(log))
        acked_while_following = len(writer.acked)
        # Enough for ZooKeeper to begin new log files while followed.
        wait_until(lambda: len(writer.acked) > acked_while_following + 250, 60,
                   what="writes while following")
        zk.stop()
        wait_until(lambda: harness.serves_sessions("127.0.0.1", port), 60,
                   what="corral serving on ZooKeeper's address", detail=lambda: output(log))
        assert "cutting over" in output(log)
        logs = int(output(log).split(" log files")[0].rsplit(" ", 1)[1])
        assert logs >= 3, output(log)
        # The writer goes on against corral, then stops.
        acked_at_cut = len(writer.acked)
        wait_until(lambda: len(writer.acked) > acked_at_cut + 20, 30, what="writes to corral")
        writer.stop_flag.set()
        writer.join(30)
        for k, (c, sid, _) in enumerate(clients):
            wait_until(lambda: c.connected, 30, what="the client back")
            assert c.client_id[0] == sid
            assert c.exists(f"/eph{k}").ephemeralOwner == sid
        setup.set("/watched", b"after")
        for c, sid, events in clients:
            wait_until(lambda: events, 30, what="the watch to fire")
        wait_until(lambda: "FIRED" in output(java_log), 60, what="the Java client's watch",
                   detail=lambda: output(java_log))
        assert output(java_log).split("FIRED ")[1].split() == [str(java_sid), str(java_sid)]
        java.wait(30)
        missing = [i for i in writer.acked if not setup.exists(f"/w/n{i}")]
        assert not missing, missing[:10]
    finally:
        writer.stop_flag.set()
        harness.stop_kazoo([c for c, _, _ in clients] + [setup, writer.zk], timeout=10,
                           raise_stuck=False)
        if java.poll() is None:
            java.kill()
            java.wait(30)
        if follower.poll() is None:
            follower.send_signal(signal.SIGTERM)
            follower.wait(30)
        zk.stop()
    text = output(log)
    assert not any(m in text for m in harness.SANITIZER_MARKS), text[-3000:]
