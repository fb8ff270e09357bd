#!/usr/bin/env bash
# Installs the benchmark peers into isolated venvs under bench/.peers/ (git-ignored).
# Idempotent: re-running only (re)installs what is missing or at another version.
# Usage: bash bench/peers/install.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PEERS="$ROOT/bench/.peers"

# Versions verified together with bench/peers/dlt_load.py.
DLT_VERSION="1.31.0"
CONNECTORX_VERSION="0.4.6"
# dlt loads parquet into postgres only through the ADBC PostgreSQL driver (COPY of Arrow
# batches); without it dlt silently drops parquet and falls back to insert_values.
ADBC_VERSION="1.13.0"

PYTHON="${PYTHON:-python3}"
VENV="$PEERS/dlt"
mkdir -p "$PEERS"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet \
    "dlt[postgres,parquet]==$DLT_VERSION" \
    "sqlalchemy>=2,<3" \
    "connectorx==$CONNECTORX_VERSION" \
    "adbc-driver-postgresql==$ADBC_VERSION" \
    "adbc-driver-manager==$ADBC_VERSION"
"$VENV/bin/python" -c "import dlt, connectorx, adbc_driver_postgresql as a; print('dlt', dlt.__version__, 'connectorx', connectorx.__version__, 'adbc-driver-postgresql', a.__version__)"
