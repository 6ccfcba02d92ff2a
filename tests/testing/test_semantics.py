"""Engine semantics on the real engine in virtual time, moved here from tests/e2e.

These tests run tests/e2e/workflows.py's workflows unchanged, through the same service, routes
and task code as the local stack, but in memory and in virtual time: a timer of 2 s fires
exactly 2 s after it started, a run that times out closes at its deadline to the millisecond,
and nothing waits for real seconds. tests/e2e keeps the tests of the stack's wiring (the timer
queue and the Scheduler, the stream redrive, signals and queries through the HTTP API, Lambda
mode, one fan-out), at least one per feature family.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cadenza import Registry, WorkflowExecution
from cadenza.core import HistoryEvent
from cadenza.error import (
    CancellationAlreadyRequestedError,
    EntityNotExistsError,
    QueryFailedError,
    QueryTimeoutError,
    WorkflowExecutionAlreadyCompletedError,
    WorkflowExecutionAlreadyStartedError,
    WorkflowExecutionCanceledError,
    WorkflowExecutionFailedError,
    WorkflowExecutionTerminatedError,
    WorkflowExecutionTimedOutError,
)
from cadenza.testing import TestWorkflowEnvironment

from ..e2e.workflows import MultipleActivities, SingleActivity, echo, reg, shout
from .semantic_workflows import Deployment, drifting_registry

T0 = datetime(2030, 1, 1, tzinfo=UTC)
START = {"execution_start_to_close_timeout": timedelta(seconds=60)}
#: A task list no worker serves (``env.stop_worker``): its activities wait, never run.
IDLE = "idle"
MS = timedelta(milliseconds=1)


def env_of(registry: Any = reg, **options: Any) -> TestWorkflowEnvironment:
    return TestWorkflowEnvironment(registry, start_time=T0, **options)


async def start(env: TestWorkflowEnvironment, workflow: Any, *args: Any,
                **options: Any) -> WorkflowExecution:
    return await env.client.start_workflow(workflow, *args, task_list=env.task_list,
                                           **{**START, **options})


async def history(env: TestWorkflowEnvironment, run: WorkflowExecution) -> list[HistoryEvent]:
    return await env.client.get_workflow_history(run.workflow_id, run.run_id)


async def settle(env: TestWorkflowEnvironment) -> None:
    """Let every task that is ready now run, without moving time."""
    await env.sleep(0)


async def until(env: TestWorkflowEnvironment, run: WorkflowExecution,
                event_type: str) -> list[HistoryEvent]:
    """The run's history once ``event_type`` is in it (time does not move meanwhile)."""
    for _ in range(200):
        events = await history(env, run)
        if event_type in types(events):
            return events
        await settle(env)
    raise AssertionError(f"{event_type} never appeared: {types(events)}")


def types(events: list[HistoryEvent]) -> list[str]:
    return [str(e.event_type) for e in events]


def of(events: list[HistoryEvent], event_type: str) -> list[HistoryEvent]:
    return [e for e in events if e.event_type == event_type]


def assert_dense(events: list[HistoryEvent]) -> None:
    assert [e.event_id for e in events] == list(range(1, len(events) + 1))


# -- timers ----------------------------------------------------------------------------------


async def test_a_timer_fires_exactly_when_due_never_early() -> None:
    async with env_of() as env:
        run = await start(env, "Sleeper", 2)
        await env.sleep(2 * timedelta(seconds=1) - MS)
        events = await history(env, run)
        assert types(events)[-1] == "TimerStarted"  # 1 ms before it is due: not fired
        (started,) = of(events, "TimerStarted")
        assert started.timestamp == T0
        assert started.attributes["start_to_fire_timeout_seconds"] == 2
        await env.sleep(MS)
        assert env.is_workflow_completed(run.workflow_id)
        # The workflow itself saw exactly two seconds pass.
        assert await env.client.get_workflow_result(run.workflow_id) == 2.0
        events = await history(env, run)
    (fired,) = of(events, "TimerFired")
    assert fired.attributes["started_event_id"] == started.event_id
    assert fired.timestamp - started.timestamp == timedelta(seconds=2)
    assert types(events)[-5:] == ["TimerFired", "DecisionTaskScheduled", "DecisionTaskStarted",
                                  "DecisionTaskCompleted", "WorkflowExecutionCompleted"]
    assert events[-1].timestamp == T0 + timedelta(seconds=2)
    assert_dense(events)


async def test_a_deadline_timer_expires_or_a_signal_cancels_it() -> None:
    async with env_of() as env:
        expiring = await start(env, "ApprovalWithDeadline", 1)
        approved = await start(env, "ApprovalWithDeadline", 30)
        await env.sleep(timedelta(seconds=29))
        assert env.is_workflow_completed(expiring.workflow_id)
        assert not env.is_workflow_completed(approved.workflow_id)
        await env.client.signal_workflow(approved.workflow_id, "", "approve")
        assert await env.client.get_workflow_result(expiring.workflow_id) == "expired"
        assert await env.client.get_workflow_result(approved.workflow_id) == "approved"
        assert env.now() == T0 + timedelta(seconds=29)  # the result wait skipped no time
        expired = await history(env, expiring)
        events = await history(env, approved)
        await env.sleep(timedelta(minutes=1))  # past the cancelled timer's deadline
        assert await history(env, approved) == events  # it never fires
    (started,) = of(expired, "TimerStarted")
    (fired,) = of(expired, "TimerFired")
    assert fired.timestamp == started.timestamp + timedelta(seconds=1) == T0 + timedelta(seconds=1)
    assert expired[-1].event_type == "WorkflowExecutionCompleted"
    assert expired[-1].timestamp == T0 + timedelta(seconds=1)

    assert "TimerFired" not in types(events)
    (canceled,) = of(events, "TimerCanceled")
    (signaled,) = of(events, "WorkflowExecutionSignaled")
    assert canceled.attributes["timer_id"] == of(events, "TimerStarted")[0].attributes["timer_id"]
    assert signaled.event_id < canceled.event_id
    assert canceled.timestamp == events[-1].timestamp == T0 + timedelta(seconds=29)
    assert types(events)[-2:] == ["TimerCanceled", "WorkflowExecutionCompleted"]
    assert_dense(events)


async def test_a_run_times_out_at_its_execution_timeout() -> None:
    async with env_of() as env:
        run = await start(env, "WaitsForever",
                          execution_start_to_close_timeout=timedelta(seconds=2))
        await env.sleep(timedelta(seconds=2) - MS)
        assert (await env.client.describe_workflow(run.workflow_id)).status == "OPEN"
        await env.sleep(MS)
        info = await env.client.describe_workflow(run.workflow_id)
        assert info.status == "TIMED_OUT"
        assert info.close_time == T0 + timedelta(seconds=2)
        with pytest.raises(WorkflowExecutionTimedOutError):
            await env.client.get_workflow_result(run.workflow_id)
        events = await history(env, run)
        with pytest.raises(WorkflowExecutionAlreadyCompletedError):
            await env.client.signal_workflow(run.workflow_id, "", "anything")
    assert events[-1].event_type == "WorkflowExecutionTimedOut"
    assert events[-1].attributes["timeout_type"] == "START_TO_CLOSE"
    assert events[-1].timestamp - events[0].timestamp == timedelta(seconds=2)
    assert_dense(events)


# -- workflows and their activities ----------------------------------------------------------


async def test_sequential_activities_run_one_after_another() -> None:
    async with env_of() as env:
        run = await start(env, MultipleActivities, "hello")
        assert await env.client.get_workflow_result(run.workflow_id) == "hello"
        events = await history(env, run)
    scheduled = of(events, "ActivityTaskScheduled")
    completed = of(events, "ActivityTaskCompleted")
    assert [e.attributes["input"] for e in scheduled] == ['"first"', '"hello"', '"third"']
    assert [e.attributes["result"] for e in completed] == ['"first"', '"hello"', '"third"']
    # Each activity is scheduled only once the one before it completed.
    assert all(done.event_id < following.event_id
               for done, following in zip(completed, scheduled[1:], strict=False))
    assert all(e.timestamp == T0 for e in events)  # no timer: no time passes
    assert_dense(events)


async def test_parallel_sync_and_async_activities() -> None:
    async with env_of() as env:
        run = await start(env, "ParallelActivities", "quiet")
        result = await env.client.get_workflow_result(run.workflow_id, result_type=list[str])
        events = await history(env, run)
    assert result == ["first", "QUIET"]
    kinds = types(events)
    # Both activities were scheduled by the first decision, before either completed.
    first_completion = kinds.index("ActivityTaskCompleted")
    assert kinds[:first_completion].count("ActivityTaskScheduled") == 2
    scheduled = of(events, "ActivityTaskScheduled")
    assert [e.attributes["activity_type"] for e in scheduled] == ["echo", "shout"]
    assert len({e.attributes["decision_task_completed_event_id"] for e in scheduled}) == 1
    assert_dense(events)


async def test_activity_by_name() -> None:
    async with env_of() as env:
        run = await start(env, "ByName", "abc")
        assert await env.client.get_workflow_result(run.workflow_id) == "ABC"
        events = await history(env, run)
    (scheduled,) = of(events, "ActivityTaskScheduled")
    assert scheduled.attributes["activity_type"] == "shout"


async def test_failing_workflow_surfaces_as_typed_error() -> None:
    async with env_of() as env:
        run = await start(env, "FailingWorkflow", 100)
        with pytest.raises(WorkflowExecutionFailedError) as caught:
            await env.client.get_workflow_result(run.workflow_id)
        caught_run = await start(env, "CatchingWorkflow", 5)
        caught_result = await env.client.get_workflow_result(caught_run.workflow_id)
        events = await history(env, run)
        info = await env.client.describe_workflow(run.workflow_id)
    assert "InsufficientFundsError" in str(caught.value)
    assert caught.value.close_status == "FAILED"
    assert caught_result == "caught InsufficientFundsError"
    (failed,) = of(events, "ActivityTaskFailed")
    assert failed.attributes["reason"] == "InsufficientFundsError"
    assert "cannot withdraw 100" in failed.attributes["details"]
    assert types(events)[-4:] == ["DecisionTaskScheduled", "DecisionTaskStarted",
                                  "DecisionTaskCompleted", "WorkflowExecutionFailed"]
    assert info.status == "FAILED"
    assert_dense(events)


async def test_duplicate_workflow_id_is_rejected() -> None:
    async with env_of() as env:
        first = await start(env, "WaitsForever", workflow_id="dup")
        with pytest.raises(WorkflowExecutionAlreadyStartedError) as caught:
            await start(env, "WaitsForever", workflow_id="dup")
        assert caught.value.run_id == first.run_id
        # The refused start wrote nothing: the first run's history is its own.
        events = await history(env, first)
        assert types(events).count("WorkflowExecutionStarted") == 1
        await env.client.terminate_workflow("dup", reason="cleanup")


async def test_terminate() -> None:
    async with env_of() as env:
        run = await start(env, "WaitsForever")
        await env.sleep(timedelta(seconds=5))
        await env.client.terminate_workflow(run.workflow_id, reason="operator said so")
        with pytest.raises(WorkflowExecutionTerminatedError) as caught:
            await env.client.get_workflow_result(run.workflow_id)
        info = await env.client.describe_workflow(run.workflow_id)
        events = await history(env, run)
        with pytest.raises(WorkflowExecutionAlreadyCompletedError):
            await env.client.terminate_workflow(run.workflow_id, reason="again")
        assert await history(env, run) == events
    assert caught.value.reason == "operator said so"
    assert info.status == "TERMINATED"
    assert info.close_time == T0 + timedelta(seconds=5)
    assert events[-1].event_type == "WorkflowExecutionTerminated"
    assert events[-1].attributes["reason"] == "operator said so"
    assert events[-1].timestamp == T0 + timedelta(seconds=5)
    assert_dense(events)


async def test_unknown_workflow_type_fails_decisions_with_backoff_then_proceeds() -> None:
    late = Registry()
    late.register_activity(echo)
    deployment = Deployment(late)
    async with env_of(deployment) as env:
        deployment.clock = env.now
        run = await start(env, "SingleActivity", "late")
        await settle(env)
        first = await history(env, run)
        await env.sleep(timedelta(seconds=10))
        # The failing task was retried all along, but only its first failure was written.
        assert await history(env, run) == first
        info = await env.client.describe_workflow(run.workflow_id)
        assert info.status == "OPEN"
        assert info.raw["pending_decision"]["attempt"] == 1
        failures = list(deployment.lookups)
        late.register_workflow(SingleActivity)  # a worker that knows the type
        assert await env.client.get_workflow_result(run.workflow_id) == "late"
        events = await history(env, run)
    assert types(first) == ["WorkflowExecutionStarted", "DecisionTaskScheduled",
                            "DecisionTaskStarted", "DecisionTaskFailed", "DecisionTaskScheduled"]
    failed = first[3]
    assert failed.attributes["cause"] == "WORKFLOW_WORKER_UNHANDLED_FAILURE"
    assert "'SingleActivity' is not registered" in failed.attributes["details"]
    assert first[4].attributes["attempt"] == 1
    # The first retry is at once (Cadence's decision attempt 1); the next ones back off.
    assert failures[:2] == [T0, T0]
    gaps = [later - earlier for earlier, later in itertools.pairwise(failures[1:])]
    assert len(gaps) >= 3
    assert all(timedelta(seconds=2) <= gap <= timedelta(seconds=60) for gap in gaps)
    # The worker that knows the type took the retried attempt at its next retry.
    assert events[: len(first)] == first
    started = events[len(first)]
    assert started.event_type == "DecisionTaskStarted"
    assert started.attributes["scheduled_event_id"] == first[4].event_id
    assert timedelta(seconds=2) <= started.timestamp - failures[-1] <= timedelta(seconds=60)
    assert types(events)[-1] == "WorkflowExecutionCompleted"
    assert_dense(events)


async def test_code_that_diverges_from_history_fails_the_decision_not_the_history() -> None:
    deployment = Deployment(drifting_registry(echo))
    async with env_of(deployment) as env:
        deployment.clock = env.now
        activities = "drifting-activities"
        env.stop_worker(activities)  # the first activity waits until the code changed
        run = await start(env, "Drifting", activities)
        before = await until(env, run, "ActivityTaskScheduled")
        assert types(before)[-1] == "ActivityTaskScheduled"
        # A deploy changes the code: the first activity is now "shout", but history says
        # "echo". The activity completes and the next decision replays the new code.
        deployment.current = drifting_registry(shout)
        env.start_worker(activities)
        events = await until(env, run, "DecisionTaskFailed")
        await env.sleep(timedelta(seconds=30))  # the bad code keeps failing, unwritten
        assert await history(env, run) == events
        assert (await env.client.describe_workflow(run.workflow_id)).status == "OPEN"
        # The fixed code (matching history) takes over and finishes the run.
        deployment.current = drifting_registry(echo)
        assert await env.client.get_workflow_result(run.workflow_id) == "ab"
        final = await history(env, run)
    failed = next(e for e in events if e.event_type == "DecisionTaskFailed")
    details = failed.attributes["details"]
    assert "NonDeterministicError" in details and "echo" in details and "shout" in details
    assert events[: len(before)] == before  # nothing already written changed
    assert types(events)[len(before):] == [
        "ActivityTaskStarted", "ActivityTaskCompleted", "DecisionTaskScheduled",
        "DecisionTaskStarted", "DecisionTaskFailed", "DecisionTaskScheduled"]
    assert final[: len(events)] == events
    assert [e.attributes["input"] for e in of(final, "ActivityTaskScheduled")] == ['"a"', '"b"']
    assert_dense(final)


async def test_a_wide_fan_out_of_parallel_activities() -> None:
    count = 200
    async with env_of() as env:
        run = await start(env, "FanOut", count)
        result = await env.client.get_workflow_result(run.workflow_id)
        events = await history(env, run)
    assert result == sum(value * 2 for value in range(count))
    kinds = types(events)
    assert kinds.count("ActivityTaskScheduled") == kinds.count("ActivityTaskCompleted") \
        == count + 1
    assert "DecisionTaskFailed" not in kinds and "DecisionTaskTimedOut" not in kinds
    # All doubles were scheduled by one decision, in the order of the values.
    doubles = [e for e in of(events, "ActivityTaskScheduled")
               if e.attributes["activity_type"] == "fan.double"]
    assert len({e.attributes["decision_task_completed_event_id"] for e in doubles}) == 1
    assert [e.attributes["input"] for e in doubles] == [str(value) for value in range(count)]
    assert_dense(events)


# -- signals ---------------------------------------------------------------------------------


async def test_signals_arrive_in_order_and_closed_or_unknown_runs_refuse_them() -> None:
    async with env_of() as env:
        run = await start(env, "Approval", 3)
        await env.client.signal_workflow(run.workflow_id, "", "approve", "ann")
        await env.client.signal_workflow(run.workflow_id, run.run_id, "approve", "bob")
        await settle(env)
        assert not env.is_workflow_completed(run.workflow_id)
        await env.client.signal_workflow(run.workflow_id, "", "approve", "cy")
        result = await env.client.get_workflow_result(run.workflow_id)
        events = await history(env, run)
        with pytest.raises(WorkflowExecutionAlreadyCompletedError):
            await env.client.signal_workflow(run.workflow_id, "", "approve", "late")
        with pytest.raises(EntityNotExistsError):
            await env.client.signal_workflow(f"nope-{uuid.uuid4().hex}", "", "approve", "x")
        assert await history(env, run) == events
    assert result == "ann,bob,cy"  # the workflow saw them in the order they were sent
    signals = of(events, "WorkflowExecutionSignaled")
    assert [(e.attributes["signal_name"], e.attributes["input"]) for e in signals] == [
        ("approve", '"ann"'), ("approve", '"bob"'), ("approve", '"cy"')]
    # The third came after a decision that had seen the first two and kept waiting.
    completed = of(events, "DecisionTaskCompleted")
    assert signals[1].event_id < completed[0].event_id < signals[2].event_id
    assert_dense(events)


async def test_signal_with_start_starts_then_signals() -> None:
    async with env_of() as env:
        first = await env.client.signal_with_start_workflow(
            "Approval", "approve", ["ann"], 2, task_list=env.task_list, workflow_id="sws",
            **START)
        second = await env.client.signal_with_start_workflow(
            "Approval", "approve", ["bob"], 2, task_list=env.task_list, workflow_id="sws",
            **START)
        assert second.run_id == first.run_id  # the running run was signalled, not restarted
        assert await env.client.get_workflow_result("sws") == "ann,bob"
        events = await history(env, first)
        # Once the run closed, signal-with-start starts a new run, signal first.
        third = await env.client.signal_with_start_workflow(
            "Approval", "approve", ["cy"], 1, task_list=env.task_list, workflow_id="sws",
            **START)
        assert third.run_id != first.run_id
        assert await env.client.get_workflow_result("sws", third.run_id) == "cy"
        newer = await history(env, third)
    assert types(events)[:3] == [
        "WorkflowExecutionStarted", "WorkflowExecutionSignaled", "DecisionTaskScheduled"]
    signals = of(events, "WorkflowExecutionSignaled")
    assert [e.attributes["input"] for e in signals] == ['"ann"', '"bob"']
    assert types(newer)[:3] == [
        "WorkflowExecutionStarted", "WorkflowExecutionSignaled", "DecisionTaskScheduled"]
    assert_dense(events)


# -- queries ---------------------------------------------------------------------------------


async def test_query_sees_signals_and_commits_nothing() -> None:
    async with env_of() as env:
        run = await start(env, "Approval", 2)
        await env.client.signal_workflow(run.workflow_id, "", "approve", "ann")
        answer = await env.client.query_workflow(run.workflow_id, "", "approvers", "by ",
                                                 result_type=list[str])
        assert answer == ["by ann"]
        before = await history(env, run)
        assert await env.client.query_workflow(run.workflow_id, run.run_id,
                                               "approvers") == ["ann"]
        assert await history(env, run) == before
        with pytest.raises(QueryFailedError) as caught:
            await env.client.query_workflow(run.workflow_id, "", "no_such_query")
        assert "no_such_query" in str(caught.value)
        assert await history(env, run) == before
        assert env.now() == T0  # queries never move time
        await env.client.signal_workflow(run.workflow_id, "", "approve", "bob")
        assert await env.client.get_workflow_result(run.workflow_id) == "ann,bob"
        # A closed run is replayed to the end and can still be queried.
        closed = await history(env, run)
        assert await env.client.query_workflow(run.workflow_id, "", "approvers") == [
            "ann", "bob"]
        assert await history(env, run) == closed


async def test_query_without_a_worker_times_out_clearly() -> None:
    # Started at the real time: the task code checks a query's expiry against the real clock
    # (cadenza._tasks.process_query), the service sets it on the environment's clock. The
    # virtual second slept below expires the query by either clock.
    deployment = Deployment(reg)
    async with TestWorkflowEnvironment(deployment) as env:
        deployment.clock = env.now
        env.stop_worker(env.task_list)
        run = await start(env, "Approval", 1)
        with pytest.raises(QueryTimeoutError) as caught:
            await env.client.query_workflow(run.workflow_id, "", "approvers",
                                            timeout=timedelta(milliseconds=250))
        assert env.task_list in str(caught.value)
        assert types(await history(env, run)) == ["WorkflowExecutionStarted",
                                                  "DecisionTaskScheduled"]
        await env.sleep(timedelta(seconds=1))  # the query task has expired by now
        env.start_worker(env.task_list)
        await settle(env)
        # The late worker dropped the expired query before even looking its workflow up: the
        # one lookup is the first decision's.
        assert len(deployment.lookups) == 1
        await env.client.signal_workflow(run.workflow_id, "", "approve", "cy")
        assert await env.client.get_workflow_result(run.workflow_id) == "cy"


# -- cancellation ----------------------------------------------------------------------------


async def test_a_cancelled_workflow_closes_as_canceled() -> None:
    async with env_of() as env:
        env.stop_worker(IDLE)
        run = await start(env, "Cancellable", IDLE)
        await until(env, run, "ActivityTaskScheduled")
        await env.client.cancel_workflow(run.workflow_id, cause="no longer needed")
        with pytest.raises(WorkflowExecutionCanceledError) as caught:
            await env.client.get_workflow_result(run.workflow_id)
        info = await env.client.describe_workflow(run.workflow_id)
        events = await history(env, run)
    assert caught.value.close_status == "CANCELED"
    assert info.status == "CANCELED"
    assert types(events)[5:] == [
        "WorkflowExecutionCancelRequested", "DecisionTaskScheduled", "DecisionTaskStarted",
        "DecisionTaskCompleted", "ActivityTaskCancelRequested", "WorkflowExecutionCanceled"]
    assert events[5].attributes["cause"] == "no longer needed"
    assert all(e.timestamp == T0 for e in events)
    assert_dense(events)


async def test_workflow_code_can_clean_up_after_a_cancel() -> None:
    async with env_of() as env:
        env.stop_worker(IDLE)
        run = await start(env, "CleansUpOnCancel", IDLE)
        await until(env, run, "ActivityTaskScheduled")
        await env.client.cancel_workflow(run.workflow_id)
        with pytest.raises(CancellationAlreadyRequestedError):
            await env.client.cancel_workflow(run.workflow_id)
        result = await env.client.get_workflow_result(run.workflow_id)
        events = await history(env, run)
    assert result == "cleaned up"
    kinds = types(events)
    assert kinds.count("WorkflowExecutionCancelRequested") == 1  # the second was refused
    assert kinds.index("ActivityTaskCancelRequested") < kinds.index("ActivityTaskCanceled")
    (canceled,) = of(events, "ActivityTaskCanceled")
    waiting = of(events, "ActivityTaskScheduled")[0]
    assert canceled.attributes["scheduled_event_id"] == waiting.event_id
    assert waiting.attributes["task_list"] == IDLE
    cleanup = of(events, "ActivityTaskScheduled")[1]
    assert cleanup.attributes["activity_type"] == "echo"
    assert cleanup.attributes["input"] == '"cleaned up"'
    assert kinds[-1] == "WorkflowExecutionCompleted"
    assert_dense(events)
