"""One embedded local stack (moto server + local Lambda runtime + HTTP API) per test session."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from cadenza import Client
from cadenza.local import LocalStack


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack]:
    with LocalStack(api_port=0) as stack:
        yield stack


@pytest.fixture
async def client(local_stack: LocalStack) -> AsyncIterator[Client]:
    async with Client(domain="default", target=local_stack.api_url) as client:
        yield client


@pytest.fixture
def task_list() -> str:
    """A task list of its own for each test, so workers of other tests never take its tasks."""
    return f"tl-{uuid.uuid4().hex[:8]}"
