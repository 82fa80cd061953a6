#!/usr/bin/env bash
# Installs what corral needs to build and test on Debian 12, idempotently:
# packages already present are not touched, and apt runs only when one is missing.
# Usage: scripts/deps.sh build|test
set -euo pipefail

build_pkgs=(gcc meson ninja-build pkg-config liburing-dev libsystemd-dev libyaml-dev libssl-dev)
test_pkgs=(libcmocka-dev python3-kazoo python3-pytest libzookeeper-mt-dev zookeeper-bin zookeeper
           default-jre-headless)

want=("${build_pkgs[@]}")
[ "${1:-build}" = test ] && want+=("${test_pkgs[@]}")

missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "corral: installing ${missing[*]}"
	sudo_cmd=()
	[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
	"${sudo_cmd[@]}" apt-get update -q
	DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
