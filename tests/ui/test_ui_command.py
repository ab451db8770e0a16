"""`pitstop ui`: the same app on one worker, answering /ui."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.serving.conftest import build_served_repo
from tests.support.local_server import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_pitstop_ui_serves_the_sign_in_page_and_says_where(tmp_path: Path) -> None:
    store = build_served_repo(tmp_path / "repo")
    store.close()
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "pitstop.cli", "-r", str(tmp_path / "repo"), "ui", "--bind",
                             f"127.0.0.1:{port}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ui/login", timeout=2) as response:
                    assert response.status == 200 and b"Sign in" in response.read()
                    break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "pitstop ui did not answer within 60 s"
                time.sleep(0.2)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert f"web UI: http://127.0.0.1:{port}/ui" in err
