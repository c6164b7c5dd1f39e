#!/usr/bin/env bash
# Creates bench/torch_ref/.venv and installs the newest PyTorch from PyPI
# (plus numpy). Idempotent: does nothing when torch and numpy already import
# from the venv, unless UPGRADE=1 is set.
#
# Why PyPI's `torch`: it is the newest CPU-capable build this machine can
# install (PyPI is reachable; the pytorch.org CPU index is not). PyPI does not
# host a CPU-only variant of torch, so the default Linux x86_64 wheel is used;
# it pulls the nvidia-* CUDA runtime wheels as dependencies (unused here, only
# disk space). Its CPU path is the same one the CPU-only wheel has: oneDNN
# (with AMX/AVX-512 bf16 kernels), MKL for BLAS, and GNU OpenMP (libgomp) for
# intra-op threads.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv"
PY="${PYTHON:-python3}"
INFO="$HERE/torch_info.txt"

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating venv at $VENV"
  "$PY" -m venv "$VENV"
fi

if [ "${UPGRADE:-0}" != "1" ] && "$VENV/bin/python" -c "import torch, numpy" >/dev/null 2>&1; then
  echo "[setup] torch already installed in $VENV (set UPGRADE=1 to upgrade)"
else
  echo "[setup] installing torch + numpy from PyPI (large download: CUDA runtime wheels come along)"
  "$VENV/bin/python" -m pip install --upgrade pip
  "$VENV/bin/python" -m pip install --upgrade torch numpy
fi

# tcmalloc: train_torch.py preloads it by default (--malloc tcmalloc), as PyTorch's
# own CPU launcher (torch.backends.xeon.run_cpu) does; measured +10% (fp32) to
# +30% (bf16) eager tokens/s over glibc malloc on this machine.
if ! ls /usr/lib/*/libtcmalloc_minimal.so.4 >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[setup] installing Debian's libtcmalloc-minimal4"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libtcmalloc-minimal4
  else
    echo "[setup] WARNING: libtcmalloc-minimal4 missing (apt-get install libtcmalloc-minimal4); train_torch.py will fall back to glibc malloc"
  fi
fi

# Record what we got: version, build config and parallel info.
"$VENV/bin/python" - > "$INFO" <<'PY'
import os, platform, sys
os.environ.setdefault("OMP_NUM_THREADS", "2")
import torch
print("python:", sys.version.replace("\n", " "))
print("platform:", platform.platform())
print("torch:", torch.__version__, "from", os.path.dirname(torch.__file__))
print("installed from: PyPI (pip install torch)")
print("cuda build:", torch.version.cuda, "| cuda available:", torch.cuda.is_available())
print("mkldnn (oneDNN) enabled:", torch.backends.mkldnn.is_available())
print("mkl enabled:", torch.backends.mkl.is_available())
print("openmp enabled:", torch.backends.openmp.is_available())
print("cpu capability:", torch.backends.cpu.get_cpu_capability())
print()
print("=== torch.__config__.show() ===")
print(torch.__config__.show())
print("=== torch.__config__.parallel_info() (OMP_NUM_THREADS=%s) ===" % os.environ["OMP_NUM_THREADS"])
print(torch.__config__.parallel_info())
PY
echo "[setup] wrote $INFO"
head -10 "$INFO"
