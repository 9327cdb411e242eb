"""Bar charts as inline SVG, drawn on the server: no script, no external asset, no inline style.

Colours come from classes in console.css (the page's Content-Security-Policy allows no inline
style), every label and tooltip is escaped (worker/console/markup.py), and the SVG carries no
namespace URL: inside HTML the parser gives it the SVG namespace itself.
"""

from __future__ import annotations

from collections.abc import Sequence

from worker.console.markup import Markup, attrs, esc, number

WIDTH = 560
LABEL = 150
VALUE = 60
BAR, GAP = 14, 4


def _svg(label: str, width: int, height: int, body: str) -> Markup:
    head = attrs(
        class_="chart",
        viewBox=f"0 0 {width} {height}",
        width=width,
        height=height,
        role="img",
        aria_label=label,
    )
    return Markup(f"<svg{head}><title>{esc(label)}</title>{body}</svg>")


def _short(name: str, limit: int = 22) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def hbars(rows: Sequence[tuple[str, float, float | None]], *, label: str, marker: str) -> Markup:
    """One horizontal bar per row, (name, value, mark): the value as a bar, the mark (the
    weighted fair share) as a tick across it, both on one scale."""
    if not rows:
        return Markup("")
    top = max([v for _, v, _ in rows] + [m for _, _, m in rows if m is not None]) or 1.0
    span = WIDTH - LABEL - VALUE
    parts = []
    for i, (name, value, mark) in enumerate(rows):
        y = GAP + i * (BAR + GAP)
        width = span * value / top
        tip = f"{name}: {number(value)}" + ("" if mark is None else f" ({marker} {number(mark)})")
        parts.append(
            f"<text{attrs(class_='label', x=LABEL - 6, y=y + BAR - 3)}>{esc(_short(name))}</text>"
            f"<rect{attrs(class_='bar', x=LABEL, y=y, width=f'{width:.1f}', height=BAR)}>"
            f"<title>{esc(tip)}</title></rect>"
            f"<text{attrs(class_='value', x=f'{LABEL + width + 4:.1f}', y=y + BAR - 3)}>"
            f"{esc(number(value))}</text>"
        )
        if mark is not None:
            x = f"{LABEL + span * mark / top:.1f}"
            parts.append(f"<line{attrs(class_='mark', x1=x, x2=x, y1=y - 2, y2=y + BAR + 2)}/>")
    height = GAP + len(rows) * (BAR + GAP)
    return _svg(label, WIDTH, height, "".join(parts))


def columns(
    series: Sequence[tuple[str, Sequence[tuple[str, float]]]],
    *,
    label: str,
    every: int = 1,
    height: int = 120,
) -> Markup:
    """Vertical bars, stacked: [(x label, [(class, value), ...]), ...]; every `every`-th x
    label is written under its bar (all are in the tooltips)."""
    if not series:
        return Markup("")
    top = max(sum(v for _, v in stack) for _, stack in series) or 1.0
    plot, base = height - 18, height - 16
    step = (WIDTH - 40) / len(series)
    parts = [f"<text{attrs(class_='value', x=0, y=10)}>{esc(number(top))}</text>"]
    for i, (name, stack) in enumerate(series):
        x, y = 40 + i * step, float(base)
        tip = f"{name}: " + ", ".join(f"{cls} {number(v)}" for cls, v in stack)
        for cls, value in stack:
            h = (plot - 10) * value / top
            y -= h
            box = attrs(class_=f"col {cls}", x=f"{x:.1f}", y=f"{y:.1f}", width=f"{step * 0.8:.1f}")
            parts.append(f"<rect{box}{attrs(height=f'{h:.1f}')}><title>{esc(tip)}</title></rect>")
        if i % every == 0:
            where = attrs(class_="tick", x=f"{x:.1f}", y=height - 2)
            parts.append(f"<text{where}>{esc(name)}</text>")
    return _svg(label, WIDTH, height, "".join(parts))
