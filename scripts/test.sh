#!/usr/bin/env bash
# Builds corral with AddressSanitizer and UndefinedBehaviorSanitizer and runs
# the whole test suite: C unit tests and the suites that drive corrald with
# real clients (the README's second command; CI runs it too).
# With CI=true warnings are errors and a skipped test fails the run: a suite
# that skips because a client, a server or a privilege is missing would hide
# a compatibility oracle.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh test

builddir=build-test
werror=false
[ "${CI:-}" = true ] && werror=true
if [ ! -d "$builddir" ]; then
	meson setup "$builddir" -Db_sanitize=address,undefined -Db_lundef=false \
		-Dwerror="$werror" -Dfault_injection=true -Dtests=enabled
else
	meson configure "$builddir" -Dwerror="$werror" -Dtests=enabled >/dev/null
fi
meson compile -C "$builddir"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# each pytest run appends its counts here (tests/lib/corral_pytest.py)
export CORRAL_TEST_RESULTS="$PWD/$builddir/meson-logs/pytest-results.jsonl"
rm -f "$CORRAL_TEST_RESULTS"
status=0
meson test -C "$builddir" --print-errorlogs --num-processes 2 "$@" || status=$?

# One closing line that any reader can parse: "N passed, N failed, N skipped",
# counting each test function of a pytest suite and each other test program.
/usr/bin/python3 - "$builddir/meson-logs/testlog.json" "$CORRAL_TEST_RESULTS" <<'PY' || status=1
import json, os, sys
runs = {}
if os.path.exists(sys.argv[2]):
    for line in open(sys.argv[2]):
        r = json.loads(line)
        runs[tuple(r["files"])] = r
passed = failed = skipped = 0
for line in open(sys.argv[1]):
    t = json.loads(line)
    result = t["result"]
    files = tuple(sorted(os.path.realpath(a) for a in t["command"] if a.endswith(".py")))
    if "pytest" in t["command"]:
        r = runs.get(files)
        if r:
            passed += r["passed"]
            failed += r["failed"]
            skipped += r["skipped"]
            # killed by meson's timeout, or failed outside any test function
            if result not in ("OK", "EXPECTEDFAIL") and r["failed"] == 0:
                failed += 1
            continue
    if result in ("OK", "EXPECTEDFAIL"): passed += 1
    elif result == "SKIP": skipped += 1
    else: failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
if os.environ.get("CI") == "true" and skipped:
    print("CI=true: a skipped test is a failure (a missing client, server or privilege)")
    sys.exit(1)
PY
exit $status
