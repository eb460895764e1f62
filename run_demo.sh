#!/usr/bin/env bash
# Sets up the environment and compresses + decompresses the sample image with the shipped model.
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh
export TF_CPP_MIN_LOG_LEVEL=3
exec .venv/bin/python tools/demo.py "$@"
