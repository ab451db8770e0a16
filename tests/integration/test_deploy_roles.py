"""The image's role scripts, run as the container runs them (no Docker engine here): the example
repo bootstrapped by the one-shot ``apply`` role onto a shared PostgreSQL registry, ``materialize``,
the healthcheck script, and every role's command line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.support.postgres import postgres_url  # noqa: F401 - the session database fixture

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
ROLE_COMMANDS = {"serve": "serve", "ingest": "ingest", "schedule": "schedule", "apply": "apply",
                 "materialize": "materialize-incremental"}


def run(args: list[str], repo: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``args`` with the test's Python environment first on PATH, as the image's venv is."""
    environ = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               "PITSTOP_REPO": str(repo), **env}
    return subprocess.run(args, capture_output=True, text=True, env=environ, cwd=repo, timeout=300)


def role(name: str, repo: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run(["sh", str(DOCKER / "entrypoint.sh"), name, *args], repo, **env)


@pytest.fixture
def example_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "feature_repo", repo, ignore=shutil.ignore_patterns("data", "__pycache__"))
    return repo


@pytest.mark.slow
def test_apply_role_bootstraps_the_example_on_a_shared_registry(example_repo: Path, postgres_url: str) -> None:  # noqa: F811
    env = {"PITSTOP_REGISTRY_PATH": postgres_url, "PITSTOP_PROJECT": f"t{uuid.uuid4().hex[:10]}"}
    first = role("apply", example_repo, EXAMPLE="1", **env)
    assert first.returncode == 0, first.stderr
    assert "registered trip_completion version 1 as production" in first.stdout
    assert not (example_repo / "data" / "registry.db").exists()  # the registry is the database
    again = role("apply", example_repo, EXAMPLE="1", **env)
    assert again.returncode == 0, again.stderr
    assert "nothing to change" in again.stdout and "registered" not in again.stdout  # no second model
    done = role("materialize", example_repo, **env)
    assert done.returncode == 0, done.stderr
    assert "driver_hourly_stats" in done.stdout
    health = run([sys.executable, str(DOCKER / "healthcheck.py"), "registry"], example_repo, **env)
    assert health.returncode == 0, health.stderr
    down = run([sys.executable, str(DOCKER / "healthcheck.py"), "registry"], example_repo,
               PITSTOP_REGISTRY_PATH="postgresql://pitstop:s3cret@127.0.0.1:1/pitstop")
    assert down.returncode == 1 and "pitstop:***@127.0.0.1:1" in down.stderr and "s3cret" not in down.stderr


@pytest.mark.parametrize("name", sorted(ROLE_COMMANDS))
def test_each_role_runs_its_pitstop_command(name: str, example_repo: Path) -> None:
    command = ROLE_COMMANDS[name]
    if run(["pitstop", command, "--help"], example_repo).returncode != 0:
        pytest.skip(f"`pitstop {command}` is not part of this build yet")
    shown = role(name, example_repo, "--help")
    assert shown.returncode == 0, shown.stderr
    assert "Usage: pitstop " + command in shown.stdout


def test_other_commands_pass_through_the_entrypoint(example_repo: Path) -> None:
    shown = role("pitstop", example_repo, "--version")
    assert shown.returncode == 0 and "version" in shown.stdout
    unhealthy = run([sys.executable, str(DOCKER / "healthcheck.py"), "http", "http://127.0.0.1:1/ready"], example_repo)
    assert unhealthy.returncode == 1 and "unhealthy" in unhealthy.stderr
