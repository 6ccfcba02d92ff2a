"""TestActivityEnvironment: one activity through the real executor, heartbeats, cancellation."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
import traceback
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from cadenza import Registry, activity
from cadenza.error import ActivityCancelledError, ActivityFailure
from cadenza.testing._activity_env import TestActivityEnvironment

WAIT = 5.0  # seconds a test waits for an activity to reach a point; never reached when green


@dataclass
class Point:
    x: int
    y: int


class PaymentDeclinedError(Exception):
    pass


@activity.defn
async def add(a: Point, b: Point) -> Point:
    return Point(a.x + b.x, a.y + b.y)


@activity.defn(name="whereami")
def whereami(prefix: str, suffix: str = "!") -> str:
    return f"{prefix} {threading.current_thread().name}{suffix}"


@activity.defn
async def charge(amount: int) -> str:
    raise PaymentDeclinedError(f"card declined for {amount}")


@activity.defn
def charge_sync(amount: int) -> str:
    raise PaymentDeclinedError(f"card declined for {amount}")


# --- results -----------------------------------------------------------------------------------


async def test_async_activity_result_is_decoded_as_its_return_annotation() -> None:
    env = TestActivityEnvironment()

    result = await env.execute_activity(add, Point(1, 2), Point(10, 20))

    assert result == Point(11, 22)


async def test_sync_activity_runs_in_a_thread_by_name_with_keyword_arguments() -> None:
    registry = Registry()
    registry.register_activity(whereami)
    env = TestActivityEnvironment(registry)

    result = await env.execute_activity("whereami", "on", suffix="?")

    assert result.startswith("on ")
    assert result.endswith("?")
    assert threading.current_thread().name not in result


async def test_arguments_cross_the_data_converter_as_over_the_wire() -> None:
    @activity.defn
    async def kinds(point: Point) -> str:
        return type(point).__name__

    env = TestActivityEnvironment()

    # A dict is encoded as JSON and decoded as the declared dataclass.
    assert await env.execute_activity(kinds, {"x": 1, "y": 2}) == "Point"


async def test_plain_function_is_run_as_an_activity() -> None:
    def double(n: int) -> int:
        return n * 2

    assert await TestActivityEnvironment().execute_activity(double, 21) == 42


async def test_unknown_activity_name_is_a_key_error() -> None:
    env = TestActivityEnvironment()

    with pytest.raises(KeyError, match="'nope' is not registered"):
        await env.execute_activity("nope")


# --- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize("definition", [charge, charge_sync], ids=["async", "sync"])
async def test_activity_exception_is_raised_as_is(definition: Any) -> None:
    env = TestActivityEnvironment()

    with pytest.raises(PaymentDeclinedError, match="card declined for 5") as raised:
        await env.execute_activity(definition, 5)

    frames = [frame.name for frame in traceback.extract_tb(raised.value.__traceback__)]
    assert definition.fn.__name__ in frames  # the activity's own frame, not a rebuilt error


async def test_failure_of_the_executor_itself_is_an_activity_failure() -> None:
    env = TestActivityEnvironment()

    with pytest.raises(ActivityFailure) as raised:
        await env.execute_activity(add, "not a point", Point(1, 1))

    assert raised.value.reason == "ValidationError"
    assert "Expected `object`" in (raised.value.failure_details or "")


# --- info and heartbeats ---------------------------------------------------------------------


async def test_info_is_well_formed_and_options_override_it() -> None:
    @activity.defn
    async def describe() -> dict[str, Any]:
        info = activity.info()
        return {
            "workflow_id": info.workflow_id,
            "activity_type": info.activity_type,
            "attempt": info.attempt,
            "heartbeat_timeout": info.heartbeat_timeout.total_seconds()
            if info.heartbeat_timeout
            else None,
            "task_token": info.task_token,
            "run_id": info.run_id,
        }

    default = await TestActivityEnvironment().execute_activity(describe)
    custom = await TestActivityEnvironment(
        attempt=3, heartbeat_timeout=timedelta(seconds=5), workflow_id="wf-9"
    ).execute_activity(describe)

    assert default["workflow_id"] == "test-workflow"
    assert default["activity_type"] == "describe"
    assert default["attempt"] == 0
    body, signature = default["task_token"].split(".")
    coordinates = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert coordinates[:4] == ["test-domain", "test-workflow", default["run_id"], "activity"]
    assert signature
    assert (custom["attempt"], custom["heartbeat_timeout"], custom["workflow_id"]) == (
        3,
        5.0,
        "wf-9",
    )


async def test_every_heartbeat_is_counted_and_the_last_details_decoded() -> None:
    @activity.defn
    async def upload(chunks: int) -> int:
        for chunk in range(chunks):
            activity.heartbeat(chunk, f"chunk-{chunk}")  # no await: nothing throttles or merges
        return chunks

    env = TestActivityEnvironment()

    assert await env.execute_activity(upload, 3) == 3
    assert env.heartbeat_count == 3
    assert env.get_heartbeat_details(int, str) == [2, "chunk-2"]
    assert env.get_heartbeat_details() == [2, "chunk-2"]


async def test_sync_heartbeats_are_counted_and_reset_by_the_next_execution() -> None:
    @activity.defn
    def scan(rows: int) -> str:
        for row in range(rows):
            activity.heartbeat(Point(row, row * 2))
        return "done"

    env = TestActivityEnvironment()
    await env.execute_activity(scan, 50)
    assert env.heartbeat_count == 50
    assert env.get_heartbeat_details(Point) == [Point(49, 98)]

    await env.execute_activity(scan, 0)
    assert env.heartbeat_count == 0
    assert env.get_heartbeat_details() == []


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_set_heartbeat_details_are_what_the_activity_resumes_from(kind: str) -> None:
    def resume_sync(total: int) -> list[int]:
        done, note = activity.heartbeat_details(int, str)
        return [*range(done, total), len(note)]

    async def resume_async(total: int) -> list[int]:
        return resume_sync(total)

    env = TestActivityEnvironment()
    env.set_heartbeat_details(7, "abc")

    result = await env.execute_activity(resume_async if kind == "async" else resume_sync, 10)

    assert result == [7, 8, 9, 3]


# --- cancellation ------------------------------------------------------------------------------


async def test_cancel_interrupts_an_async_activity_waiting_on_sleep() -> None:
    started = asyncio.Event()

    @activity.defn
    async def wait_forever() -> str:
        started.set()
        await asyncio.sleep(3600)
        return "never"

    env = TestActivityEnvironment()
    execution = asyncio.create_task(env.execute_activity(wait_forever))
    await asyncio.wait_for(started.wait(), WAIT)

    env.cancel()  # the activity never heartbeats: cancellation must not wait for one

    with pytest.raises(ActivityCancelledError):
        await asyncio.wait_for(execution, WAIT)


async def test_async_activity_can_acknowledge_cancellation_with_details() -> None:
    started = asyncio.Event()

    @activity.defn
    async def cleanup() -> str:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise ActivityCancelledError("rolled back", 2) from None
        return "never"

    env = TestActivityEnvironment()
    execution = asyncio.create_task(env.execute_activity(cleanup))
    await asyncio.wait_for(started.wait(), WAIT)
    env.cancel()

    with pytest.raises(ActivityCancelledError) as raised:
        await asyncio.wait_for(execution, WAIT)

    assert raised.value.details == ["rolled back", 2]


async def test_cancel_is_seen_by_a_sync_activity_polling_is_cancelled() -> None:
    started = threading.Event()

    @activity.defn
    def poll() -> int:
        started.set()
        polls = 0
        deadline = time.monotonic() + WAIT
        while not activity.is_cancelled() and time.monotonic() < deadline:
            polls += 1
            activity.heartbeat(polls)
            time.sleep(0.005)
        activity.raise_if_cancelled()
        return polls

    env = TestActivityEnvironment()
    execution = asyncio.create_task(env.execute_activity(poll))
    assert await asyncio.to_thread(started.wait, WAIT)

    env.cancel()

    with pytest.raises(ActivityCancelledError):
        await asyncio.wait_for(execution, WAIT)
    assert env.heartbeat_count >= 1


async def test_cancel_wakes_a_sync_activity_in_wait_for_cancelled() -> None:
    started = threading.Event()

    @activity.defn
    def wait_for_stop() -> str:
        started.set()
        if activity.wait_for_cancelled(timedelta(seconds=WAIT)):
            raise ActivityCancelledError("stopped")
        return "timed out"

    env = TestActivityEnvironment()
    execution = asyncio.create_task(env.execute_activity(wait_for_stop))
    assert await asyncio.to_thread(started.wait, WAIT)

    env.cancel()

    with pytest.raises(ActivityCancelledError) as raised:
        await asyncio.wait_for(execution, WAIT)
    assert raised.value.details == ["stopped"]


async def test_cancel_before_execution_applies_to_the_next_one_only() -> None:
    @activity.defn
    def check() -> bool:
        return activity.is_cancelled()

    env = TestActivityEnvironment()
    env.cancel()

    assert await env.execute_activity(check) is True
    assert await env.execute_activity(check) is False


# --- async completion and timeouts ---------------------------------------------------------------


async def test_complete_async_returns_none_and_exposes_the_task_token() -> None:
    @activity.defn
    async def approve_later(request: str) -> str:
        activity.complete_async()
        return "ignored"

    env = TestActivityEnvironment()

    assert await env.execute_activity(approve_later, "r-1") is None
    assert env.completed_async
    assert env.last_info is not None
    assert env.last_info.task_token.count(".") == 1
    assert await env.execute_activity(add, Point(0, 0), Point(1, 1)) == Point(1, 1)
    assert not env.completed_async


async def test_test_timeout_cancels_a_stuck_activity_and_raises_timeout_error() -> None:
    cancelled = asyncio.Event()

    @activity.defn
    async def stuck() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            cancelled.set()

    env = TestActivityEnvironment().set_test_timeout(timedelta(milliseconds=50))

    with pytest.raises(TimeoutError, match="did not finish within"):
        await env.execute_activity(stuck)
    assert cancelled.is_set()
