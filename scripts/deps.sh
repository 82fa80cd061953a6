#!/usr/bin/env bash
# Installs what corral needs to build and test on Debian 12, idempotently:
# packages already present are not touched, and apt runs only when one is missing.
# Usage: scripts/deps.sh build|test
set -euo pipefail

build_pkgs=(gcc meson ninja-build pkg-config liburing-dev libsystemd-dev libyaml-dev libssl-dev
            zlib1g-dev libmicrohttpd-dev libisal-dev libsnappy-dev
            libsasl2-dev libsasl2-modules	# SASL on the client port (server/sasl.c): DIGEST-MD5's plugin
            libkrb5-dev)			# GSSAPI: Kerberos' default realm, to name a client whole
test_pkgs=(libcmocka-dev python3-kazoo python3-pytest libzookeeper-mt-dev zookeeper-bin zookeeper
           default-jre-headless openjdk-17-jdk-headless libcurator-recipes-java libslf4j-java
           debootstrap systemd-container build-essential dpkg-dev debhelper iproute2 procps git
           strace			# test_purge.py: no unlink on the server's thread
           clang libclang-rt-14-dev	# the fuzz targets (tests/fuzz): clang and its libFuzzer
           prometheus			# test_admin_http.py: a real Prometheus scrapes corrald, promtool checks /metrics
           libjetty9-java libjackson2-databind-java libservlet-api-java	# ZooKeeper's AdminServer (the reference)
           libnetty-java		# ZooKeeper's TLS port (NettyServerCnxnFactory, the reference for test_tls.py)
           python3-pure-sasl python3-kerberos	# test_sasl.py: kazoo's sasl_options (DIGEST-MD5, GSSAPI)
           libsasl2-modules-gssapi-mit krb5-kdc krb5-admin-server krb5-user)	# GSSAPI (Kerberos) with a test KDC (kinit: krb5-user)

want=("${build_pkgs[@]}")
[ "${1:-build}" = test ] && want+=("${test_pkgs[@]}")

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)

# libraft >= 0.22.1 is in bookworm-backports (bookworm has 0.15, which has a
# Raft safety bug). Add the suite once; apt prefers bookworm unless asked.
backports=false
if grep -q '^VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null; then
	backports=true
	if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
		printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\n' |
			"${sudo_cmd[@]}" tee /etc/apt/sources.list.d/backports.sources >/dev/null
	fi
else
	want+=(libraft-dev)
fi

missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "corral: installing ${missing[*]}"
	"${sudo_cmd[@]}" apt-get update -q
	DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# The installed libraft must be the backports one (>= 0.22.1).
if $backports && ! pkg-config --atleast-version=0.22.1 raft 2>/dev/null; then
	echo "corral: installing libraft-dev from bookworm-backports"
	"${sudo_cmd[@]}" apt-get update -q
	DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends \
		-t bookworm-backports libraft-dev
fi
