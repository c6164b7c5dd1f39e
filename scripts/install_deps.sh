#!/usr/bin/env bash
# Installs the Debian packages speedlm needs, only those missing (non-interactive).
set -euo pipefail
PACKAGES=(build-essential cmake ninja-build pkg-config libdnnl-dev libopenblas-openmp-dev libfmt-dev
          nlohmann-json3-dev libgtest-dev libbenchmark-dev bible-kjv python3-matplotlib)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "speedlm: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
