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
    echo "redis-server is missing and apt-get is not available; install redis-server (>= 7.0: the Cluster tests use cluster-port) with your package manager" >&2
    exit 1
  fi
  echo "installing redis-server (apt-get)..." >&2
  if ! { $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }; then
    echo "could not install redis-server with apt-get; install it manually and re-run scripts/setup.sh" >&2
    exit 1
  fi
fi

# PostgreSQL for the registry contract tests (each test session creates and drops its own
# pitstop_test_* database). Skipped when PITSTOP_TEST_POSTGRES_URL points the tests at another server.
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@"; else
  echo "setting up PostgreSQL needs root (no sudo found): $*" >&2; return 1; fi; }
as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }
if [ -z "${PITSTOP_TEST_POSTGRES_URL:-}" ]; then
  if ! ls /etc/postgresql/*/main/postgresql.conf >/dev/null 2>&1; then
    if ! command -v apt-get >/dev/null 2>&1; then
      echo "PostgreSQL is missing and apt-get is not available; install PostgreSQL (>= 13) or set PITSTOP_TEST_POSTGRES_URL" >&2
      exit 1
    fi
    echo "installing postgresql (apt-get)..." >&2
    if ! { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }; then
      echo "could not install postgresql with apt-get; install it manually and re-run scripts/setup.sh" >&2
      exit 1
    fi
  fi
  if ! pg_isready -q -h /var/run/postgresql; then
    PG_VERSION=$(ls /etc/postgresql | sort -V | tail -n 1)
    as_root pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main start
    for _ in $(seq 1 30); do pg_isready -q -h /var/run/postgresql && break; sleep 0.5; done
  fi
  # the tests connect over the Unix socket as this OS user: give it a role that may create databases
  if ! psql "postgresql:///postgres?host=/var/run/postgresql" -tAc 'SELECT 1' >/dev/null 2>&1; then
    as_postgres createuser --superuser "$(id -un)"
  fi
fi

# A Java runtime (17+) for the Spark offline engine's tests (pyspark, from the dev extra, runs local[2]).
if ! command -v java >/dev/null 2>&1 || ! java -version 2>&1 | grep -Eq 'version "(1[7-9]|2[0-9])'; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "a Java 17+ runtime is missing and apt-get is not available; install one (the Spark engine tests need it)" >&2
    exit 1
  fi
  echo "installing openjdk-17-jre-headless (apt-get)..." >&2
  if ! { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless; }; then
    echo "could not install openjdk-17-jre-headless with apt-get; install a Java 17+ runtime and re-run scripts/setup.sh" >&2
    exit 1
  fi
fi

# Chromium and its driver for the web UI's real-browser tests (Selenium drives them headless).
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "chromium and chromium-driver are missing and apt-get is not available; install them (the UI tests need them)" >&2
    exit 1
  fi
  echo "installing chromium and chromium-driver (apt-get)..." >&2
  if ! { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }; then
    echo "could not install chromium and chromium-driver with apt-get; install them and re-run scripts/setup.sh" >&2
    exit 1
  fi
fi
