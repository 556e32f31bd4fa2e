#!/usr/bin/env bash
# Creates the Python venv the tests use: the official openai and anthropic
# SDKs (drop-in tests) and the reference implementation signet-sign 0.1.10.1
# (audit-log compatibility tests). Idempotent; installs only from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SIGNET_TEST_VENV:-$PWD/target/venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.signet-requirements"
want="openai anthropic signet-sign==0.1.10.1"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  # shellcheck disable=SC2086
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $want
  echo "$want" > "$stamp"
fi
"$VENV/bin/python" -c 'import openai, anthropic; print("venv ready:", "openai", openai.__version__, "anthropic", anthropic.__version__)'
