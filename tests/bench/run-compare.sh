#!/usr/bin/env bash
# The benchmark in one command: installs what it needs (zookeeper, fio), builds
# a release corrald and loadgen, measures the disk's fdatasync latency with fio,
# and runs compare.py (corrald and Apache ZooKeeper side by side).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/deps.sh build
for p in zookeeper fio default-jre-headless; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$p"; }
done
[ -d build-rel ] || meson setup build-rel --buildtype=release -Dintegration_tests=false
meson compile -C build-rel
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -r)"
dir=$(mktemp -d /var/tmp/corral-fio-XXXXXX)
fio --name=fdatasync --directory="$dir" --rw=write --bs=4k --size=16m --fdatasync=1 \
	--runtime=10 --time_based=0 --output-format=terse 2>/dev/null |
	awk -F';' '{printf "disk: 4 KiB write + fdatasync, mean %.0f us (fio sync clat)\n", $57/1}' || true
rm -rf "$dir"
/usr/bin/python3 tests/bench/compare.py "$@"
