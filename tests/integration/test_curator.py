"""Apache Curator and the ZooKeeper Java client (Debian's jars) against the
server: InterProcessMutex, LeaderLatch, CuratorCache (persistent recursive
watches), PathChildrenCache, a transaction and digest ACLs. The scenarios
are in curator/CuratorScenarios.java, compiled here with javac; each runs in
its own JVM against a fresh server and checks what the recipe guarantees.
"""
import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
JARS = ["/usr/share/java/curator-recipes.jar", "/usr/share/java/curator-framework.jar",
        "/usr/share/java/curator-client.jar", "/usr/share/java/zookeeper.jar"]
# slf4j-simple prints Curator's and the client's warnings to stderr, which
# the test shows when a scenario fails
LOGGER = "/usr/share/java/slf4j-simple.jar"


@pytest.fixture(scope="module")
def classpath(tmp_path_factory):
    missing = [j for j in JARS if not os.path.exists(j)]
    if missing or not shutil.which("javac"):
        pytest.skip(f"Curator jars or javac missing: {missing}")
    out = tmp_path_factory.mktemp("curator")
    cp = ":".join(JARS)
    subprocess.run(["javac", "-nowarn", "-d", str(out), "-cp", cp,
                    os.path.join(HERE, "curator", "CuratorScenarios.java")],
                   check=True, capture_output=True, text=True)
    extra = [LOGGER] if os.path.exists(LOGGER) else []
    return ":".join([str(out)] + JARS + extra)


def run(classpath, server, scenario):
    p = subprocess.run(["java", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
                        "-cp", classpath, "CuratorScenarios", server.hosts, scenario],
                       capture_output=True, text=True, timeout=240)
    assert p.returncode == 0 and f"PASS {scenario}" in p.stdout, \
        f"{p.stdout}\n--- stderr ---\n{p.stderr[-6000:]}\n--- server ---\n{server.log_text()[-4000:]}"


def test_interprocess_mutex_excludes_and_loses_no_update(server, classpath):
    run(classpath, server, "mutex")


def test_leader_latch_elects_one_and_hands_over_when_the_leader_leaves(server, classpath):
    run(classpath, server, "leader_latch")


def test_curator_cache_follows_the_subtree_by_persistent_recursive_watch(server, classpath):
    run(classpath, server, "curator_cache")


def test_path_children_cache_sees_added_updated_removed_and_ephemeral_children(server, classpath):
    run(classpath, server, "path_children_cache")


def test_transaction_commits_all_with_one_zxid_or_nothing(server, classpath):
    run(classpath, server, "transaction")


def test_digest_acls_admit_the_owner_and_refuse_others(server, classpath):
    run(classpath, server, "digest_acls")
