"""Container healthchecks (stdlib only, so they start fast):

    python /app/docker/healthcheck.py http http://127.0.0.1:8000/ready   # 2xx within the timeout
    python /app/docker/healthcheck.py registry                           # the repo's registry answers

Exit 0 when healthy, 1 (with the reason on stderr) otherwise.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 5.0


def check_http(url: str) -> str | None:
    """None when ``url`` answers 2xx, else the reason."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - a fixed local URL
            return None if 200 <= response.status < 300 else f"{url} answered {response.status}"
    except (urllib.error.URLError, OSError) as exc:
        return f"{url}: {exc}"


def check_registry() -> str | None:
    """None when the registry named by the repo's settings can be opened and read."""
    from pitstop.errors import PitstopError
    from pitstop.registry.factory import open_registry
    from pitstop.settings import load_settings

    try:
        registry = open_registry(load_settings(os.environ.get("PITSTOP_REPO", ".")))
        try:
            registry.version()
        finally:
            registry.close()
    except PitstopError as exc:
        return str(exc)
    return None


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "http":
        problem = check_http(argv[1])
    elif argv == ["registry"]:
        problem = check_registry()
    else:
        problem = "usage: healthcheck.py http URL | registry"
    if problem:
        sys.stderr.write(f"unhealthy: {problem}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
