"""Run the differential script by hand.

    /usr/bin/python3 -m differential zk            # ZooKeeper alone: print its transcript
    /usr/bin/python3 -m differential corrald PATH  # corrald alone
    /usr/bin/python3 -m differential both PATH     # both, and the differences
    /usr/bin/python3 -m differential port N        # a server already listening on 127.0.0.1:N
    /usr/bin/python3 -m differential twice zk|PATH # the same server twice (determinism check)

(run from tests/integration). The transcript goes to stdout as JSON lines.
"""
import json
import os
import sys

# tests/lib (the codec and the harness), as meson's PYTHONPATH gives it
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "lib"))

from . import compare, script, servers  # noqa: E402
from .runner import Runner  # noqa: E402


def run_on(server):
    try:
        server.start()
        return Runner(server.port, server.name).run(script.STEPS), server
    finally:
        server.stop()
        server.cleanup()


def main(argv):
    if not argv:
        print(__doc__)
        return 2
    what = argv[0]
    if what == "port":
        recs = Runner(int(argv[1])).run(script.STEPS)
        for r in recs:
            print(json.dumps(r, sort_keys=True, ensure_ascii=False))
        return 0
    if what in ("zk", "corrald"):
        srv = servers.ZooKeeper() if what == "zk" else servers.Corrald(argv[1])
        recs, _ = run_on(srv)
        for r in recs:
            print(json.dumps(r, sort_keys=True, ensure_ascii=False))
        return 0
    if what == "twice":   # the same server twice: the script must be deterministic
        mk = (lambda: servers.ZooKeeper()) if argv[1] == "zk" else (lambda: servers.Corrald(argv[1]))
        a, _ = run_on(mk())
        b, _ = run_on(mk())
        diffs = compare.diff(a, b)
        print(compare.report(diffs, a, b, names=("first", "second")))
        return 1 if diffs else 0
    if what == "both":
        zk, _ = run_on(servers.ZooKeeper())
        co, _ = run_on(servers.Corrald(argv[1]))
        diffs = compare.diff(zk, co)
        print(compare.report(diffs, zk, co))
        return 1 if diffs else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
