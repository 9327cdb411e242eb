"""The sandbox process: its command line, reset, and 500 concurrent connections."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from leadterra_sandbox.__main__ import parse_args
from leadterra_sandbox.process import SandboxProcess
from leadterra_sandbox.server import Sandbox


def test_the_command_line_sets_every_option() -> None:
    line = (
        "--host ::1 --port 9000 --sdrs 4 --disconnected 2 --workspace-key sk_test_other "
        "--latency-ms 5 --jitter-ms 2 --followup-delay 60 --allow-http-webhooks --log-level debug"
    )
    options, level = parse_args(line.split())
    assert (options.host, options.port, options.sdrs, options.disconnected) == ("::1", 9000, 4, 2)
    assert (options.workspace_key, options.latency_ms, options.jitter_ms) == ("sk_test_other", 5, 2)
    assert options.followup_delay == 60.0 and options.allow_http_webhooks and level == "DEBUG"


def test_the_control_port_defaults_to_the_api_port_plus_one() -> None:
    sandbox = Sandbox(parse_args(["--port", "9000"])[0])
    assert (sandbox.api_port, sandbox.control_port) == (9000, 9001)


def test_the_last_n_sdrs_start_disconnected_and_keys_follow_the_workspace_key() -> None:
    sandbox = Sandbox(
        parse_args(["--sdrs", "3", "--disconnected", "1", "--workspace-key", "sk_test_w"])[0]
    )
    state = sandbox.world.state
    assert [s.gmail_connected for s in state.sdrs.values()] == [True, True, False]
    assert state.sdrs["sdr_3"].health_state == "disconnected"
    assert state.key_owner("sk_test_w_sdr_2") == "sdr_2" and state.key_owner("sk_test_w") == (
        "workspace"
    )


@pytest.mark.integration
def test_reset_returns_to_the_start_up_world(sandbox: SandboxProcess) -> None:
    control = sandbox.control
    control.seed_replies(count=3, prefix="rpl_r_")
    control.seed_sdrs(count=2)
    control.set_fault(latency_ms=5)
    control.advance_clock(3600)
    control.reset()
    state = control.state()
    assert state["replies"] == [] and len(state["sdrs"]) == 6 and state["clockOffsetSeconds"] == 0
    assert control.faults()["rules"] == [] and control.calls() == []


@pytest.mark.integration
def test_the_sandbox_serves_500_concurrent_connections(sandbox: SandboxProcess) -> None:
    async def hammer() -> list[int]:
        connector = aiohttp.TCPConnector(limit=0, force_close=False)
        headers = {"Authorization": "Bearer sk_test_workspace"}
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

            async def one() -> int:
                async with session.get(f"{sandbox.api_url}/v1/sdrs") as response:
                    await response.read()
                    await asyncio.sleep(0.2)  # hold the connection so all 500 overlap
                    return response.status

            return await asyncio.gather(*(one() for _ in range(500)))

    statuses = asyncio.run(hammer())
    assert statuses == [200] * 500
    assert sandbox.control.summary()["calls"]["byEndpoint"]["GET /v1/sdrs"] == {"200": 500}
