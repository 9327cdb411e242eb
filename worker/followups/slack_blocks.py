"""Slack messages for a due follow-up (with its draft and buttons) and for an SLA step.

Slack messages carry text from prospects and from Leadterra, so every such value is escaped and
shown as plain text (`slack_text`): a contact named `<!channel>` pings nobody. The one mrkdwn text
we write beside our labels is the SDR's mention in the team's channel, `<@U...>`, built only from
an id that is a Slack user id.

A follow-up with a ready draft (worker/drafts/generate.py) carries it as the note's `draft`
(`DraftRecord.summary()`): Slack shows its subject, confidence and body (escaped like the rest),
then its buttons. With SLACK_SIGNING_SECRET set they are Send (with a confirmation), Skip and
Snooze 1 day, each carrying the signed link's query string as `value` for `POST /slack/actions`
(worker/oneclick/) to verify; without it, one "Review and send" link button opens `sendUrl`.
`draft_outcome_message` is the same message, buttons replaced by the outcome.
"""

from __future__ import annotations

import unicodedata
from typing import Any
from urllib.parse import urlsplit

from worker.sla.notes import HEADERS, MENTIONS, is_sla, is_slack_user_id

#: Slack reads these as markup in every text object; the entities are what it decodes
SLACK_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
MAX_SLACK_VALUE = 300
#: a draft's body as shown, once escaped (a section's text holds 3,000 characters)
MAX_SLACK_DRAFT = 2000
#: Slack's limits on a button's `value` and `url`; a longer link gets no button of that kind
MAX_BUTTON_VALUE, MAX_BUTTON_URL = 2000, 3000
DRAFT_BLOCK = "leadrouter_draft"
#: action_id, label, style of the buttons under a draft when Slack's requests can be verified
DRAFT_BUTTONS = (("leadrouter_send", "Send", "primary"), ("leadrouter_skip", "Skip", None),
                 ("leadrouter_snooze", "Snooze 1 day", None))  # fmt: skip
OPEN_BUTTON = "leadrouter_open"


def slack_text(value: Any) -> str:
    """Prospect or Leadterra text made inert for Slack: one line of at most `MAX_SLACK_VALUE`
    characters, control characters dropped, and `&`, `<`, `>` escaped, the only escapes Slack
    decodes (https://api.slack.com/reference/surfaces/formatting#escaping), so `<!channel>` or
    `<https://evil.example|re-authenticate>` reads as text instead of pinging or linking."""
    line = " ".join(str(value).split())
    line = "".join(c for c in line if unicodedata.category(c) != "Cc")
    if len(line) > MAX_SLACK_VALUE:
        line = line[: MAX_SLACK_VALUE - 1] + "\u2026"
    return (line or "-").translate(SLACK_ESCAPES)


def slack_paragraphs(value: Any, limit: int = MAX_SLACK_DRAFT) -> str:
    """Longer text (a draft's body) made inert like `slack_text`, its line breaks kept (a run of
    blank lines as one) and at most `limit` characters once escaped."""
    lines: list[str] = []
    for raw in str(value).splitlines():
        line = "".join(c for c in " ".join(raw.split()) if unicodedata.category(c) != "Cc")
        if line or (lines and lines[-1]):
            lines.append(line)
    shown = "\n".join(lines).strip()
    escaped = shown.translate(SLACK_ESCAPES)
    if len(escaped) > limit:  # cut by the escaped length, never inside an entity
        cut = escaped[: limit - 1]
        amp = cut.rfind("&", len(cut) - 4)  # an entity's start, cut before its `;`
        escaped = (cut[:amp] if amp >= 0 and ";" not in cut[amp:] else cut) + "\u2026"
    return escaped or "-"


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": False}


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _row(label: str, value: str) -> dict[str, Any]:
    """A two-column row: our bold label, then the value as plain text (no formatting, links,
    mentions or emoji codes; Slack has no escape for `*`, `_`, `~` or backticks in mrkdwn)."""
    return {
        "type": "section",
        "fields": [
            {"type": "mrkdwn", "text": f"*{label}*"},
            {"type": "plain_text", "text": value, "emoji": False},
        ],
    }


def slack_body(note: dict[str, Any], *, interactive: bool = False) -> dict[str, Any]:
    """A readable Slack message: contact, subject, category, priority, due time, SDR; then the
    draft and its buttons when the note has one (`interactive`: Send, Skip and Snooze, which need
    SLACK_SIGNING_SECRET to be verified; else one link button).

    Every value comes from a prospect or from Leadterra, so each is `slack_text` in a plain-text
    field; the fallback `text` (notifications) is escaped too and not read as mrkdwn.
    """
    text, blocks = _followup_blocks(note)
    draft = note.get("draft")
    if isinstance(draft, dict):
        blocks += _draft_actions(str(draft.get("sendUrl") or ""), interactive=interactive)
    return _message(text, "Follow-up due", blocks)


def draft_outcome_message(note: dict[str, Any], outcome: str) -> dict[str, Any]:
    """The message of a follow-up and its draft after someone acted on it (to replace the one
    with buttons): the same rows and draft, no buttons, and `outcome` (escaped) beneath."""
    text, blocks = _followup_blocks(note)
    said = slack_text(outcome)
    blocks.append({"type": "context", "elements": [_plain(said)]})
    return _message(f"{text}: {said}", "Follow-up due", blocks)


def _followup_blocks(note: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """A follow-up's fallback text and rows, and its draft's when it has one (no buttons)."""
    followup, thread = note["followup"], note.get("thread") or {}
    name, email = thread.get("contactName"), thread.get("contactEmail")
    contact = f"{name} <{email}>" if name and email else name or email or "unknown contact"
    sdr = note.get("sdr") or followup.get("sdrId") or "?"
    fields = {
        "Contact": slack_text(contact),
        "Subject": slack_text(thread.get("subject") or "(no subject)"),
        "Category": slack_text(thread.get("category") or "-"),
        "Priority": slack_text(_number(thread.get("priorityScore", "-"))),
        "Due": slack_text(followup.get("dueAt")),
        "SDR": slack_text(sdr),
    }
    text = (
        f"Follow-up due for {fields['Contact']}: {fields['Subject']} "
        f"(due {fields['Due']}, SDR {fields['SDR']})"
    )
    rows = [_row(label, value) for label, value in fields.items()]
    draft = note.get("draft")
    if isinstance(draft, dict):
        text += ", draft ready"
        rows += [
            {"type": "divider"},
            _row("Draft subject", slack_text(draft.get("subject") or "(no subject)")),
            _row("Confidence", _confidence(draft.get("confidence"))),
            {"type": "section", "text": _plain(slack_paragraphs(draft.get("bodyText") or "-"))},
        ]
    return text, rows


def _confidence(value: Any) -> str:
    """The draft's confidence: 0.85 as `85%`, anything else as text."""
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1:
        return f"{round(value * 100)}%"
    return slack_text("-" if value is None else value)


def _draft_actions(send_url: str, *, interactive: bool) -> list[dict[str, Any]]:
    """The draft's buttons: Send (confirmed), Skip and Snooze each carrying the signed link's
    query (`d`, `f`, `s`, `e`, `sig`) when `interactive`, else one button opening `send_url`;
    none for a link that is not http(s) or too long for Slack."""
    parts = urlsplit(send_url)
    if parts.scheme not in ("http", "https") or len(send_url) > MAX_BUTTON_URL:
        return []
    if interactive and parts.query and len(parts.query) <= MAX_BUTTON_VALUE:
        confirm = {
            "title": _plain("Send this draft?"),
            "text": _plain("It goes to the prospect from the SDR's Gmail, as shown above."),
            "confirm": _plain("Send"),
            "deny": _plain("Cancel"),
        }
        elements = []
        for action_id, label, style in DRAFT_BUTTONS:
            button = {"type": "button", "action_id": action_id, "text": _plain(label)}
            button |= {"value": parts.query} | ({"style": style} if style else {})
            elements.append(button | ({"confirm": confirm} if action_id.endswith("send") else {}))
    else:
        text = _plain("Review and send")
        elements = [{"type": "button", "action_id": OPEN_BUTTON, "text": text, "url": send_url}]
    return [{"type": "actions", "block_id": DRAFT_BLOCK, "elements": elements}]


def _message(text: str, header: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """A Slack message: plain fallback `text` (not read as mrkdwn, no unfurls), our `header`."""
    return {
        "text": text,
        "mrkdwn": False,
        "unfurl_links": False,
        "unfurl_media": False,
        "blocks": [{"type": "header", "text": {"type": "plain_text", "text": header}}, *blocks],
    }


def _minutes(value: Any) -> Any:
    return _number(round(value, 1)) if isinstance(value, int | float) else value


def _history_line(history: Any) -> str:
    """`#1 sdr_1, #2 sdr_2`: each handoff's attempt and SDR, oldest first."""
    entries = history if isinstance(history, list) else []
    return ", ".join(
        f"#{entry.get('attempt', '?')} {entry.get('sdrId') or entry.get('sdr_id') or '?'}"
        for entry in entries
        if isinstance(entry, dict)
    )


def sla_slack_body(note: dict[str, Any], *, mention: bool) -> dict[str, Any]:
    """A readable Slack message for an SLA step: contact, SDR(s), time elapsed, reply, thread.

    Every value is `slack_text` in a plain-text field. With `mention` (the team's channel) and a
    note whose `slackUserId` is a Slack user id, a mrkdwn section of ours mentions the SDR.
    """
    kind = note.get("type")
    fields = {
        "Contact": slack_text(note.get("contact") or "unknown contact"),
        "SDR": slack_text(note.get("sdrId") or "?"),
    }
    if note.get("newSdrId"):
        fields["New SDR"] = slack_text(note["newSdrId"])
    elapsed = f"{_minutes(note.get('minutesElapsed'))} of {_minutes(note.get('slaMinutes'))} min"
    fields["Elapsed"] = slack_text(elapsed)
    fields["Reply"] = slack_text(note.get("replyId"))
    fields["Thread"] = slack_text(note.get("threadId") or "-")
    fields["Attempt"] = slack_text(note.get("attempt"))
    if note.get("history"):
        fields["History"] = slack_text(_history_line(note["history"]))
    header = HEADERS.get(str(kind), "SLA")
    text = f"{header}: {fields['Contact']} (SDR {fields['SDR']}, {fields['Elapsed']})"
    blocks = [_row(label, value) for label, value in fields.items()]
    user = note.get("slackUserId")
    if mention and is_slack_user_id(user):
        said = MENTIONS.get(str(kind), "")
        mrkdwn = {"type": "mrkdwn", "text": f"<@{user}> {said}".strip()}
        blocks.insert(0, {"type": "section", "text": mrkdwn})
    return _message(text, header, blocks)


def slack_message(
    destination: str, note: dict[str, Any], *, interactive: bool = False
) -> dict[str, Any]:
    """The Slack message of `note`; an SLA note mentions its SDR in the team's channel only, a
    draft gets Send, Skip and Snooze buttons when `interactive` (`slack_body`)."""
    if is_sla(note):
        return sla_slack_body(note, mention=destination == "slack")
    return slack_body(note, interactive=interactive)
