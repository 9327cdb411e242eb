"""`leadrouter dlq`: list, replay and drop dead letters."""

from __future__ import annotations

import time

import click

from config.settings import settings_or_exit
from worker.cli.output import emit, fail, redis_or_fail
from worker.jobs.deadletter import DeadLetters
from worker.keys import Keys


def _store() -> DeadLetters:
    settings = settings_or_exit()
    return DeadLetters(redis_or_fail(settings.redis_url), Keys(settings.key_prefix))


@click.group()
def dlq() -> None:
    """Dead letters: what could not be done, and why."""


@dlq.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
def list_(as_json: bool) -> None:
    """List dead letters, oldest first."""
    rows = [
        {
            "id": e.id,
            "task": e.task.removeprefix("leadrouter."),
            "error_type": e.error_type,
            "error": e.error,
            "attempts": e.attempts,
            "at": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e.at)),
        }
        for e in _store().list()
    ]
    emit(
        rows,
        ["id", "task", "error_type", "error", "attempts", "at"],
        as_json=as_json,
        title=f"{len(rows)} dead letter(s)",
    )


@dlq.command()
@click.option("--id", "entry_id", help="Replay one entry (as listed).")
@click.option("--all", "replay_all", is_flag=True, help="Replay every entry.")
def replay(entry_id: str | None, replay_all: bool) -> None:
    """Enqueue dead letters again. Idempotent: an assigned reply is never assigned twice."""
    if bool(entry_id) == replay_all:
        fail("give exactly one of --id ID or --all")
    store = _store()
    ids = [e.id for e in store.list()] if replay_all else [str(entry_id)]
    done = 0
    for one in ids:
        if store.replay(one):
            done += 1
        else:
            fail(f"no dead letter with id {one!r}")
    click.echo(f"replayed {done} dead letter(s)")


@dlq.command()
@click.argument("entry_id")
def drop(entry_id: str) -> None:
    """Delete one dead letter without replaying it."""
    if not _store().drop(entry_id):
        fail(f"no dead letter with id {entry_id!r}")
    click.echo(f"dropped {entry_id}")
