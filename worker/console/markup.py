"""HTML building blocks for the console: every value goes through `esc`, nothing else inserts.

What the panels show comes from Redis, and much of it from Leadterra or prospects (reply ids,
SDR ids, error messages): it is data. `esc` escapes it for text and for quoted attributes
alike; the helpers below take raw values and escape them themselves, so a caller never
concatenates an unescaped value into markup. Only markup built by these helpers (or literal
markup in the views) is passed through as `Markup`.
"""

from __future__ import annotations

import functools
import html
import time
from collections.abc import Iterable
from typing import Any, cast


class Markup(str):
    """Markup built here: inserted as it is, where a plain `str` would be escaped."""


_escape = html.escape


def esc(value: Any) -> str:
    """Text or a quoted attribute value, escaped (`&`, `<`, `>`, `"` and `'`)."""
    kind = value.__class__
    if kind is Markup:
        return cast(str, value)
    if value is None:
        return ""
    return _escape(value if kind is str else str(value), True)


@functools.cache
def _name(keyword: str) -> str:
    return keyword.rstrip("_").replace("_", "-")


def attrs(**values: Any) -> str:
    """` name="value"` pairs, escaped: `data_sdr=` is `data-sdr=`, `class_=` is `class=`, and
    None leaves the pair out."""
    return "".join(
        [f' {_name(name)}="{esc(value)}"' for name, value in values.items() if value is not None]
    )


def tag(name: str, content: Any = "", **values: Any) -> Markup:
    return Markup(f"<{name}{attrs(**values)}>{esc(content)}</{name}>")


def join(parts: Iterable[Any]) -> Markup:
    return Markup("".join([esc(part) for part in parts]))


def number(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if value % 1 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def cell(value: Any, field: str | None = None, *, numeric: bool = False, raw: Any = None) -> Markup:
    """A `<td>`: the value shown (numbers formatted), `data-field` and `data-value` for tests
    and scripts (the unformatted value, or `raw`)."""
    shown = number(value) if numeric else ("–" if value is None else value)
    data_value = raw if raw is not None else value if numeric else None
    return tag(
        "td",
        shown,
        class_="num" if numeric else None,
        data_field=field,
        data_value=data_value,
    )


def table(headers: Iterable[str], rows: Iterable[Any], *, empty: str, **values: Any) -> Markup:
    body = join(rows)
    if not body:
        return tag("p", empty, class_="empty")
    head = join(tag("th", h, scope="col") for h in headers)
    return Markup(
        f"<table{attrs(**values)}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def row(cells: Iterable[Any], **values: Any) -> Markup:
    return Markup(f"<tr{attrs(**values)}>{join(cells)}</tr>")


def when(moment: float | None) -> str:
    """A unix time as UTC, to the second."""
    if moment is None:
        return "–"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(moment))


def ago(seconds: float | None) -> str:
    """An age, short: 42 s, 3 min, 5 h 12 min, 2 d 4 h."""
    if seconds is None:
        return "–"
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def section(panel_id: str, title: str, *parts: Any) -> Markup:
    """A panel: `<section id=...>` with its heading (the browser test finds panels by id)."""
    heading = tag("h2", title, id=f"{panel_id}-h")
    opening = f"<section{attrs(id=panel_id, class_='panel', aria_labelledby=f'{panel_id}-h')}>"
    return Markup(f"{opening}{heading}{join(parts)}</section>")


def figures(items: Iterable[tuple[str, Any, str]]) -> Markup:
    """A row of headline numbers: (label, value, data-metric name)."""
    parts = []
    for label, value, metric in items:
        dd = attrs(data_metric=metric, data_value=raw_value(value))
        parts.append(f"<div><dt>{esc(label)}</dt><dd{dd}>{esc(shown(value))}</dd></div>")
    return Markup(f'<dl class="figures">{"".join(parts)}</dl>')


def raw_value(value: Any) -> Any:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def shown(value: Any) -> str:
    return number(value) if isinstance(value, int | float) or value is None else str(value)
