"""Restarts that keep every client connection (issue 17), under the real
systemd 252 of a booted Debian 12 container (conftest.py: the .deb of this
checkout in a copy of debroot.py's cached root).

The clients are fdstore_client.py, run with the host's python3 and kazoo
inside the container's network namespace (nsenter -n into its init), so
127.0.0.1:2181 is the container's corrald and nothing is installed in the
root for them; so is FdstoreClient.java, the Java client (compiled on the
host, run with the host's JVM and zookeeper.jar). With kazoo pipelining
creates and reads and the Java client creates, `systemctl restart
corral` twice and an upgrade (the same .deb installed again with dpkg -i:
its postinst restarts the service as an upgrade does) happen under it:
kazoo's listener records no state change and the Java client's Watcher
no Disconnected (no state at all), the session ids are the same,
every request is answered once and in order, no acknowledged create is
lost, and the one-shot and persistent watches fire on the next change. A
raw connection sends half a frame before a restart and the rest after,
and gets its answer; one closed during a restart leaves the store. After
kill -9 (no state written) the stored connections come back, are closed
cleanly (kazoo reconnects to its session) and leave the store.
"""
import json
import os
import shutil
import subprocess
import threading

import pytest

from debroot import need, run

CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fdstore_client.py")
CHANGED = 3     # NodeDataChanged


class Driven:
    """A client program in the container's network namespace, driven one line
    at a time on its stdin, answering one line each on its stdout."""

    def __init__(self, c, argv, stderr=subprocess.PIPE, **kw):
        self.proc = subprocess.Popen(["nsenter", "-t", str(c.leader), "-n", *argv],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=stderr, text=True, **kw)

    def line(self, what, timeout=120):
        out = {}
        reader = threading.Thread(target=lambda: out.update(line=self.proc.stdout.readline()))
        reader.start()
        reader.join(timeout)
        ended = self.proc.stderr.read()[-3000:] \
            if self.proc.poll() is not None and self.proc.stderr else ""
        assert out.get("line"), f"{what}: no answer from {self.proc.args}\n{ended}"
        return out["line"]

    def send(self, cmd):
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Clients(Driven):
    """fdstore_client.py: kazoo and a raw connection."""

    def __init__(self, c):
        super().__init__(c, ["/usr/bin/python3", CLIENT],
                         env=dict(os.environ, PYTHONPATH=os.path.dirname(CLIENT)))

    def __call__(self, cmd):
        self.send(cmd)
        answer = json.loads(self.line(cmd))
        assert "error" not in answer, f"{cmd}: {answer['error']}"
        return answer


class JavaClient(Driven):
    """FdstoreClient.java, compiled here into tmp."""

    def __init__(self, c, tmp):
        classpath = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar"
        run(["javac", "-nowarn", "-d", str(tmp), "-cp", classpath,
             os.path.join(os.path.dirname(CLIENT), "FdstoreClient.java")], timeout=180)
        # its log (the ZooKeeper client's) is not read: not a pipe to fill
        super().__init__(c, ["java", "-cp", f"{tmp}:{classpath}", "FdstoreClient"],
                         stderr=subprocess.DEVNULL)
        self.sid = int(self.expect("READY")[1])

    def expect(self, want):
        words = self.line(want).split()
        assert words and words[0] == want, f"the Java client said {words} instead of {want}"
        return words

    def __call__(self, cmd, want):
        self.send(cmd)
        return self.expect(want)


def stored(c):
    return int(c.sh("systemctl show -p NFileDescriptorStore --value corral.service").stdout)


def messages(c):
    return [e.get("MESSAGE", "") for e in c.journal()]


def restart(c, how="systemctl restart corral.service", during=None):
    """how (a command run in the container) restarts corrald: it runs again
    (during() runs once how has returned)."""
    pid = c.main_pid()
    c.sh(how, timeout=300)
    if during:
        during()
    c.wait_for(lambda: c.active("corral.service") and c.main_pid() not in (0, pid), 60,
               f"corral.service to run again after {how}")


@pytest.fixture
def served(container, request):
    """A booted container with corral.service active, and its clients set up."""
    c = container("corral-fdstore-" + request.node.name.split("_")[1]).boot()
    c.wait_for(lambda: c.active("corral.service"), 60, "corral.service to be active")
    clients = Clients(c)
    try:
        yield c, clients, clients("setup")["sid"]
    finally:
        clients.close()


@pytest.fixture
def java(served, tmp_path):
    need(shutil.which("javac") and os.path.exists("/usr/share/java/zookeeper.jar"),
         "needs javac and the zookeeper package (scripts/deps.sh test installs them)")
    client = JavaClient(served[0], tmp_path)
    yield client
    client.close()


def test_restarts_and_an_upgrade_keep_every_client_connection(served, java):
    c, clients, sid = served
    # the unit's store, and what it tells corrald of it, are one size, with
    # room for client.max_connections (4096 by default) and the state
    size = c.sh("systemctl show -p FileDescriptorStoreMax --value corral.service").stdout.strip()
    env = c.sh("systemctl show -p Environment --value corral.service").stdout.split()
    assert f"CORRAL_FDSTORE_MAX={size}" in env and int(size) >= 4096 + 1, (size, env)
    raw = clients("raw")
    assert raw["sid"] and raw["timeout"] == 30000, raw
    clients("load")
    java("load", "LOADING")
    restart(c)
    # half a frame before a restart, the rest after (the frame's deadline,
    # client.frame_timeout_ms, runs again from the take-over)
    clients("half")
    restart(c)
    assert clients("rest") == {"xid": 7, "err": 0}
    # the restarts handed the connections over, and took them back
    log = messages(c)
    assert sum("client connections handed over to systemd's fd store" in m for m in log) == 2, log
    assert sum("client connections taken over from the previous process (0 closed)" in m
               for m in log) == 2, log
    # an upgrade: the same package again, whose postinst restarts the service
    restart(c, "DEBIAN_FRONTEND=noninteractive dpkg -i /root/corral.deb")
    load = clients("stop")
    assert load["errors"] == [] and load["missing"] == [], load
    assert load["answered"] == load["sent"] and load["in_order"] and load["once"], load
    _, sent, answered, in_order, failed, missing = java("stop", "LOADED")
    assert sent == answered and in_order == "true" and failed == missing == "0", \
        (sent, answered, in_order, failed, missing)
    events = clients("change")["events"]
    assert [CHANGED, "/watched"] in events and [CHANGED, "/persistent"] in events, events
    # the Java client's Watcher saw no Disconnected (no state at all), its
    # watches fired, its session is the same
    assert java("check", "CHECK")[1:] == ["true", "true", str(java.sid), "none"]
    report = clients("report")
    assert report["states"] == [], report
    assert report["sid"] == sid and report["connected"] and report["eph"], report
    # kazoo's, Java's and the raw connection are stored; the state was taken
    # and removed
    assert stored(c) == 3, stored(c)
    # a connection closed during a restart leaves the store (whichever
    # process sees the close)
    main_pid = "systemctl show -p MainPID --value corral.service"
    restart(c, f"pid=$({main_pid}); systemctl restart --no-block corral.service && "
               f"while [ \"$({main_pid})\" = \"$pid\" ]; do sleep 0.01; done",
            during=lambda: clients("close"))
    c.wait_for(lambda: stored(c) == 2, 30, "the closed connection to leave the store")
    assert clients("report")["states"] == []


def test_after_kill_9_the_stored_connections_are_closed_cleanly(served):
    c, clients, sid = served
    restart(c)      # kazoo's connection is in the store from now on
    assert stored(c) == 1
    clients("load")
    # systemd restarts it (Restart=on-failure)
    restart(c, "kill -KILL $(systemctl show -p MainPID --value corral.service)")
    # no state: the connection came back and was closed, and left the store
    c.wait_for(lambda: any("client connections from systemd's fd store closed: no state "
                           "was written" in m for m in messages(c)), 30,
               "the stored connection to be closed")
    c.wait_for(lambda: stored(c) == 0, 30, "the store to be empty")
    load = clients("stop")
    # requests lost with the connection fail; nothing acknowledged is lost
    assert load["missing"] == [], load
    report = clients("report")
    assert "SUSPENDED" in report["states"] and report["states"][-1] == "CONNECTED", report
    assert report["sid"] == sid and report["eph"], report
