"""The pytest plugin every suite loads (-p corral_pytest; tests/meson.build
puts tests/lib on PYTHONPATH).

- Tests marked corral_only (behaviour ZooKeeper does not have) are
  deselected when CORRAL_TEST_TARGET=zookeeper: not run, and not a skip.
- With CI=true a skip is a failure. A suite skips when what it needs is
  missing (a client, Apache ZooKeeper, Curator's jars, root, a tmpfs, network
  namespaces); in CI that would let a compatibility oracle vanish while the
  run stays green, so the skip's reason becomes the failure's.
- When CORRAL_TEST_RESULTS names a file, one JSON line per pytest run is
  appended to it: the test files run and how many tests passed, failed and
  skipped (scripts/test.sh sums them into its closing line).
"""
import json
import os

import pytest

TARGET = os.environ.get("CORRAL_TEST_TARGET", "corrald")
IN_CI = os.environ.get("CI") == "true"


def pytest_configure(config):
    config.addinivalue_line("markers", "corral_only: behaviour of corrald that ZooKeeper does not have")


def pytest_collection_modifyitems(config, items):
    if TARGET != "zookeeper":
        return
    kept = [item for item in items if "corral_only" not in item.keywords]
    dropped = [item for item in items if "corral_only" in item.keywords]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _skip_reason(longrepr):
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if IN_CI and rep.skipped and not hasattr(rep, "wasxfail"):
        reason = _skip_reason(rep.longrepr)
        rep.outcome = "failed"
        rep.longrepr = (f"skipped under CI=true, where a missing client, server or "
                        f"privilege is a failure: {reason}")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    path = os.environ.get("CORRAL_TEST_RESULTS")
    if not path:
        return
    stats = terminalreporter.stats

    def count(*keys):
        return sum(len(stats.get(k, [])) for k in keys)

    line = {
        "files": sorted(os.path.realpath(str(a)) for a in config.invocation_params.args
                        if str(a).endswith(".py")),
        "passed": count("passed", "xpassed"),
        "failed": count("failed", "error"),
        "skipped": count("skipped", "xfailed"),
        "exitstatus": int(exitstatus),
    }
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(line) + "\n").encode())
    finally:
        os.close(fd)
