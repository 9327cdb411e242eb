"""The README stays true: every setting is in its table, and the two commands exist."""

import re
from pathlib import Path

from config.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_every_setting_is_in_the_readme_table() -> None:
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", README, flags=re.MULTILINE))
    assert documented == {name.upper() for name in Settings.model_fields}


def test_every_setting_is_in_the_env_example() -> None:
    example = (ROOT / ".env.example").read_text()
    for name in (
        "LEADTERRA_API_KEY",
        "LEADTERRA_BASE_URL",
        "LEADTERRA_WEBHOOK_SECRET",
        "REDIS_URL",
        "PORT",
    ):
        assert re.search(rf"^#? ?{name}=", example, flags=re.MULTILINE), name


def test_the_two_commands_exist_and_are_executable() -> None:
    for command in ("scripts/run", "scripts/test"):
        assert f"{command} " in README
        path = ROOT / command
        assert path.exists() and path.stat().st_mode & 0o111, command
