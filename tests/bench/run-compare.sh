#!/usr/bin/env bash
# The benchmark in one command: installs what it needs (zookeeper, fio), builds
# a release corrald and loadgen, and runs compare.py (corrald and Apache
# ZooKeeper side by side, with the disk's fdatasync latency measured by fio).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/deps.sh build
for p in zookeeper fio default-jre-headless; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$p"; }
done
[ -d build-rel ] || meson setup build-rel --buildtype=release -Dtests=disabled
meson compile -C build-rel
# the floor: the same loop answering without a tree or a log (server/floor.h)
[ -d build-floor ] || meson setup build-floor --buildtype=release -Dtests=disabled -Dbench_floor=true
meson compile -C build-floor
# compare.py prints the machine and measures the disk with fio (in its workdir)
/usr/bin/python3 tests/bench/compare.py --floor build-floor/app/corrald "$@"
