"""Fixtures for the durability tests: run corrald on a data directory, kill
it, restart it, look at its log; walk the write-ahead log's records. The
servers are tests/lib/harness.py's Corrald (a new port on every start unless
one is given: a client of a killed corrald never reaches the next one), the
log's files are read with tests/lib/walfile.py.

Every wait is bounded; every corrald started here is killed at teardown,
and every kazoo client stopped.
"""
import pytest

from harness import Corrald, make_kazoo, run_corrald, stop_kazoo


@pytest.fixture
def corrald(tmp_path):
    """Factory: corrald(data_dir=None, config=None, name=...) -> Corrald (not started)."""
    made = []

    def make(data_dir=None, config=None, name=None):
        name = name or f"corrald{len(made)}"
        c = Corrald(tmp_path, name=name, config=config,
                    data_dir=data_dir or (tmp_path / f"{name}-data"))
        made.append(c)
        return c

    yield make
    for c in made:
        c.kill()


def verify(data_dir):
    return run_corrald(["--verify", str(data_dir)])


@pytest.fixture
def kazoo():
    """Factory: kazoo(hosts, timeout=10) -> a started KazooClient, stopped at teardown."""
    made = []

    def make(hosts, timeout=10.0, start_timeout=15):
        zk = make_kazoo(hosts, timeout)
        made.append(zk)
        zk.start(timeout=start_timeout)
        return zk

    yield make
    stop_kazoo(made)
