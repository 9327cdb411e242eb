"""Fixtures for the sandbox's tests.

`sandbox` is one real sandbox process for the session (free ports, `--allow-http-webhooks`),
reset before each test that uses it. `api` makes httpx clients on its /v1 port with a given key.
`world` is an in-process state for tests that call the state and actions directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from leadterra_sandbox.clock import Clock
from leadterra_sandbox.process import SandboxProcess
from leadterra_sandbox.seeding import seed_sdrs
from leadterra_sandbox.state import State
from leadterra_sandbox.world import World

WORKSPACE_KEY = "sk_test_workspace"
SDRS = 6
DISCONNECTED = 1


def sdr_key(sdr_id: str) -> str:
    return f"{WORKSPACE_KEY}_{sdr_id}"


@pytest.fixture(scope="session")
def sandbox_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    log = tmp_path_factory.mktemp("sandbox") / "sandbox.log"
    args = [
        "--sdrs",
        str(SDRS),
        "--disconnected",
        str(DISCONNECTED),
        "--seed",
        "7",
        "--allow-http-webhooks",
        "--log-level",
        "WARNING",
    ]
    with SandboxProcess.start(args, log_path=str(log)) as process:
        yield process


@pytest.fixture
def sandbox(sandbox_process: SandboxProcess) -> SandboxProcess:
    sandbox_process.control.reset()
    return sandbox_process


@pytest.fixture
def api(sandbox: SandboxProcess) -> Iterator[Callable[..., httpx.Client]]:
    clients: list[httpx.Client] = []

    def make(key: str | None = WORKSPACE_KEY, timeout: float = 5.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        client = httpx.Client(base_url=sandbox.api_url, headers=headers, timeout=timeout)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def world() -> World:
    state = State(Clock(), workspace_key=WORKSPACE_KEY, followup_delay=3600.0)
    seed_sdrs(state, {"count": SDRS, "disconnected": DISCONNECTED})
    return World(state)
