"""The uvicorn versions the pin allows, both ends tested.

GuardedProtocol (worker/receiver/protocol.py) extends uvicorn's httptools protocol, which is not
a public API, so the pin in pyproject.toml has an upper bound. The highest end is the installed
uvicorn, which every other test runs; this module checks that it is the newest minor the pin
allows, then installs the lowest allowed version into a folder (`pip install --no-deps --target`,
kept in .venv for the next run: about 3 s the first time) and runs tests/test_server_hostile.py
with that folder ahead of the installed uvicorn (about 25 s).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import uvicorn
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def pin() -> SpecifierSet:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    [found] = [Requirement(d) for d in project["dependencies"] if d.startswith("uvicorn")]
    return found.specifier


def test_the_pin_is_bounded_and_the_installed_uvicorn_is_its_newest_minor() -> None:
    spec = pin()
    installed = Version(uvicorn.__version__)
    assert any(s.operator == "<" for s in spec), "the uvicorn pin needs an upper bound"
    assert installed in spec
    assert Version(f"{installed.major}.{installed.minor + 1}") not in spec


def lowest_uvicorn(folder: Path) -> str:
    """Install the lowest uvicorn the pin allows into `folder` (once); its version."""
    [lowest] = [s.version for s in pin() if s.operator == ">="]
    if not list(folder.glob("uvicorn-*.dist-info")):
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
            + ["--target", str(folder), f"uvicorn=={lowest}"],
            check=True,
            timeout=300,
        )
    [info] = folder.glob("uvicorn-*.dist-info")
    return info.name.removeprefix("uvicorn-").removesuffix(".dist-info")


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(420)
def test_the_hostile_client_tests_pass_on_the_lowest_uvicorn_the_pin_allows(tmp_path) -> None:
    venv = Path(sys.prefix)
    folder = (venv if venv != Path(sys.base_prefix) else tmp_path) / "uvicorn-lowest"
    version = lowest_uvicorn(folder)
    assert Version(version) in pin() and Version(version) < Version(uvicorn.__version__)
    env = {
        **os.environ,
        "LEADROUTER_TEST_UVICORN_PATH": str(folder),
        "LEADROUTER_TEST_UVICORN_VERSION": version,
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_server_hostile.py", "-q"]
        + ["-p", "no:randomly", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout.splitlines()[-1]
