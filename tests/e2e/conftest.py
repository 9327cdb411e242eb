"""End-to-end fixtures: `service_factory` starts deployments and stops them after the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.listener import Listener, listening
from tests.support.service import Service, start_service


@pytest.fixture
def service_factory(tmp_path: Path) -> Iterator[Callable[..., Service]]:
    made: list[Service] = []

    def make(**options: object) -> Service:
        service = start_service(tmp_path / f"service{len(made)}", **options)  # type: ignore[arg-type]
        made.append(service)
        return service

    yield make
    for service in made:
        service.close()
        for child in service.children:  # pytest shows this only when the test failed
            print(f"--- {child.name} (exit {child.returncode}) ---")
            print(child.tail(4000))


@pytest.fixture
def listener() -> Iterator[Listener]:
    """A local HTTP listener recording every POST: the follow-up webhook."""
    with listening() as found:
        yield found
