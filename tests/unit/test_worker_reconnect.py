"""A worker's outage handling without a stack: one reconnection at a time, one warning per
outage, capped jittered backoff, a prompt stop. (tests/e2e/test_worker_restart.py restarts a
real ``cadenza dev`` under a worker.)"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from cadenza import Client, Registry, Worker
from cadenza import worker as worker_module
from cadenza.worker import _one_line, _Reconnect


class FakeQueues:
    """Stands for SqsTaskLists: records the queues a reconnection creates."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.created: list[Any] = []

    def queue_url(self, domain: str, task_list: str, kind: Any) -> str:
        self.created.append((domain, task_list, kind))
        return f"{self.name}/{task_list}/{kind}"


@pytest.fixture
def ceilings(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every pause is 0 (no wall clock in the test); the ceilings it was drawn under."""
    drawn: list[float] = []

    def uniform(low: float, high: float) -> float:
        drawn.append(high)
        return 0.0

    monkeypatch.setattr(worker_module.random, "uniform", uniform)
    return drawn


def make_worker(outcomes: list[BaseException | FakeQueues]) -> tuple[Worker, list[bool]]:
    """A worker whose stack answers each discovery with the next of ``outcomes``."""
    worker = Worker(Client(target="http://127.0.0.1:1"), "orders", Registry())
    worker._reconnect = _Reconnect()
    calls: list[bool] = []

    async def discover(*, refresh: bool) -> Any:
        calls.append(refresh)
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    worker._discover = discover  # type: ignore[method-assign]
    return worker, calls


def outage_lines(caplog: pytest.LogCaptureFixture) -> tuple[list[str], list[str]]:
    records = [r for r in caplog.records if r.name == "cadenza.worker"]
    assert all(r.exc_info is None for r in records)  # never a traceback
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    back = [r.getMessage() for r in records if "reconnected" in r.getMessage()]
    return warnings, back


async def test_pollers_failing_together_reconnect_once_and_log_one_line(
    caplog: pytest.LogCaptureFixture, ceilings: list[float],
) -> None:
    caplog.set_level(logging.DEBUG, logger="cadenza.worker")
    fresh = FakeQueues("new")
    down = ConnectionError("Could not connect to the endpoint URL\nsecond line")
    worker, calls = make_worker([down, down, down, fresh])
    old = FakeQueues("old")
    worker._queues = old  # type: ignore[assignment]

    got = await asyncio.gather(worker._recover(old, down), worker._recover(old, down))  # type: ignore[arg-type]
    assert got == [fresh, fresh]  # the second poller took what the first one found
    assert calls == [True] * 4  # asked the API again (refresh) each attempt, one poller only
    assert len(fresh.created) == 2  # both queues of the task list, created on the new stack
    warnings, back = outage_lines(caplog)
    assert len(warnings) == 1 and "orders" in warnings[0] and "\n" not in warnings[0]
    assert "ConnectionError: Could not connect" in warnings[0]
    assert back == []  # not over until a poll works
    worker._reconnect.polled("orders")
    worker._reconnect.polled("orders")
    warnings, back = outage_lines(caplog)
    assert len(warnings) == 1 and len(back) == 1


async def test_backoff_doubles_to_its_cap_and_starts_over_after_an_outage(
    caplog: pytest.LogCaptureFixture, ceilings: list[float],
) -> None:
    down = ConnectionError("down")
    worker, _ = make_worker([down] * 7 + [FakeQueues("a"), FakeQueues("b")])
    old = FakeQueues("old")
    worker._queues = old  # type: ignore[assignment]
    first = await worker._recover(old, down)  # type: ignore[arg-type]
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    # The stack answers the API but a poll fails again: same outage, the backoff keeps growing.
    await worker._recover(first, down)
    assert ceilings[-1] == 10.0
    warnings, _ = outage_lines(caplog)
    assert len(warnings) == 1
    worker._reconnect.polled("orders")
    assert worker._reconnect.next_pause() == 0.0 and ceilings[-1] == 0.5  # starts over


async def test_a_stopped_worker_stops_reconnecting(ceilings: list[float]) -> None:
    down = ConnectionError("down")
    worker, calls = make_worker([down] * 1000)
    old = FakeQueues("old")
    worker._queues = old  # type: ignore[assignment]
    worker._stopping.set()
    assert await worker._recover(old, down) is old  # type: ignore[arg-type]
    assert calls == []


def test_one_line_names_the_error() -> None:
    assert _one_line(ValueError("first\nsecond")) == "ValueError: first"
    assert _one_line(RuntimeError()) == "RuntimeError"
    assert len(_one_line(OSError("x" * 1000))) < 250
