"""The Stuck work and Follow-ups panels as HTML, from the JSON the /api/ endpoints serve.

Each dead letter has a Replay and a Drop button: each a POST form carrying the entry id and the
CSRF token (worker/console/csrf.py), marked `data-confirm` so the page's script asks first; with
JavaScript off the POST answers with a confirmation page instead (worker/console/actions.py).
Hooks: `#stuck` rows carry `data-reply` (held) and `data-entry-id` (dead letters), and the
buttons `data-action` (`replay` or `drop`) and `data-entry-id`; `#followups` rows `data-sdr`.
"""

from __future__ import annotations

from typing import Any

from worker.console.markup import Markup, ago, attrs, cell, figures, row, section, table, tag, when

ACTIONS = {"replay": "Replay", "drop": "Drop"}
QUESTIONS = {
    "replay": "Replay dead letter {id}? Its task goes back on its queue (an assigned reply is "
    "never assigned twice).",
    "drop": "Drop dead letter {id}? It is deleted without being run again.",
}


def action_form(action: str, entry_id: str, csrf: str, *, confirmed: bool = False) -> Markup:
    """The POST form of one button; `confirmed` is the confirmation page's (no second ask)."""
    fields = (
        f"<input{attrs(type='hidden', name='csrf', value=csrf)}>"
        f"<input{attrs(type='hidden', name='id', value=entry_id)}>"
    )
    if confirmed:
        fields += f"<input{attrs(type='hidden', name='confirmed', value='yes')}>"
    button = tag(
        "button",
        ACTIONS[action],
        type="submit",
        class_=f"action {action}",
        data_action=action,
        data_entry_id=entry_id,
    )
    opening = attrs(
        method="post",
        action=f"/dlq/{action}",
        class_="inline",
        data_confirm=None if confirmed else f"{ACTIONS[action]} dead letter {entry_id}?",
    )
    return Markup(f"<form{opening}>{fields}{button}</form>")


def _dead_letter_row(entry: dict[str, Any], csrf: str) -> Markup:
    buttons = Markup(
        action_form("replay", entry["id"], csrf) + action_form("drop", entry["id"], csrf)
    )
    return row(
        [
            tag("td", entry["id"], data_field="id"),
            tag("td", entry["task"], data_field="task"),
            tag("td", entry["error_type"], data_field="error_type"),
            tag("td", entry["error"], data_field="error", class_="error"),
            cell(entry["attempts"], "attempts", numeric=True),
            tag("td", ago(entry["age_s"]), data_field="age", data_value=entry["age_s"]),
            tag("td", buttons, class_="actions"),
        ],
        data_entry_id=entry["id"],
    )


def _held_row(held: dict[str, Any]) -> Markup:
    return row(
        [
            tag("td", held["reply_id"], data_field="reply_id"),
            tag("td", held["reason"], data_field="reason"),
            tag("td", when(held["since"]), data_field="since"),
            tag("td", ago(held["age_s"]), data_field="age", data_value=held["age_s"]),
        ],
        data_reply=held["reply_id"],
    )


def stuck_section(panel: dict[str, Any], csrf: str) -> Markup:
    held, letters = panel["held"], panel["dead_letters"]
    head = figures(
        [
            ("Held replies", held["count"], "held"),
            ("Oldest held", ago(held["oldest_age_s"]), "oldest-held"),
            ("Dead letters", letters["count"], "dead-letters"),
        ]
    )
    more = len(letters["entries"]) < letters["count"]
    note = (
        f"The oldest {len(letters['entries'])} of {letters['count']}; "
        "`leadrouter dlq list` shows them all."
        if more
        else ""
    )
    return section(
        "stuck",
        "Stuck work",
        head,
        tag("h3", "Held: nobody can take them now"),
        table(
            ["reply", "reason", "held since (UTC)", "for"],
            [_held_row(h) for h in held["replies"]],
            empty="No reply is held.",
            id="held",
        ),
        tag("h3", "Dead letters"),
        tag("p", note, class_="note") if note else "",
        table(
            ["id", "task", "error type", "error", "attempts", "age", ""],
            [_dead_letter_row(e, csrf) for e in letters["entries"]],
            empty="No dead letter.",
            id="dead-letters",
        ),
    )


def _followup_row(sdr: dict[str, Any]) -> Markup:
    fields = ("due", "routed", "skipped", "rescheduled", "already_closed", "completed")
    return row(
        [tag("th", sdr["sdr"], scope="row"), *(cell(sdr[f], f, numeric=True) for f in fields)],
        data_sdr=sdr["sdr"],
    )


def followups_section(panel: dict[str, Any]) -> Markup:
    totals = panel["totals"]
    head = figures(
        [
            ("Due and handled today", totals["due"], "followups-due"),
            ("Routed", totals["routed"], "followups-routed"),
            ("Skipped", totals["skipped"], "followups-skipped"),
            ("Rescheduled", totals["rescheduled"], "followups-rescheduled"),
        ]
    )
    return section(
        "followups",
        "Follow-ups",
        head,
        table(
            ["SDR", "due", "routed", "skipped", "rescheduled", "already closed", "sent, completed"],
            [_followup_row(s) for s in panel["sdrs"]],
            empty=f"No follow-up handled today ({panel['day']}, UTC).",
        ),
    )
