"""Running activity tasks: results, failures, context, heartbeats, cancellation."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from cadenza import activity
from cadenza._activity_executor import (
    ActivityOutcome,
    ActivityTaskInput,
    execute_activity_task,
    run_local_activity,
)
from cadenza.core.retry import RetryPolicy
from cadenza.error import ActivityCancelledError, StaleTaskError
from cadenza.replay import LocalActivityRequest

SCHEDULED = datetime(2024, 1, 1, tzinfo=UTC)


def task(
    activity_type: str = "act", input: str | None = None, **overrides: object
) -> ActivityTaskInput:
    fields: dict[str, object] = {
        "task_token": "token-1",
        "activity_id": "0",
        "activity_type": activity_type,
        "input": input,
        "workflow_id": "wf",
        "run_id": "run",
        "workflow_type": "Wf",
        "domain": "default",
        "task_list": "tl",
        "attempt": 2,
        "scheduled_timestamp": SCHEDULED,
        "started_timestamp": SCHEDULED + timedelta(seconds=1),
        "start_to_close_timeout": timedelta(seconds=30),
        "heartbeat_timeout": timedelta(seconds=10),
    }
    fields.update(overrides)
    return ActivityTaskInput(**fields)  # type: ignore[arg-type]


@dataclass
class Point:
    x: int
    y: int


class Heartbeats:
    """A fake heartbeat endpoint: records payloads, can request cancellation."""

    def __init__(self, cancel_after: int | None = None) -> None:
        self.payloads: list[str | None] = []
        self.cancel_after = cancel_after
        self.received = asyncio.Event()

    async def __call__(self, payload: str | None) -> bool:
        self.payloads.append(payload)
        self.received.set()
        return self.cancel_after is not None and len(self.payloads) >= self.cancel_after


async def test_async_activity_result_is_encoded() -> None:
    @activity.defn
    async def add(a: Point, b: Point) -> Point:
        return Point(a.x + b.x, a.y + b.y)

    outcome = await execute_activity_task(add, task(input='{"x":1,"y":2} {"x":10,"y":20}'))

    assert outcome == ActivityOutcome(kind="completed", result='{"x":11,"y":22}')


async def test_sync_activity_runs_in_a_thread_without_blocking_the_loop() -> None:
    loop_thread = threading.get_ident()
    ticks: list[int] = []

    @activity.defn
    def slow(n: int) -> int:
        assert threading.get_ident() != loop_thread
        time.sleep(0.2)
        return n * 2

    async def ticker() -> None:
        for i in range(5):
            ticks.append(i)
            await asyncio.sleep(0.01)

    outcome, _ = await asyncio.gather(execute_activity_task(slow, task(input="21")), ticker())

    assert outcome.result == "42"
    assert ticks == [0, 1, 2, 3, 4]  # the loop kept running while the activity slept


async def test_default_parameters_fill_missing_values_and_none_result() -> None:
    @activity.defn
    def greet(name: str, punctuation: str = "!") -> None:
        assert (name, punctuation) == ("bo", "!")

    outcome = await execute_activity_task(greet, task(input='"bo"'))

    assert outcome == ActivityOutcome(kind="completed", result="null")


async def test_failure_reason_is_the_exception_class_name() -> None:
    class CardDeclined(Exception):
        pass

    @activity.defn
    async def charge() -> None:
        raise CardDeclined("insufficient funds")

    outcome = await execute_activity_task(charge, task())

    assert outcome.kind == "failed"
    assert outcome.reason == "CardDeclined"
    assert outcome.details is not None
    assert outcome.details.startswith("insufficient funds\n")
    assert "Traceback (most recent call last)" in outcome.details
    assert 'raise CardDeclined("insufficient funds")' in outcome.details


async def test_bad_input_is_a_failure_not_a_crash() -> None:
    @activity.defn
    def needs(point: Point) -> None: ...

    missing = await execute_activity_task(needs, task(input=None))
    wrong = await execute_activity_task(needs, task(input='"not a point"'))

    assert missing.kind == "failed" and missing.reason == "ValueError"
    assert wrong.kind == "failed" and wrong.reason == "ValidationError"


async def test_unencodable_result_is_a_failure() -> None:
    @activity.defn
    def weird() -> object:
        return object()

    outcome = await execute_activity_task(weird, task())

    assert outcome.kind == "failed"
    assert outcome.reason == "TypeError"


async def test_activity_info_and_context_in_async_and_sync_activities() -> None:
    seen: list[activity.ActivityInfo] = []

    @activity.defn
    async def async_one() -> bool:
        seen.append(activity.info())
        return activity.in_activity()

    @activity.defn
    def sync_one() -> bool:
        seen.append(activity.info())
        return activity.in_activity()

    assert (await execute_activity_task(async_one, task())).result == "true"
    assert (await execute_activity_task(sync_one, task(activity_id="7"))).result == "true"
    assert not activity.in_activity()

    first, second = seen
    assert first.task_token == "token-1"
    assert (first.workflow_id, first.workflow_run_id, first.workflow_domain) == (
        "wf",
        "run",
        "default",
    )
    assert (first.activity_type, first.attempt, first.task_list) == ("act", 2, "tl")
    assert first.heartbeat_timeout == timedelta(seconds=10)
    assert first.scheduled_timestamp == SCHEDULED
    assert second.activity_id == "7"


def test_activity_api_outside_an_activity_raises() -> None:
    with pytest.raises(RuntimeError, match="only be called from activity code"):
        activity.info()
    with pytest.raises(RuntimeError, match="only be called from activity code"):
        activity.heartbeat(1)


async def test_heartbeat_details_from_a_previous_attempt() -> None:
    @activity.defn
    def resume() -> list[object]:
        typed = activity.heartbeat_details(Point, int)
        raw = activity.heartbeat_details()
        return [typed[0].x, typed[1], raw]

    outcome = await execute_activity_task(resume, task(heartbeat_details='{"x":5,"y":6} 9'))
    empty = await execute_activity_task(resume_nothing, task())

    assert outcome.result == '[5,9,[{"x":5,"y":6},9]]'
    assert empty.result == "[]"


@activity.defn
def resume_nothing() -> list[object]:
    return activity.heartbeat_details()


async def test_heartbeats_are_sent_and_throttled_to_the_latest_details() -> None:
    sender = Heartbeats()
    release = asyncio.Event()

    @activity.defn
    async def progress() -> str:
        activity.heartbeat(0, "of 5")
        await sender.received.wait()  # the first one goes out at once
        for step in range(1, 5):  # these fall in the throttle window: only the last is sent
            activity.heartbeat(step, "of 5")
        await release.wait()
        return "done"

    run = asyncio.create_task(
        execute_activity_task(
            progress, task(), heartbeat=sender, heartbeat_throttle=timedelta(seconds=0.05)
        )
    )
    await asyncio.sleep(0.2)
    release.set()
    outcome = await run

    assert outcome.result == '"done"'
    assert sender.payloads == ['0 "of 5"', '4 "of 5"']


async def test_heartbeat_from_a_sync_activity_thread() -> None:
    sender = Heartbeats()

    @activity.defn
    def beat() -> None:
        activity.heartbeat({"done": 1})
        time.sleep(0.1)

    outcome = await execute_activity_task(beat, task(), heartbeat=sender)

    assert outcome.kind == "completed"
    assert sender.payloads == ['{"done":1}']


async def test_cancellation_via_heartbeat_interrupts_an_async_activity() -> None:
    sender = Heartbeats(cancel_after=1)
    cleaned_up: list[bool] = []

    @activity.defn
    async def wait_forever() -> None:
        activity.heartbeat()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cleaned_up.append(activity.is_cancelled())
            raise

    outcome = await asyncio.wait_for(
        execute_activity_task(wait_forever, task(), heartbeat=sender), timeout=5
    )

    assert outcome.kind == "cancelled"
    assert cleaned_up == [True]


async def test_sync_activity_sees_cancellation_and_acknowledges_it() -> None:
    sender = Heartbeats(cancel_after=1)

    @activity.defn
    def cooperative() -> str:
        activity.heartbeat("working")
        assert activity.wait_for_cancelled(timedelta(seconds=5))
        assert activity.is_cancelled()
        activity.raise_if_cancelled()
        return "unreachable"

    outcome = await execute_activity_task(cooperative, task(), heartbeat=sender)

    assert outcome == ActivityOutcome(kind="cancelled")


async def test_stale_heartbeat_counts_as_cancellation() -> None:
    async def gone(payload: str | None) -> None:
        raise StaleTaskError("activity no longer exists")

    @activity.defn
    def check() -> bool:
        activity.heartbeat()
        return activity.wait_for_cancelled(timedelta(seconds=5))

    outcome = await execute_activity_task(check, task(), heartbeat=gone)

    assert outcome.result == "true"


async def test_failing_heartbeat_is_logged_and_ignored() -> None:
    async def broken(payload: str | None) -> None:
        raise ConnectionError("network down")

    @activity.defn
    def work() -> int:
        activity.heartbeat()
        return 1

    outcome = await execute_activity_task(work, task(), heartbeat=broken)

    assert outcome.result == "1"


async def test_activity_cancelled_error_with_details() -> None:
    @activity.defn
    async def give_up() -> None:
        raise ActivityCancelledError("stopped at", 3)

    outcome = await execute_activity_task(give_up, task())

    assert outcome == ActivityOutcome(kind="cancelled", details='"stopped at" 3')


async def test_wait_for_cancelled_is_refused_in_async_activities() -> None:
    @activity.defn
    async def misuse() -> None:
        activity.wait_for_cancelled(timedelta(seconds=1))

    outcome = await execute_activity_task(misuse, task())

    assert outcome.reason == "RuntimeError"
    assert outcome.details is not None and "sync activities" in outcome.details


async def test_complete_async_reports_nothing() -> None:
    tokens: list[str] = []

    @activity.defn
    def start_approval() -> str:
        tokens.append(activity.info().task_token)
        activity.complete_async()
        return "ignored"

    outcome = await execute_activity_task(start_approval, task())

    assert outcome == ActivityOutcome(kind="async")
    assert tokens == ["token-1"]


async def test_method_activity_runs_bound_to_its_object() -> None:
    class Greeter:
        def __init__(self, greeting: str) -> None:
            self.greeting = greeting

        @activity.method
        async def greet(self, name: str) -> str:
            return f"{self.greeting} {name}"

    outcome = await execute_activity_task(Greeter("hey").greet, task(input='"al"'))

    assert outcome.result == '"hey al"'


async def test_worker_cancellation_propagates() -> None:
    started = asyncio.Event()

    @activity.defn
    async def long() -> None:
        started.set()
        await asyncio.sleep(60)

    run = asyncio.create_task(execute_activity_task(long, task()))
    await started.wait()
    run.cancel()

    with pytest.raises(asyncio.CancelledError):
        await run


# --- local activities ----------------------------------------------------------------------------


def local_request(
    definition: object, input: str | None = None, **overrides: object
) -> LocalActivityRequest:
    fields: dict[str, object] = {
        "activity_id": "0",
        "activity_type": getattr(definition, "name", "x"),
        "definition": definition,
        "input": input,
        "schedule_to_close_timeout": timedelta(seconds=30),
        "retry_policy": None,
        "workflow_id": "wf",
        "run_id": "run",
        "workflow_type": "Wf",
        "domain": "default",
        "task_list": "tl",
    }
    fields.update(overrides)
    return LocalActivityRequest(**fields)  # type: ignore[arg-type]


def test_local_activity_retries_per_policy() -> None:
    attempts: list[int] = []
    sleeps: list[float] = []

    @activity.defn
    def flaky(n: int) -> int:
        attempts.append(activity.info().attempt)
        if len(attempts) < 3:
            raise ConnectionError("try again")
        return n

    outcome = run_local_activity(
        local_request(flaky, "7", retry_policy=RetryPolicy(maximum_attempts=5)),
        sleep=sleeps.append,
    )

    assert outcome == ActivityOutcome(kind="completed", result="7")
    assert attempts == [0, 1, 2]
    assert sleeps == [1.0, 2.0]


def test_local_activity_non_retryable_reason_is_not_retried() -> None:
    @activity.defn
    def broken() -> None:
        raise ValueError("bad")

    policy = RetryPolicy(maximum_attempts=5, non_retryable_error_reasons=("ValueError",))
    outcome = run_local_activity(local_request(broken, retry_policy=policy), sleep=pytest.fail)

    assert (outcome.kind, outcome.reason) == ("failed", "ValueError")


def test_local_activity_times_out_from_inside_a_running_loop() -> None:
    @activity.defn
    async def stuck() -> None:
        await asyncio.sleep(10)

    async def caller() -> ActivityOutcome:
        # A running loop in the calling thread does not get in the way.
        return run_local_activity(
            local_request(stuck, schedule_to_close_timeout=timedelta(seconds=0.2))
        )

    outcome = asyncio.run(caller())

    assert outcome.kind == "failed"
    assert outcome.timeout_type == "SCHEDULE_TO_CLOSE"
    assert outcome.reason == "cadenceInternal:Timeout SCHEDULE_TO_CLOSE"
