"""`leadrouter followups`: list, complete, skip, reschedule and schedule follow-ups by hand."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import click

from config.settings import settings_or_exit
from worker import errors
from worker.cli.output import emit, fail
from worker.leadterra.client import LeadterraClient
from worker.leadterra.models import iso_ms

T = TypeVar("T")


def parse_when(value: str) -> datetime:
    """An ISO 8601 date-time; a naive one is taken as UTC."""
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        fail(f"bad date {value!r}: use ISO 8601, like 2026-07-05T14:00:00Z")
        raise  # unreachable: fail() raises
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def scopes(sdr: str | None) -> list[tuple[str | None, LeadterraClient]]:
    """(SDR id, client acting as that SDR) for `--sdr`, every mapped SDR, or the main key."""
    settings = settings_or_exit()
    if settings.leadterra_api_key is None and not settings.leadterra_sdr_api_keys:
        fail("LEADTERRA_API_KEY is not set (and LEADTERRA_SDR_API_KEYS is empty)")
    keys = settings.leadterra_sdr_api_keys
    if sdr is not None:
        if sdr not in keys:
            fail(f"no key for SDR {sdr!r} in LEADTERRA_SDR_API_KEYS")
        return [(sdr, LeadterraClient.from_settings(settings, api_key=keys[sdr]))]
    if keys:
        return [(s, LeadterraClient.from_settings(settings, api_key=k)) for s, k in keys.items()]
    return [(None, LeadterraClient.from_settings(settings))]


def act(sdr: str | None, what: str, ident: str, call: Callable[[LeadterraClient], T]) -> T:
    """Run `call` as the SDR that owns `ident`: the first key that does not answer 404 (or,
    when searching every key, 401/403: one revoked SDR key must not block the others)."""
    clients = scopes(sdr)
    refused = []
    try:
        for owner, client in clients:
            try:
                return call(client)
            except errors.NotFound:
                continue
            except errors.AuthError:
                if sdr is not None:
                    fail(f"the key of SDR {sdr} was refused (401/403)")
                refused.append(owner or "(main key)")
                continue
            except errors.Conflict:
                fail(f"{what} {ident} is no longer pending")
            except errors.InvalidRequest as bad:
                fail(f"Leadterra refused it: {bad}")
            except errors.ServiceError as exc:
                fail(f"Leadterra call failed: {exc}")
    finally:
        for _, client in clients:
            client.close()
    also = f" (keys refused for: {', '.join(refused)})" if refused else ""
    fail(f"no {what} with id {ident!r}{also}")
    raise AssertionError  # unreachable


sdr_option = click.option("--sdr", help="Act as this SDR (a key in LEADTERRA_SDR_API_KEYS).")


@click.group()
def followups() -> None:
    """Follow-ups: list what is due, and act on one by hand."""


@followups.command("list")
@sdr_option
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@click.option("--upcoming", is_flag=True, help="Also list those not yet due.")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts.")
def list_(sdr: str | None, limit: int, upcoming: bool, as_json: bool) -> None:
    """List due follow-ups, per SDR key."""
    rows = []
    for owner, client in scopes(sdr):
        try:
            items = client.due_followups(limit=limit, include_upcoming=upcoming)
        except errors.ServiceError as exc:
            fail(f"Leadterra call failed for SDR {owner or '(main key)'}: {exc}")
        finally:
            client.close()
        rows += [
            {
                "id": f.id,
                "thread": f.thread_id,
                "sdr": f.sdr_id or owner,
                "status": f.status,
                "due_at": iso_ms(f.due_at),
            }
            for f in items
        ]
    emit(
        rows,
        ["id", "thread", "sdr", "status", "due_at"],
        as_json=as_json,
        title=f"{len(rows)} follow-up(s)",
    )


@followups.command()
@click.argument("followup_id")
@sdr_option
def complete(followup_id: str, sdr: str | None) -> None:
    """Mark a follow-up done."""
    act(sdr, "follow-up", followup_id, lambda c: c.complete_followup(followup_id))
    click.echo(f"completed {followup_id}")


@followups.command()
@click.argument("followup_id")
@click.option("--reason", required=True, help="Why it is skipped (kept by Leadterra).")
@sdr_option
def skip(followup_id: str, reason: str, sdr: str | None) -> None:
    """Skip a follow-up, with a reason."""
    act(sdr, "follow-up", followup_id, lambda c: c.skip_followup(followup_id, reason))
    click.echo(f"skipped {followup_id}")


@followups.command()
@click.argument("followup_id")
@click.option("--due-at", required=True, help="New due time, ISO 8601 (UTC if no zone).")
@sdr_option
def reschedule(followup_id: str, due_at: str, sdr: str | None) -> None:
    """Move a follow-up to a new due time."""
    when = parse_when(due_at)
    act(sdr, "follow-up", followup_id, lambda c: c.reschedule_followup(followup_id, when))
    click.echo(f"rescheduled {followup_id} to {iso_ms(when)}")


@followups.command()
@click.argument("thread_id")
@click.option("--due-at", default=None, help="Due time, ISO 8601; omit to let the rules decide.")
@sdr_option
def schedule(thread_id: str, due_at: str | None, sdr: str | None) -> None:
    """Schedule a follow-up on a thread."""
    when = parse_when(due_at) if due_at else None
    act(sdr, "thread", thread_id, lambda c: c.schedule_thread_followup(thread_id, when))
    click.echo(
        f"scheduled a follow-up on {thread_id}"
        + (f" at {iso_ms(when)}" if when else " (Leadterra's rules pick the time)")
    )
