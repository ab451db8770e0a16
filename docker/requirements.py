"""Print pitstop's runtime requirements (plus the named extras) from pyproject.toml, one per line.

Used by the Dockerfile to install dependencies in a layer of their own, before the source is copied:
    python requirements.py pyproject.toml postgres,sklearn > requirements.txt
"""

from __future__ import annotations

import sys
import tomllib


def requirements(pyproject: str, extras: str) -> list[str]:
    """The ``[project] dependencies`` and those of each comma-separated extra in ``extras``."""
    with open(pyproject, "rb") as f:
        project = tomllib.load(f)["project"]
    wanted = [e.strip() for e in extras.split(",") if e.strip()]
    optional = project.get("optional-dependencies", {})
    unknown = [e for e in wanted if e not in optional]
    if unknown:
        raise SystemExit(f"unknown extras {unknown}; pyproject.toml defines {sorted(optional)}")
    return list(dict.fromkeys(list(project.get("dependencies", [])) + _expand(wanted, optional, project["name"])))


def _expand(extras: list[str], optional: dict[str, list[str]], name: str) -> list[str]:
    """The requirements of ``extras``, with references to the project's own extras (``pitstop[a,b]``) expanded."""
    out: list[str] = []
    for extra in extras:
        for req in optional[extra]:
            if req.startswith(f"{name}["):
                out += _expand(req[len(name) + 1 : req.index("]")].split(","), optional, name)
            else:
                out.append(req)
    return out


if __name__ == "__main__":
    sys.stdout.write("".join(f"{req}\n" for req in requirements(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "")))
