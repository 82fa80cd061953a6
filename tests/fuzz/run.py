#!/usr/bin/python3
"""Runs one libFuzzer target of tests/fuzz: the meson test of the "fuzz"
suite, and the way to fuzz longer by hand.

The targets need clang (libFuzzer is part of it) while the test build uses
gcc, so this configures a build directory of its own with CC=clang and
-Dfuzzing=true (once, under a lock: the suite's tests run in parallel) and
builds every target there. Then the target replays its seed corpus
(tests/fuzz/corpus/<target>/: every input that ever found a bug stays
there, so it is checked again each time) and explores for a bounded time.
New inputs go to a directory of their own (a temp one unless --corpus-out):
the source tree is never written. Any crash, leak, timeout, out-of-memory or
sanitizer report fails the run; the input is kept in --build-dir/artifacts.

    tests/fuzz/run.py [--seconds N] [--corpus-out DIR] TARGET [-- LIBFUZZER_ARGS]

Exit status: 0 clean, 1 found something (or could not build), 77 (skipped)
when clang is missing outside CI.
"""
import argparse
import fcntl
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = ["fuzz_client_request", "fuzz_connect", "fuzz_peer_message", "fuzz_txn",
           "fuzz_wal_segment", "fuzz_snapshot", "fuzz_config", "fuzz_zookeeper"]


def log(msg):
    print(f"run.py: {msg}", flush=True)


def build(source_root, build_dir, werror):
    """Configures (once) and builds the clang build of the targets, under a lock."""
    os.makedirs(os.path.dirname(os.path.abspath(build_dir)), exist_ok=True)
    with open(build_dir.rstrip("/") + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        env = dict(os.environ, CC="clang")
        if not os.path.exists(os.path.join(build_dir, "build.ninja")):
            shutil.rmtree(build_dir, ignore_errors=True)
            cmd = ["meson", "setup", build_dir, source_root, "-Dfuzzing=true",
                   "-Db_sanitize=address,undefined", "-Db_lundef=false",
                   "-Dbuildtype=debugoptimized", f"-Dwerror={werror}",
                   "-Dtests=disabled", "-Dsystemd=false"]
            log(" ".join(cmd))
            r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
            if r.returncode != 0:
                print(r.stdout)
                return False
        started = time.monotonic()
        r = subprocess.run(["meson", "compile", "-C", build_dir] + TARGETS, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            print(r.stdout)
            return False
        log(f"targets built in {time.monotonic() - started:.1f} s")
        return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("target", choices=TARGETS)
    ap.add_argument("--source-root", default=os.path.normpath(os.path.join(HERE, "..", "..")))
    ap.add_argument("--build-dir", default=os.path.normpath(
        os.path.join(HERE, "..", "..", "build-fuzz")))
    ap.add_argument("--werror", default="false")
    ap.add_argument("--seconds", type=int,
                    default=int(os.environ.get("CORRAL_FUZZ_SECONDS", "8")),
                    help="time to explore after the corpus is replayed (CORRAL_FUZZ_SECONDS, 8)")
    ap.add_argument("--corpus-out", help="keep the new inputs here (default: a temp directory)")
    ap.add_argument("libfuzzer_args", nargs="*", help="more libFuzzer flags, after --")
    args = ap.parse_args()
    args.build_dir = os.path.abspath(args.build_dir)	# the target runs in a temp directory
    args.source_root = os.path.abspath(args.source_root)

    if not shutil.which("clang"):
        log("clang is not installed (bash scripts/deps.sh test installs it)")
        return 1 if os.environ.get("CI") == "true" else 77
    if not build(args.source_root, args.build_dir, args.werror):
        log("building the fuzz targets failed")
        return 1

    seeds = os.path.join(args.source_root, "tests", "fuzz", "corpus", args.target)
    if not glob.glob(os.path.join(seeds, "*")):
        log(f"{seeds}: no seed corpus")
        return 1
    dictionary = os.path.join(args.source_root, "tests", "fuzz", args.target + ".dict")
    work = tempfile.mkdtemp(prefix=f"corral-{args.target}-")
    try:
        new = args.corpus_out or os.path.join(work, "new")
        os.makedirs(new, exist_ok=True)
        artifacts = os.path.join(work, "artifacts")
        os.makedirs(artifacts)
        cmd = [os.path.join(args.build_dir, "tests", "fuzz", args.target),
               f"-max_total_time={args.seconds}",
               "-runs=100000000",	# a bound besides the time
               "-rss_limit_mb=2048",
               "-timeout=30",		# one input; a slow one is a defect too
               "-print_final_stats=1",
               f"-artifact_prefix={artifacts}/"]
        if os.path.exists(dictionary):
            cmd.append(f"-dict={dictionary}")
        cmd += args.libfuzzer_args + [new, seeds]	# new inputs go to the first
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = "detect_leaks=1:allocator_may_return_null=0:detect_stack_use_after_return=1"
        env["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1"
        log(" ".join(cmd))
        started = time.monotonic()
        r = subprocess.run(cmd, env=env, cwd=work)
        found = sorted(glob.glob(os.path.join(artifacts, "*")))
        log(f"{args.target}: status {r.returncode} after {time.monotonic() - started:.1f} s")
        if r.returncode == 0 and not found:
            return 0
        keep = os.path.join(args.build_dir, "artifacts", args.target)
        os.makedirs(keep, exist_ok=True)
        for f in found:
            shutil.copy(f, keep)
            log(f"found: {os.path.join(keep, os.path.basename(f))}")
        log(f"reproduce with: {cmd[0]} INPUT; once fixed, add the input to "
            f"tests/fuzz/corpus/{args.target}/ (README, Fuzzing)")
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
