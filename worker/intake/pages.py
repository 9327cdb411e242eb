"""Walk `GET /v1/replies` page by page, newest first, down to a floor.

The list is sorted by `receivedAt`, newest first, and paged by `page`/`perPage` (the names the
docs suggest, undocumented). A walk stops at the first page whose oldest dated reply is below
the floor, at the end of the list (an empty or short page, or `pagination` saying so), or after
`max_pages` (then it is not `complete`, and `next_page` is where to go on). A server that
ignores the paging parameters answers the same page again: the repeat is detected, logged once
and taken as the end of the list, rather than read `max_pages` times.

New replies arrive at the top while a walk goes on, which only pushes older replies to later
pages: going on at a page number read before re-reads a few replies and never skips one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from worker.leadterra.client import LeadterraClient
from worker.leadterra.models import RepliesPage
from worker.logs import get_logger

log = get_logger("leadrouter.intake")
#: Leadterra's default page size, so a server that ignores `perPage` still pages alike
PAGE_SIZE = 50


@dataclass
class Walk:
    """What a walk read: pages, replies, the newest and oldest `receivedAt` it saw."""

    next_page: int = 1
    pages: int = 0
    read: int = 0
    newest: datetime | None = None
    oldest: datetime | None = None
    complete: bool = False
    repeated: bool = False

    def saw(self, page: RepliesPage) -> None:
        self.pages += 1
        self.next_page += 1
        self.read += len(page.replies)
        dated = [r.received_at for r in page.replies if r.received_at is not None]
        if dated:
            self.newest = max([*dated, *([self.newest] if self.newest else [])])
            self.oldest = min([*dated, *([self.oldest] if self.oldest else [])])


def _last(page: RepliesPage, floor: datetime | None, per_page: int) -> bool:
    """Whether no page after this one is needed: the list ended, or the floor was passed."""
    if not page.replies:
        return True
    more = page.more if page.more is not None else len(page.replies) >= per_page
    dated = [r.received_at for r in page.replies if r.received_at is not None]
    return not more or (floor is not None and bool(dated) and min(dated) < floor)


def walk(
    client: LeadterraClient,
    on_page: Callable[[RepliesPage], None],
    *,
    floor: datetime | None,
    start_page: int = 1,
    max_pages: int | None = None,
    campaign_id: str | None = None,
    per_page: int = PAGE_SIZE,
) -> Walk:
    """Read pages from `start_page`, handing each to `on_page`, until the stopping rule (see
    the module docstring). Errors from the client propagate: the walk is then not complete."""
    result = Walk(next_page=start_page)
    previous: list[str] | None = None
    while max_pages is None or result.pages < max_pages:
        page = client.list_replies(result.next_page, per_page, campaign_id)
        ids = [r.id for r in page.replies]
        if ids and ids == previous:
            log.warning(
                "replies.paging_ignored",
                page=result.next_page,
                hint="the server answered the same page again: taken as the end of the list",
            )
            result.complete = result.repeated = True
            return result
        previous = ids
        if page.unreadable:
            log.warning("replies.unreadable", page=result.next_page, count=page.unreadable)
        result.saw(page)
        on_page(page)
        if _last(page, floor, per_page):
            result.complete = True
            return result
    return result
