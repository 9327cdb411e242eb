"""The deployment files: the Procfile, docker-compose.yml and the run command agree."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.service import procfile
from worker.cli.run import SERVICE

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_the_procfile_has_web_worker_beat_and_the_sandbox() -> None:
    assert set(procfile()) == {"web", "worker", "beat", "sandbox"}


def test_compose_runs_the_same_commands_as_the_procfile() -> None:
    entries = procfile()
    for name in ("web", "worker", "beat"):
        assert COMPOSE["services"][name]["command"] == entries[name], name


def test_the_sandbox_binds_loopback_except_in_the_compose_demo_profile() -> None:
    """It can post signed webhooks: only the demo profile's container exposes it."""
    assert "--host" not in procfile()["sandbox"]
    assert COMPOSE["services"]["sandbox"]["command"] == procfile()["sandbox"] + " --host 0.0.0.0"


def test_the_run_command_starts_what_the_procfile_names() -> None:
    entries = procfile()
    assert {name: entries[name] for name in SERVICE} == SERVICE


def test_redis_persists_append_only_to_a_volume() -> None:
    redis = COMPOSE["services"]["redis"]
    assert "--appendonly" in redis["command"]
    assert redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    assert "noeviction" in redis["command"]
    assert any(volume.endswith(":/data") for volume in redis["volumes"])
    assert "redis-data" in COMPOSE["volumes"]


def test_every_service_has_a_health_check_and_a_restart_policy() -> None:
    for name, service in COMPOSE["services"].items():
        assert service.get("healthcheck", {}).get("test"), name
        assert service.get("restart") == "unless-stopped", name


def test_web_worker_and_beat_share_one_image_built_from_the_dockerfile() -> None:
    images = {COMPOSE["services"][n]["image"] for n in ("web", "worker", "beat")}
    assert len(images) == 1
    assert all(COMPOSE["services"][n]["build"] == "." for n in ("web", "worker", "beat"))
    assert (ROOT / "Dockerfile").exists()


def test_the_sandbox_is_behind_the_demo_profile() -> None:
    assert COMPOSE["services"]["sandbox"]["profiles"] == ["demo"]
    assert all("profiles" not in s for n, s in COMPOSE["services"].items() if n != "sandbox")


@pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="Debian's docker-compose is not installed (.ci/run installs it)",
)
def test_docker_compose_validates_the_file_offline() -> None:
    for args in (["config", "-q"], ["--profile", "demo", "config", "-q"]):
        result = subprocess.run(
            ["docker-compose", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr


def test_the_runtime_install_pulls_what_kombus_redis_transport_imports() -> None:
    """kombu's Redis transport imports `packaging`, declared only by its `redis` extra: the
    project must ask for that extra, or a runtime-only install cannot start a worker."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(dep.startswith("kombu[redis]") for dep in project["dependencies"])
    assert any(dep.startswith("celery[redis]") for dep in project["dependencies"])
