"""Backfill: the one-off catch-up after an outage, or on first install.

Reads `GET /v1/replies` newest first down to `since` (no page limit), and enqueues every
positive reply received in `[since, until]` that nobody enqueued before, through the receiver's
own Lua call (worker/intake/found.py) with `source=backfill`. Running it twice enqueues nothing
the second time: the first run set every reply's `seen:{reply}` marker. It touches neither the
sweep's watermark nor its resume point. `read` counts the replies inside the window.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from worker.intake.found import Tally, enqueue_found
from worker.intake.pages import walk
from worker.leadterra.models import RepliesPage
from worker.logs import get_logger
from worker.runtime import Runtime

log = get_logger("leadrouter.backfill")


def backfill(
    rt: Runtime,
    since: datetime,
    until: datetime | None = None,
    *,
    campaign_id: str | None = None,
    dry_run: bool = False,
    progress: Callable[[Tally, int], None] | None = None,
) -> Tally:
    """Enqueue the positive replies of the window not seen before; `progress(tally, pages)`
    after each page. Errors propagate; what was enqueued before one stays enqueued."""
    tally = Tally()
    pages = 0

    def on_page(page: RepliesPage) -> None:
        nonlocal pages
        pages += 1
        inside = [
            r
            for r in page.replies
            if r.received_at is not None
            and r.received_at >= since
            and (until is None or r.received_at <= until)
        ]
        tally.add(enqueue_found(rt, inside, "backfill", dry_run=dry_run))
        if progress is not None:
            progress(tally, pages)

    done = walk(rt.leadterra, on_page, floor=since, campaign_id=campaign_id)
    log.info(
        "backfill.finished",
        since=since.isoformat(),
        until=until.isoformat() if until else None,
        campaign_id=campaign_id,
        dry_run=dry_run,
        pages=done.pages,
        **tally.as_dict(),
    )
    return tally
