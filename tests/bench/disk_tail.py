#!/usr/bin/python3
"""What the disk alone does to a log's tail while something else writes to
it: fio's latency of small write+fdatasync pairs (a log's) with and without
a sequential writer beside it at a given rate (a snapshot's: 1 MiB writes,
writeback started after each, as storage/snapshot_write.c does), on the
same file system. No corrald: the bound any server on this disk has.

Rounds alternate the order of the rates. Prints fdatasync's p50/p99/p999
per run and, for each rate, the median p999 against the median p99 of the
runs with no writer (the ratio #19's tail target asks of corrald, <= 3x);
asserts nothing.

    /usr/bin/python3 tests/bench/disk_tail.py [--dir /var/tmp] [--rates 0,50,100,200]
        [--rounds 2] [--runtime 15]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile


def run(directory, rate, runtime):
    job = f"""[global]
directory={directory}
time_based
runtime={runtime}
[log]
rw=write
bs=512
size=64m
ioengine=sync
fdatasync=1
"""
    if rate:
        job += f"""[snapshot]
rw=write
bs=1m
size=512m
ioengine=sync
rate={rate}m
sync_file_range=write:1
"""
    path = os.path.join(directory, "job.fio")
    with open(path, "w") as f:
        f.write(job)
    out = subprocess.run(["fio", "--output-format=json", path], capture_output=True,
                         text=True, check=True).stdout
    r = {"rate": rate, "written_mb_s": 0.0}
    for j in json.loads(out)["jobs"]:
        if j["jobname"] == "log":
            p = j["sync"]["lat_ns"]["percentile"]
            r.update(p50=p["50.000000"] / 1e3, p99=p["99.000000"] / 1e3, p999=p["99.900000"] / 1e3)
        else:
            r["written_mb_s"] = j["write"]["bw_bytes"] / 1e6
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/var/tmp")
    ap.add_argument("--rates", default="0,50,100,200", help="the writer's MB/s; 0: none")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--runtime", type=int, default=15)
    args = ap.parse_args()
    rates = [int(x) for x in args.rates.split(",")]
    directory = tempfile.mkdtemp(prefix="corral-bench-disk-", dir=args.dir)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()}; {args.dir}; "
          f"{args.runtime} s a run")
    print("| round | writer MB/s | fdatasync p50 µs | p99 µs | p999 µs |")
    print("|---:|---:|---:|---:|---:|")
    results = {}
    try:
        for rnd in range(args.rounds):
            for rate in rates if rnd % 2 == 0 else list(reversed(rates)):
                r = run(directory, rate, args.runtime)
                results.setdefault(rate, []).append(r)
                print(f"| {rnd} | {r['written_mb_s']:.0f} | {r['p50']:.0f} | {r['p99']:.0f} | "
                      f"{r['p999']:.0f} |", flush=True)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if 0 in results:
        p99 = statistics.median(r["p99"] for r in results[0])
        for rate, rs in sorted(results.items()):
            p999 = statistics.median(r["p999"] for r in rs)
            print(f"writer {rate} MB/s: median p999 {p999:.0f} µs = {p999 / p99:.1f}x "
                  f"the median p99 without ({p99:.0f} µs)")


if __name__ == "__main__":
    main()
