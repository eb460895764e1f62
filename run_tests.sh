#!/usr/bin/env bash
# Sets up the environment and runs the whole test suite (CPU only; needs no ../shared data).
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh
export TF_CPP_MIN_LOG_LEVEL=2 CUDA_VISIBLE_DEVICES=""
exec .venv/bin/python -m pytest -q "$@"
