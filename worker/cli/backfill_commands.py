"""`leadrouter backfill`: the replies of a window, read from Leadterra and enqueued once.

A progress bar on a terminal, then a summary: replies read (inside the window), positive,
already handled (enqueued before, by a webhook, a sweep or an earlier backfill) and enqueued
now. With `--json`, one object with exactly those keys. Idempotent (worker/intake/backfill.py).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from config.settings import ConfigError, settings_or_exit
from worker import errors
from worker.cli.followup_commands import parse_when
from worker.cli.output import emit, fail, redis_or_fail
from worker.intake.backfill import backfill as run_backfill
from worker.intake.found import Tally
from worker.logs import configure_logging
from worker.runtime import Runtime

COLUMNS = ("read", "positive", "already_handled", "enqueued")


@contextmanager
def _progress(show: bool) -> Iterator[tuple[Progress, TaskID] | None]:
    """A spinner with the running counts on stderr, or nothing."""
    if not show:
        yield None
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        yield (bar, bar.add_task("reading replies", total=None))


@click.command()
@click.option("--since", required=True, help="ISO 8601, e.g. 2026-11-01T00:00:00Z.")
@click.option("--until", default=None, help="ISO 8601 (default: now).")
@click.option("--campaign", default=None, help="Only this campaign id.")
@click.option("--dry-run", is_flag=True, help="Count what would be enqueued; enqueue nothing.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object for scripts.")
def backfill(
    since: str, until: str | None, campaign: str | None, dry_run: bool, as_json: bool
) -> None:
    """Enqueue every positive reply received since --since that was never enqueued."""
    start, end = parse_when(since), parse_when(until) if until else None
    if end is not None and end < start:
        fail("--until is before --since")
    settings = settings_or_exit()
    if settings.leadterra_api_key is None:
        fail("LEADTERRA_API_KEY is not set")
    level = "DEBUG" if settings.log_level == "DEBUG" else "WARNING"  # keep the bar readable
    configure_logging(level, settings.log_format, settings.secret_values())
    try:
        rt = Runtime(settings, client=redis_or_fail(settings))
    except ConfigError as bad:
        fail(f"configuration error: {bad}")
        raise  # unreachable: fail() raises
    summary = _run(rt, start, end, campaign, dry_run, show=not as_json and sys.stderr.isatty())
    if as_json:
        json.dump(summary.as_dict(), sys.stdout)
        sys.stdout.write("\n")
        return
    title = "backfill (dry run: nothing enqueued)" if dry_run else "backfill"
    emit([summary.as_dict()], COLUMNS, as_json=False, title=title)


def _run(
    rt: Runtime,
    start: datetime,
    end: datetime | None,
    campaign: str | None,
    dry_run: bool,
    *,
    show: bool,
) -> Tally:
    with _progress(show) as handle:

        def progress(tally: Tally, pages: int) -> None:
            if handle is not None:
                bar, task = handle
                counts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in tally.as_dict().items())
                bar.update(task, description=f"page {pages}: {counts}")

        try:
            return run_backfill(
                rt, start, end, campaign_id=campaign, dry_run=dry_run, progress=progress
            )
        except errors.ServiceError as exc:
            fail(f"Leadterra call failed: {rt.scrub(str(exc))} (run it again: it is idempotent)")
            raise  # unreachable: fail() raises
        finally:
            rt.close()
