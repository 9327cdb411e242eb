"""The final table (stdout) and bench/results/latest.json."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bench.common import RESULTS, Outcome, git_commit, machine

COLUMNS = ("scenario", "metric", "value", "unit", "reference", "ratio", "target", "status")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table: one line per row, columns padded to their widest cell."""
    cells = [[_cell(row.get(c)) for c in COLUMNS] for row in rows]
    widths = [max([len(c)] + [len(line[i]) for line in cells]) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(line.rstrip() for line in lines)


def markdown(rows: list[dict[str, Any]]) -> str:
    """The same rows as a Markdown table (for docs/benchmarks.md)."""
    head = "| " + " | ".join(COLUMNS) + " |"
    rule = "|" + "|".join("---" for _ in COLUMNS) + "|"
    body = [
        "| " + " | ".join(_cell(row.get(c)).replace("|", "/") for c in COLUMNS) + " |"
        for row in rows
    ]
    return "\n".join([head, rule, *body])


def write(outcomes: list[Outcome], *, quick: bool, started: float, argv: list[str]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows = [row for o in outcomes for row in o.rows]
    document: dict[str, Any] = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(time.time() - started, 1),
        "command": "python -m bench " + " ".join(argv),
        "quick": quick,
        "machine": machine(),
        "git": git_commit(),
        "rows": rows,
        "scenarios": {o.name: o.data for o in outcomes},
    }
    path = RESULTS / "latest.json"
    path.write_text(json.dumps(document, indent=1, default=str) + "\n")
    (RESULTS / "latest.md").write_text(markdown(rows) + "\n")
    return path
