#!/usr/bin/python3
"""Two corrald builds side by side: did a change make corral faster or slower?

Each workload runs against build A and build B in turn, each time on a fresh
standalone server (its data under --workdir), for --rounds rounds; the order
alternates every round, so a machine that slows down during the run (shared
machines do) weighs on both. Prints, per workload and build, the median,
minimum and maximum ops/s and the median p50/p99 latency, and B's median
over A's.

Usage: tests/bench/ab.py --a OLD/corrald --b NEW/corrald [--loadgen PATH]
                         [--workloads create,set,get,mix] [--rounds 3]
                         [--duration 5] [--workdir DIR] [--markdown]
Build each with `meson setup DIR --buildtype=release -Dtests=disabled`
(an older tree may not know -Dtests: leave it out there).
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import LABELS, WORKLOADS, Server, loadgen  # noqa: E402


def run_one(args, corrald, tag, name, workload, extra, round_no):
    server = Server("corral", args.workdir, corrald, f"{tag}-{name}-{round_no}")
    server.start()
    try:
        return loadgen(args, server, workload, extra, f"{tag} {name}")
    finally:
        server.stop()
        # each run's data directory (its log segments, some GB over a
        # run) goes once the run is measured
        shutil.rmtree(server.dir, ignore_errors=True)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True, help="corrald before the change")
    ap.add_argument("--b", required=True, help="corrald after the change")
    ap.add_argument("--loadgen", default=os.path.join(here, "../../build-rel/tests/bench/loadgen"))
    ap.add_argument("--workloads", default="create,set,get,mix")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    args.workdir = tempfile.mkdtemp(prefix="corral-ab-", dir=args.workdir or "/var/tmp")
    known = {w[0]: w for w in WORKLOADS}
    names = args.workloads.split(",")
    for n in names:
        if n not in known:
            raise SystemExit(f"unknown workload {n}; known: {', '.join(known)}")
    results = {(n, t): [] for n in names for t in "ab"}
    for r in range(args.rounds):
        for n in names:
            _, workload, extra = known[n]
            order = "ab" if r % 2 == 0 else "ba"
            for t in order:
                res = run_one(args, getattr(args, t), t, n, workload, extra, r)
                results[(n, t)].append(res)
                print(f"round {r + 1} {n} {t}: {res['ops_per_s']:.0f} ops/s", file=sys.stderr)
    rows = []
    for n in names:
        a_ops = [x["ops_per_s"] for x in results[(n, "a")]]
        b_ops = [x["ops_per_s"] for x in results[(n, "b")]]
        row = [LABELS.get(n, n)]
        for ops, t in ((a_ops, "a"), (b_ops, "b")):
            p50 = statistics.median(x["p50_us"] for x in results[(n, t)])
            p99 = statistics.median(x["p99_us"] for x in results[(n, t)])
            row.append(f"{statistics.median(ops):.0f} ({min(ops):.0f}-{max(ops):.0f}), "
                       f"p50/p99 {p50:.0f}/{p99:.0f} µs")
        row.append(f"{statistics.median(b_ops) / statistics.median(a_ops):.2f}")
        rows.append(row)
    shutil.rmtree(args.workdir, ignore_errors=True)
    head = ["workload", "A: median ops/s (min-max)", "B: median ops/s (min-max)", "B/A"]
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|---|---|---|---:|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        for row in rows:
            print("\t".join(row))


if __name__ == "__main__":
    main()
