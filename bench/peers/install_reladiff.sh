#!/usr/bin/env bash
# Installs reladiff (the peer of bench/reconcile.py) into its own venv under bench/.peers/.
# Idempotent. Usage: bash bench/peers/install_reladiff.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/bench/.peers/reladiff"
PYTHON="${PYTHON:-python3}"
# reladiff reaches PostgreSQL through psycopg2; its CLI is `reladiff`.
RELADIFF_VERSION="0.6.0"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet "reladiff==$RELADIFF_VERSION" psycopg2-binary
"$VENV/bin/reladiff" --version
