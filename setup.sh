#!/usr/bin/env bash
# Creates .venv with the pinned TF 2.14 stack (Python 3.11). Idempotent: reuses a complete venv.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3.11}
if ! command -v "$PYTHON" >/dev/null; then
  echo "error: $PYTHON not found; tfflowcomp needs Python 3.11 (TF 2.14 has no wheels for 3.12)." >&2
  exit 1
fi
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -m pip install --quiet -r requirements.txt 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c "import tensorflow, tensorflow_compression, tensorflow_probability, tensorflow_datasets" \
  || { echo "error: the environment did not install correctly." >&2; exit 1; }
echo "$want" > "$stamp"
