"""The Dockerfile and its build context, checked as text (no Docker engine on these machines)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text()
ROLES = ("apply", "ingest", "materialize", "schedule", "serve")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def test_dependencies_are_installed_before_the_source_is_copied() -> None:
    steps = instructions()
    [deps] = [i for i, (w, a) in enumerate(steps) if w == "COPY" and a.startswith("pyproject.toml")]
    [install] = [i for i, (w, a) in enumerate(steps) if w == "RUN" and "pip install -r requirements.txt" in a]
    [source] = [i for i, (w, a) in enumerate(steps) if w == "COPY" and a.startswith("pitstop ")]
    assert deps < install < source
    assert [w for w, _ in steps].count("FROM") == 2  # build stage + runtime stage


def test_the_runtime_stage_runs_as_an_unprivileged_user_with_the_role_entrypoint() -> None:
    steps = instructions()
    runtime = steps[max(i for i, (w, _) in enumerate(steps) if w == "FROM"):]
    users = [a for w, a in runtime if w == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert ("ENTRYPOINT", '["/app/docker/entrypoint.sh"]') in runtime
    assert ("COPY", "--from=build /opt/venv /opt/venv") in runtime


def test_every_role_has_an_executable_script_and_the_context_holds_what_the_build_copies() -> None:
    for role in ROLES:
        script = ROOT / "docker" / "roles" / f"{role}.sh"
        assert script.is_file() and os.access(script, os.X_OK), script
    assert os.access(ROOT / "docker" / "entrypoint.sh", os.X_OK)
    allowed = {line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")}
    copied = set()
    for word, args in instructions():
        if word == "COPY" and "--from=" not in args:
            sources = [a for a in args.split() if not a.startswith("--")][:-1]  # the last one is the destination
            copied |= {src.split("/")[0] for src in sources}
    assert copied and copied <= allowed


def test_requirements_script_lists_dependencies_and_extras() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "docker" / "requirements.py"), str(ROOT / "pyproject.toml"),
                          "postgres"], capture_output=True, text=True, check=True).stdout.splitlines()
    assert any(r.startswith("duckdb") for r in out) and any(r.startswith("psycopg") for r in out)
    bad = subprocess.run([sys.executable, str(ROOT / "docker" / "requirements.py"), str(ROOT / "pyproject.toml"),
                          "nope"], capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown extras ['nope']" in bad.stderr


def test_the_image_installs_what_every_role_needs_and_self_references_expand() -> None:
    arg = next(line for line in (ROOT / "docker" / "Dockerfile").read_text().splitlines()
               if line.startswith("ARG PITSTOP_EXTRAS="))
    extras = arg.split("=", 1)[1]
    assert {"serve", "redis", "kafka", "postgres"} <= set(extras.split(","))
    out = subprocess.run([sys.executable, str(ROOT / "docker" / "requirements.py"), str(ROOT / "pyproject.toml"),
                          "all"], capture_output=True, text=True, check=True).stdout.splitlines()
    assert not any(r.startswith("pitstop") for r in out)  # pitstop[...] expanded, never fetched from an index
    for name in ("fastapi", "redis", "kafka-python", "psycopg", "scikit-learn", "onnxruntime"):
        assert any(r.startswith(name) for r in out), name
