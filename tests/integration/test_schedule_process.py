"""`pitstop schedule` as a real process: it runs, logs, and exits cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.online_repo import make_repo


def test_schedule_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    make_repo(tmp_path)
    with subprocess.Popen(
        [sys.executable, "-m", "pitstop.cli", "-r", str(tmp_path), "schedule", "--cron", "* * * * *"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            deadline = time.monotonic() + 20
            assert proc.stderr is not None
            line = proc.stderr.readline()
            while "scheduler started" not in line and time.monotonic() < deadline:
                line = proc.stderr.readline()
            assert "scheduler started" in line
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
            assert "scheduler exited" in proc.stderr.read()

        finally:
            if proc.poll() is None:  # never leave a scheduler running (Popen's exit would wait forever)
                proc.kill()


def test_invalid_cron_is_one_clear_error(tmp_path: Path) -> None:
    make_repo(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "pitstop.cli", "-r", str(tmp_path), "schedule", "--cron", "every day"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and "invalid cron expression 'every day'" in result.stderr
