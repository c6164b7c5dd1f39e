#!/usr/bin/env bash
# Installs missing packages, builds, and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install_deps.sh
scripts/build.sh
cd build
ctest --output-on-failure -j"$(nproc)" "$@"
