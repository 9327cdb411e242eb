"""The Rotation and Decisions panels as HTML, from the JSON the /api/ endpoints serve.

Stable hooks for scripts and the browser test: `#rotation` rows carry `data-sdr`, `data-today`,
`data-week` and `data-eligible`; `#decisions` rows carry `data-reply` and `data-winner`; every
number cell has `data-field` (and `data-value`, unformatted).
"""

from __future__ import annotations

from typing import Any

from worker.console.charts import hbars
from worker.console.markup import Markup, ago, cell, figures, row, section, table, tag, when


def _eligibility(sdr: dict[str, Any]) -> Markup:
    if sdr["eligible"] is None:
        return tag("td", "unknown", class_="muted", data_field="eligible")
    if sdr["eligible"]:
        return tag("td", "eligible", class_="ok", data_field="eligible")
    return tag("td", f"out: {sdr['why_not']}", class_="bad", data_field="eligible")


def _rotation_row(sdr: dict[str, Any]) -> Markup:
    cap = "–" if sdr["cap"] is None else f"{sdr['cap_used']} / {sdr['cap']}"
    return row(
        [
            tag("th", sdr["id"], scope="row"),
            _eligibility(sdr),
            cell(sdr["weight"], "weight", numeric=True),
            cell(sdr["today"], "today", numeric=True),
            cell(sdr["fair_today"], "fair_today", numeric=True),
            cell(sdr["week"], "week", numeric=True),
            cell(sdr["fair_week"], "fair_week", numeric=True),
            tag("td", cap, data_field="cap", data_value=sdr["cap_used"]),
            cell(sdr["picks"], "picks", numeric=True),
            cell(sdr["position"], "position", numeric=True),
        ],
        data_sdr=sdr["id"],
        data_today=sdr["today"],
        data_week=sdr["week"],
        data_eligible=str(sdr["eligible"]).lower(),
    )


def _sdr_list_note(panel: dict[str, Any]) -> Markup:
    listed = panel["sdr_list"]
    if listed["source"] == "cache":
        text = "SDR list: the rotation's cache of GET /v1/sdrs."
    elif listed["source"] == "last_known":
        text = f"SDR list: the last one seen, {ago(listed['age_s'])} ago (the cache expired)."
    else:
        text = "SDR list: none seen yet; connections unknown until the next pick."
    if panel["roster_error"]:
        text += f" Roster file not loaded: {panel['roster_error']}"
    return tag("p", text, class_="note")


def rotation_section(panel: dict[str, Any]) -> Markup:
    sdrs = panel["sdrs"]
    totals = panel["totals"]
    head = figures(
        [
            ("Assigned today (UTC)", totals["today"], "assigned-today"),
            ("Last 7 days", totals["week"], "assigned-week"),
            ("Eligible now", sum(1 for s in sdrs if s["eligible"]), "eligible-now"),
            ("SDRs", len(sdrs), "sdrs"),
        ]
    )
    charts = Markup(
        '<div class="charts">'
        + hbars(
            [(s["id"], s["today"], s["fair_today"]) for s in sdrs],
            label="Assignments today against the weighted fair share",
            marker="fair share",
        )
        + hbars(
            [(s["id"], s["week"], s["fair_week"]) for s in sdrs],
            label="Assignments in the last 7 days against the weighted fair share",
            marker="fair share",
        )
        + "</div>"
    )
    headers = ["SDR", "now", "weight", "today", "fair", "7 days", "fair", "cap", "picks", "next"]
    rows = table(headers, [_rotation_row(s) for s in sdrs], empty="No SDR known yet.")
    legend = tag("p", "Bars: assignments; ticks: the weighted fair share.", class_="note")
    return section("rotation", "Rotation", head, charts, legend, rows, _sdr_list_note(panel))


def _candidates(item: dict[str, Any]) -> str:
    return ", ".join(
        f"{c[0]}×{c[1]}" if len(c) > 1 and c[1] != 1 else str(c[0])
        for c in item["candidates"]
        if isinstance(c, list) and c
    )


def _decision_row(item: dict[str, Any], filtered: bool) -> Markup:
    excluded = ", ".join(f"{k}: {v}" for k, v in sorted(item["excluded"].items()))
    cells = [
        tag("td", when(item["at"]), data_field="at"),
        tag("td", item["reply"], data_field="reply"),
        tag("td", item["winner"] or "nobody (held)", data_field="winner"),
        tag("td", item["rule"], data_field="rule"),
        tag("td", _candidates(item), data_field="candidates"),
        tag("td", excluded, data_field="excluded"),
        cell(item["attempt"], "attempt", numeric=True),
    ]
    if filtered:
        cells.insert(0, tag("td", item.get("role"), data_field="role"))
    return row(cells, data_reply=item["reply"], data_winner=item["winner"] or "")


def _filter_form(panel: dict[str, Any], sdrs: list[str]) -> Markup:
    current = panel["sdr"]
    options = [tag("option", "every SDR", value="")]
    for sdr in sorted({*sdrs, *([current] if current else [])}):
        options.append(tag("option", sdr, value=sdr, selected="" if sdr == current else None))
    return Markup(
        '<form method="get" action="/#decisions" class="filter" id="decisions-filter">'
        f'<label>SDR <select name="sdr">{"".join(options)}</select></label> '
        '<button type="submit">Filter</button></form>'
    )


def decisions_section(panel: dict[str, Any], sdrs: list[str]) -> Markup:
    filtered = panel["sdr"] is not None
    headers = ["time (UTC)", "reply", "winner", "rule", "candidates", "excluded", "attempt"]
    if filtered:
        headers.insert(0, f"{panel['sdr']} was")
    rows = [_decision_row(item, filtered) for item in panel["decisions"]]
    shown = f"The latest {len(rows)} of {panel['length']} decisions kept" + (
        f", those {panel['sdr']} took part in (of {panel['scanned']} read)." if filtered else "."
    )
    empty = "No decision recorded" + (" for this SDR." if filtered else ".")
    return section(
        "decisions",
        "Decisions",
        _filter_form(panel, sdrs),
        tag("p", shown, class_="note"),
        tag("div", table(headers, rows, empty=empty), class_="scroll"),
    )
