"""Apache Curator across a leader crash: an InterProcessMutex held across
the failover stays held by its holder's session and excludes everyone else
until released, workers taking a lock in a loop through the failover never
hold it two at once nor lose an update, and of three LeaderLatches the same
one leads before, during and after (its session survives).

The scenario is curator/ReplicationScenarios.java, compiled with javac
against Debian's jars (as tests/integration/test_curator.py does); it sets
up, says READY, the test SIGKILLs the leader and says KILLED, and the
program checks the rest and says PASS."""
import os
import queue
import subprocess
import threading
import time

import pytest

import curator_java
from harness import wait_until

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def classpath(tmp_path_factory):
    return curator_java.compile_scenarios(os.path.join(HERE, "curator", "ReplicationScenarios.java"),
                                          tmp_path_factory.mktemp("curator"))


def test_curator_mutex_and_leader_latch_keep_one_holder_and_their_sessions_across_a_leader_sigkill(
        ensemble, classpath, tmp_path):
    c = ensemble(3)
    old = c.first_leader
    followers = [s for s in c.ids if s != old]
    stderr_path = tmp_path / "java-stderr.txt"
    lines = queue.Queue()
    out = []
    with open(stderr_path, "w") as err:
        # CORRAL_TEST_JAVA_OPTS: more JVM options, e.g. to turn on the client's
        # debug log: -Dorg.slf4j.simpleLogger.log.org.apache.zookeeper.ClientCnxn=debug
        extra = os.environ.get("CORRAL_TEST_JAVA_OPTS", "").split()
        p = subprocess.Popen(["java", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"] + extra
                             + ["-cp", classpath, "ReplicationScenarios",
                              c.hosts(first=old), c.hosts(first=followers[0]), "failover"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True)

        def reader():
            for line in p.stdout:
                lines.put(line.rstrip("\n"))
            lines.put(None)
        threading.Thread(target=reader, daemon=True).start()

        def next_line(deadline):
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                return lines.get(timeout=left)
            except queue.Empty:
                return None

        def stderr_tail():
            with open(stderr_path, errors="replace") as f:
                return f.read()[-6000:]

        try:
            deadline = time.monotonic() + 120
            ready = None
            while ready is None:
                line = next_line(deadline)
                assert line is not None, ("the scenario did not get READY:\n" + "\n".join(out)
                                          + "\n--- stderr ---\n" + stderr_tail())
                out.append(line)
                if line.startswith("READY"):
                    ready = line
            t_kill = time.monotonic()
            c[old].kill()
            p.stdin.write("KILLED\n")
            p.stdin.flush()
            new = c.wait_for_leader(30, not_id=old)
            t_leader = time.monotonic() - t_kill
            deadline = time.monotonic() + 240
            while True:
                line = next_line(deadline)
                if line is None:
                    break
                out.append(line)
            rc = p.wait(max(1, deadline - time.monotonic()))
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(30)
    text = "\n".join(out)
    print(f"\nleader {old} SIGKILLed; server {new} leads after {t_leader:.2f} s\n{text}")
    assert rc == 0 and "PASS failover" in text, (f"{text}\n--- stderr ---\n"
                                                 + open(stderr_path, errors="replace").read()[-6000:])
    assert f":{c[old].client_port}" in ready.split("holder on ")[1].split(",")[0], \
        f"the lock holder was not on the leader, the test proves less: {ready}"
    # the old leader comes back as a follower of the new one, with the same tree
    c[old].start()
    c.wait_converged(c.ids, timeout=60)
    wait_until(lambda: c.leader() == new and c[old].mode() == "follower", 20,
               what=f"server {old} to follow {new}")
