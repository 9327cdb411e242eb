"""Tables on a terminal, JSON for scripts: every listing command goes through `emit`.

What a table shows comes from Redis or from Leadterra, so it is data, never Rich markup: every
cell and title is a `Text` (no markup, no emoji codes, no highlighting), with control characters
shown escaped, so a reply id like `[/]` or `[link=https://evil]x[/link]` prints as it is and an
escape sequence cannot reach the terminal. `--json` output is the values as they are.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from typing import Any

import redis
from rich.console import Console
from rich.table import Table
from rich.text import Text

from config.settings import Settings
from worker.redis_conn import sync_client

#: C0 and C1 control characters (and DEL), which a terminal may act on
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


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
    table = Table(title=data(title) if title is not None else None)
    for column in columns:
        table.add_column(data(column))
    for row in rows:
        table.add_row(*(data(_cell(row.get(c))) for c in columns))
    console().print(table)


def data(value: Any) -> Text:
    """`value` as Rich text that is only text: markup, emoji codes and control characters in it
    are shown, not acted on."""
    return Text(_CONTROL.sub(lambda hit: repr(hit.group())[1:-1], str(value)))


def console() -> Console:
    """A console for data: no markup or emoji codes read in plain strings either."""
    return Console(markup=False, emoji=False, highlight=False)


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


def redis_or_fail(settings: Settings, socket_timeout: float = 10) -> redis.Redis:
    """A Redis client (to REDIS_URL, or the primary REDIS_SENTINELS name) that answered PING,
    or one clear line and exit status 1."""
    client = sync_client(settings, socket_connect_timeout=3, socket_timeout=socket_timeout)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        where = "through REDIS_SENTINELS" if settings.redis_sentinels else "at REDIS_URL"
        fail(f"redis: no answer {where} ({type(exc).__name__})")
    return client
