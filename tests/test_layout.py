"""The repository's layout rules, checked on the source text (AST), without importing the code.

- The sandbox (`leadterra_sandbox/`) is a stand-in for a third party: it imports nothing from the
  service (`worker`, `config`).
- Inside the service only the CLI (`worker/cli/`) starts or drives the sandbox.
- No module under `worker/` is named like a standard-library module, and no file stem is used at
  two folder levels of `worker/` (`worker/x.py` and `worker/y/x.py`), so a name says one thing.
- No function in `worker/` or `config/` is longer than 60 lines, signature included.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_FUNCTION_LINES = 60
IGNORED_STEMS = {"__init__", "__main__"}


def _sources(folder: str) -> Iterator[Path]:
    yield from sorted((ROOT / folder).rglob("*.py"))


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _imported(path: Path) -> set[str]:
    """The top-level packages `path` imports absolutely, anywhere in the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def _modules(folder: str) -> Iterator[tuple[str, Path]]:
    """(module name, path) for every module under `folder`: .py files and package folders."""
    for path in _sources(folder):
        if path.stem not in IGNORED_STEMS:
            yield path.stem, path
    for init in sorted((ROOT / folder).rglob("__init__.py")):
        if init.parent != ROOT / folder:
            yield init.parent.name, init.parent


def test_the_sandbox_imports_nothing_from_the_service() -> None:
    offenders = {
        _name(path): sorted(_imported(path) & {"worker", "config"})
        for path in _sources("leadterra_sandbox")
    }
    bad = [f"{name} imports {', '.join(found)}" for name, found in offenders.items() if found]
    assert not bad, "\n".join(bad)


def test_only_the_cli_imports_the_sandbox() -> None:
    offenders = [
        _name(path)
        for path in _sources("worker")
        if "leadterra_sandbox" in _imported(path)
        and not path.is_relative_to(ROOT / "worker" / "cli")
    ]
    assert not offenders, "import leadterra_sandbox outside worker/cli: " + ", ".join(offenders)


def test_no_worker_module_shadows_the_standard_library() -> None:
    shadows = [_name(path) for stem, path in _modules("worker") if stem in sys.stdlib_module_names]
    assert not shadows, "named like a standard-library module: " + ", ".join(shadows)


def test_no_worker_module_name_is_used_at_two_folder_levels() -> None:
    levels: dict[str, dict[int, list[str]]] = {}
    for stem, path in _modules("worker"):
        depth = len(path.relative_to(ROOT / "worker").parts)
        levels.setdefault(stem, {}).setdefault(depth, []).append(_name(path))
    repeated = {
        stem: sorted(name for names in by_depth.values() for name in names)
        for stem, by_depth in levels.items()
        if len(by_depth) > 1
    }
    assert not repeated, "\n".join(
        f"{stem}: {', '.join(names)}" for stem, names in repeated.items()
    )


def test_no_function_is_longer_than_60_lines() -> None:
    too_long = []
    for folder in ("worker", "config"):
        for path in _sources(folder):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines = (node.end_lineno or node.lineno) - node.lineno + 1
                    if lines > MAX_FUNCTION_LINES:
                        too_long.append(f"{_name(path)}:{node.lineno} {node.name} ({lines} lines)")
    assert not too_long, f"longer than {MAX_FUNCTION_LINES} lines:\n" + "\n".join(too_long)
