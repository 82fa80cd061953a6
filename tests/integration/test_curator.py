"""Apache Curator and the ZooKeeper Java client (Debian's jars) against the
server: InterProcessMutex, LeaderLatch, CuratorCache (persistent recursive
watches), PathChildrenCache, a transaction and digest ACLs. The scenarios
are in curator/CuratorScenarios.java, compiled here with javac; each runs in
its own JVM against a fresh server and checks what the recipe guarantees.
"""
import os
import subprocess

import pytest

import curator_java

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def classpath(tmp_path_factory):
    return curator_java.compile_scenarios(os.path.join(HERE, "curator", "CuratorScenarios.java"),
                                          tmp_path_factory.mktemp("curator"))


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
