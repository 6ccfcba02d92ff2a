"""A worker's outage handling without a stack: one reconnection at a time, one warning per
outage, capped jittered backoff, a prompt stop; a task in hand whose answer cannot reach the
stack is one line (or counted into the outage's), never a traceback, and keeps its message.
(tests/e2e/test_worker_restart.py restarts a real ``cadenza dev`` under a worker.)"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from botocore.exceptions import EndpointConnectionError

from cadenza import Client, Registry, Worker
from cadenza import worker as worker_module
from cadenza._http import ApiTransport
from cadenza._tasks import ANSWER_ATTEMPTS
from cadenza.aws.tasklists import ReceivedMessage
from cadenza.client import RetryingTransport
from cadenza.core import TaskKind
from cadenza.core.records import TaskMessage
from cadenza.core.tasks import ActivityTask
from cadenza.worker import _Capacity, _one_line, _Reconnect


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


# --- a task in hand when the stack goes away: one line, its message kept ---------------------


class Api:
    """The HTTP API under a real ApiTransport (httpx's mock transport): the activity's start is
    recorded, then its completion cannot connect (the stack stopped while it ran)."""

    def __init__(self, *, complete: BaseException | None, start: dict[str, Any] | None = None)\
            -> None:
        self.complete = complete
        self.start = start if start is not None else {"attempt": 1, "started_time": 0}
        self.completions = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/activity/start"):
            return httpx.Response(200, json=self.start)
        if request.url.path.endswith("/activity/complete"):
            self.completions += 1
            if self.complete is not None:
                raise self.complete
            return httpx.Response(200, json={})
        return httpx.Response(404, json={"message": "not here"})


class Sqs:
    """Stands for SqsTaskLists in a task's handling: records what is done to its message."""

    def __init__(self, *, delete: BaseException | None = None) -> None:
        self.deleted: list[str] = []
        self.handed_back: list[tuple[str, int]] = []
        self._delete = delete

    def delete(self, message: ReceivedMessage) -> None:
        if self._delete is not None:
            raise self._delete
        self.deleted.append(message.message_id)

    def retry_later(self, message: ReceivedMessage, delay_seconds: int) -> None:
        self.handed_back.append((message.message_id, delay_seconds))


tasks = Registry()


@tasks.activity(name="Charge")
async def charge(amount: int) -> int:
    return amount


def activity_message() -> ReceivedMessage:
    task = ActivityTask(
        domain="default", workflow_id="order-7", run_id="r1", workflow_type="Order",
        task_list="orders", scheduled_event_id=5, attempt=1, activity_id="5",
        activity_type="Charge", input="3", scheduled_time=0)
    return ReceivedMessage(queue_url="q", receipt_handle="h", message_id="m-1",
                           message=TaskMessage(task, "token-1"), receive_count=1)


def task_worker(api: Api, sqs: Sqs) -> Worker:
    """A worker holding ``sqs``'s queues whose client's HTTP transport talks to ``api``."""
    transport = ApiTransport("http://127.0.0.1:7933", sign=False,
                             http_transport=httpx.MockTransport(api))
    worker = Worker(Client(target="http://127.0.0.1:7933", transport=transport), "orders",
                    tasks)
    worker._queues = sqs  # type: ignore[assignment]
    worker._executor = ThreadPoolExecutor(max_workers=1)
    return worker


async def handle(api: Api, sqs: Sqs) -> None:
    """One activity task through Worker._handle."""
    worker = task_worker(api, sqs)
    try:
        await worker._handle(TaskKind.ACTIVITY, activity_message(), _Capacity(1))
    finally:
        await worker.close()


def worker_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "cadenza.worker"]


async def test_an_unanswerable_task_is_one_warning_line_and_its_message_is_kept(
    caplog: pytest.LogCaptureFixture, ceilings: list[float],
) -> None:
    caplog.set_level(logging.DEBUG, logger="cadenza.worker")
    api = Api(complete=httpx.ConnectError("[Errno 111] Connection refused"))
    sqs = Sqs()
    await handle(api, sqs)
    # The answer was tried again and again (busy, as a refused connection is), then given up.
    assert api.completions == RetryingTransport.ATTEMPTS * ANSWER_ATTEMPTS
    records = worker_records(caplog)
    assert [r.levelno for r in records] == [logging.WARNING]
    line = records[0].getMessage()
    assert records[0].exc_info is None and "\n" not in line
    assert "order-7" in line and "ApiUnreachableError: cannot reach the Cadenza API" in line
    # Not lost: its message is neither deleted nor handed back; SQS delivers it again.
    assert sqs.deleted == [] and sqs.handed_back == []


async def test_during_an_outage_the_task_is_counted_into_its_one_line(
    caplog: pytest.LogCaptureFixture, ceilings: list[float],
) -> None:
    caplog.set_level(logging.DEBUG, logger="cadenza.worker")
    api = Api(complete=httpx.ConnectTimeout("timed out"))
    sqs = Sqs()
    worker = task_worker(api, sqs)
    worker._reconnect.began = 0.0  # the pollers saw the outage begin (and said so)
    try:
        for _ in range(2):
            await worker._handle(TaskKind.ACTIVITY, activity_message(), _Capacity(1))
        assert [r for r in worker_records(caplog) if r.levelno >= logging.WARNING] == []
        worker._reconnect.polled("orders")
    finally:
        await worker.close()
    back = [r.getMessage() for r in worker_records(caplog) if "reconnected" in r.getMessage()]
    assert len(back) == 1 and "2 tasks in hand could not be finished" in back[0]
    assert all(r.exc_info is None for r in worker_records(caplog))
    assert sqs.deleted == [] and sqs.handed_back == []


async def test_a_worker_stopped_during_the_outage_tells_what_it_counted(
    caplog: pytest.LogCaptureFixture, ceilings: list[float],
) -> None:
    caplog.set_level(logging.INFO, logger="cadenza.worker")
    state = _Reconnect()
    state.began = 0.0
    state.unanswered("orders", "activity task of workflow 'w'", ConnectionError("x"), fate="")
    state.closed("orders")
    state.closed("orders")
    lines = [r.getMessage() for r in worker_records(caplog)]
    assert len(lines) == 1 and "1 task in hand could not be finished" in lines[0]


async def test_sqs_out_of_reach_when_deleting_is_one_line_too(
    caplog: pytest.LogCaptureFixture, ceilings: list[float],
) -> None:
    caplog.set_level(logging.DEBUG, logger="cadenza.worker")
    api = Api(complete=None)
    sqs = Sqs(delete=EndpointConnectionError(endpoint_url="http://127.0.0.1:7934/"))
    await handle(api, sqs)
    assert api.completions == 1  # answered; the copy SQS delivers again is stale, dropped
    records = worker_records(caplog)
    assert [r.levelno for r in records] == [logging.WARNING]
    assert records[0].exc_info is None
    assert "EndpointConnectionError" in records[0].getMessage()


async def test_a_bug_while_handling_a_task_still_logs_its_traceback(
    caplog: pytest.LogCaptureFixture, ceilings: list[float],
) -> None:
    caplog.set_level(logging.DEBUG, logger="cadenza.worker")
    api = Api(complete=None, start={"no": "attempt"})  # an answer the client cannot read
    sqs = Sqs()
    await handle(api, sqs)
    errors = [r for r in worker_records(caplog) if r.levelno >= logging.WARNING]
    assert len(errors) == 1 and errors[0].levelno == logging.ERROR
    assert errors[0].exc_info is not None and errors[0].exc_info[0] is KeyError
    assert sqs.deleted == [] and sqs.handed_back == []
