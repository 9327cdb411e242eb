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


def test_the_procfile_has_web_worker_and_the_sandbox_and_beat_runs_in_the_worker() -> None:
    assert set(procfile()) == {"web", "worker", "sandbox"}
    assert COMPOSE["x-app"]["environment"]["WORKER_BEAT"] == "${WORKER_BEAT:-true}"


def test_compose_runs_the_same_commands_as_the_procfile() -> None:
    entries = procfile()
    for name in ("web", "worker"):
        assert COMPOSE["services"][name]["command"] == entries[name], name
    assert "beat" not in COMPOSE["services"]


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


def test_web_and_worker_share_one_image_built_from_the_dockerfile() -> None:
    images = {COMPOSE["services"][n]["image"] for n in ("web", "worker")}
    assert len(images) == 1
    assert all(COMPOSE["services"][n]["build"] == "." for n in ("web", "worker"))
    assert (ROOT / "Dockerfile").exists()


def test_the_sandbox_and_the_monitoring_stack_are_behind_their_profiles() -> None:
    profiles = {n: s["profiles"] for n, s in COMPOSE["services"].items() if "profiles" in s}
    monitoring = ["monitoring"]
    assert profiles == {
        "sandbox": ["demo"],
        "prometheus": monitoring,
        "grafana": monitoring,
        "flower": monitoring,
    }


def test_web_serves_leadterra_on_port_and_operators_on_a_token_guarded_admin_port() -> None:
    web = COMPOSE["services"]["web"]
    env = web["environment"]
    all_interfaces = "0.0.0.0"  # noqa: S104 - on compose's network, guarded by the token
    assert (env["PORT"], env["ADMIN_PORT"], env["ADMIN_HOST"]) == ("8000", "9000", all_interfaces)
    assert env["ADMIN_TOKEN"] == "${ADMIN_TOKEN:-}"  # unset: web refuses to start (one line)
    assert "127.0.0.1:${ADMIN_PORT:-9000}:9000" in web["ports"]  # the host's loopback only
    assert "ADMIN_TOKEN" not in COMPOSE["services"]["worker"]["environment"]
    health = " ".join(web["healthcheck"]["test"])
    assert "127.0.0.1:8000/healthz" in health  # the public port's liveness, no token needed
    assert COMPOSE["services"]["worker"]["healthcheck"]["test"] == ["CMD", "leadrouter", "health"]
    assert "EXPOSE 8000 9000" in (ROOT / "Dockerfile").read_text()


def test_prometheus_scrapes_the_admin_port_with_the_token_from_a_file() -> None:
    prometheus = COMPOSE["services"]["prometheus"]
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    job = jobs["leadrouter"]
    assert job["static_configs"] == [{"targets": ["web:9000"]}]
    assert job["metrics_path"] == "/metrics"
    token_file = job["authorization"]["credentials_file"]
    assert job["authorization"]["type"] == "Bearer"
    command = " ".join(prometheus["command"])
    assert f'"$$ADMIN_TOKEN" > {token_file}' in command
    assert prometheus["environment"] == {"ADMIN_TOKEN": "${ADMIN_TOKEN:-}"}
    volumes = prometheus["volumes"]
    assert "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in volumes
    assert "./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in volumes
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    assert jobs["flower"]["static_configs"] == [{"targets": ["flower:5555"]}]


def test_flower_runs_our_app_from_our_image_without_leadterra_secrets() -> None:
    """It needs our transport and key prefix (worker/jobs/monitor.py), and nothing secret."""
    flower = COMPOSE["services"]["flower"]
    assert flower["command"].startswith("celery --app worker.jobs.monitor:app flower")
    assert flower["build"] == {"context": ".", "args": {"EXTRAS": "[flower]"}}
    assert set(flower["environment"]) == {"REDIS_URL", "LOG_FORMAT"}
    assert flower["ports"] == ["127.0.0.1:5555:5555"]
    assert "ARG EXTRAS" in (ROOT / "Dockerfile").read_text()


def test_the_monitoring_ports_are_on_the_hosts_loopback_only() -> None:
    for name in ("prometheus", "grafana", "flower"):
        assert all(p.startswith("127.0.0.1:") for p in COMPOSE["services"][name]["ports"]), name


def test_workers_read_celery_events_from_the_environment_off_by_default() -> None:
    for name in ("web", "worker"):
        assert COMPOSE["services"][name]["environment"]["CELERY_EVENTS"] == (
            "${CELERY_EVENTS:-false}"
        )


@pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="Debian's docker-compose is not installed (.ci/run installs it)",
)
def test_docker_compose_validates_the_file_offline() -> None:
    for profile in ([], ["--profile", "demo"], ["--profile", "monitoring"]):
        args = [*profile, "config", "-q"]
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
