"""Curator scenarios in Java, compiled for a test: Debian's Curator and
ZooKeeper client jars, javac, and slf4j-simple (which prints Curator's and
the client's warnings to stderr, shown when a scenario fails)."""
import os
import shutil
import subprocess

import pytest

JARS = ["/usr/share/java/curator-recipes.jar", "/usr/share/java/curator-framework.jar",
        "/usr/share/java/curator-client.jar", "/usr/share/java/zookeeper.jar"]
LOGGER = "/usr/share/java/slf4j-simple.jar"


def compile_scenarios(source, out_dir, extra_jars=()):
    """Compiles source (a .java file) into out_dir; returns the classpath
    that runs it, with extra_jars (e.g. Netty's, for TLS) on it too."""
    missing = [j for j in JARS + list(extra_jars) if not os.path.exists(j)]
    if missing or not shutil.which("javac"):
        pytest.skip(f"Curator jars or javac missing: {missing}")
    p = subprocess.run(["javac", "-nowarn", "-d", str(out_dir), "-cp", ":".join(JARS), source],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    logger = [LOGGER] if os.path.exists(LOGGER) else []
    return ":".join([str(out_dir)] + JARS + list(extra_jars) + logger)
