"""Eager activities: the worker that schedules an activity it can run gets it in the answer.

The decision's commit records the attempt started for that worker and sends it to no queue;
the attempt's start-to-close deadline still guards it, and the completion retried after a
lost answer answers with the same activities instead of starting them again.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cadenza.core import Decision, DecisionType, EventType, HistoryEvent, TaskKind
from cadenza.core.records import OutgoingMessage, TaskMessage
from cadenza.error import ServiceBusyError, StaleTaskError
from cadenza.testing import TestWorkflowEnvironment

from ..e2e.workflows import ParallelActivities, SingleActivity, reg
from .workflows import CallsActivity
from .workflows import registry as calls_registry

T0 = datetime(2030, 1, 1, tzinfo=UTC)
START = {"execution_start_to_close_timeout": timedelta(minutes=10)}


def of(history: list[HistoryEvent], kind: EventType) -> list[HistoryEvent]:
    return [event for event in history if event.event_type is kind]


def sent_kinds(env: TestWorkflowEnvironment) -> list[TaskKind]:
    """Spy on the environment's queues: the kind of every task-list message sent."""
    kinds: list[TaskKind] = []
    queues: Any = env._queues
    send = queues.send

    def spy(messages: list[OutgoingMessage]) -> None:
        kinds.extend(message.task.kind for message in messages)
        send(messages)

    queues.send = spy
    return kinds


async def test_an_activity_the_deciding_worker_serves_starts_in_the_decisions_commit() -> None:
    async with TestWorkflowEnvironment(reg, start_time=T0) as env:
        kinds = sent_kinds(env)
        run = await env.client.start_workflow(SingleActivity, "hi", task_list=env.task_list,
                                              **START)
        assert await env.client.get_workflow_result(run.workflow_id, run.run_id) == "hi"
        history = await env.client.get_workflow_history(run.workflow_id, run.run_id)
        commits = env._store.latest(env.domain, run.workflow_id, run.run_id)
    assert TaskKind.ACTIVITY not in kinds  # no queue carried the activity
    (scheduled,) = of(history, EventType.ActivityTaskScheduled)
    (started,) = of(history, EventType.ActivityTaskStarted)
    assert started.timestamp == scheduled.timestamp
    assert started.get("identity") == "test-worker"
    # Start; decision and the eager start; the result; the closing decision.
    assert commits is not None and commits.state.version == 4


async def test_parallel_activities_all_start_eagerly() -> None:
    async with TestWorkflowEnvironment(reg, start_time=T0) as env:
        kinds = sent_kinds(env)
        run = await env.client.start_workflow(ParallelActivities, "x", task_list=env.task_list,
                                              **START)
        assert await env.client.get_workflow_result(run.workflow_id, run.run_id) == [
            "first", "X"]
    assert TaskKind.ACTIVITY not in kinds


async def test_an_activity_of_a_task_list_nobody_here_serves_goes_through_its_queue() -> None:
    async with TestWorkflowEnvironment(calls_registry, start_time=T0) as env:
        kinds = sent_kinds(env)
        run = await env.client.start_workflow(
            CallsActivity, "shout", {"start_to_close_timeout": 10}, None, ["a"], "elsewhere",
            task_list=env.task_list, **START)
        assert await env.client.get_workflow_result(run.workflow_id, run.run_id) == "ok: A"
    assert TaskKind.ACTIVITY in kinds  # (sent right after the commit and by the redrive)


async def first_decision(env: TestWorkflowEnvironment) -> tuple[Any, TaskMessage, int]:
    """Start a run whose decision task nobody takes, and take it by hand."""
    env.stop_worker(env.task_list)
    run = await env.client.start_workflow(SingleActivity, "hi", task_list=env.task_list,
                                          **START)
    queues: Any = env._queues
    raw = queues.take(lambda _: True)
    assert raw is not None
    message = TaskMessage.parse(raw.body)
    assert message is not None
    history = await env.client.get_workflow_history(run.workflow_id, run.run_id)
    return run, message, history[-1].event_id + 1


def schedule(activity_id: str) -> Decision:
    return Decision(DecisionType.ScheduleActivityTask, {
        "activity_id": activity_id, "activity_type": "echo", "input": '["hi"]',
        "task_list": "default", "schedule_to_close_timeout_seconds": 600,
        "start_to_close_timeout_seconds": 5})


async def test_a_completion_retried_after_a_lost_answer_answers_the_same_eager_tasks() -> None:
    async with TestWorkflowEnvironment(reg, start_time=T0) as env:
        run, message, length = await first_decision(env)

        def complete(request_id: str) -> Any:
            return env.service.complete_decision_task(
                message.task_token, decisions=[schedule("0"), schedule("1")],
                history_length=length, started_at=env.now(), identity="w1",
                request_id=request_id, eager_activities=1, eager_task_list="default")

        first = complete("req-1")
        version = env._store.latest(env.domain, run.workflow_id, run.run_id).state.version
        again = complete("req-1")  # the first answer was lost: the same request again
        state = env._store.latest(env.domain, run.workflow_id, run.run_id).state
        with pytest.raises(StaleTaskError):
            complete("req-2")  # another completion of a task completed already
    assert len(first.activities) == 1  # asked for one of the two
    assert [a.message.task for a in again.activities] == [a.message.task for a in first.activities]
    assert again.activities[0].start == first.activities[0].start
    assert state.version == version  # the retry committed nothing
    started = [p for p in state.activities if p.started]
    assert [(p.activity_id, p.started_identity) for p in started] == [("0", "w1")]


async def test_an_eager_activity_whose_worker_died_is_retried_by_its_deadline() -> None:
    async with TestWorkflowEnvironment(calls_registry, start_time=T0) as env:
        dropped: list[Any] = []

        async def dies(eager: Any) -> None:  # the worker dies right after the commit
            dropped.append(eager)

        env._run_eager = dies  # type: ignore[method-assign]
        policy = {"initial_interval": 1, "maximum_attempts": 3}
        run = await env.client.start_workflow(
            CallsActivity, "shout", {"start_to_close_timeout": 5}, policy, ["a"],
            task_list=env.task_list, **START)
        result = await env.client.get_workflow_result(run.workflow_id, run.run_id)
        history = await env.client.get_workflow_history(run.workflow_id, run.run_id)
    assert result == "ok: A"
    assert len(dropped) == 1
    (started,) = of(history, EventType.ActivityTaskStarted)
    assert started.get("attempt") == 1  # attempt 0 timed out, attempt 1 came by its queue
    assert started.timestamp - of(history, EventType.ActivityTaskScheduled)[0].timestamp \
        == timedelta(seconds=5 + 1)


class LosesFirstCompletion:
    """Delivers every call; reports the first decision completion's answer lost."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.lost: list[str] = []

    async def call(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        answer: dict[str, Any] = await self.inner.call(method, path, **options)
        if path.endswith("/tasks/decision/complete") and not self.lost:
            self.lost.append(str((options.get("json") or {}).get("request_id")))
            raise ServiceBusyError("the connection dropped before the answer arrived")
        return answer

    async def close(self) -> None:
        await self.inner.close()


async def test_a_worker_whose_completion_answer_was_lost_runs_its_eager_activity_once() -> None:
    async with TestWorkflowEnvironment(reg, start_time=T0) as env:
        lossy = LosesFirstCompletion(env.client.transport)
        env.client._transport = lossy  # type: ignore[assignment]
        run = await env.client.start_workflow(SingleActivity, "hi", task_list=env.task_list,
                                              workflow_id=f"w-{uuid.uuid4()}", **START)
        assert await env.client.get_workflow_result(run.workflow_id, run.run_id) == "hi"
        history = await env.client.get_workflow_history(run.workflow_id, run.run_id)
    assert len(lossy.lost) == 1
    assert len(of(history, EventType.ActivityTaskStarted)) == 1
    assert len(of(history, EventType.DecisionTaskCompleted)) == 2
