#!/usr/bin/env bash
# Installs pitstop and its development dependencies into .venv (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "pitstop needs Python >= 3.11 (found $("$PYTHON" --version 2>&1)); set PYTHON=python3.11" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'

# redis-server for the integration tests (each test session starts a private one on a free port).
if ! command -v redis-server >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "redis-server is missing and installing it needs root (no sudo found); install the redis-server package" >&2
      exit 1
    fi
    SUDO="sudo"
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "redis-server is missing and apt-get is not available; install redis-server (>= 6) with your package manager" >&2
    exit 1
  fi
  echo "installing redis-server (apt-get)..." >&2
  if ! { $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }; then
    echo "could not install redis-server with apt-get; install it manually and re-run scripts/setup.sh" >&2
    exit 1
  fi
fi
