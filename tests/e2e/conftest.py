"""One embedded local stack (moto server + local Lambda runtime + HTTP API) per test session."""

from __future__ import annotations

import sys
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


@pytest.fixture
def frequent_thread_switches() -> Iterator[None]:
    """Threads switch far more often than every 5 ms, as on a loaded machine: a race between
    requests or invocations (the stack's runtime runs in this process) shows at once instead
    of once in a thousand runs."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)
