"""`leadrouter rotation`: where the rotation stands (the console's Rotation panel), and how a new
roster would have done."""

from __future__ import annotations

from pathlib import Path

import click
import redis

from config.settings import settings_or_exit
from worker.cli.output import emit, fail, redis_or_fail
from worker.console.reader import Reader
from worker.console.rotation_panel import rotation_panel
from worker.keys import Keys
from worker.routing.roster import RosterError, load_roster
from worker.routing.simulate import read_decisions, simulate


def _connect() -> tuple[redis.Redis, Keys]:
    settings = settings_or_exit()
    return redis_or_fail(settings), Keys(settings.key_prefix)


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
@click.pass_context
def rotation(ctx: click.Context, as_json: bool) -> None:
    """Each SDR's pick count and credit (the highest credit plus weight is picked next), with
    assignments today and in 7 days (UTC) against the weighted fair share and eligibility now:
    the console's Rotation panel (GET /api/rotation)."""
    if ctx.invoked_subcommand is not None:
        return
    settings = settings_or_exit()
    panel = rotation_panel(Reader.of(settings, redis_or_fail(settings)))
    order = sorted(
        panel["sdrs"], key=lambda s: -s["credit"] if s["credit"] is not None else float("inf")
    )
    fields = ("today", "fair_today", "week", "fair_week", "eligible", "why_not")
    rows = [
        {
            "position": s["position"],
            "id": s["id"],
            "picks": s["picks"],
            "credit": s["credit"],
            **{f: s[f] for f in fields},
        }
        for s in order
    ]
    columns = ["position", "id", "picks", "credit", "today", "week", "eligible", "why_not"]
    emit(rows, columns, as_json=as_json, title="Rotation")


@rotation.command("simulate")
@click.option(
    "--roster",
    "roster_path",
    required=True,
    type=click.Path(path_type=Path),
    help="The roster file to try (TOML).",
)
@click.option("--limit", default=100_000, show_default=True, help="Decisions to replay.")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
def simulate_command(roster_path: Path, limit: int, as_json: bool) -> None:
    """Replay the recorded decisions' replies through another roster, without touching live
    state: per-SDR counts and shares, old against new, and the worst deviation."""
    try:
        roster = load_roster(roster_path)
    except RosterError as bad:
        fail(str(bad))
    client, keys = _connect()
    decisions = read_decisions(client, keys, limit)
    if not decisions:
        fail("no recorded decisions to replay yet")
    result = simulate(decisions, roster)
    worst, gap = result.worst_deviation()
    gap = round(gap, 1) + 0.0  # float noise is neither "-0.0" nor anybody's deviation
    worst = worst if gap else ""
    emit(
        result.rows(),
        ["sdr", "old", "old_share", "new", "new_share", "ideal"],
        as_json=as_json,
        title=f"{len(decisions)} decisions replayed through {roster_path.name} "
        f"(roster {roster.digest})",
    )
    if not as_json:
        click.echo(
            f"worst deviation from the weights: {worst or '-'} {gap:+.1f} picks; "
            f"{result.sticky} sticky, {result.held} would be held"
        )
