"""Run a feature repo's top-level ``*.py`` files and collect the definitions they create.

Files are run under their own module names with the repo on ``sys.path`` (so they can import each
other), then removed from ``sys.modules`` again so another repo can be loaded in the same process.
Files listed in ``.pitstopignore`` (glob patterns, one per line) and files starting with ``_`` or
``.`` are skipped; put scripts such as data generators there.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import sys
import threading
import traceback
from pathlib import Path
from types import ModuleType

import cloudpickle

from pitstop.definitions.base import Definition
from pitstop.definitions.contents import RepoContents
from pitstop.errors import DefinitionError, RepoLoadError

IGNORE_FILE = ".pitstopignore"
_lock = threading.Lock()


def repo_files(repo: Path) -> list[Path]:
    """The definition files of ``repo`` in the order they are run (sorted by name)."""
    patterns: list[str] = []
    ignore = repo / IGNORE_FILE
    if ignore.is_file():
        patterns = [
            line.strip() for line in ignore.read_text().splitlines() if line.strip() and not line.startswith("#")
        ]
    files = []
    for path in sorted(repo.glob("*.py")):
        if path.name.startswith(("_", ".")) or any(fnmatch.fnmatch(path.name, p) for p in patterns):
            continue
        files.append(path)
    return files


def _user_frame(exc: BaseException, repo: Path) -> str | None:
    location = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename).resolve().is_relative_to(repo):
            location = f"{frame.filename}:{frame.lineno}"
    return location


def _run(path: Path, repo: Path) -> ModuleType:
    name = path.stem
    existing = sys.modules.get(name)
    if existing is not None and getattr(existing, "__file__", None) == str(path):
        return existing  # already imported by an earlier file of this repo
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    # on-demand udfs live in these throwaway modules: pickle them by value for the registry
    cloudpickle.register_pickle_by_value(module)
    try:
        spec.loader.exec_module(module)
    except DefinitionError:
        raise
    except (SystemExit, KeyboardInterrupt) as exc:
        # a definition file must not end the process: `plan`/`apply` would exit "successfully" having done nothing
        location = _user_frame(exc, repo) or f"{path}:1"
        what = f"sys.exit({exc.code!r})" if isinstance(exc, SystemExit) else "KeyboardInterrupt"
        raise RepoLoadError(f"running {path.name} stopped with {what}; definition files must not exit "
                            "(move scripts to a file listed in .pitstopignore)", location=location) from None
    except Exception as exc:
        location = _user_frame(exc, repo) or f"{path}:1"
        raise RepoLoadError(f"running {path.name} failed: {type(exc).__name__}: {exc}", location=location) from exc
    return module


def load_repo(repo_path: str | Path, previous: RepoContents | None = None) -> RepoContents:
    """Run every definition file of the repo and return its validated contents.

    Raises:
        RepoLoadError: a file fails to run, or two definitions clash (the message names file and line).
        DefinitionError: a definition is invalid or refers to something unknown.
        ApplyRefusedError: a service still refers by name to a view of ``previous`` the repo removed.
    """
    repo = Path(repo_path).resolve()
    objects: list[Definition] = []
    with _lock:
        before = set(sys.modules)
        sys.path.insert(0, str(repo))
        try:
            for path in repo_files(repo):
                module = _run(path, repo)
                for value in vars(module).values():
                    if isinstance(value, Definition) and value not in objects:
                        objects.append(value)
        finally:
            sys.path.remove(str(repo))
            for name in set(sys.modules) - before:
                file = getattr(sys.modules[name], "__file__", None)
                if file and Path(file).resolve().is_relative_to(repo):
                    del sys.modules[name]
    return RepoContents.collect(objects, previous)
