"""Decision hand-back: the worker whose activity result schedules a decision task it can take
gets that task in the answer, with the commit's events, instead of through its queue.

It stays durable: the task is still in the commit's outbox. Only the send right after the
commit skips it; the stream's redrive sends it unless a later commit of the same read shows
it consumed, which covers the worker dying with it.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from cadenza.core import DecisionTask, EventType, TaskKind
from cadenza.core.records import OutgoingMessage, StoredBatch
from cadenza.testing import TestWorkflowEnvironment

from ..e2e.workflows import MultipleActivities, SingleActivity, reg
from .test_eager import first_decision, schedule

T0 = datetime(2030, 1, 1, tzinfo=UTC)
START = {"execution_start_to_close_timeout": timedelta(minutes=10)}


class Sent:
    """The task-list messages the engine sends (right after commits, and by the redrive)."""

    def __init__(self, env: TestWorkflowEnvironment) -> None:
        self.tasks: list[Any] = []
        queues: Any = env._queues
        send = queues.send

        def spy(messages: list[OutgoingMessage]) -> None:
            self.tasks.extend(message.task for message in messages)
            send(messages)

        queues.send = spy

    def decisions(self) -> list[DecisionTask]:
        return [t for t in self.tasks if isinstance(t, DecisionTask)]


class Calls:
    """The API calls the environment's worker makes, by route."""

    def __init__(self, env: TestWorkflowEnvironment) -> None:
        self.inner = env.client.transport
        self.counts: Counter[str] = Counter()
        env.client._transport = self  # type: ignore[assignment]

    async def call(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        self.counts[f"{method} {path.rsplit('/', 1)[-1]}"] += 1
        answer: dict[str, Any] = await self.inner.call(method, path, **options)
        return answer

    async def close(self) -> None:
        await self.inner.close()


async def test_an_activity_result_hands_its_decision_task_back_with_the_commits_events() -> None:
    async with TestWorkflowEnvironment(reg, start_time=T0) as env:
        sent = Sent(env)
        # No stream here: every send is the one right after a commit.
        store: Any = env._store
        redrive, store._on_commit = store._on_commit, None
        run, message, length = await first_decision(env)
        decided = env.service.complete_decision_task(
            message.task_token, decisions=[schedule("0")], history_length=length,
            started_at=env.now(), identity="w1", request_id="d1", eager_activities=1,
            eager_task_list="default")
        (eager,) = decided.activities
        answer = env.service.complete_activity_task(
            eager.message.task_token, result='"hi"', identity="w1", request_id="a1",
            hand_back_task_list="default")
        retried = env.service.complete_activity_task(
            eager.message.task_token, result='"hi"', identity="w1", request_id="a1",
            hand_back_task_list="default")
        latest = env._store.latest(env.domain, run.workflow_id, run.run_id)
        assert latest is not None
        # The redrive of that commit alone (the worker died with the task): it is sent.
        redrive(latest)
    handed = answer.decision
    assert handed is not None
    task = handed.message.task
    assert isinstance(task, DecisionTask)
    assert latest.state.decision is not None
    assert task.scheduled_event_id == latest.state.decision.scheduled_event_id
    assert [e.event_type for e in handed.events] == [
        EventType.ActivityTaskStarted, EventType.ActivityTaskCompleted,
        EventType.DecisionTaskScheduled]
    assert handed.version == latest.state.version
    # The decision completion's answer carried its commit too: a worker holds it all.
    assert decided.events[-1].event_id + 1 == handed.events[0].event_id
    assert retried.decision is None  # the same request again: nothing new to hand back
    directly, by_redrive = sent.decisions()[:-1], sent.decisions()[-1:]
    assert [t.scheduled_event_id for t in directly] == [message.task.scheduled_event_id]
    assert [t.key for t in by_redrive] == [task.key]


async def test_the_redrive_skips_a_handed_back_task_a_later_commit_consumed() -> None:
    async with TestWorkflowEnvironment(reg, start_time=T0) as env:
        store: Any = env._store
        commits: list[StoredBatch] = []
        store._on_commit = commits.append  # the stream, read later in one go
        sent = Sent(env)
        run = await env.client.start_workflow(SingleActivity, "hi", task_list=env.task_list,
                                              **START)
        assert await env.client.get_workflow_result(run.workflow_id, run.run_id) == "hi"
        before = len(sent.decisions())
        env.service.on_committed_all(commits)
        again = sent.decisions()[before:]
    # Start, the decision with its eager activity, the result (its decision handed back),
    # the closing decision: the redrive finds every decision task consumed.
    assert len(commits) == 4
    assert before == 1  # the first decision task, sent right after the start
    assert again == []


async def test_a_sequence_of_activities_is_decided_without_queues_or_reads() -> None:
    async with TestWorkflowEnvironment(reg, start_time=T0) as env:
        service: Any = env.service
        service.on_committed = lambda batch: None  # no redrive copies: only what is needed
        sent = Sent(env)
        calls = Calls(env)
        run = await env.client.start_workflow(MultipleActivities, "x", task_list=env.task_list,
                                              **START)
        assert await env.client.get_workflow_result(run.workflow_id, run.run_id) == "x"
        history = await env.client.get_workflow_history(run.workflow_id, run.run_id)
    kinds = Counter(t.kind for t in sent.tasks)
    assert kinds[TaskKind.DECISION] == 1 and kinds[TaskKind.ACTIVITY] == 0
    assert calls.counts["GET events"] == 1  # the first decision task's read, nothing after
    assert calls.counts["POST complete"] == 3 + 4  # three activities, four decisions
    assert calls.counts["POST start"] == 0
    assert sum(e.event_type is EventType.DecisionTaskCompleted for e in history) == 4


async def test_a_worker_that_dies_with_a_handed_back_task_leaves_it_to_the_redrive() -> None:
    async with TestWorkflowEnvironment(reg, start_time=T0) as env:
        dropped: list[Any] = []
        decide = env._decide

        async def dies_with_handed(message: Any, handed: Any = None) -> Any:
            if handed is not None and not dropped:
                dropped.append(handed)
                raise ConnectionError("the worker died")
            return await decide(message, handed)

        env._decide = dies_with_handed  # type: ignore[method-assign]
        run = await env.client.start_workflow(MultipleActivities, "x", task_list=env.task_list,
                                              **START)
        assert await env.client.get_workflow_result(run.workflow_id, run.run_id) == "x"
        history = await env.client.get_workflow_history(run.workflow_id, run.run_id)
    assert len(dropped) == 1
    assert sum(e.event_type is EventType.DecisionTaskCompleted for e in history) == 4
    assert [e.event_id for e in history] == list(range(1, len(history) + 1))


async def test_a_copy_of_a_task_the_worker_saw_completed_is_dropped_without_a_read() -> None:
    async with TestWorkflowEnvironment(reg, start_time=T0) as env:
        calls = Calls(env)
        # The instant stream here sends a copy of every handed-back decision task: each finds
        # the run held by the worker, its history showing the task completed.
        run = await env.client.start_workflow(MultipleActivities, "x", task_list=env.task_list,
                                              **START)
        assert await env.client.get_workflow_result(run.workflow_id, run.run_id) == "x"
        await env.sleep(0)
    assert calls.counts["GET events"] == 1
