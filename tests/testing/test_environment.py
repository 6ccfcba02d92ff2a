"""The in-memory environment: the real engine in virtual time (issue: cadenza.testing)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from cadenza.core import EventType, RunState, StartWorkflow, start
from cadenza.error import (
    CommitConflictError,
    QueryFailedError,
    WorkflowExecutionFailedError,
)
from cadenza.testing import InMemoryHistoryStore, TestWorkflowEnvironment

from .workflows import Approval, Failing, Sequence, Sleeper, registry

T0 = datetime(2030, 1, 1, tzinfo=UTC)
PAST = datetime(2020, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


async def start_run(env: TestWorkflowEnvironment, workflow: object, *args: object,
                    timeout: timedelta = DAY * 400, **options: object) -> tuple[str, str]:
    run = await env.client.start_workflow(
        workflow, *args, task_list=env.task_list, execution_start_to_close_timeout=timeout,
        **options)
    return run.workflow_id, run.run_id


def types(history: list) -> list[str]:
    return [str(e.event_type) for e in history]


async def test_a_day_long_sleep_finishes_at_once_and_time_shows_it() -> None:
    async with TestWorkflowEnvironment(registry, start_time=T0) as env:
        workflow_id, run_id = await start_run(env, Sleeper, DAY.total_seconds())
        finished = await env.client.get_workflow_result(workflow_id, run_id)
        assert datetime.fromisoformat(finished) >= T0 + DAY
        assert env.now() - T0 < DAY + timedelta(seconds=1)
        history = await env.client.get_workflow_history(workflow_id, run_id)
        fired = next(e for e in history if e.event_type is EventType.TimerFired)
        assert fired.timestamp == T0 + DAY


async def test_a_year_long_sleep() -> None:
    with TestWorkflowEnvironment(registry, start_time=T0) as env:
        workflow_id, _ = await start_run(env, Sleeper, 365 * DAY.total_seconds())
        await env.client.get_workflow_result(workflow_id)
        assert env.now().year == 2031


async def test_history_has_the_stacks_shape_dense_ids_virtual_timestamps() -> None:
    async with TestWorkflowEnvironment(registry, start_time=T0) as env:
        workflow_id, run_id = await start_run(env, Sequence, 3)
        assert await env.get_workflow_result(int) == 6
        history = await env.client.get_workflow_history(workflow_id, run_id)
        assert [e.event_id for e in history] == list(range(1, len(history) + 1))
        assert types(history)[:4] == ["WorkflowExecutionStarted", "DecisionTaskScheduled",
                                      "DecisionTaskStarted", "DecisionTaskCompleted"]
        assert types(history).count("ActivityTaskCompleted") == 3
        assert types(history)[-1] == "WorkflowExecutionCompleted"
        assert all(T0 <= e.timestamp <= T0 + timedelta(hours=1, seconds=1) for e in history)


async def test_sleep_moves_time_exactly_and_a_signal_can_race_a_timer() -> None:
    async with TestWorkflowEnvironment(registry, start_time=T0) as env:
        # Before the timer: the signal wins.
        early, _ = await start_run(env, Approval, workflow_id="early")
        await env.sleep(timedelta(minutes=30))
        assert env.now() == T0 + timedelta(minutes=30)
        assert not env.is_workflow_completed(early)
        await env.client.signal_workflow(early, "", "approve", "ann")
        assert await env.client.get_workflow_result(early) == "ANN"
        # After the timer: it expired, and a late signal is refused.
        late, _ = await start_run(env, Approval, workflow_id="late")
        await env.sleep(timedelta(hours=1, seconds=1))
        assert env.is_workflow_completed(late)
        assert await env.client.get_workflow_result(late) == "expired"


async def test_a_query_in_the_middle_sees_the_state_and_changes_nothing() -> None:
    # T0 is years ahead of the real clock: a query's expiry is checked in virtual time too.
    async with TestWorkflowEnvironment(registry, start_time=T0) as env:
        workflow_id, run_id = await start_run(env, Approval)
        await env.sleep(timedelta(minutes=1))
        before = await env.client.get_workflow_history(workflow_id, run_id)
        assert await env.client.query_workflow(workflow_id, run_id, "status") == "waiting"
        assert await env.client.get_workflow_history(workflow_id, run_id) == before
        assert env.now() == T0 + timedelta(minutes=1)  # a query never moves time
        with pytest.raises(QueryFailedError):
            await env.client.query_workflow(workflow_id, run_id, "nope")


async def test_cancellation_and_termination() -> None:
    async with TestWorkflowEnvironment(registry, start_time=T0) as env:
        workflow_id, _ = await start_run(env, Approval, workflow_id="to-cancel")
        await env.sleep(timedelta(seconds=1))
        await env.client.cancel_workflow(workflow_id)
        error = await env.get_workflow_error(workflow_id)
        assert error.close_status == "CANCELED"
        other, _ = await start_run(env, Approval, workflow_id="to-terminate")
        await env.client.terminate_workflow(other, reason="enough")
        error = await env.get_workflow_error(other)
        assert error.close_status == "TERMINATED" and error.reason == "enough"


async def test_a_failing_workflow_raises_the_typed_error() -> None:
    async with TestWorkflowEnvironment(registry) as env:
        await start_run(env, Failing)
        with pytest.raises(WorkflowExecutionFailedError) as caught:
            await env.get_workflow_result()
        assert caught.value.reason == "ValueError"
        assert "bad order" in str(caught.value.details)


async def test_mocked_and_real_activities() -> None:
    async with TestWorkflowEnvironment(registry) as env:
        env.on_activity("add_one", result=100)
        workflow_id, _ = await start_run(env, Sequence, 2)
        assert await env.client.get_workflow_result(workflow_id) == 200
    async with TestWorkflowEnvironment(registry) as env:
        seen: list[int] = []

        def recorder(value: int) -> int:
            seen.append(value)
            return value * 10

        env.on_activity("add_one", fn=recorder)
        workflow_id, _ = await start_run(env, Sequence, 3)
        assert await env.client.get_workflow_result(workflow_id) == 30
        assert seen == [0, 1, 2]
    async with TestWorkflowEnvironment(registry) as env:  # unmocked: the real code
        workflow_id, _ = await start_run(env, Sequence, 3)
        assert await env.client.get_workflow_result(workflow_id) == 6


async def test_signal_with_start_describe_and_list() -> None:
    async with TestWorkflowEnvironment(registry, start_time=T0) as env:
        run = await env.client.signal_with_start_workflow(
            Approval, "approve", ["bo"], task_list=env.task_list,
            execution_start_to_close_timeout=DAY, workflow_id="sws")
        assert await env.client.get_workflow_result("sws", run.run_id) == "BO"
        info = await env.client.describe_workflow("sws")
        assert info.status == "COMPLETED" and info.workflow_type == "Approval"
        await start_run(env, Approval, workflow_id="open-one")
        listed = await env.client.list_workflows()
        assert {r.workflow_id for r in listed} >= {"sws", "open-one"}
        open_runs = await env.client.list_workflows("CloseTime = missing")
        assert [r.workflow_id for r in open_runs] == ["open-one"]


async def test_a_sync_with_block_works_from_async_code() -> None:
    with TestWorkflowEnvironment(registry) as env:
        workflow_id, _ = await start_run(env, Sequence, 1)
        assert await env.client.get_workflow_result(workflow_id) == 1


def test_conflicting_commits_in_the_store_exactly_one_wins() -> None:
    store = InMemoryHistoryStore()
    first = start(StartWorkflow(
        domain="d", workflow_id="w", run_id="r", workflow_type="T", task_list="tl", input=None,
        execution_start_to_close_timeout_seconds=60, task_start_to_close_timeout_seconds=10,
    ), now=T0)
    store.append(first, committed_at=0)
    state: RunState = first.state
    from cadenza.core import SignalWorkflow, apply

    one = apply(state, SignalWorkflow(signal_name="a"), now=T0)
    two = apply(state, SignalWorkflow(signal_name="b"), now=T0)
    store.append(one, committed_at=1)
    with pytest.raises(CommitConflictError):
        store.append(two, committed_at=1)
    latest = store.latest("d", "w")
    assert latest is not None and latest.events[0].get("signal_name") == "a"


async def test_concurrent_signals_are_all_recorded_once() -> None:
    async with TestWorkflowEnvironment(registry) as env:
        workflow_id, run_id = await start_run(env, Approval)
        await asyncio.gather(*(env.client.signal_workflow(workflow_id, run_id, "noise", i)
                               for i in range(20)))
        history = await env.client.get_workflow_history(workflow_id, run_id)
        signals = [e for e in history if e.event_type is EventType.WorkflowExecutionSignaled]
        assert len(signals) == 20
        assert [e.event_id for e in history] == list(range(1, len(history) + 1))


async def test_a_query_in_an_environment_that_starts_in_the_past_is_answered() -> None:
    async with TestWorkflowEnvironment(registry, start_time=PAST) as env:
        workflow_id, run_id = await start_run(env, Approval)
        status = await env.client.query_workflow(workflow_id, run_id, "status", timeout=5)
        assert status == "waiting"
