"""`leadrouter run`: the service when LEADTERRA_API_KEY is set, the sandbox demo otherwise.

Both start an embedded Redis-compatible server when nothing answers at REDIS_URL (see
worker/embedded_redis.py), say so in one line, and stop it on exit.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import click

from config.settings import Settings, settings_or_exit
from worker.embedded_redis import EmbeddedRedis, answers

#: the service's processes; the Procfile and docker-compose.yml run the same commands
SERVICE = {"web": "leadrouter web", "worker": "leadrouter worker"}


def leadrouter_argv(command: str) -> list[str]:
    """`leadrouter web` as an argv that works from a venv without it on the PATH."""
    _, sub = command.split(" ", 1)
    return [sys.executable, "-m", "worker", *sub.split()]


@contextlib.contextmanager
def redis_url_for(settings: Settings) -> Iterator[str]:
    """REDIS_URL if a Redis answers there (or REDIS_SENTINELS names the primary: never an
    embedded server then), else an embedded server for the duration."""
    if settings.redis_sentinels or answers(settings.redis_url):
        yield settings.redis_url
        return
    server = EmbeddedRedis()
    server.start()
    click.echo(
        f"No Redis answered at REDIS_URL; started {os.path.basename(server.binary)} at "
        f"{server.url} in {server.folder} (stopped on exit)."
    )
    try:
        yield server.url
    finally:
        server.stop()


def run_service(settings: Settings) -> int:
    """Run web and worker (beat's schedule in it) under honcho, in the foreground, until
    Ctrl-C."""
    from honcho.manager import Manager

    with redis_url_for(settings) as url:
        manager = Manager()
        env = {**os.environ, "REDIS_URL": url}
        for name, command in SERVICE.items():
            manager.add_process(name, " ".join(leadrouter_argv(command)), env=env)
        manager.loop()
        return int(manager.returncode or 0)


def _demo(settings: Settings, replies: int, followups: int, keep: bool) -> int:
    from worker.cli.demo import run_demo

    token = settings.admin_token.get_secret_value() if settings.admin_token else None
    with redis_url_for(settings) as url:
        return run_demo(url, replies=replies, followups=followups, keep=keep, admin_token=token)


@click.command()
@click.option("--replies", default=200, show_default=True, help="Demo: webhooks to send.")
@click.option("--followups", default=60, show_default=True, help="Demo: due follow-ups.")
@click.option("--keep", is_flag=True, help="Demo: keep every process up after it, until Ctrl-C.")
def run(replies: int, followups: int, keep: bool) -> None:
    """Run the service (LEADTERRA_API_KEY set) or the full sandbox demo (no key)."""
    settings = settings_or_exit()
    if settings.demo_mode:
        sys.exit(_demo(settings, replies, followups, keep))
    if settings.intake == "webhooks":
        settings.require("leadterra_webhook_secret")
    sys.exit(run_service(settings))


@click.command()
@click.option("--replies", default=200, show_default=True, help="Webhooks to send.")
@click.option("--followups", default=60, show_default=True, help="Due follow-ups to route.")
@click.option("--keep", is_flag=True, help="Keep every process up after the summary, until Ctrl-C.")
def demo(replies: int, followups: int, keep: bool) -> None:
    """Run the whole pipeline against the sandbox, with a progress bar and a summary."""
    sys.exit(_demo(settings_or_exit(), replies, followups, keep))
