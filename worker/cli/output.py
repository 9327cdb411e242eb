"""Tables on a terminal, JSON for scripts: every listing command goes through `emit`."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import redis
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


def redis_or_fail(url: str) -> redis.Redis:
    """A Redis client that answered PING, or one clear line and exit status 1."""
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        fail(f"redis: no answer at REDIS_URL ({type(exc).__name__})")
    return client
