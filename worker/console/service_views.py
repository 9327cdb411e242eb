"""The Health, SLA and Intake panels as HTML, from the JSON the /api/ endpoints serve.

Hooks: headline numbers are `<dd data-metric=... data-value=...>` (e.g. `webhooks-last-hour`,
`queue-assign`, `leadterra-429`, `sla-open`, `intake-reconcile-week`); `#health` queue cells
carry `data-queue`; `#sla` rows `data-reply` (open handoffs) and `data-sdr` (per SDR);
`#intake` day rows `data-day`.
"""

from __future__ import annotations

import time
from typing import Any

from worker.console.charts import columns
from worker.console.markup import Markup, ago, cell, figures, row, section, table, tag, when


def _minute(stamp: float) -> str:
    return time.strftime("%H:%M", time.gmtime(stamp))


def _workers(workers: dict[str, Any]) -> Markup:
    beat = workers["heartbeat"]
    ready = tag(
        "p",
        workers["reason"],
        class_="ok" if workers["ready"] else "bad",
        data_metric="ready",
        data_value=str(workers["ready"]).lower(),
    )
    canary = f"Canary last consumed by {beat['worker'] or 'nobody yet'}" + (
        "" if beat["age_s"] is None else f", {ago(beat['age_s'])} ago."
    )
    seen = table(
        ["process (metrics pushed)", "last push"],
        [
            row(
                [tag("td", p["ident"]), tag("td", f"{ago(p['age_s'])} ago", data_value=p["age_s"])],
                data_process=p["ident"],
            )
            for p in workers["processes"]
        ],
        empty="No worker or beat has pushed its metrics in the last 5 minutes.",
    )
    return Markup(tag("h3", "Workers") + ready + tag("p", canary, class_="note") + seen)


def health_section(panel: dict[str, Any]) -> Markup:
    hooks, lt, last = panel["webhooks"], panel["leadterra"], panel["last_webhook"]
    head = figures(
        [
            (
                "Last webhook",
                "never" if last["at"] is None else f"{ago(last['age_s'])} ago",
                "last-webhook",
            ),
            ("Webhooks, last whole minute", hooks["last_minute"], "webhooks-last-minute"),
            ("Webhooks, last hour", hooks["last_hour"], "webhooks-last-hour"),
            ("Leadterra errors, last hour", lt["errors_last_hour"], "leadterra-errors"),
            ("Leadterra 429s, last hour", lt["rate_limited_last_hour"], "leadterra-429"),
        ]
    )
    chart = columns(
        [(_minute(p["minute"]), [("s-webhooks", p["count"])]) for p in hooks["per_minute"]],
        label="Verified webhooks per minute, the last hour (UTC)",
        every=10,
    )
    queues = figures([(name, n, f"queue-{name}") for name, n in panel["queues"].items()])
    statuses = ", ".join(f"{s}: {n}" for s, n in lt["by_status"].items()) or "none"
    calls = f"Leadterra calls that were not 2xx, last hour, by status: {statuses}"
    return section(
        "health",
        "Health",
        head,
        chart,
        tag("h3", "Queues"),
        queues,
        _workers(panel["workers"]),
        tag("p", calls, class_="note"),
    )


def _open_row(h: dict[str, Any]) -> Markup:
    state = "breached" if h["breached"] else "reminded" if h["reminded"] else "open"
    return row(
        [
            tag("td", h["reply_id"], data_field="reply_id"),
            tag("td", h["sdr_id"], data_field="sdr_id"),
            cell(h["attempt"], "attempt", numeric=True),
            tag("td", when(h["at"]), data_field="at"),
            cell(h["elapsed_minutes"], "elapsed_minutes", numeric=True),
            cell(h["left_minutes"], "left_minutes", numeric=True),
            tag("td", state, data_field="state", class_="bad" if h["breached"] else None),
        ],
        data_reply=h["reply_id"],
    )


def _sdr_row(s: dict[str, Any]) -> Markup:
    fields = ("handoffs", "acted", "breached", "rerouted_away")
    return row(
        [
            tag("th", s["sdr"], scope="row"),
            *(cell(s[f], f, numeric=True) for f in fields),
            tag("td", ago(s["tta_p50_s"]), data_field="tta_p50_s", data_value=s["tta_p50_s"]),
            tag("td", ago(s["tta_p90_s"]), data_field="tta_p90_s", data_value=s["tta_p90_s"]),
        ],
        data_sdr=s["sdr"],
    )


def sla_section(panel: dict[str, Any]) -> Markup:
    opened, window = panel["open"], panel["window"]
    state = (
        f"SLA {panel['sla_minutes']:g} working minutes, action {panel['action']}."
        if panel["enabled"]
        else "The SLA watch is off (SLA_MINUTES=0): handoffs are recorded, not watched."
    )
    head = figures(
        [
            ("Open handoffs", opened["count"], "sla-open"),
            ("Open and breached", opened["breached"], "sla-open-breached"),
            ("Breaches", window["breaches"], "sla-breaches"),
            ("Re-routes", window["reroutes"], "sla-reroutes"),
            ("Escalated", window["escalated"], "sla-escalated"),
        ]
    )
    since = (
        f"Outcomes over the newest {window['handoffs']} handoffs, since {when(window['since'])}."
    )
    return section(
        "sla",
        "SLA",
        tag("p", state, class_="note"),
        head,
        table(
            ["reply", "SDR", "attempt", "handed off (UTC)", "minutes", "left", "state"],
            [_open_row(h) for h in opened["handoffs"]],
            empty="No handoff is watched now.",
            id="sla-open",
        ),
        tag("p", since, class_="note"),
        table(
            ["SDR", "handoffs", "acted", "breached", "re-routed away", "action p50", "p90"],
            [_sdr_row(s) for s in panel["sdrs"]],
            empty="No handoff recorded.",
            id="sla-sdrs",
        ),
    )


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def intake_section(panel: dict[str, Any]) -> Markup:
    today, week = panel["today"], panel["week"]
    head = figures(
        [
            ("By webhook, 7 days", week["webhook"], "intake-webhook-week"),
            ("Recovered by the sweep, 7 days", week["reconcile"], "intake-reconcile-week"),
            ("Recovered share, today", _share(today["recovered_share"]), "intake-share-today"),
            ("Recovered share, 7 days", _share(week["recovered_share"]), "intake-share-week"),
            ("Watermark age", ago(panel["watermark"]["age_s"]), "watermark-age"),
            ("Last complete sweep", ago(panel["last_sweep"]["age_s"]), "last-sweep-age"),
        ]
    )
    chart = columns(
        [
            (d["day"][5:], [(f"s-{s}", d[s]) for s in ("webhook", "reconcile", "backfill")])
            for d in panel["days"]
        ],
        label="Assignments per day by how the reply came: webhook, reconcile, backfill",
    )
    mode = (
        "Polling mode: every reply comes from the sweep."
        if panel["mode"] == "polling"
        else "Webhooks mode: a rising recovered share means webhooks are failing."
    )
    rows = [
        row(
            [
                tag("td", d["day"]),
                *(cell(d[s], s, numeric=True) for s in ("webhook", "reconcile", "backfill")),
            ],
            data_day=d["day"],
        )
        for d in panel["days"]
    ]
    return section(
        "intake",
        "Intake",
        tag(
            "p",
            mode + (" A resumed sweep is pending." if panel["resume_pending"] else ""),
            class_="note",
        ),
        head,
        chart,
        table(["day (UTC)", "webhook", "reconcile", "backfill"], rows, empty="", id="intake-days"),
    )
