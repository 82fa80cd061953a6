#!/usr/bin/env bash
# Builds corrald and runs it in the foreground on 127.0.0.1:2181 with the data
# directory ./data (the README's first command). Extra arguments go to corrald.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh build
[ -d build ] || meson setup build --buildtype=debugoptimized
meson compile -C build
mkdir -p data
exec build/app/corrald -d "$PWD/data" -l 127.0.0.1:2181 "$@"
