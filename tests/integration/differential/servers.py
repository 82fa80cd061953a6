"""The two servers under test, with the same settings: Apache ZooKeeper (the
Debian package) and corrald, both tests/lib/harness.py's.

Both get: tickTime 200 ms, min/max session timeout 1000/60000 ms, extended
types (TTL) on, a container/TTL check every CONTAINER_CHECK_MS, the super digest
for "super:test", every four-letter word allowed, listening on 127.0.0.1 on a
free port. Each is ready when it serves a session.
"""
import os
import shutil
import tempfile

import harness

TICK_MS = 200
MIN_TIMEOUT_MS = 1000
MAX_TIMEOUT_MS = 60000
CONTAINER_CHECK_MS = 500
SUPER_AUTH = b"super:test"
SUPER_DIGEST = "super:D/InIHSb7yEEbrWz8b9l71RjZJU="  # base64(sha1("super:test"))


class _Cleanup:
    def cleanup(self):
        """Remove the data directory and the logs (kept if DIFF_KEEP_TMP is set)."""
        if not os.environ.get("DIFF_KEEP_TMP"):
            shutil.rmtree(self.workdir, ignore_errors=True)


class ZooKeeper(harness.ZooKeeper, _Cleanup):
    def __init__(self):
        super().__init__(tempfile.mkdtemp(prefix="corral-diff-zookeeper-"), properties={
            "tickTime": TICK_MS, "minSessionTimeout": MIN_TIMEOUT_MS,
            "maxSessionTimeout": MAX_TIMEOUT_MS, "forceSync": "no"},
            system={"zookeeper.extendedTypesEnabled": "true",
                    "znode.container.checkIntervalMs": CONTAINER_CHECK_MS,
                    "zookeeper.DigestAuthenticationProvider.superDigest": SUPER_DIGEST})


class Corrald(harness.Corrald, _Cleanup):
    def __init__(self, binary):
        super().__init__(tempfile.mkdtemp(prefix="corral-diff-corrald-"), binary=binary,
                         ready="session", config={
                             "log_level": "debug",
                             "client": {"four_letter_words": [
                                 "conf", "cons", "crst", "dirs", "dump", "envi", "ruok", "srst",
                                 "srvr", "stat", "wchc", "wchp", "wchs", "mntr", "isro"]},
                             "session": {"tick_time_ms": TICK_MS,
                                         "min_timeout_ms": MIN_TIMEOUT_MS,
                                         "max_timeout_ms": MAX_TIMEOUT_MS},
                             "znode": {"extended_types": True,
                                       "container_check_interval_ms": CONTAINER_CHECK_MS},
                             "auth": {"super_digest": SUPER_DIGEST}})
