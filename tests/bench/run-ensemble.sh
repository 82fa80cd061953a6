#!/usr/bin/env bash
# The ensemble benchmark in one command: installs what it needs (zookeeper,
# java, fio), builds a release corrald and loadgen, and runs ensemble.py (a
# 3-server Apache ZooKeeper ensemble, then a 3-server corral ensemble:
# write and read throughput, failover after kill -9 of the leader, RSS).
# Run by hand; not part of CI or meson test.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/deps.sh build
for p in zookeeper fio default-jre-headless libslf4j-java liblog4j1.2-java; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$p"; }
done
[ -d build-rel ] || meson setup build-rel --buildtype=release -Dtests=disabled
meson compile -C build-rel
# ensemble.py prints the machine and measures the disk with fio (in its workdir)
/usr/bin/python3 tests/bench/ensemble.py "$@"
