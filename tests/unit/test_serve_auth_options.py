"""`pitstop serve` refuses unsafe auth and TLS options before any worker starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pitstop.errors import ConfigError
from pitstop.serving.server import check_auth_bind, check_tls_files
from tests.support.repos import write_repo


@pytest.mark.parametrize("bind", ["127.0.0.1:8000", "localhost:8000", "[::1]:8000", "127.0.0.2:9"])
def test_no_auth_is_allowed_on_loopback(bind: str) -> None:
    check_auth_bind(bind, auth_enabled=False)


@pytest.mark.parametrize("bind", ["0.0.0.0:8000", "10.1.2.3:8000", "[::]:8000", "example.com:80"])
def test_no_auth_is_refused_beyond_loopback(bind: str) -> None:
    with pytest.raises(ConfigError, match="refusing to serve without auth"):
        check_auth_bind(bind, auth_enabled=False)
    check_auth_bind(bind, auth_enabled=True)  # with auth any interface is fine


def test_tls_files_must_be_readable(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("x")
    with pytest.raises(ConfigError, match=r"serving.keyfile .*missing.pem"):
        check_tls_files(str(cert), str(tmp_path / "missing.pem"))


def pitstop(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pitstop.cli", *args], capture_output=True, text=True, timeout=120)


def test_the_cli_refuses_no_auth_on_all_interfaces(tmp_path: Path) -> None:
    write_repo(tmp_path, {"defs.py": ""})
    result = pitstop("-r", str(tmp_path), "serve", "--no-auth", "--bind", "0.0.0.0:1")
    assert result.returncode == 1
    assert "refusing to serve without auth on 0.0.0.0:1" in result.stderr


def test_the_cli_wants_both_tls_files(tmp_path: Path) -> None:
    write_repo(tmp_path, {"defs.py": ""})
    result = pitstop("-r", str(tmp_path), "serve", "--certfile", str(tmp_path / "c.pem"))
    assert result.returncode == 1 and "--certfile and --keyfile go together" in result.stderr
