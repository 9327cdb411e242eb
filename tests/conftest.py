"""Shared fixtures: settings built directly, fakeredis for unit tests, a real Redis for the rest."""

from __future__ import annotations

from collections.abc import Iterator

import fakeredis
import pytest
import redis
import structlog

from config.settings import Settings
from worker.embedded_redis import EmbeddedRedis

API_KEY = "sk_test_workspace"
WEBHOOK_SECRET = "whsec_test_0123456789"


def make_settings(**overrides: object) -> Settings:
    """Settings for tests: no `.env`, test secrets, fast timings."""
    values: dict[str, object] = {
        "leadterra_api_key": API_KEY,
        "leadterra_webhook_secret": WEBHOOK_SECRET,
        "leadterra_base_url": "http://leadterra.test",
        "redis_url": "redis://127.0.0.1:6379/0",
        "key_prefix": "test:",
        "retry_backoff_base": 0.2,
        "retry_backoff_max": 1.0,
        "visibility_timeout": 60,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def fake_server() -> fakeredis.FakeServer:
    """One fresh in-memory Redis per test; connect to it with `fake_redis` (or an async client)."""
    return fakeredis.FakeServer()


@pytest.fixture
def fake_redis(fake_server: fakeredis.FakeServer) -> Iterator[fakeredis.FakeRedis]:
    client = fakeredis.FakeRedis(server=fake_server)
    yield client
    client.close()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    """A real Redis on a free port for the whole session (flush between tests yourself)."""
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture
def real_redis(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    yield client
    client.flushall()
    client.close()
