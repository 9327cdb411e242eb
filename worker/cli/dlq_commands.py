"""`leadrouter dlq`: list, replay and drop dead letters, every one of them (page by page)."""

from __future__ import annotations

import time

import click

from config.settings import settings_or_exit
from worker.cli.output import emit, fail, redis_or_fail
from worker.console.reader import Reader
from worker.console.stuck_panel import dead_letter_rows
from worker.jobs.deadletter import DeadLetters
from worker.keys import Keys


def _store() -> DeadLetters:
    settings = settings_or_exit()
    return DeadLetters(redis_or_fail(settings), Keys(settings.key_prefix))


@click.group()
def dlq() -> None:
    """Dead letters: what could not be done, and why."""


@dlq.command("list")
@click.option(
    "--limit", type=click.IntRange(min=1), default=None, help="Only the oldest N (default: all)."
)
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
def list_(limit: int | None, as_json: bool) -> None:
    """List dead letters, oldest first: all of them, or the oldest --limit N (the entries the
    console's Stuck work panel shows, GET /api/stuck)."""
    settings = settings_or_exit()
    entries, total = dead_letter_rows(Reader.of(settings, redis_or_fail(settings)), limit)
    rows = [
        {
            **{f: e[f] for f in ("id", "task", "error_type", "error", "attempts")},
            "at": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e["at"])),
        }
        for e in entries
    ]
    shown = f"{len(rows)} of {total}" if len(rows) < total else str(len(rows))
    emit(
        rows,
        ["id", "task", "error_type", "error", "attempts", "at"],
        as_json=as_json,
        title=f"{shown} dead letter(s)",
    )


@dlq.command()
@click.option("--id", "entry_id", help="Replay one entry (as listed).")
@click.option("--all", "replay_all", is_flag=True, help="Replay every entry.")
def replay(entry_id: str | None, replay_all: bool) -> None:
    """Enqueue dead letters again. Idempotent: an assigned reply is never assigned twice."""
    if bool(entry_id) == replay_all:
        fail("give exactly one of --id ID or --all")
    store = _store()
    if not replay_all:
        if not store.replay(str(entry_id)):
            fail(f"no dead letter with id {entry_id!r}")
        click.echo("replayed 1 dead letter(s)")
        return
    ids = store.ids()
    done = store.replay_many(ids)
    gone = f" ({len(ids) - done} already gone)" if done < len(ids) else ""
    click.echo(f"replayed {done} dead letter(s){gone}")


@dlq.command()
@click.argument("entry_id")
def drop(entry_id: str) -> None:
    """Delete one dead letter without replaying it (its reply is no longer held)."""
    if not _store().drop(entry_id):
        fail(f"no dead letter with id {entry_id!r}")
    click.echo(f"dropped {entry_id}")
