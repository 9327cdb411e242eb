"""The console on the admin listener: the page, /api/, the static files and the dead-letter
buttons, through Starlette's TestClient on fakeredis (worker/console/routes.py, actions.py)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from html.parser import HTMLParser

import fakeredis
import pytest
import redis
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from tests.conftest import make_settings
from worker.console import counters
from worker.console.csrf import COOKIE, Csrf
from worker.console.panels import PANELS
from worker.jobs.deadletter import DeadLetter, DeadLetters
from worker.keys import Keys
from worker.leadterra.models import Sdr
from worker.metrics import Metrics
from worker.receiver.admin import create_admin_app
from worker.routing.rotation import Policy, Rotation

KEYS = Keys("test:")
TOKEN = "adm_0123456789abcdefghij"
BEARER = {"authorization": f"Bearer {TOKEN}"}
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'


def console(fake_server: fakeredis.FakeServer, token: str | None = None) -> TestClient:
    settings = make_settings(admin_token=token)
    app = create_admin_app(
        settings,
        client=fakeredis.FakeAsyncRedis(server=fake_server),
        metrics=Metrics(),
        sync_client=fakeredis.FakeRedis(server=fake_server),
    )
    return TestClient(app, follow_redirects=False)


@pytest.fixture
def open_console(fake_server) -> Iterator[TestClient]:
    with console(fake_server) as client:
        yield client


@pytest.fixture
def guarded(fake_server) -> Iterator[TestClient]:
    with console(fake_server, TOKEN) as client:
        yield client


def dead_letter(entry_id: str = "reply:rpl_1", error: str = "Leadterra answered 503") -> DeadLetter:
    return DeadLetter(
        id=entry_id,
        task="leadrouter.assign_reply",
        queue="assign",
        args=[{"id": entry_id.removeprefix("reply:")}],
        error=error,
        error_type="ServerError",
        attempts=12,
    )


def seed(fake_redis: fakeredis.FakeRedis, team: tuple[str, ...] = ("sdr_1", "sdr_2")) -> None:
    rotation = Rotation(fake_redis, KEYS, pick_ttl=60, cache_ttl=60)
    roster = [Sdr(id=i, gmail_connected=True) for i in team]
    for n in range(5):
        rotation.pick(f"rpl_{n}", Policy(), lambda: roster)
    with fake_redis.pipeline() as pipe:
        for n, sdr in enumerate([*team, team[0]]):
            counters.count_assignment(pipe, KEYS, sdr, "webhook", time.time() - n)
        pipe.execute()
    DeadLetters(fake_redis, KEYS).add(dead_letter())


class Rows(HTMLParser):
    """Every element's attributes, by tag, as the browser test would find them."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))

    def having(self, attribute: str) -> list[dict[str, str | None]]:
        return [attrs for _, attrs in self.found if attribute in attrs]


def parsed(text: str) -> Rows:
    rows = Rows()
    rows.feed(text)
    return rows


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF token in the page"
    return found.group(1)


# -- the page ------------------------------------------------------------------------------------


def test_the_page_has_every_panel_and_its_numbers_without_javascript(
    open_console, fake_redis
) -> None:
    seed(fake_redis)
    page = open_console.get("/")
    assert page.status_code == 200
    found = parsed(page.text)
    ids = {attrs.get("id") for _, attrs in found.found}
    assert set(PANELS) <= ids
    rotation = {a["data-sdr"]: a for a in found.having("data-today")}
    assert {s: (a["data-today"], a["data-week"]) for s, a in rotation.items()} == {
        "sdr_1": ("2", "2"),
        "sdr_2": ("1", "1"),
    }
    assert [
        a["data-value"] for a in found.having("data-metric") if a["data-metric"] == "dead-letters"
    ] == ["1"]
    assert len([a for a in found.having("data-reply") if "data-winner" in a]) == 5
    for link in ("/metrics", "/readyz", "/openapi.json"):
        assert f'href="{link}"' in page.text


def test_the_page_and_the_api_show_the_same_numbers(open_console, fake_redis) -> None:
    seed(fake_redis)
    rows = open_console.get("/api/rotation").json()["sdrs"]
    shown = {
        a["data-sdr"]: int(str(a["data-today"]))
        for a in parsed(open_console.get("/").text).having("data-today")
    }
    assert shown == {row["id"]: row["today"] for row in rows}


def test_the_page_is_locked_down_by_its_headers(open_console) -> None:
    page = open_console.get("/")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    cookie = page.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie


def test_hostile_values_are_escaped_everywhere_on_the_page(open_console, fake_redis) -> None:
    seed(fake_redis, team=(SCRIPT, IMG))
    DeadLetters(fake_redis, KEYS).add(dead_letter(f"reply:{IMG}", error=SCRIPT))
    fake_redis.hset(KEYS.held, IMG, json.dumps({"since": time.time(), "reason": SCRIPT}))
    fake_redis.xadd(
        KEYS.decisions,
        {"reply": IMG, "winner": SCRIPT, "rule": IMG, "excluded": json.dumps({SCRIPT: IMG})},
    )
    for query in ("/", f"/?sdr={SCRIPT}", f"/?notice={SCRIPT}"):
        page = open_console.get(query).text
        assert "<script>" not in page and "<img" not in page and "onerror=alert(1)>" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    confirm = open_console.post(
        "/dlq/drop",
        data={"id": f"reply:{IMG}", "csrf": csrf_of(open_console.get("/").text)},
    )
    assert confirm.status_code == 200
    assert "<img" not in confirm.text and "<script>" not in confirm.text


def test_no_asset_or_page_names_another_host(open_console, fake_redis) -> None:
    seed(fake_redis)
    for path in ("/", "/static/console.css", "/static/console.js"):
        answer = open_console.get(path)
        assert answer.status_code == 200
        assert not re.search(r"https?:", answer.text), path
        assert not re.search(r"""(src|href|action)=["']?//""", answer.text), path
        assert "url(" not in answer.text and "@import" not in answer.text, path
    js = open_console.get("/static/console.js")
    assert js.headers["content-type"].startswith("text/javascript")
    assert open_console.get("/static/console.css").headers["content-type"].startswith("text/css")
    assert open_console.get("/static/..%2Fcsrf.py").status_code == 404
    assert open_console.get("/static/nope.js").status_code == 404


def test_the_decisions_filter_is_a_query_parameter(open_console, fake_redis) -> None:
    seed(fake_redis)
    page = open_console.get("/?sdr=sdr_2").text
    roles = [a for a in parsed(page).having("data-field") if a["data-field"] == "role"]
    assert roles and '<option value="sdr_2" selected="">' in page
    assert open_console.get("/api/decisions?sdr=sdr_2&limit=2").json()["limit"] == 2


def test_redis_down_is_503_naming_only_the_kind_of_failure(fake_server) -> None:
    broken = redis.Redis.from_url("redis://:hunter2@127.0.0.1:1/0", socket_connect_timeout=0.5)
    app = create_admin_app(
        make_settings(),
        client=fakeredis.FakeAsyncRedis(server=fake_server),
        metrics=Metrics(),
        sync_client=broken,
    )
    with TestClient(app) as client, capture_logs() as logs:
        page, api = client.get("/"), client.get("/api/health")
    assert (page.status_code, api.status_code) == (503, 503)
    assert api.json() == {"status": "unavailable", "error": "redis: ConnectionError"}
    assert "hunter2" not in page.text + api.text + json.dumps(logs)


# -- the API -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(PANELS))
def test_every_panel_has_its_json_twin(open_console, fake_redis, name: str) -> None:
    seed(fake_redis)
    answer = open_console.get(f"/api/{name}")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert isinstance(answer.json(), dict)


def test_an_unknown_panel_is_404_listing_the_panels(open_console) -> None:
    answer = open_console.get("/api/nope")
    assert answer.status_code == 404
    assert answer.json()["panels"] == sorted(PANELS)


# -- auth ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/api/rotation", "/api/stuck", "/static/console.js"])
def test_with_a_token_the_console_wants_it(guarded, path: str) -> None:
    assert guarded.get(path).status_code == 401
    assert guarded.get(path, headers=BEARER).status_code == 200


def test_with_a_token_a_post_without_it_is_refused_before_anything_else(
    guarded, fake_redis
) -> None:
    DeadLetters(fake_redis, KEYS).add(dead_letter())
    answer = guarded.post("/dlq/drop", data={"id": "reply:rpl_1", "confirmed": "yes"})
    assert answer.status_code == 401
    assert DeadLetters(fake_redis, KEYS).count() == 1


def test_a_signed_in_browser_gets_the_page_and_a_sign_out_button(guarded) -> None:
    guarded.post("/login", data={"token": TOKEN, "next": "/"})
    page = guarded.get("/")
    assert page.status_code == 200 and 'action="/logout"' in page.text


# -- the buttons: CSRF, confirmation, action -----------------------------------------------------


def bad_tokens(client: TestClient) -> list[tuple[str | None, dict[str, str]]]:
    """(form token, cookies) pairs that must all be refused."""
    good_page = client.get("/")
    nonce = client.cookies[COOKIE]
    other = Csrf(None)
    return [
        (None, {COOKIE: nonce}),
        ("", {COOKIE: nonce}),
        ("123.abc", {COOKIE: nonce}),
        (csrf_of(good_page.text), {}),  # no cookie
        (csrf_of(good_page.text), {COOKIE: Csrf.new_nonce()}),  # another browser's cookie
        (other.token(nonce, time.time()), {COOKIE: nonce}),  # another process's key
        (f"{int(time.time()) - 1}.{'0' * 64}", {COOKIE: nonce}),
    ]


@pytest.mark.parametrize("action", ["replay", "drop"])
@pytest.mark.parametrize("case", range(7))
def test_a_post_without_a_good_csrf_token_is_403_and_changes_nothing(
    open_console, fake_redis, action: str, case: int
) -> None:
    DeadLetters(fake_redis, KEYS).add(dead_letter())
    token, cookies = bad_tokens(open_console)[case]
    open_console.cookies.clear()
    for name, value in cookies.items():
        open_console.cookies.set(name, value)
    form = {
        "id": "reply:rpl_1",
        "confirmed": "yes",
        **({"csrf": token} if token is not None else {}),
    }
    with capture_logs() as logs:
        answer = open_console.post(f"/dlq/{action}", data=form)
    assert answer.status_code == 403
    assert DeadLetters(fake_redis, KEYS).count() == 1
    assert fake_redis.llen(KEYS.queue("assign")) == 0
    assert [e["event"] for e in logs] == ["console.csrf_refused"]


def test_the_token_key_comes_from_admin_token_and_an_expired_token_is_refused(
    guarded, fake_redis
) -> None:
    """Every `web` process with the same ADMIN_TOKEN accepts every other's forms."""
    DeadLetters(fake_redis, KEYS).add(dead_letter())
    guarded.get("/", headers=BEARER)
    nonce = guarded.cookies[COOKIE]
    form = {"id": "reply:rpl_1", "confirmed": "yes"}
    expired = Csrf(TOKEN).token(nonce, time.time() - 13 * 3600)
    answer = guarded.post("/dlq/drop", data={**form, "csrf": expired}, headers=BEARER)
    assert answer.status_code == 403
    fresh = Csrf(TOKEN).token(nonce, time.time())
    answer = guarded.post("/dlq/drop", data={**form, "csrf": fresh}, headers=BEARER)
    assert answer.headers["location"] == "/?notice=dropped#stuck"


@pytest.mark.parametrize("client_name", ["open_console", "guarded"])
def test_replay_asks_first_then_puts_the_task_back_and_redirects(
    request: pytest.FixtureRequest, client_name: str, fake_redis
) -> None:
    client: TestClient = request.getfixturevalue(client_name)
    headers = BEARER if client_name == "guarded" else {}
    DeadLetters(fake_redis, KEYS).add(dead_letter())
    page = client.get("/", headers=headers).text
    buttons = {a["data-action"]: a for a in parsed(page).having("data-action")}
    assert buttons["replay"]["data-entry-id"] == buttons["drop"]["data-entry-id"] == "reply:rpl_1"
    form = {"id": "reply:rpl_1", "csrf": csrf_of(page)}
    asked = client.post("/dlq/replay", data=form, headers=headers)
    assert asked.status_code == 200 and 'name="confirmed" value="yes"' in asked.text
    assert DeadLetters(fake_redis, KEYS).count() == 1  # nothing done yet
    done = client.post("/dlq/replay", data={**form, "confirmed": "yes"}, headers=headers)
    assert (done.status_code, done.headers["location"]) == (303, "/?notice=replayed#stuck")
    assert DeadLetters(fake_redis, KEYS).count() == 0
    [message] = fake_redis.lrange(KEYS.queue("assign"), 0, -1)
    assert json.loads(message)["headers"]["task"] == "leadrouter.assign_reply"
    assert "Dead letter replayed" in client.get(done.headers["location"], headers=headers).text
    again = client.post("/dlq/replay", data={**form, "confirmed": "yes"}, headers=headers)
    assert again.headers["location"] == "/?notice=gone#stuck"


def test_drop_deletes_the_entry_without_running_it(open_console, fake_redis) -> None:
    DeadLetters(fake_redis, KEYS).add(dead_letter())
    form = {"id": "reply:rpl_1", "csrf": csrf_of(open_console.get("/").text), "confirmed": "yes"}
    with capture_logs() as logs:
        done = open_console.post("/dlq/drop", data=form)
    assert done.headers["location"] == "/?notice=dropped#stuck"
    assert DeadLetters(fake_redis, KEYS).count() == 0
    assert fake_redis.llen(KEYS.queue("assign")) == 0
    [event] = [e for e in logs if e["event"].startswith("console.")]
    assert (event["event"], event["entry_id"]) == ("console.dlq_dropped", "reply:rpl_1")
    assert form["csrf"] not in json.dumps(logs)


def test_confirming_an_entry_that_is_gone_goes_back_saying_so(open_console, fake_redis) -> None:
    DeadLetters(fake_redis, KEYS).add(dead_letter())
    form = {"id": "reply:nope", "csrf": csrf_of(open_console.get("/").text)}
    answer = open_console.post("/dlq/replay", data=form)
    assert answer.headers["location"] == "/?notice=gone#stuck"


@pytest.mark.parametrize(
    "form", [{}, {"id": ""}, {"id": "x" * 2000}], ids=["no id", "empty id", "long id"]
)
def test_a_form_without_a_usable_id_is_400(open_console, fake_redis, form) -> None:
    DeadLetters(fake_redis, KEYS).add(dead_letter())  # so the page has a form and a token
    token = csrf_of(open_console.get("/").text)
    answer = open_console.post("/dlq/drop", data={**form, "csrf": token, "confirmed": "yes"})
    assert answer.status_code == 400
    assert DeadLetters(fake_redis, KEYS).count() == 1


def test_an_oversized_form_is_400(open_console) -> None:
    answer = open_console.post("/dlq/drop", content=b"id=" + b"a" * 10_000)
    assert answer.status_code == 400


def test_the_openapi_document_lists_every_panel() -> None:
    from worker.receiver.openapi import CONSOLE_PANELS, OPENAPI

    assert tuple(PANELS) == CONSOLE_PANELS
    assert "/api/{panel}" in OPENAPI["paths"]
