#!/usr/bin/env bash
# Configures (once) and builds the release preset into build/.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f build/CMakeCache.txt ] || cmake --preset release -G Ninja
cmake --build build -j"$(nproc)"
