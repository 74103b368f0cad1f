#!/usr/bin/env bash
# Build the Horovod environment used by hpcnas' Horovod run function and its tests.
#
# Horovod 0.28.1 only builds against tensorflow-cpu 2.13.x (Keras 2) here, so it lives in its
# own virtual environment, made from Debian's python3 so that any user can run it:
#
#   bash tests/install_horovod_env.sh            # builds $HPCNAS_HOROVOD_VENV (default below)
#   export HPCNAS_HOROVOD_PYTHON=/opt/hpcnas/hvd-venv/bin/python   (the tests also look there)
#
# Default place: /opt/hpcnas/hvd-venv where this user may write there (root, CI), else .hvd-venv in
# the checkout (git ignores it); the tests look in both. README's test command runs this script.
#
# Needs: Debian's mpich + libmpich-dev, g++, cmake (the Horovod build compiles C++ for ~2.5 min).
# Idempotent: an environment whose Horovod already has TensorFlow, MPI and Gloo is kept; only the
# editable install of this checkout is refreshed. The last line printed is the Python to use.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -n "${HPCNAS_HOROVOD_VENV:-}" ]; then
    VENV="$HPCNAS_HOROVOD_VENV"
elif mkdir -p /opt/hpcnas 2>/dev/null && [ -w /opt/hpcnas ]; then
    VENV=/opt/hpcnas/hvd-venv
else
    VENV="$REPO/.hvd-venv"
fi
BASE_PYTHON="${HPCNAS_HOROVOD_BASE_PYTHON:-/usr/bin/python3}"
PY="$VENV/bin/python"

log() { echo "[install_horovod_env] $*" >&2; }

horovod_ok() {
    [ -x "$PY" ] && "$PY" - <<'EOF' >/dev/null 2>&1
import horovod.tensorflow as hvd
assert hvd.mpi_built() and hvd.gloo_built()
import tensorflow as tf
assert tf.__version__.startswith("2.13")
EOF
}

for tool in mpicc g++; do
    command -v "$tool" >/dev/null || { log "missing $tool: apt-get install mpich libmpich-dev g++"; exit 2; }
done

if ! horovod_ok; then
    log "creating $VENV from $BASE_PYTHON"
    "$BASE_PYTHON" -m venv "$VENV"
    "$PY" -m pip install --quiet --upgrade "pip<25" "setuptools<70" wheel
    # TensorFlow 2.13 pins numpy <= 1.24.3; keep hpcnas' own needs compatible with it.
    "$PY" -m pip install --quiet "tensorflow-cpu==2.13.1" "numpy==1.24.3" "cmake<4" \
        "ConfigSpace>=1.2" "pandas>=2.0,<2.3" "scikit-learn>=1.3,<1.6" "psutil" "tqdm" "pytest" \
        cloudpickle pyyaml packaging "cffi>=1.4"
    # no [tensorflow] extra: it would pull the 'tensorflow' package (Keras 3) next to tensorflow-cpu
    log "building horovod 0.28.1 with TensorFlow, MPI and Gloo (a few minutes)"
    HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_MPI=1 HOROVOD_WITH_GLOO=1 \
        HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1 \
        MAKEFLAGS="-j${HPCNAS_BUILD_JOBS:-2}" \
        "$PY" -m pip install --quiet --no-cache-dir --no-build-isolation --no-deps "horovod==0.28.1"
    horovod_ok || { log "horovod was installed but cannot be imported with MPI and Gloo"; exit 1; }
fi

"$PY" -m pip install --quiet --no-deps -e "$REPO"
chmod -R a+rX "$VENV" 2>/dev/null || true
log "ready: export HPCNAS_HOROVOD_PYTHON=$PY"
echo "$PY"
