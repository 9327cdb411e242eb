"""The /v1 app in-process (aiohttp's test server): shapes, auth, paging and faults."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from email.utils import parsedate_to_datetime
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient as BaseTestClient
from aiohttp.test_utils import TestServer

from leadterra_sandbox.app import build_api_app
from leadterra_sandbox.faults import FaultRule, Scripted
from leadterra_sandbox.seeding import seed_followups, seed_replies, seed_threads
from leadterra_sandbox.world import World

TestClient = BaseTestClient[web.Request, web.Application]
WORKSPACE_KEY = "sk_test_workspace"
WS = {"Authorization": f"Bearer {WORKSPACE_KEY}"}
SDR1 = {"Authorization": f"Bearer {WORKSPACE_KEY}_sdr_1"}


def serve(world: World, scenario: Callable[[TestClient], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        async with TestClient(TestServer(build_api_app(world))) as client:
            return await scenario(client)

    return asyncio.run(main())


def test_every_v1_route_needs_a_known_bearer_key(world: World) -> None:
    async def scenario(client: TestClient) -> list[tuple[int, str]]:
        found = []
        for headers in ({}, {"Authorization": "Bearer sk_test_nope"}, {"Authorization": "Basic x"}):
            response = await client.get("/v1/sdrs", headers=headers)
            found.append((response.status, (await response.json())["error"]["code"]))
        return found

    assert serve(world, scenario) == [(401, "authentication_failed")] * 3


def test_sdr_routes_refuse_a_workspace_key_with_403(world: World) -> None:
    async def scenario(client: TestClient) -> tuple[int, Any, int]:
        denied = await client.get("/v1/sdr/gmail/status", headers=WS)
        allowed = await client.get("/v1/sdr/gmail/status", headers=SDR1)
        return denied.status, await denied.json(), allowed.status

    status, body, allowed = serve(world, scenario)
    assert (status, body["error"]["code"], allowed) == (403, "sdr_key_required", 200)


def test_an_sdr_key_may_call_workspace_endpoints(world: World) -> None:
    async def scenario(client: TestClient) -> Any:
        return await (await client.get("/v1/sdrs", headers=SDR1)).json()

    body = serve(world, scenario)
    assert [s["id"] for s in body["data"]] == [f"sdr_{n}" for n in range(1, 7)]
    assert body["data"][5]["gmailConnected"] is False


def test_unknown_routes_and_methods_answer_404_json(world: World) -> None:
    async def scenario(client: TestClient) -> list[tuple[int, str]]:
        found = []
        for method, path in (("GET", "/v1/nothing"), ("DELETE", "/v1/sdrs"), ("GET", "/")):
            response = await client.request(method, path, headers=WS)
            found.append((response.status, (await response.json())["error"]["code"]))
        return found

    assert serve(world, scenario) == [(404, "not_found")] * 3


def test_replies_list_newest_first_and_filter_by_campaign(world: World) -> None:
    seed_replies(
        world.state,
        {
            "replies": [
                {"id": "rpl_old", "receivedAt": "2025-06-11T09:14:32Z", "campaignId": "camp_a"},
                {"id": "rpl_new", "receivedAt": "2025-06-12T09:14:32Z", "campaignId": "camp_b"},
            ]
        },
    )

    async def scenario(client: TestClient) -> tuple[Any, Any, int]:
        every = await (await client.get("/v1/replies", headers=WS)).json()
        one = await (await client.get("/v1/replies?campaignId=camp_a", headers=WS)).json()
        missing = await client.get("/v1/replies?campaignId=camp_zzz", headers=WS)
        return every, one, missing.status

    every, one, missing = serve(world, scenario)
    assert [r["id"] for r in every["data"]] == ["rpl_new", "rpl_old"]
    assert every["data"][1]["receivedAt"] == "2025-06-11T09:14:32Z"
    assert [r["id"] for r in one["data"]] == ["rpl_old"] and missing == 404


def test_due_followups_default_to_50_and_cap_at_200(world: World) -> None:
    seed_followups(
        world.state, {"perSdr": 250, "sdrIds": ["sdr_1"], "dueToSeconds": -1}, random.Random(1)
    )

    async def scenario(client: TestClient) -> list[int]:
        sizes = []
        for query in ("", "?limit=500", "?limit=0", "?limit=7"):
            body = await (await client.get(f"/v1/sdr/followups/due{query}", headers=SDR1)).json()
            sizes.append(len(body["data"]))
        return sizes

    assert serve(world, scenario) == [50, 200, 1, 7]


def test_due_followups_include_upcoming_only_when_asked(world: World) -> None:
    now = world.clock.now()
    seed_followups(
        world.state,
        {
            "followups": [
                {"id": "fu_due", "sdrId": "sdr_1", "dueAt": now - 60},
                {"id": "fu_later", "sdrId": "sdr_1", "dueAt": now + 3600},
            ]
        },
        random.Random(1),
    )

    async def scenario(client: TestClient) -> tuple[Any, Any]:
        plain = await (await client.get("/v1/sdr/followups/due", headers=SDR1)).json()
        upcoming = await client.get("/v1/sdr/followups/due?includeUpcoming=true", headers=SDR1)
        return plain, await upcoming.json()

    plain, upcoming = serve(world, scenario)
    assert [f["id"] for f in plain["data"]] == ["fu_due"]
    assert [f["id"] for f in upcoming["data"]] == ["fu_due", "fu_later"]
    assert set(plain["data"][0]) == {"id", "threadId", "sdrId", "status", "dueAt"}
    assert plain["data"][0]["dueAt"].endswith("Z") and len(plain["data"][0]["dueAt"]) == 24


def test_inbox_pages_with_limit_offset_total_and_has_more(world: World) -> None:
    seed_threads(
        world.state,
        {
            "threads": [
                {
                    "id": f"t{n:03d}",
                    "sdrId": "sdr_1",
                    "priorityScore": n,
                    "status": "new" if n % 2 else "replied",
                }
                for n in range(120)
            ]
        },
    )

    async def scenario(client: TestClient) -> list[Any]:
        pages = []
        for query in (
            "",
            "?limit=500&offset=100",
            "?status=new&status=replied&limit=10",
            "?status=new&limit=100",
        ):
            pages.append(await (await client.get(f"/v1/sdr/inbox{query}", headers=SDR1)).json())
        bad = await client.get("/v1/sdr/inbox?status=bogus", headers=SDR1)
        pages.append(bad.status)
        return pages

    default, tail, both, only_new, bad = serve(world, scenario)
    assert len(default["data"]["threads"]) == 50 and default["data"]["hasMore"] is True
    assert default["data"]["threads"][0]["id"] == "t119"
    assert len(tail["data"]["threads"]) == 20 and tail["data"]["hasMore"] is False
    assert both["data"]["total"] == 120
    assert only_new["data"]["total"] == 60 and only_new["data"]["hasMore"] is False
    assert bad == 400


def test_latency_fault_delays_the_answer(world: World) -> None:
    world.faults.set_rule(FaultRule(endpoint="GET /v1/sdrs", latency_ms=150))

    async def scenario(client: TestClient) -> tuple[float, float]:
        started = time.perf_counter()
        await client.get("/v1/sdrs", headers=WS)
        slow = time.perf_counter() - started
        started = time.perf_counter()
        await client.get("/v1/replies", headers=WS)
        return slow, time.perf_counter() - started

    slow, fast = serve(world, scenario)
    assert slow >= 0.15 and fast < slow - 0.1


def test_the_next_n_calls_get_the_scripted_status_then_normal_answers(world: World) -> None:
    world.faults.add_scripted(Scripted(remaining=2, endpoint="GET /v1/sdrs", status=503))

    async def scenario(client: TestClient) -> list[int]:
        return [(await client.get("/v1/sdrs", headers=WS)).status for _ in range(3)]

    assert serve(world, scenario) == [503, 503, 200]
    assert [c.fault for c in world.calls.since(0)] == ["scripted", "scripted", None]


def test_rate_limit_answers_carry_retry_after_in_seconds_or_as_a_date(world: World) -> None:
    world.faults.add_scripted(Scripted(remaining=1, status=429, retry_after=7))
    world.faults.add_scripted(
        Scripted(remaining=1, status=429, retry_after=30, retry_after_date=True)
    )

    async def scenario(client: TestClient) -> list[tuple[int, str]]:
        found = []
        for _ in range(2):
            response = await client.get("/v1/sdrs", headers=WS)
            found.append((response.status, response.headers["Retry-After"]))
        return found

    (first, seconds), (second, date) = serve(world, scenario)
    assert (first, seconds, second) == (429, "7", 429)
    assert 25 <= parsedate_to_datetime(date).timestamp() - time.time() <= 32


def test_after_phase_faults_apply_the_change_but_lose_the_answer(world: World) -> None:
    seed_replies(world.state, {"replies": [{"id": "rpl_1"}]})
    world.faults.add_scripted(
        Scripted(remaining=1, endpoint="POST /v1/replies/{id}/assign", status=502, phase="after")
    )

    async def scenario(client: TestClient) -> list[int]:
        body = {"sdrId": "sdr_1", "skipIcpCheck": True}
        first = await client.post("/v1/replies/rpl_1/assign", json=body, headers=WS)
        second = await client.post("/v1/replies/rpl_1/assign", json=body, headers=WS)
        return [first.status, second.status]

    assert serve(world, scenario) == [502, 409]
    assert world.state.handoffs_by_reply == {"rpl_1": 1}


def test_random_error_share_is_roughly_the_configured_rate(world: World) -> None:
    world.faults.rng.seed(11)
    world.faults.set_rule(FaultRule(error_rate=0.3, error_status=500))

    async def scenario(client: TestClient) -> list[int]:
        return [(await client.get("/v1/sdrs", headers=WS)).status for _ in range(300)]

    statuses = serve(world, scenario)
    assert 60 <= statuses.count(500) <= 120 and statuses.count(500) + statuses.count(200) == 300


def test_the_call_log_records_template_key_label_status_and_body_but_no_key(world: World) -> None:
    seed_replies(world.state, {"replies": [{"id": "rpl_1"}]})

    async def scenario(client: TestClient) -> None:
        await client.post(
            "/v1/replies/rpl_1/assign", json={"sdrId": "sdr_1", "skipIcpCheck": True}, headers=SDR1
        )

    serve(world, scenario)
    [call] = [c.as_json() for c in world.calls.since(0)]
    assert call["endpoint"] == "POST /v1/replies/{id}/assign" and call["key"] == "sdr_1"
    assert call["status"] == 200 and call["body"]["sdrId"] == "sdr_1"
    assert WORKSPACE_KEY not in repr(call)


def test_followup_action_routes_answer_the_followup_and_their_errors(world: World) -> None:
    now = world.clock.now()
    seed_followups(
        world.state,
        {
            "followups": [
                {"id": f"fu_{n}", "threadId": "thr_1", "sdrId": "sdr_1", "dueAt": now - 60}
                for n in range(1, 4)
            ]
        },
        random.Random(1),
    )

    async def scenario(client: TestClient) -> list[tuple[int, Any]]:
        calls = [
            ("/v1/sdr/followups/fu_1/complete", None),
            ("/v1/sdr/followups/fu_1/complete", None),
            ("/v1/sdr/followups/fu_2/skip", {"reason": "lead replied"}),
            ("/v1/sdr/followups/fu_3/reschedule", {"dueAt": "soon"}),
            ("/v1/sdr/followups/fu_3/reschedule", {"dueAt": "2031-01-01T00:00:00.000Z"}),
            ("/v1/sdr/followups/fu_nope/complete", None),
            ("/v1/sdr/threads/thr_1/followup/schedule", {"dueAt": "2031-02-01T00:00:00Z"}),
            ("/v1/sdr/threads/thr_nope/followup/schedule", {}),
        ]
        found = []
        for path, body in calls:
            response = await client.post(path, json=body, headers=SDR1)
            found.append((response.status, await response.json()))
        return found

    answers = serve(world, scenario)
    assert [status for status, _ in answers] == [200, 409, 200, 400, 200, 404, 200, 404]
    assert answers[0][1]["data"]["status"] == "completed"
    assert answers[1][1]["error"]["code"] == "followup_not_pending"
    assert answers[2][1]["data"]["status"] == "skipped"
    assert answers[4][1]["data"] == {
        "id": "fu_3",
        "threadId": "thr_1",
        "sdrId": "sdr_1",
        "status": "pending",
        "dueAt": "2031-01-01T00:00:00.000Z",
    }
    assert answers[6][1]["data"]["dueAt"] == "2031-02-01T00:00:00.000Z"
    assert world.state.followups["fu_2"].reason == "lead replied"


def test_a_body_that_is_not_json_is_400_invalid_request(world: World) -> None:
    seed_replies(world.state, {"replies": [{"id": "rpl_1"}]})

    async def scenario(client: TestClient) -> tuple[int, Any]:
        response = await client.post("/v1/replies/rpl_1/assign", data=b"{nope", headers=WS)
        return response.status, await response.json()

    assert serve(world, scenario) == (
        400,
        {"error": {"code": "invalid_request", "message": "the body is not valid JSON"}},
    )


def test_a_revoked_key_is_refused_like_an_unknown_one(world: World) -> None:
    world.state.revoke_key(f"{WORKSPACE_KEY}_sdr_1")

    async def scenario(client: TestClient) -> int:
        return (await client.get("/v1/sdr/inbox", headers=SDR1)).status

    assert serve(world, scenario) == 401
