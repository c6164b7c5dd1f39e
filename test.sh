#!/usr/bin/env bash
# Installs missing packages, builds, and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install_deps.sh
scripts/build.sh
cd build
# Idle OpenMP workers sleep instead of spinning (unless the caller chose): ctest runs tests side
# by side, and with one other busy process on a 2-core machine spinning workers made decode 40x
# slower (6.5 against 137 tok/s).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
ctest --output-on-failure -j"$(nproc)" "$@"
