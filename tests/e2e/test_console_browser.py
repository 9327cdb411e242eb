"""The console in a real browser: headless Chromium against the Procfile's processes after a
demo-sized run.

150 webhooks of the demo's mix (duplicates and redeliveries among them) and 12 due follow-ups go
through web, worker and beat, with ADMIN_TOKEN set; then two interested replies are
dead-lettered (the sandbox answers their assign 422). Chromium signs in through the login form,
loads `/`, and the numbers the page shows are compared with Redis and with the sandbox: per SDR
assignments today (`stats:{day}:assigned`) and in 7 days (the sandbox's handoffs), eligibility,
follow-up decisions, held replies and dead letters (counts and rows), queue depths, verified
webhooks in the last hour (the sandbox's 200 and 202 answers), intake by source, handoffs per
SDR. It replays one dead letter with its button, accepting the page script's `confirm()`, lands
on the notice, sees the entry gone from the DLQ and the reply assigned, checks the page again,
and saves a full-page screenshot (1280 wide) in its own folder, or where LEADROUTER_SCREENSHOT says
(`LEADROUTER_SCREENSHOT=docs/console.png` made the README's).

Skips only when no Chromium or ChromeDriver is installed (`apt-get install chromium
chromium-driver`; .ci/run does).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlparse

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.wait import WebDriverWait

from tests.support.browser import (
    chromium,
    find_browser,
    missing_reason,
    page_errors,
    save_full_page,
)
from tests.support.service import ROOT, SECRET, Service, start_service
from worker.cli.demo import MIX
from worker.console.counters import day_of, last_days
from worker.console.page import NOTICES
from worker.deadline import DeadlineExceeded, wait_until
from worker.jobs.deadletter import DeadLetters
from worker.keys import QUEUES, text
from worker.leadterra.models import iso_ms

BROWSER = find_browser()
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(300),
    pytest.mark.skipif(BROWSER is None, reason=missing_reason()),
]

TOKEN = "console-e2e-admin-token-0123456789"
SDRS = 4  # the last one has no Gmail connected
SDR_KEYS = {f"sdr_{i}": f"sk_test_workspace_sdr_{i}" for i in range(1, SDRS + 1)}
ASSIGN = "POST /v1/replies/{id}/assign"
WEBHOOKS, FOLLOWUPS, DEAD = 150, 12, ("rpl_dlq_1", "rpl_dlq_2")
PANELS = ["rotation", "decisions", "stuck", "followups", "health", "sla", "intake"]
DECISIONS = ("routed", "skipped", "rescheduled", "already_closed", "completed")
FIGURES = ("due", "routed", "skipped", "rescheduled")
#: a row's `data-eligible` and what its "now" cell says
ELIGIBLE, NOT_CONNECTED = ("true", "eligible"), ("false", "out: not_connected")
VIEWPORT = (1280, 1600)
#: where the screenshot goes: the test's own folder, unless this names a file (the README's
#: is made with LEADROUTER_SCREENSHOT=docs/console.png), so a test run leaves the tree as it was
SCREENSHOT_ENV = "LEADROUTER_SCREENSHOT"
#: the browser asks for /favicon.ico by itself; the listener has none (404)
IGNORED_ERRORS: tuple[str, ...] = ()  # not even the icon: the listener answers it with 204

#: everything the checks read off the page, in one script call (the page swaps its panels in
#: place every 10 s: one call sees one version of them)
SNAPSHOT = """
const all = (root, css) => Array.from(root.querySelectorAll(css));
const fields = (tr) => Object.fromEntries(
  all(tr, "[data-field][data-value]").map((td) => [td.dataset.field, td.dataset.value]));
const metrics = {};
all(document, "dd[data-metric]").forEach((dd) => {
  metrics[dd.dataset.metric] = dd.dataset.value === undefined ? null : dd.dataset.value;
});
const css = document.styleSheets;
return {
  panels: all(document, "main > section.panel").map((s) => s.id),
  styled: css.length > 0 && css[0].cssRules.length > 0,
  metrics: metrics,
  rotation: Object.fromEntries(all(document, "#rotation tr[data-sdr]").map((tr) => [
    tr.dataset.sdr,
    {today: tr.dataset.today, week: tr.dataset.week, eligible: tr.dataset.eligible,
     shown: tr.querySelector("[data-field=eligible]").textContent},
  ])),
  followups: Object.fromEntries(
    all(document, "#followups tr[data-sdr]").map((tr) => [tr.dataset.sdr, fields(tr)])),
  sla: Object.fromEntries(
    all(document, "#sla-sdrs tr[data-sdr]").map((tr) => [tr.dataset.sdr, fields(tr)])),
  dead_letters: all(document, "#dead-letters tr[data-entry-id]").map((tr) => tr.dataset.entryId),
  held: all(document, "#held tr[data-reply]").map((tr) => tr.dataset.reply),
};
"""


@pytest.fixture
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    deployment = start_service(
        tmp_path_factory.mktemp("console"),
        sdrs=SDRS,
        disconnected=1,
        LEADTERRA_SDR_API_KEYS=json.dumps(SDR_KEYS),
        ADMIN_TOKEN=TOKEN,
    )
    yield deployment
    deployment.close()
    for child in deployment.children:  # pytest shows this only when the test failed
        print(f"--- {child.name} (exit {child.returncode}) ---")
        print(child.tail(3000))


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[WebDriver]:
    assert BROWSER is not None
    with chromium(BROWSER, VIEWPORT, tmp_path / "chromedriver.log") as browser:
        yield browser


# -- the run --------------------------------------------------------------------------------


def seed_followups(service: Service) -> None:
    """FOLLOWUPS follow-ups due 5 minutes ago on the connected SDRs' threads, some finished."""
    statuses = ("new", "needs_followup", "replied", "won", "archived", "awaiting_reply")
    due = iso_ms(datetime.now(UTC) - timedelta(minutes=5))
    threads = [
        {
            "id": f"th_console_{n:02d}",
            "sdrId": f"sdr_{n % (SDRS - 1) + 1}",
            "status": statuses[n % len(statuses)],
            "contactEmail": f"prospect{n}@example.com",
            "subject": f"Re: console thread {n}",
            "category": "A",
        }
        for n in range(FOLLOWUPS)
    ]
    service.control.seed_threads(threads)
    service.control.seed_followups(
        [{"id": f"fu_{t['id']}", "threadId": t["id"], "dueAt": due} for t in threads]
    )


def run_load(service: Service) -> None:
    """The demo's mix of webhooks and the follow-ups; returns once each is handled."""
    control = service.control
    seed_followups(service)
    job = control.send_webhooks(
        service.webhook_url,
        SECRET,
        WEBHOOKS,
        rate=100,
        mix=MIX,
        duplicate_share=0.1,
        redeliver_share=0.05,
        retry_scale=0.01,
        reply_id_prefix="rpl_console_",
    )
    report = control.wait_webhook_job(job["id"], timeout=60)
    interested = {d["replyId"] for d in report["deliveries"] if d["classification"] == "interested"}
    assert len(interested) > WEBHOOKS // 3, report["classifications"]
    service.wait_assigned(interested, 90)
    followups = service.keys.stats_day(day_of(time.time()), "followups")
    client = service.redis()
    wait_until(
        lambda: sum(int(n) for n in client.hvals(followups)) >= FOLLOWUPS,
        60,
        0.25,
        what=f"{FOLLOWUPS} follow-up decisions counted",
    )


def dead_letter(service: Service) -> list[str]:
    """Two interested replies whose assign the sandbox refuses (422): their DLQ entry ids."""
    control, client = service.control, service.redis()
    control.fail_next(ASSIGN, len(DEAD), 422)
    job = control.send_webhooks(
        service.webhook_url, SECRET, len(DEAD), mix={"interested": 1.0}, reply_ids=list(DEAD)
    )
    control.wait_webhook_job(job["id"], timeout=30)
    wait_until(
        lambda: client.hlen(service.keys.dlq) == len(DEAD),
        60,
        0.1,
        what="two dead letters",
    )
    return [text(i) for i in cast(list[bytes], client.zrange(service.keys.dlq_index, 0, -1))]


# -- what the page should show ----------------------------------------------------------------


def _ints(raw: dict[Any, Any]) -> dict[str, int]:
    return {text(k): int(v) for k, v in raw.items()}


def _followups(client: Any, key: str) -> dict[str, dict[str, float]]:
    """`{decision}:{sdr}` counts as the page's rows: {sdr: {decision: n, ..., due: sum}}."""
    rows: dict[str, dict[str, float]] = {}
    for field, n in _ints(client.hgetall(key)).items():
        decision, _, sdr = field.partition(":")
        row = rows.setdefault(sdr, dict.fromkeys(DECISIONS, 0.0))
        row[decision] += n
    for row in rows.values():
        row["due"] = sum(row[d] for d in DECISIONS)
    return rows


def _queues(client: Any, keys: Any) -> dict[str, int]:
    depths = {f"queue-{queue}": client.llen(keys.queue(queue)) for queue in QUEUES}
    return depths | {
        "queue-unacked": client.hlen(keys.unacked),
        "queue-delayed": client.zcard(keys.delayed),
        "queue-held": client.hlen(keys.held),
        "queue-dead_letters": client.hlen(keys.dlq),
    }


def expected(service: Service) -> dict[str, Any]:
    """What the page must show, read from Redis and the sandbox (not through the console)."""
    client, keys = service.redis(), service.keys
    days = last_days(time.time(), 7)
    today = _ints(client.hgetall(keys.stats_day(days[-1], "assigned")))
    sources: Counter[str] = Counter()
    for day in days:
        sources.update(_ints(client.hgetall(keys.stats_day(day, "source"))))
    followups = _followups(client, keys.stats_day(days[-1], "followups"))
    handed = Counter(h["sdrId"] for h in service.handoffs() if not h.get("forced"))
    jobs = service.control.webhook_jobs()
    verified = sum(j["attemptResults"].get(s, 0) for j in jobs for s in ("200", "202"))
    sdrs = [f"sdr_{i}" for i in range(1, SDRS + 1)]
    return {
        "panels": PANELS,
        "styled": True,
        "metrics": {
            "assigned-today": sum(today.values()),
            "assigned-week": sum(handed.values()),
            "sdrs": SDRS,
            "eligible-now": SDRS - 1,
            "held": client.hlen(keys.held),
            "dead-letters": client.hlen(keys.dlq),
            **{f"followups-{d}": sum(r[d] for r in followups.values()) for d in FIGURES},
            "webhooks-last-hour": verified,
            "intake-webhook-week": sources["webhook"],
            "intake-reconcile-week": sources["reconcile"],
            "sla-open": 0,  # the SLA watch is off: handoffs are recorded, not watched
            **_queues(client, keys),
        },
        "rotation": {
            s: (today.get(s, 0), handed[s], *(ELIGIBLE if s != sdrs[-1] else NOT_CONNECTED))
            for s in sdrs
        },
        "followups": followups,
        "sla": {s: {"handoffs": n} for s, n in handed.items()},
        "dead_letters": [text(i) for i in cast(list[bytes], client.zrange(keys.dlq_index, 0, 49))],
        "held": sorted(text(r) for r in client.hkeys(keys.held)),
        "sources_total": sum(handed.values()),
    }


def _num(value: Any) -> float | None:
    return None if value in (None, "") else float(value)


def differences(shown: dict[str, Any], want: dict[str, Any]) -> dict[str, Any]:
    """Each check where the page and Redis (or the sandbox) disagree: {check: (page, truth)}."""
    rotation = {
        sdr: (_num(r["today"]), _num(r["week"]), r["eligible"], r["shown"])
        for sdr, r in shown["rotation"].items()
    }
    pairs = {
        "panels": (shown["panels"], want["panels"]),
        "stylesheet applied": (shown["styled"], want["styled"]),
        "rotation (today, 7 days, now)": (rotation, want["rotation"]),
        "follow-ups per SDR": (
            {s: {f: _num(v) for f, v in r.items()} for s, r in shown["followups"].items()},
            want["followups"],
        ),
        "SLA handoffs per SDR": (
            {s: {"handoffs": _num(r.get("handoffs"))} for s, r in shown["sla"].items()},
            want["sla"],
        ),
        "dead-letter rows": (shown["dead_letters"], want["dead_letters"]),
        "held rows": (sorted(shown["held"]), want["held"]),
        "intake sources vs handoffs": (
            want["metrics"]["intake-webhook-week"] + want["metrics"]["intake-reconcile-week"],
            want["sources_total"],
        ),
    }
    for metric, value in want["metrics"].items():
        pairs[f"dd[data-metric={metric}]"] = (_num(shown["metrics"].get(metric)), value)
    return {name: pair for name, pair in pairs.items() if pair[0] != pair[1]}


def page_agrees(service: Service, driver: WebDriver) -> dict[str, Any]:
    """Load `/` until what it shows matches Redis and the sandbox (counts move while workers
    and beat run: each try compares one page with a fresh read); the last snapshot."""
    last: list[Any] = [None, {}]

    def probe() -> dict[str, Any] | None:
        driver.get(f"{service.admin_url}/")
        shown = driver.execute_script(SNAPSHOT)
        last[:] = [shown, differences(shown, expected(service))]
        return None if last[1] else shown

    try:
        return wait_until(probe, 40, 0.5, what="the console's numbers to match Redis")
    except DeadlineExceeded:
        pytest.fail(f"the console disagrees with Redis or the sandbox: {last[1]}")


# -- the browser ------------------------------------------------------------------------------


def sign_in(driver: WebDriver, base: str) -> None:
    """Open `/`, get sent to the login form, and sign in with the admin token."""
    driver.get(f"{base}/")
    wait = WebDriverWait(driver, 15)
    field = wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "input[name=token]")))
    assert urlparse(driver.current_url).path == "/login"
    field.send_keys(TOKEN)
    driver.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "section#rotation")))
    assert urlparse(driver.current_url).path == "/"


def replay(driver: WebDriver, entry_id: str) -> tuple[str, str]:
    """Click the entry's Replay button, accept the confirm(); the question and the notice."""
    button = f'#dead-letters button[data-action="replay"][data-entry-id="{entry_id}"]'

    def click(d: WebDriver) -> bool:
        d.find_element(By.CSS_SELECTOR, button).click()
        return True

    # a refresh may swap the panel between finding the button and clicking it: find it again
    WebDriverWait(driver, 15, ignored_exceptions=(StaleElementReferenceException,)).until(click)
    alert = WebDriverWait(driver, 15).until(EC.alert_is_present())
    question = alert.text
    alert.accept()
    WebDriverWait(driver, 15).until(EC.url_contains("notice=replayed"))
    notice = WebDriverWait(driver, 15).until(
        EC.visibility_of_element_located((By.CSS_SELECTOR, "p.notice"))
    )
    return question, notice.text


def test_the_console_shows_what_redis_holds_and_replays_a_dead_letter(
    service: Service, driver: WebDriver, tmp_path: Path
) -> None:
    run_load(service)
    entries = dead_letter(service)
    store = DeadLetters(service.redis(), service.keys)
    entry = store.get(entries[0])
    assert entry is not None and entry.error_type == "InvalidRequest", entry
    reply_id = entry.reply_id()
    assert reply_id in DEAD

    sign_in(driver, service.admin_url)
    before = page_agrees(service, driver)
    assert before["dead_letters"] == entries and before["metrics"]["dead-letters"] == "2"

    question, notice = replay(driver, entries[0])
    assert question == f"Replay dead letter {entries[0]}?"
    assert notice == NOTICES["replayed"]
    assert urlparse(driver.current_url).path == "/"
    assert store.get(entries[0]) is None  # gone from the DLQ before the redirect
    wait_until(lambda: service.control.handoffs(reply_id), 30, 0.2, what=f"{reply_id} assigned")
    done = json.loads(service.redis().get(service.keys.done(reply_id)) or "{}")
    assert done.get("outcome") == "assigned", done
    replayed = service.events("console.dlq_replayed")
    assert [(e["entry_id"], e["outcome"]) for e in replayed] == [(entries[0], "replayed")]

    after = page_agrees(service, driver)
    assert after["dead_letters"] == entries[1:]
    assert _num(after["metrics"]["assigned-week"]) == float(before["metrics"]["assigned-week"]) + 1
    target = os.environ.get(SCREENSHOT_ENV)
    width, height = save_full_page(driver, ROOT / target if target else tmp_path / "console.png")
    assert width == VIEWPORT[0] and height >= VIEWPORT[1] // 2, (width, height)
    assert page_errors(driver, IGNORED_ERRORS) == []
