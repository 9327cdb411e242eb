"""Tables on a terminal, JSON for scripts: every listing command goes through `emit`."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table


def emit(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    *,
    as_json: bool,
    title: str | None = None,
) -> None:
    if as_json:
        json.dump(list(rows), sys.stdout, default=str, indent=2)
        sys.stdout.write("\n")
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    Console().print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    return str(value)


def fail(message: str) -> None:
    """One clear line on stderr and exit status 1."""
    import click

    raise click.ClickException(message)
