"""`leadrouter`: the console script. Every subcommand builds its own Settings.

Subcommands are imported when they run: `leadrouter web|worker|beat` load neither the sandbox
nor each other's libraries, which would stay resident for the life of the process. Nor do they
load the optional libraries that other libraries import whenever they are installed, and that
these processes never use (together 2-5 MiB in each, docs/benchmarks.md "Footprint"):

    rich, pygments   the CLI's tables; structlog imports rich, httpx its own CLI's (pygments).
                     worker/logs.py renders tracebacks without rich.
    trio             installed with the test tools; httpcore imports it. We run threads/asyncio.
    yaml             kombu registers a YAML serializer; Celery here accepts JSON only.
    watchfiles       uvicorn's --reload; the receiver never reloads.
"""

from __future__ import annotations

import importlib
import sys

import click

from config.settings import settings_or_exit

SERVICES = ("web", "worker", "beat")
#: installed libraries that web, worker and beat would import without using (see above)
UNUSED_BY_SERVICES = ("rich", "pygments", "trio", "yaml", "watchfiles")
#: command name -> "module:attribute", imported on first use
LAZY = {
    "run": "worker.cli.run:run",
    "demo": "worker.cli.run:demo",
    "dlq": "worker.cli.dlq_commands:dlq",
    "followups": "worker.cli.followup_commands:followups",
    "check": "worker.cli.status_commands:check",
    "health": "worker.cli.status_commands:health",
    "sdrs": "worker.cli.status_commands:sdrs",
    "rotation": "worker.cli.rotation_commands:rotation",
    "backfill": "worker.cli.backfill_commands:backfill",
    "handoffs": "worker.cli.handoff_commands:handoffs",
}


class LazyGroup(click.Group):
    """A group whose LAZY subcommands are imported by name when asked for (run or --help)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in LAZY:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = LAZY[cmd_name].partition(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Route Leadterra's interested replies to SDRs, and their follow-ups out."""


@cli.command()
def web() -> None:
    """Run the webhook receiver on PORT."""
    from worker.cli.processes import run_web

    run_web(settings_or_exit())


@cli.command()
@click.option("--concurrency", "-c", type=int, default=None, help="Threads (WORKER_CONCURRENCY).")
def worker(concurrency: int | None) -> None:
    """Run a Celery worker (threads pool) on every queue, with beat's schedule (WORKER_BEAT)."""
    from worker.cli.processes import run_worker

    run_worker(settings_or_exit(), concurrency)


@cli.command()
def beat() -> None:
    """Run beat's schedule on its own (every worker runs it too unless WORKER_BEAT=false); it
    sends while it holds the lease: releases held work, polls follow-ups, sweeps replies, stamps
    the canary."""
    from worker.cli.processes import run_beat

    run_beat(settings_or_exit())


def main() -> None:
    if sys.argv[1:2] and sys.argv[1] in SERVICES:
        for name in UNUSED_BY_SERVICES:  # None: an import raises ImportError, as if absent
            sys.modules.setdefault(name, None)  # type: ignore[arg-type]
    cli(prog_name="leadrouter")
