#!/usr/bin/env bash
# The first thing to run on a GPU host: scripts/gpu_check.py (steps, budget and report are described there), with
# plain python3 from this checkout, no network. lem need not be installed: it runs from the repository root. Wheels
# in .whl/ (made by scripts/fetch_gpu_wheels.sh on a machine with PyPI) whose distribution this Python lacks are
# installed into $LEM_WHEEL_SITE (default /tmp/site), which goes on PYTHONPATH.
#
#   bash scripts/gpu_check.sh                    # writes docs/validation/gpu-check-<UTC date>-<gpu>.md (and .json)
#   bash scripts/gpu_check.sh --help             # the options of scripts/gpu_check.py
#
# Exit status: gpu_check.py's (0: no step failed), or pip's if installing a wheel failed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
SITE=${LEM_WHEEL_SITE:-/tmp/site}
export PYTHONPATH="$PWD:$SITE${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1

if compgen -G ".whl/*.whl" >/dev/null; then
  missing=$("$PYTHON" - .whl/*.whl <<'EOF'
import importlib.metadata
import sys
from pathlib import Path

for wheel in sys.argv[1:]:
    try:
        importlib.metadata.version(Path(wheel).name.split("-")[0])
    except importlib.metadata.PackageNotFoundError:
        print(wheel)
EOF
)
  if [ -n "$missing" ]; then
    echo "installing into $SITE:" $missing
    # shellcheck disable=SC2086  # one wheel path per word
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" $missing
  fi
fi

exec "$PYTHON" scripts/gpu_check.py "$@"
