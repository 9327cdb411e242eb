"""`GET /v1/replies` in every shape Leadterra's pages describe, and webhooks dropped on purpose:
what the reconcile sweep is tried against."""

from __future__ import annotations

import re
from typing import Any

import pytest

from leadterra_sandbox.client import ControlError
from leadterra_sandbox.listing import Listing
from leadterra_sandbox.process import SandboxProcess
from leadterra_sandbox.seeding import seed_replies
from leadterra_sandbox.world import World
from tests.sandbox.test_sandbox_app import WS, TestClient, serve
from tests.sandbox.test_sandbox_webhooks import SECRET, Receiver, receiver  # noqa: F401

BASE = 1_780_000_000  # 2026-05-28T20:26:40Z


def seed(world: World, count: int, campaigns: tuple[str, ...] = ("camp_a",)) -> list[str]:
    """`count` replies one second apart, `rpl_000001` the oldest; their ids newest first."""
    replies = [
        {
            "id": f"rpl_{n:06d}",
            "receivedAt": BASE + n,
            "campaignId": campaigns[n % len(campaigns)],
        }
        for n in range(1, count + 1)
    ]
    seed_replies(world.state, {"replies": replies})
    return [str(r["id"]) for r in reversed(replies)]


def get(world: World, *queries: str) -> list[Any]:
    async def scenario(client: TestClient) -> list[Any]:
        found = []
        for query in queries:
            response = await client.get(f"/v1/replies{query}", headers=WS)
            found.append(await response.json())
        return found

    return list(serve(world, scenario))


def ids(body: Any) -> list[str]:
    items = body if isinstance(body, list) else body.get("data", body.get("replies"))
    return [r["id"] for r in items]


def test_pages_read_newest_first_by_page_and_per_page(world: World) -> None:
    newest = seed(world, 120)
    first, second, last, past, default = get(
        world, "?page=1&perPage=50", "?page=2&perPage=50", "?page=3&perPage=50", "?page=4", ""
    )
    assert ids(first) == newest[:50] and ids(second) == newest[50:100]
    assert ids(last) == newest[100:]  # a short page: the end of the list
    assert ids(past) == [] and ids(default) == newest[:50]


def test_per_page_is_clamped_to_the_maximum_and_bad_numbers_are_400(world: World) -> None:
    seed(world, 150)
    [big] = get(world, "?perPage=1000")
    assert len(ids(big)) == 100

    async def scenario(client: TestClient) -> list[int]:
        answers = [await client.get(f"/v1/replies?{q}", headers=WS) for q in ("page=x", "perPage=")]
        return [a.status for a in answers]

    assert serve(world, scenario) == [400, 200]


@pytest.mark.parametrize("envelope", ["bare", "data", "replies"])
def test_each_envelope_carries_the_same_page(world: World, envelope: str) -> None:
    newest = seed(world, 30, campaigns=("camp_a", "camp_b"))
    world.state.listing.update({"envelope": envelope})
    [body] = get(world, "?page=2&perPage=5&campaignId=camp_a")
    camp_a = [r for r in newest if int(r[4:]) % 2 == 0]
    assert ids(body) == camp_a[5:10]
    if envelope == "bare":
        assert isinstance(body, list)
    elif envelope == "data":
        assert set(body) == {"data"}
    else:
        assert body["pagination"] == {"total": 15, "page": 2, "perPage": 5}


def test_a_server_that_ignores_paging_answers_the_first_page_every_time(world: World) -> None:
    newest = seed(world, 80)
    world.state.listing.update({"paging": False, "envelope": "replies"})
    one, two = get(world, "?page=1&perPage=10", "?page=2&perPage=10")
    assert ids(one) == ids(two) == newest[:50]
    assert two["pagination"] == {"total": 80, "page": 1, "perPage": 50}


def test_timestamps_come_with_or_without_milliseconds(world: World) -> None:
    seed(world, 4)
    [seconds] = get(world, "?perPage=2")
    world.state.listing.update({"timestamps": "millis"})
    [millis] = get(world, "?perPage=2")
    world.state.listing.update({"timestamps": "mixed"})
    [mixed] = get(world, "?perPage=4")
    assert [r["receivedAt"] for r in seconds["data"]] == [
        "2026-05-28T20:26:44Z",
        "2026-05-28T20:26:43Z",
    ]
    assert [r["receivedAt"] for r in millis["data"]] == [
        "2026-05-28T20:26:44.000Z",
        "2026-05-28T20:26:43.000Z",
    ]
    assert [r["receivedAt"].endswith(".000Z") for r in mixed["data"]] == [False, True] * 2


@pytest.mark.parametrize(
    "change",
    [
        {"envelope": "items"},
        {"paging": "no"},
        {"timestamps": "micros"},
        {"maxPerPage": 0},
        {"defaultPerPage": -1},
        {"defaultPerPage": True},
    ],
)
def test_a_bad_listing_setting_is_refused_and_changes_nothing(change: dict[str, Any]) -> None:
    listing = Listing()
    before = listing.settings()
    with pytest.raises(Exception, match="must"):
        listing.update({"envelope": "bare", **change})
    assert listing.settings() == before


# -- through the control API of a real sandbox -------------------------------------------------


def test_the_listing_is_switched_through_the_control_api_and_reset(
    sandbox: SandboxProcess, api: Any
) -> None:
    control = sandbox.control
    control.seed_replies(count=3, prefix="rpl_ctl_")
    assert control.replies_listing() == {
        "envelope": "data",
        "paging": True,
        "timestamps": "seconds",
        "defaultPerPage": 50,
        "maxPerPage": 100,
    }
    changed = control.replies_listing(envelope="replies", timestamps="millis", max_per_page=2)
    assert (changed["envelope"], changed["maxPerPage"], changed["paging"]) == ("replies", 2, True)
    with pytest.raises(ControlError) as refused:
        control.replies_listing(envelope="xml")
    assert refused.value.status == 400
    body = api().get("/v1/replies").json()
    assert len(body["replies"]) == 2 and body["pagination"]["total"] == 3
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", body["replies"][0]["receivedAt"])
    control.reset()
    assert control.replies_listing()["envelope"] == "data"


def test_every_webhook_dropped_leaves_the_replies_listed_and_nothing_sent(
    sandbox: SandboxProcess,
    receiver: Receiver,  # noqa: F811
    api: Any,
) -> None:
    control = sandbox.control
    assert control.drop_webhooks(1.0) == {"share": 1.0, "dropped": 0}
    job = control.send_webhooks(receiver.url, SECRET, 20, reply_id_prefix="rpl_gone_")
    report = control.wait_webhook_job(job["id"], timeout=10)
    assert report["status"] == "done" and report["outcomes"] == {"dropped": 20}
    assert receiver.deliveries == []
    dropped = control.dropped_webhooks()
    assert len(dropped) == 20 and all(r.startswith("rpl_gone_") for r in dropped)
    listed = api().get("/v1/replies", params={"perPage": 100}).json()["data"]
    assert {r["id"] for r in listed} == set(dropped)
    control.reset()
    assert control.dropped_webhooks() == []
    assert control.drop_webhooks(0)["share"] == 0.0


def test_a_share_of_webhooks_is_dropped_exactly_and_the_rest_delivered(
    sandbox: SandboxProcess,
    receiver: Receiver,  # noqa: F811
) -> None:
    control = sandbox.control
    job = control.send_webhooks(
        receiver.url, SECRET, 40, duplicate_share=1.0, drop_share=0.5, reply_id_prefix="rpl_h_"
    )
    report = control.wait_webhook_job(job["id"], timeout=10)
    assert report["spec"]["dropShare"] == 0.5
    assert report["outcomes"] == {"dropped": 20, "delivered": 40}  # the rest, each sent twice
    dropped = set(control.dropped_webhooks())
    delivered = {d.reply_id for d in receiver.deliveries}
    assert len(dropped) == len(delivered) == 20 and not dropped & delivered
    assert all(len(receiver.of(r)) == 2 for r in delivered)


def test_a_drop_share_out_of_range_is_400(sandbox: SandboxProcess) -> None:
    for share in (-0.1, 1.5, "all", True):
        with pytest.raises(ControlError) as refused:
            sandbox.control.drop_webhooks(share)  # type: ignore[arg-type]
        assert refused.value.status == 400
    with pytest.raises(ControlError):
        sandbox.control.send_webhooks("http://127.0.0.1:9/x", SECRET, 1, drop_share=2.0)
