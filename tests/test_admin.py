"""The admin listener: open on loopback without ADMIN_TOKEN, refused elsewhere without one, and
with one, a bearer token or the login form's cookie (worker/receiver/admin.py, server.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import fakeredis
import httpx
import pytest
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from config.settings import ConfigError
from tests.conftest import make_settings
from worker.children import Children
from worker.deadline import wait_http
from worker.embedded_redis import EmbeddedRedis, free_port
from worker.metrics import Metrics
from worker.receiver.admin import COOKIE, SESSION_SECONDS, AdminAuth, create_admin_app
from worker.receiver.server import check_admin_exposure, is_loopback

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "adm_0123456789abcdefghij"
PAGES = ["/", "/metrics", "/readyz", "/openapi.json"]


def admin_client(token: str | None) -> TestClient:
    settings = make_settings(admin_token=token)
    server = fakeredis.FakeServer()
    app = create_admin_app(
        settings,
        client=fakeredis.FakeAsyncRedis(server=server),
        metrics=Metrics(),
        sync_client=fakeredis.FakeRedis(server=server),
    )
    return TestClient(app, follow_redirects=False)


@pytest.fixture
def guarded() -> Iterator[TestClient]:
    with admin_client(TOKEN) as client:
        yield client


@pytest.mark.parametrize("path", PAGES)
def test_without_a_token_every_page_is_open(path) -> None:
    with admin_client(None) as client:
        assert client.get(path).status_code in (200, 503)
        assert client.get("/login").status_code == 404  # nothing to log in to


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer wrong",
        f"Basic {TOKEN}",
        f"Bearer {TOKEN}x",
        TOKEN,
        b"Bearer \xfc",
    ],
)
def test_with_a_token_a_request_without_it_is_401(guarded, path, authorization) -> None:
    headers = {} if authorization is None else {"authorization": authorization}
    response = guarded.get(path, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["status"] == "unauthorized"


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_token_as_a_bearer_token_opens_every_page(guarded, path, scheme) -> None:
    response = guarded.get(path, headers={"authorization": f"{scheme} {TOKEN}"})
    assert response.status_code in (200, 503)  # /readyz: no worker here


def test_a_browser_is_sent_to_the_login_form_and_back(guarded) -> None:
    response = guarded.get("/metrics", headers={"accept": "text/html"})
    assert (response.status_code, response.headers["location"]) == (303, "/login?next=/metrics")
    form = guarded.get("/login?next=/metrics")
    assert form.status_code == 200 and 'type="password"' in form.text
    assert 'value="/metrics"' in form.text


def test_the_login_form_sets_an_httponly_strict_cookie_that_is_not_the_token(guarded) -> None:
    with capture_logs() as logs:
        response = guarded.post("/login", data={"token": TOKEN, "next": "/metrics"})
    assert (response.status_code, response.headers["location"]) == (303, "/metrics")
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert f"Max-Age={SESSION_SECONDS}" in cookie
    value = response.cookies[COOKIE]
    assert TOKEN not in value and TOKEN not in json.dumps(logs)
    guarded.cookies.clear()
    assert guarded.get("/metrics", headers={"cookie": f"{COOKIE}={value}"}).status_code == 200
    assert guarded.get("/metrics", headers={"cookie": f"{COOKIE}={TOKEN}"}).status_code == 401
    assert [e["event"] for e in logs] == ["admin.login"]


@pytest.mark.parametrize("token", ["", "wrong", TOKEN + "x", TOKEN.upper()])
def test_a_wrong_token_in_the_form_is_401_and_sets_no_cookie(guarded, token) -> None:
    with capture_logs() as logs:
        response = guarded.post("/login", data={"token": token, "next": "/metrics"})
    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    assert "not the admin token" in response.text
    assert [e["event"] for e in logs] == ["admin.login_failed"]


@pytest.mark.parametrize(
    "target", ["//evil.example/x", "https://evil.example", "/\\evil.example", "javascript:x", ""]
)
def test_login_never_redirects_off_the_listener(guarded, target) -> None:
    response = guarded.post("/login", data={"token": TOKEN, "next": target})
    assert response.headers["location"] == "/"


def test_an_oversized_login_body_is_400(guarded) -> None:
    response = guarded.post("/login", content=b"token=" + b"a" * 10_000)
    assert response.status_code == 400


def test_a_session_expires_and_dies_with_a_change_of_token() -> None:
    auth, now = AdminAuth(TOKEN), time.time()
    session = auth.session(now)
    assert auth.session_ok(session, now + SESSION_SECONDS - 1)
    assert not auth.session_ok(session, now + SESSION_SECONDS + 1)
    assert not AdminAuth(TOKEN + "2").session_ok(session, now)
    expiry, _, mac = session.partition(".")
    later = str(int(expiry) + 10 * SESSION_SECONDS)
    for forged in (f"{later}.{mac}", f"{expiry}.{'0' * 64}", expiry, "", ".", f"x.{mac}", TOKEN):
        assert not auth.session_ok(forged, now), forged


def test_logout_clears_the_cookie(guarded) -> None:
    response = guarded.post("/logout")
    assert response.status_code == 303
    assert f'{COOKIE}=""' in response.headers["set-cookie"]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),  # noqa: S104 - the case refused
        ("::", False),
        ("10.0.0.5", False),
        ("admin.internal", False),
    ],
)
def test_loopback_is_recognised(host, loopback) -> None:
    assert is_loopback(host) is loopback
    settings = make_settings(admin_host=host)
    if loopback:
        check_admin_exposure(settings)
    else:
        with pytest.raises(ConfigError, match="ADMIN_TOKEN"):
            check_admin_exposure(settings)
        check_admin_exposure(make_settings(admin_host=host, admin_token=TOKEN))


# -- as a process ------------------------------------------------------------------------------


def web_env(redis_server: EmbeddedRedis, **extra: str) -> dict[str, str]:
    return {
        "LEADTERRA_WEBHOOK_SECRET": "whsec_admin_0123456789",
        "REDIS_URL": redis_server.url,
        "KEY_PREFIX": "admin-test:",
        "HOST": "127.0.0.1",
        "PORT": str(free_port()),
        "LOG_FORMAT": "json",
        "PYTHONPATH": str(ROOT),
        **extra,
    }


def run_web(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """`leadrouter web` as a process that is expected to refuse to start."""
    return subprocess.run(
        [sys.executable, "-m", "worker", "web"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.integration
def test_web_refuses_a_public_admin_address_without_a_token_in_one_line(
    redis_server, tmp_path
) -> None:
    env = web_env(redis_server, ADMIN_HOST="0.0.0.0", ADMIN_PORT=str(free_port()))  # noqa: S104
    result = run_web(env, tmp_path)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("leadrouter: configuration error: ADMIN_TOKEN is required")
    assert "Traceback" not in result.stderr


@pytest.mark.integration
def test_web_refuses_a_busy_admin_port_in_one_line(redis_server, tmp_path) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        env = web_env(redis_server, ADMIN_PORT=str(taken.getsockname()[1]))
        result = run_web(env, tmp_path)
    assert result.returncode != 0
    assert "cannot listen on ADMIN_HOST:ADMIN_PORT" in result.stderr.strip().splitlines()[-1]


@pytest.mark.integration
def test_a_token_guarded_admin_listener_on_all_addresses_serves_bearer_and_cookie(
    redis_server, tmp_path
) -> None:
    admin_port = free_port()
    env = web_env(
        redis_server,
        ADMIN_HOST="0.0.0.0",  # noqa: S104 - allowed with a token
        ADMIN_PORT=str(admin_port),
        ADMIN_TOKEN=TOKEN,
    )
    with Children(tmp_path, env) as kids:
        web = kids.start("web", [sys.executable, "-m", "worker", "web"])
        wait_http(f"http://127.0.0.1:{env['PORT']}/healthz", 30, alive=[web])
        admin = f"http://127.0.0.1:{admin_port}"
        assert httpx.get(f"{admin}/metrics").status_code == 401
        bearer = httpx.get(f"{admin}/metrics", headers={"authorization": f"Bearer {TOKEN}"})
        assert bearer.status_code == 200 and "leadrouter_webhooks_total" in bearer.text
        with httpx.Client(base_url=admin) as browser:
            signed_in = browser.post("/login", data={"token": TOKEN, "next": "/readyz"})
            assert signed_in.status_code == 303
            assert browser.get("/readyz").json()["status"] == "not_ready"  # no worker: answered
        assert httpx.get(f"http://127.0.0.1:{env['PORT']}/metrics").status_code == 404
        [listening] = [e for e in web.events() if e.get("event") == "web.listening"]
        assert listening["admin_auth"] == "token"
        assert TOKEN not in web.text()


def test_the_icon_a_browser_asks_for_is_an_empty_answer_even_unsigned(guarded) -> None:
    answer = guarded.get("/favicon.ico")
    assert answer.status_code == 204 and answer.content == b""
