#!/usr/bin/env bash
# Builds corral with AddressSanitizer and UndefinedBehaviorSanitizer and runs
# the whole test suite: C unit tests and the integration tests that drive
# corrald with real clients (the README's second command; CI runs it too).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh test

builddir=build-test
werror=false
[ "${CI:-}" = true ] && werror=true
if [ ! -d "$builddir" ]; then
	meson setup "$builddir" -Db_sanitize=address,undefined -Db_lundef=false \
		-Dwerror="$werror" -Dfault_injection=true
else
	meson configure "$builddir" -Dwerror="$werror" >/dev/null
fi
meson compile -C "$builddir"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
meson test -C "$builddir" --print-errorlogs --num-processes 2 "$@" || status=$?

# One closing line that any reader can parse: "N passed, N failed".
/usr/bin/python3 - "$builddir/meson-logs/testlog.json" <<'PY'
import json, sys
passed = failed = skipped = 0
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    if r in ("OK", "EXPECTEDFAIL"): passed += 1
    elif r == "SKIP": skipped += 1
    else: failed += 1
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
exit $status
