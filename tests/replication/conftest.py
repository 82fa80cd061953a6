"""Fixtures of the replication tests.

`ensemble` is a factory: ensemble(n, election_timeout_ms=..., config=...)
starts an n-server ensemble under the test's tmp_path (cluster.Cluster) and
returns it once one leader is agreed on; ensemble.kazoo(hosts) starts a
kazoo client. At teardown every client is stopped, then every server
(SIGTERM, all at once): a server that does not exit 0, or whose log holds a
sanitizer report, fails the test. When a test fails, every server's log
(each run) is attached to the report.
"""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from ensembles import Cluster  # noqa: E402
from harness import CORRALD, make_kazoo, stop_kazoo  # noqa: E402


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for c in getattr(item, "_corral_clusters", []):
            rep.sections.append((f"corrald logs ({c.n} servers, {c.workdir})", c.log_report()))


class Ensembles:
    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.clusters = []
        self.clients = []

    def __call__(self, n, election_timeout_ms=1000, config=None, start=True, **kw):
        if not os.path.exists(CORRALD):
            pytest.fail(f"corrald not found at {CORRALD} (set CORRALD)")
        workdir = self.tmp_path / f"ensemble{len(self.clusters)}"
        workdir.mkdir()
        c = Cluster(workdir, n, election_timeout_ms=election_timeout_ms, config=config, **kw)
        self.clusters.append(c)
        if start:
            c.first_leader = c.start()
        return c

    def kazoo(self, hosts, timeout=10.0, start_timeout=30, command_retry=None):
        zk = make_kazoo(hosts, timeout, command_retry=command_retry)
        self.clients.append(zk)
        zk.start(timeout=start_timeout)
        return zk

    def teardown(self):
        problems = []
        try:
            stop_kazoo(self.clients)
        except AssertionError as e:
            problems.append(str(e))
        for c in self.clusters:
            statuses = c.stop_all()
            for sid, rc in statuses.items():
                if rc != 0:
                    problems.append(f"server {sid} of {c.workdir} did not exit 0 on SIGTERM: {rc}")
            problems.extend(c.sanitizer_reports())
        return problems


@pytest.fixture
def ensemble(tmp_path, request):
    e = Ensembles(tmp_path)
    request.node._corral_clusters = e.clusters
    yield e
    problems = e.teardown()
    if problems:   # the servers' logs are attached to the report by the hook above
        pytest.fail("at teardown:\n" + "\n".join(problems), pytrace=False)
