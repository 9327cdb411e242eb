"""`leadrouter`: the console script. Every subcommand builds its own Settings."""

from __future__ import annotations

import click

from config.settings import settings_or_exit
from worker.cli import processes
from worker.cli.backfill_commands import backfill
from worker.cli.dlq_commands import dlq
from worker.cli.followup_commands import followups
from worker.cli.handoff_commands import handoffs
from worker.cli.rotation_commands import rotation
from worker.cli.run import demo, run
from worker.cli.status_commands import check, health, sdrs


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Route Leadterra's interested replies to SDRs, and their follow-ups out."""


@cli.command()
def web() -> None:
    """Run the webhook receiver on PORT."""
    processes.run_web(settings_or_exit())


@cli.command()
@click.option("--concurrency", "-c", type=int, default=None, help="Threads (WORKER_CONCURRENCY).")
def worker(concurrency: int | None) -> None:
    """Run a Celery worker (threads pool) on every queue."""
    processes.run_worker(settings_or_exit(), concurrency)


@cli.command()
def beat() -> None:
    """Run Celery beat: releases held work, polls follow-ups, sweeps replies, stamps the canary."""
    processes.run_beat(settings_or_exit())


for command in (run, demo, dlq, followups, check, health, sdrs, rotation, backfill, handoffs):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="leadrouter")
