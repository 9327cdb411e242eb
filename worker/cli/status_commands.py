"""`leadrouter check`, `sdrs` and `rotation`: is it healthy, and what does the rotation see."""

from __future__ import annotations

import click

from config.settings import ConfigError, Settings, settings_or_exit
from worker import errors
from worker.cli.output import emit, fail, redis_or_fail
from worker.console.reader import Reader
from worker.console.rotation_panel import rotation_panel
from worker.keys import QUEUES, Keys
from worker.leadterra.client import LeadterraClient
from worker.redis_conn import sync_client
from worker.runtime import Runtime


def _runtime(settings: Settings) -> Runtime:
    try:
        return Runtime(settings, client=redis_or_fail(settings))
    except ConfigError as bad:
        fail(str(bad))
        raise


@click.command()
@click.option(
    "--max-queue",
    type=int,
    default=1000,
    show_default=True,
    help="Fail when more assign tasks than this wait in the queue.",
)
def check(max_queue: int) -> None:
    """Verify configuration, Redis, the Leadterra key and the queue depth; stop at the first
    failure with a non-zero exit."""
    settings = settings_or_exit()
    try:
        settings.require("leadterra_api_key")
        Runtime(settings, client=sync_client(settings))
    except ConfigError as bad:
        fail(f"config: {bad}")
    click.echo("config: ok")
    client = redis_or_fail(settings, socket_timeout=5)
    click.echo("redis: ok")
    leadterra = LeadterraClient.from_settings(settings)
    try:
        sdrs = leadterra.list_sdrs()
    except errors.AuthError:
        fail("leadterra: the API key was refused (401/403): check LEADTERRA_API_KEY")
    except errors.ServiceError as exc:
        fail(f"leadterra: {exc}")
    finally:
        leadterra.close()
    connected = sum(1 for s in sdrs if s.gmail_connected)
    click.echo(f"leadterra: ok ({len(sdrs)} SDRs, {connected} with Gmail connected)")
    keys = Keys(settings.key_prefix)
    depths = {q: int(client.llen(keys.queue(q))) for q in QUEUES}
    dead = int(client.hlen(keys.dlq))
    if depths["assign"] > max_queue:
        fail(f"queue: {depths['assign']} assign tasks waiting (more than {max_queue})")
    click.echo(
        f"queue: ok ({', '.join(f'{q} {n}' for q, n in depths.items())}; {dead} dead letter(s))"
    )


@click.command()
def health() -> None:
    """Exit 0 when Redis answers and a worker consumed beat's canary recently (for container
    health checks of worker and beat); otherwise print why and exit 1."""
    from worker.health import readiness_sync

    settings = settings_or_exit()
    client = sync_client(settings, socket_connect_timeout=3, socket_timeout=5)
    ready, reason = readiness_sync(client, Keys(settings.key_prefix), settings)
    if not ready:
        fail(reason)
    click.echo(reason)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
def sdrs(as_json: bool) -> None:
    """The SDR roster and each SDR's eligibility, as the rotation sees it now: the SDR list is
    read from Leadterra and cached first, then shown as the console's Rotation panel shows it
    (GET /api/rotation)."""
    settings = settings_or_exit()
    rt = _runtime(settings)
    try:
        roster = rt.leadterra.list_sdrs()
    except errors.ServiceError as exc:
        fail(f"leadterra: {exc}")
    rt.rotation.store_roster(roster)
    panel = {row["id"]: row for row in rotation_panel(Reader.of(settings, rt.redis))["sdrs"]}
    rows = []
    for sdr in sorted(roster, key=lambda s: s.id):
        row = panel[sdr.id]
        rows.append(
            {
                "id": sdr.id,
                "name": sdr.name,
                "gmail": sdr.gmail_connected,
                "eligible": row["eligible"],
                "why_not": row["why_not"],
                "weight": row["weight"],
                "picks": row["picks"],
                "today": row["today"],
                "week": row["week"],
                "cap": row["cap"],
                "cap_used": row["cap_used"],
            }
        )
    emit(
        rows,
        ["id", "name", "gmail", "eligible", "why_not", "weight", "picks", "today", "cap_used"],
        as_json=as_json,
        title="SDRs",
    )
