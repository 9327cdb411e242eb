"""The console page and its confirmation page: whole HTML documents, rendered on the server.

The page is the seven panels rendered from the same JSON the /api/ endpoints serve, so the page
and a script always agree. It works with JavaScript off (the numbers are in the HTML, the
buttons are forms, a confirmation page stands in for `confirm()`); with it on, console.js
refreshes the panels in place. CSS and JS are ours, served from the package (no CDN), and the
answer's Content-Security-Policy allows nothing else: no inline script or style, no other
origin, no framing.
"""

from __future__ import annotations

from typing import Any

from worker.console.markup import Markup, attrs, esc, join, tag, when
from worker.console.routing_views import decisions_section, rotation_section
from worker.console.service_views import health_section, intake_section, sla_section
from worker.console.work_views import QUESTIONS, action_form, followups_section, stuck_section

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
PANEL_TITLES = {
    "rotation": "Rotation",
    "decisions": "Decisions",
    "stuck": "Stuck work",
    "followups": "Follow-ups",
    "health": "Health",
    "sla": "SLA",
    "intake": "Intake",
}
#: what a redirect after an action may say (a fixed word in the URL, never text from it)
NOTICES = {
    "replayed": "Dead letter replayed: its task is back on its queue.",
    "dropped": "Dead letter dropped.",
    "gone": "That dead letter was gone already (replayed or dropped meanwhile).",
}
REFRESH_SECONDS = 10


def _document(title: str, body: Any, *, refresh: bool = False) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title>"
        '<link rel="stylesheet" href="/static/console.css">'
        '<script src="/static/console.js" defer></script>'
        f"</head><body{attrs(data_refresh=REFRESH_SECONDS if refresh else None)}>"
        f"{esc(body)}</body></html>"
    )


def _header(now: float, signed_in: bool) -> Markup:
    panels = join(tag("a", t, href=f"#{p}") for p, t in PANEL_TITLES.items())
    tools = join(tag("a", p, href=p) for p in ("/metrics", "/readyz", "/openapi.json"))
    logout = (
        Markup(
            '<form method="post" action="/logout" class="inline"><button>Sign out</button></form>'
        )
        if signed_in
        else ""
    )
    stamp = tag("p", f"Rendered {when(now)}", class_="stamp", id="rendered")
    return Markup(
        f"<header><h1>leadrouter</h1><nav>{panels}</nav>"
        f'<nav class="tools">{tools}{logout}</nav>{stamp}</header>'
    )


def console_page(
    data: dict[str, dict[str, Any]],
    *,
    csrf: str,
    now: float,
    notice: str | None = None,
    signed_in: bool = False,
) -> str:
    """The whole page from `read_all`'s panels."""
    sdrs = [s["id"] for s in data["rotation"]["sdrs"]]
    message = NOTICES.get(notice or "")
    body = join(
        [
            _header(now, signed_in),
            tag("p", message, class_="notice", role="status") if message else "",
            Markup("<main>"),
            rotation_section(data["rotation"]),
            decisions_section(data["decisions"], sdrs),
            stuck_section(data["stuck"], csrf),
            followups_section(data["followups"]),
            health_section(data["health"]),
            sla_section(data["sla"]),
            intake_section(data["intake"]),
            Markup("</main>"),
        ]
    )
    return _document("leadrouter console", body, refresh=True)


def confirm_page(action: str, entry: dict[str, Any] | None, entry_id: str, csrf: str) -> str:
    """The step before a replay or drop when the browser runs no script."""
    details = (
        join(
            [
                tag("dt", "task"),
                tag("dd", entry["task"]),
                tag("dt", "error"),
                tag("dd", f"{entry['error_type']}: {entry['error']}"),
                tag("dt", "attempts"),
                tag("dd", entry["attempts"]),
            ]
        )
        if entry
        else ""
    )
    body = join(
        [
            tag("h1", "Confirm"),
            tag("p", QUESTIONS[action].format(id=entry_id)),
            tag("dl", details) if details else "",
            action_form(action, entry_id, csrf, confirmed=True),
            Markup(' <a href="/#stuck">Cancel</a>'),
        ]
    )
    return _document(f"leadrouter: {action} {entry_id}?", Markup(f"<main>{body}</main>"))


def message_page(title: str, text: str) -> str:
    """A short page for a refusal or an outage (no detail of the cause beyond its kind)."""
    body = join([tag("h1", title), tag("p", text), Markup('<p><a href="/">Back</a></p>')])
    return _document(f"leadrouter: {title}", Markup(f"<main>{body}</main>"))
