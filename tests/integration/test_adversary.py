"""The adversarial client (tests/lib/adversary.py) against one corrald,
phase after phase: mutated frames of every opcode, half-open connections,
clients that never read, a flood of watches. After each phase an ordinary
kazoo client must be served within 10 s, the server must still run, and
its RSS must have grown by less than its memory budget. corral-only: the
deadlines and the budget that make this hold are corral's settings."""
import os
import time

import pytest
from kazoo.client import KazooClient

from adversary import Adversary
from harness import rss_bytes

pytestmark = pytest.mark.corral_only

BUDGET = 64 << 20


def served_within(srv, path, seconds=10):
    zk = KazooClient(hosts=srv.hosts, timeout=10, connection_retry={"max_tries": 0})
    t0 = time.monotonic()
    try:
        zk.start(seconds)
        zk.ensure_path(path)
        zk.set(path, b"still served")
        assert zk.get(path)[0] == b"still served"
    finally:
        zk.stop()
        zk.close()
    took = time.monotonic() - t0
    assert took < seconds, f"an ordinary client took {took:.1f} s"


def test_the_adversary_phase_by_phase(make_server, monkeypatch):
    # AddressSanitizer's quarantine keeps freed memory (256 MB by default):
    # the RSS checks are about what the server holds.
    monkeypatch.setenv("ASAN_OPTIONS", os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=1")
    srv = make_server(memory={"budget_bytes": BUDGET},
                      client={"handshake_timeout_ms": 2000, "frame_timeout_ms": 2000,
                              "max_connections": 256, "max_connections_per_address": 1000,
                              "max_frame_bytes": 1048575})
    zk = KazooClient(hosts=srv.hosts, timeout=10)
    zk.start(10)
    zk.create("/adv", b"a")
    zk.create("/big", b"b" * 1000000)
    zk.stop()
    zk.close()
    base = rss_bytes(srv.proc.pid)
    adv = Adversary(srv.host, srv.port, seed=int(os.environ.get("CORRAL_ADVERSARY_SEED", "1")))

    def check(phase):
        assert srv.proc.poll() is None, f"corrald died in phase {phase}:\n{srv.log_text()[-4000:]}"
        served_within(srv, "/ordinary")
        grown = rss_bytes(srv.proc.pid) - base
        print(f"{phase}: RSS +{grown / 1048576:.1f} MiB")
        assert grown < BUDGET, f"{phase}: RSS grew by {grown >> 20} MiB past the budget"

    try:
        sent = adv.mutated_frames(rounds=3)
        assert sent >= 450 and adv.closed_by_server > 0
        check("mutated frames")

        adv.half_open(each=20)
        check("half-open connections")
        adv.close()

        # 15 replies of 1 MB each stay under client.max_output_bytes (16 MiB):
        # only the server-wide budget holds 40 of them back.
        adv.never_read("/big", sessions=40, requests=15)
        check("clients that never read")
        adv.close()

        confirmed = adv.flood_watches(sessions=12, per_session=40000)
        check("a flood of watches")
        print(f"watches confirmed before the server closed the flooding sessions: {confirmed}")
        assert confirmed > 0
        adv.close()
    finally:
        adv.close()
    print(f"seed {adv.seed}: {adv.closed_by_server} connections closed by the server, "
          f"{adv.answered} answers read")
