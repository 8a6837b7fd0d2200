#!/usr/bin/env bash
# Download, on a machine with PyPI, the wheels a GPU host without network needs to run lem from this checkout, into
# .whl/ (git-ignored). scripts/gpu_check.sh installs the ones the host lacks into a target folder.
#
#   bash scripts/fetch_gpu_wheels.sh          # for the GPU host: CPython 3.12, manylinux x86_64
#   PYTHON_VERSION=3.11 WHEEL_DIR=/tmp/w bash scripts/fetch_gpu_wheels.sh
#
# The host is assumed to have torch (CUDA), transformers, nvidia-ml-py, pandas, pyarrow, rich and pytest with their
# own dependencies. The list below is what `python -m lem` (a campaign, on a GPU) and scripts/gpu_check.py import
# beyond those, found by running them in a Python that had only those packages (see the test notes in
# docs/validation/README.md):
#   hydra-core, omegaconf, antlr4-python3-runtime  Hydra; the antlr pin is hydra-core's own (4.9.*)
#   zeus + scikit-learn, scipy, joblib, cloudpickle, threadpoolctl, narwhals
#                                                   zeus.monitor.power imports sklearn.metrics.auc (and transformers'
#                                                   generation imports sklearn wherever it is installed)
#   httpx, httpcore, certifi                        zeus.utils.zeusd imports httpx (huggingface-hub 2 uses httpx2)
#   anyio, idna, h11                                httpx's own; huggingface-hub brings them (installed if missing)
#   psutil                                          lem's sampler and environment snapshot
#   optuna, colorlog                                Hydra imports every hydra_plugins module, lem_search imports optuna
# Versions are the ones installed in the dev environment (.venv, where the test suite runs), so the host gets what
# was tested; hydra-core's comes from lem's own pin through it.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
PYTHON_VERSION=${PYTHON_VERSION:-3.12}
WHEEL_DIR=${WHEEL_DIR:-.whl}
PACKAGES=(
  hydra-core omegaconf antlr4-python3-runtime
  zeus scikit-learn scipy joblib cloudpickle threadpoolctl narwhals
  httpx httpcore certifi anyio idna h11
  psutil
  optuna colorlog
)
# Published as a source archive only: built here into a pure-Python wheel.
SOURCE_ONLY=(antlr4-python3-runtime)

pins=$("$PYTHON" - "${PACKAGES[@]}" <<'EOF'
import importlib.metadata
import sys

for name in sys.argv[1:]:
    print(f"{name}=={importlib.metadata.version(name)}")
EOF
)
mkdir -p "$WHEEL_DIR"
rm -f "$WHEEL_DIR"/*.whl  # exactly this list, no wheel of an earlier pin
binary=()
source_only=()
for pin in $pins; do
  if [[ " ${SOURCE_ONLY[*]} " == *" ${pin%%==*} "* ]]; then source_only+=("$pin"); else binary+=("$pin"); fi
done
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --dest "$WHEEL_DIR" \
  --python-version "$PYTHON_VERSION" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  "${binary[@]}"
"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$WHEEL_DIR" "${source_only[@]}"
ls -1 "$WHEEL_DIR"
du -sh "$WHEEL_DIR"
