"""Differential test: one fixed script of protocol operations, run against corrald
and against Apache ZooKeeper 3.8 (the Debian package), every reply compared.

    CORRALD=build-test/app/corrald /usr/bin/python3 -m pytest tests/integration/test_differential.py

The script, the raw protocol client, the normalisations and how to run parts of
it by hand are in tests/integration/differential/ (README.md there). On a
difference the test fails with, for every step that differs, the step, the op
and both replies; the full transcripts and the report are written to
$DIFF_OUT (default: a pytest temporary directory), whose path is printed.
"""
import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from differential import compare, script, servers
from differential.runner import Runner
from jute import OPNAME, errname

SOURCE_ROOT = Path(os.environ.get("CORRAL_SOURCE_ROOT", Path(__file__).resolve().parents[2]))


def _corrald_binary():
    path = os.environ.get("CORRALD") or str(SOURCE_ROOT / "build-test" / "app" / "corrald")
    if not os.access(path, os.X_OK):
        pytest.fail("corrald not found at %s (set CORRALD)" % path)
    return path


def _zookeeper_available():
    java = os.environ.get("JAVA", "/usr/bin/java")
    return os.access(java, os.X_OK) and os.path.exists("/usr/share/java/zookeeper.jar")


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory):
    d = os.environ.get("DIFF_OUT")
    if d:
        os.makedirs(d, exist_ok=True)
        return Path(d)
    return tmp_path_factory.mktemp("differential")


def _run(server, out_dir):
    server.start()
    try:
        runner = Runner(server.port, server.name)
        runner.run(script.STEPS)
    finally:
        server.stop()
        # keep the server's log next to the transcript
        if os.path.exists(server.log_path):
            shutil.copy(server.log_path, out_dir / ("%s.log" % server.name))
        server.cleanup()
    with open(out_dir / ("%s.jsonl" % server.name), "w") as f:
        for rec in runner.records:
            f.write(json.dumps(rec, sort_keys=True, ensure_ascii=False) + "\n")
    return runner


@pytest.fixture(scope="module")
def runs(out_dir):
    """Both runs, side by side (each server is alone with its own client)."""
    if not _zookeeper_available():
        pytest.skip("Apache ZooKeeper (Debian package zookeeper) or java is not installed")
    corrald = servers.Corrald(_corrald_binary())
    with ThreadPoolExecutor(2) as pool:
        zk = pool.submit(_run, servers.ZooKeeper(), out_dir)
        co = pool.submit(_run, corrald, out_dir)
        return zk.result(), co.result()


@pytest.fixture(scope="module")
def zookeeper_run(runs):
    return runs[0]


@pytest.fixture(scope="module")
def corrald_run(runs):
    return runs[1]


def test_script_runs_to_the_end_on_zookeeper(zookeeper_run):
    """The reference run is complete and exercises everything it claims to."""
    recs = zookeeper_run.records
    assert len(recs) == len(script.STEPS)
    broken = [r for r in recs if isinstance(r.get("reply"), str)
              and r["reply"].startswith(("RUNNER ERROR", "NO REPLY", "CONNECT FAILED"))]
    assert not broken, "the script does not run cleanly on ZooKeeper:\n" + "\n".join(map(str, broken))
    protocol_steps = sum(1 for s in script.STEPS if s["op"] not in
                         ("idle", "sleep", "wait_gone", "expect_close", "dump", "mark"))
    assert protocol_steps >= 300
    missing_ops = script.REQUIRED_OPCODES - zookeeper_run.sent_ops
    assert not missing_ops, "opcodes never sent: %s" % sorted(OPNAME.get(o, o) for o in missing_ops)
    missing_errs = script.REQUIRED_ERRORS - zookeeper_run.errors_seen
    assert not missing_errs, "error codes never produced: %s" % [errname(e) for e in sorted(missing_errs)]


def test_corrald_answers_like_zookeeper(zookeeper_run, corrald_run, out_dir):
    accepted = []
    diffs = compare.diff(zookeeper_run.records, corrald_run.records, accepted)
    text = compare.report(diffs, zookeeper_run.records, corrald_run.records)
    text += "\n\nintended differences (README, Compatibility notes):\n" + "\n".join(
        "  step %d: %s\n    %s" % (i, desc, reason) for i, desc, reason in accepted)
    (out_dir / "report.txt").write_text(text + "\n")
    # Every intended difference must still be there: if one disappears, the
    # README's list is out of date.
    assert {d for _, d, _ in accepted} >= set(compare.INTENDED_STEPS), \
        "an intended difference no longer occurs; update the README and compare.INTENDED_STEPS"
    if diffs:
        pytest.fail("%s\n\n(transcripts, logs and this report in %s)" % (text, out_dir), pytrace=False)
