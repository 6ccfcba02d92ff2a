"""Activity timeouts, retries, heartbeats and cancellation, on the real engine in virtual time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cadenza.core import EventType, HistoryEvent
from cadenza.testing import TestWorkflowEnvironment

from .workflows import (
    CANCEL_SEEN,
    PENDING_TOKENS,
    Async,
    CallsActivity,
    CancelsActivity,
    Local,
    Resumes,
    Retrying,
    registry,
)

T0 = datetime(2030, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


async def run_to_end(env: TestWorkflowEnvironment, workflow: object, *args: object) \
        -> tuple[Any, list[HistoryEvent]]:
    run = await env.client.start_workflow(
        workflow, *args, task_list=env.task_list, execution_start_to_close_timeout=DAY * 30)
    result = await env.client.get_workflow_result(run.workflow_id, run.run_id)
    return result, await env.client.get_workflow_history(run.workflow_id, run.run_id)


def of(history: list[HistoryEvent], kind: EventType) -> list[HistoryEvent]:
    return [e for e in history if e.event_type is kind]


def key() -> str:
    return uuid.uuid4().hex


POLICY = {"initial_interval": 2, "backoff_coefficient": 3.0, "maximum_attempts": 5}


async def test_retries_back_off_and_write_no_history_until_the_outcome() -> None:
    async with TestWorkflowEnvironment(registry, start_time=T0) as env:
        attempt, history = await run_to_end(env, Retrying, key(), 3, POLICY)
        assert attempt == 3  # attempts 0, 1, 2 failed
        assert of(history, EventType.ActivityTaskFailed) == []
        (started,) = of(history, EventType.ActivityTaskStarted)
        assert started.get("attempt") == 3
        assert started.get("last_failure_reason") == "FlakyError"
        scheduled = of(history, EventType.ActivityTaskScheduled)[0].timestamp
        # Backoffs 2 s, 6 s, 18 s (initial * coefficient ** attempt): the fourth attempt
        # starts 26 s after the schedule, never before.
        assert started.timestamp - scheduled == timedelta(seconds=26)


async def test_maximum_interval_caps_the_backoff() -> None:
    async with TestWorkflowEnvironment(registry, start_time=T0) as env:
        policy = {**POLICY, "maximum_interval": 4}
        _, history = await run_to_end(env, Retrying, key(), 3, policy)
        scheduled = of(history, EventType.ActivityTaskScheduled)[0].timestamp
        (started,) = of(history, EventType.ActivityTaskStarted)
        assert started.timestamp - scheduled == timedelta(seconds=2 + 4 + 4)


async def test_default_maximum_interval_is_a_hundred_times_the_initial() -> None:
    async with TestWorkflowEnvironment(registry, start_time=T0) as env:
        policy = {"initial_interval": 1, "backoff_coefficient": 1000.0, "maximum_attempts": 3}
        _, history = await run_to_end(env, Retrying, key(), 2, policy)
        scheduled = of(history, EventType.ActivityTaskScheduled)[0].timestamp
        (started,) = of(history, EventType.ActivityTaskStarted)
        assert started.timestamp - scheduled == timedelta(seconds=1 + 100)


async def test_maximum_attempts_ends_with_the_last_failure() -> None:
    async with TestWorkflowEnvironment(registry, start_time=T0) as env:
        policy = {**POLICY, "maximum_attempts": 2}
        result, history = await run_to_end(
            env, CallsActivity, "flaky", {"start_to_close_timeout": 10,
                                          "schedule_to_close_timeout": 3600}, policy, [key(), 5])
        assert result == "failed: FlakyError"
        (failed,) = of(history, EventType.ActivityTaskFailed)
        assert failed.get("reason") == "FlakyError"
        assert "failure 2 of" in failed.get("details")
        assert of(history, EventType.ActivityTaskStarted)[0].get("attempt") == 1


async def test_expiration_interval_stops_retries() -> None:
    async with TestWorkflowEnvironment(registry, start_time=T0) as env:
        policy = {"initial_interval": 10, "backoff_coefficient": 1.0, "expiration_interval": 25}
        result, history = await run_to_end(
            env, CallsActivity, "flaky", {"start_to_close_timeout": 10,
                                          "schedule_to_close_timeout": 3600}, policy,
            [key(), 9])
        assert result == "failed: FlakyError"
        # Attempts at 0 s, 10 s, 20 s; a fourth at 30 s would pass the 25 s expiration.
        assert of(history, EventType.ActivityTaskStarted)[0].get("attempt") == 2


async def test_non_retryable_reasons_are_not_retried() -> None:
    async with TestWorkflowEnvironment(registry, start_time=T0) as env:
        policy = {**POLICY, "non_retryable_error_reasons": ["FatalError"]}
        result, history = await run_to_end(
            env, CallsActivity, "fatal", {"start_to_close_timeout": 10}, policy)
        assert result == "failed: FatalError"
        assert of(history, EventType.ActivityTaskStarted)[0].get("attempt") == 0


async def test_no_retry_past_schedule_to_close() -> None:
    async with TestWorkflowEnvironment(registry, start_time=T0) as env:
        policy = {"initial_interval": 30, "backoff_coefficient": 1.0}
        result, history = await run_to_end(
            env, CallsActivity, "flaky", {"schedule_to_close_timeout": 45}, policy, [key(), 9])
        assert result == "failed: FlakyError"
        assert of(history, EventType.ActivityTaskStarted)[0].get("attempt") == 1


@pytest.mark.parametrize(("timeouts", "expected"), [
    ({"start_to_close_timeout": 5, "schedule_to_close_timeout": 60}, "START_TO_CLOSE"),
    ({"schedule_to_close_timeout": 7}, "SCHEDULE_TO_CLOSE"),
    ({"start_to_close_timeout": 50, "heartbeat_timeout": 3, "schedule_to_close_timeout": 60},
     "HEARTBEAT"),
])
async def test_a_hung_activity_times_out_server_side(
    timeouts: dict[str, float], expected: str
) -> None:
    async with TestWorkflowEnvironment(registry, start_time=T0) as env:
        run = await env.client.start_workflow(
            CallsActivity, "hang", timeouts, task_list=env.task_list,
            execution_start_to_close_timeout=DAY)
        await env.sleep(timedelta(seconds=2))
        assert not env.is_workflow_completed(run.workflow_id)  # never early
        await env.sleep(timedelta(minutes=2))
        result = await env.client.get_workflow_result(run.workflow_id)
        assert result == f"failed: cadenceInternal:Timeout {expected}"
        history = await env.client.get_workflow_history(run.workflow_id)
        (timed_out,) = of(history, EventType.ActivityTaskTimedOut)
        assert timed_out.get("timeout_type") == expected
        scheduled = of(history, EventType.ActivityTaskScheduled)[0]
        limit = {"START_TO_CLOSE": 5, "SCHEDULE_TO_CLOSE": 7, "HEARTBEAT": 3}[expected]
        assert timed_out.timestamp - scheduled.timestamp == timedelta(seconds=limit)


async def test_schedule_to_start_when_no_worker_takes_it() -> None:
    async with TestWorkflowEnvironment(registry, start_time=T0) as env:
        env.stop_worker("nobody-polls")
        run = await env.client.start_workflow(
            CallsActivity, "add_one", {"schedule_to_start_timeout": 20,
                                       "start_to_close_timeout": 5},
            {"initial_interval": 1, "maximum_attempts": 3}, [1], "nobody-polls",
            task_list=env.task_list, execution_start_to_close_timeout=DAY)
        await env.sleep(timedelta(seconds=19))
        assert not env.is_workflow_completed(run.workflow_id)
        await env.sleep(timedelta(seconds=1))
        result = await env.client.get_workflow_result(run.workflow_id)
        # Not retried: another attempt would not make a worker appear.
        assert result == "failed: cadenceInternal:Timeout SCHEDULE_TO_START"


async def test_heartbeat_timeout_then_the_next_attempt_resumes_from_the_details() -> None:
    async with TestWorkflowEnvironment(registry, start_time=T0) as env:
        run = await env.client.start_workflow(
            Resumes, task_list=env.task_list, execution_start_to_close_timeout=DAY)
        await env.sleep(timedelta(seconds=31))
        start, attempt = await env.client.get_workflow_result(run.workflow_id)
        assert (start, attempt) == (3, 1)  # attempt 0 heartbeated steps 0..2, then hung


async def cancel_run(env: TestWorkflowEnvironment, wait: bool) \
        -> tuple[Any, list[HistoryEvent], str]:
    """The activity runs (time stands still while it does) until the test moves time past
    the workflow's 5 s sleep, after which the workflow cancels it."""
    run = await env.client.start_workflow(
        CancelsActivity, wait, task_list=env.task_list, execution_start_to_close_timeout=DAY)
    await env.sleep(timedelta(seconds=6))
    result = await env.client.get_workflow_result(run.workflow_id, run.run_id)
    history = await env.client.get_workflow_history(run.workflow_id, run.run_id)
    return result, history, run.workflow_id


async def test_try_cancel_returns_at_once_and_the_activity_learns_of_it() -> None:
    async with TestWorkflowEnvironment(registry, start_time=T0) as env:
        result, history, workflow_id = await cancel_run(env, False)
        assert result == "cancelled"
        assert of(history, EventType.ActivityTaskCancelRequested)
        # The workflow did not wait: it closed in the same decision, before any outcome.
        assert of(history, EventType.ActivityTaskCanceled) == []
        assert history[-1].event_type is EventType.WorkflowExecutionCompleted
        await env.sleep(timedelta(seconds=1))  # the activity's next heartbeat tells it
        assert workflow_id in CANCEL_SEEN


async def test_wait_for_cancellation_waits_for_the_acknowledgement() -> None:
    async with TestWorkflowEnvironment(registry, start_time=T0) as env:
        result, history, workflow_id = await cancel_run(env, True)
        assert result == "cancelled"
        types = [str(e.event_type) for e in history]
        assert types.index("ActivityTaskCancelRequested") < types.index("ActivityTaskCanceled")
        (canceled,) = of(history, EventType.ActivityTaskCanceled)
        assert "cleaned up" in canceled.get("details")  # the activity's own details
        assert workflow_id in CANCEL_SEEN


async def test_local_activity_retries_within_its_deadline_and_is_one_marker() -> None:
    async with TestWorkflowEnvironment(registry, start_time=T0) as env:
        attempt, history = await run_to_end(env, Local, key())
        assert attempt == 2
        (marker,) = of(history, EventType.MarkerRecorded)
        assert marker.get("marker_name") == "LocalActivity"
        assert of(history, EventType.ActivityTaskScheduled) == []


async def test_async_completion_and_heartbeat_by_token() -> None:
    async with TestWorkflowEnvironment(registry, start_time=T0) as env:
        run = await env.client.start_workflow(
            Async, task_list=env.task_list, execution_start_to_close_timeout=DAY)
        await env.sleep(timedelta(seconds=1))
        token = PENDING_TOKENS.pop()
        assert await env.client.record_activity_heartbeat(token, "half way") is False
        info = await env.client.describe_workflow(run.workflow_id)
        (pending,) = info.raw["pending_activities"]
        assert pending["state"] == "STARTED"
        assert pending["heartbeat_details"] == '"half way"'
        await env.client.complete_activity(token, "done later")
        assert await env.client.get_workflow_result(run.workflow_id) == "done later"
        # The attempt is over: a late heartbeat is told to stop, a second completion is stale.
        assert await env.client.record_activity_heartbeat(token) is True


async def test_async_failure_by_token() -> None:
    async with TestWorkflowEnvironment(registry, start_time=T0) as env:
        run = await env.client.start_workflow(
            Async, task_list=env.task_list, execution_start_to_close_timeout=DAY)
        await env.sleep(timedelta(seconds=1))
        await env.client.fail_activity(PENDING_TOKENS.pop(), RuntimeError("responder gave up"))
        error = await env.get_workflow_error(run.workflow_id)
        assert "RuntimeError" in str(error)
