"""Sticky execution: a kept instance decides exactly as a replay from the first event would.

Every history here is a real one (recorded by the in-memory engine, or the replayer's stored
fixtures). For each of its decision tasks the decisions are computed twice: by a replay of
the history up to that task, and by the instance kept from the previous task. They must be
the same, and the kept instance must be used whenever history continues what it saw.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from cadenza._activity_executor import run_local_activity
from cadenza._tasks import CachedRun, WorkflowCache, read_history
from cadenza.core import EventType, HistoryEvent
from cadenza.core.records import HistorySince
from cadenza.replay import StickyInstance, run_decision_task, run_sticky_decision_task
from cadenza.testing import TestWorkflowEnvironment

from ..e2e.workflows import Approval, FanOut, MultipleActivities, ParallelActivities, reg
from ..unit.testing import replay_workflows

T0 = datetime(2030, 1, 1, tzinfo=UTC)
START = {"execution_start_to_close_timeout": timedelta(seconds=60)}
MS = timedelta(milliseconds=1)


def tasks_of(history: Sequence[HistoryEvent]) -> list[tuple[list[HistoryEvent], datetime]]:
    """Each completed decision task: the history its worker saw, and when it started."""
    return [([e for e in history if e.event_id < event.event_id], event.timestamp)
            for event in history if event.event_type is EventType.DecisionTaskStarted]


def decide(definition: Any, history: Sequence[HistoryEvent], started_at: datetime,
           previous: StickyInstance | None) -> tuple[Any, Any]:
    ids: dict[str, Any] = {"workflow_id": "wf", "run_id": "run",
                           "local_activity_runner": run_local_activity}
    fresh = run_decision_task(definition, history, started_at=started_at, **ids)
    sticky = run_sticky_decision_task(definition, history, previous=previous,
                                      started_at=started_at, **ids)
    return fresh, sticky


def check_sticky_matches_full(definition: Any, history: Sequence[HistoryEvent]) -> int:
    """Decide every task of ``history`` both ways; the number decided by a kept instance."""
    previous: StickyInstance | None = None
    hits = 0
    for index, (seen, started_at) in enumerate(tasks_of(history)):
        fresh, sticky = decide(definition, seen, started_at, previous)
        assert sticky.decisions == fresh.decisions, f"decision task {index} differs"
        assert sticky.hit == (previous is not None), f"decision task {index}"
        hits += sticky.hit
        previous = sticky.sticky
    if previous is not None:
        previous.close()
    return hits


def recorded(name: str) -> list[HistoryEvent]:
    return [HistoryEvent.from_dict(item)
            for item in json.loads((replay_workflows.FIXTURES / name).read_text())]


def test_kept_instances_decide_as_a_replay_on_the_stored_histories() -> None:
    order = recorded("order_history.json")
    pricing = recorded("pricing_history.json")
    registry = replay_workflows.registry
    for name, history in (("OrderWorkflow", order), ("PricingWorkflow", pricing)):
        hits = check_sticky_matches_full(registry.get_workflow(name), history)
        assert hits == len(tasks_of(history)) - 1
    assert len(tasks_of(order)) >= 4


async def test_kept_instances_decide_as_a_replay_on_recorded_runs() -> None:
    async with TestWorkflowEnvironment(reg, start_time=T0) as env:
        runs = [
            (MultipleActivities, await env.client.start_workflow(
                MultipleActivities, "second", task_list=env.task_list, **START)),
            (ParallelActivities, await env.client.start_workflow(
                ParallelActivities, "x", task_list=env.task_list, **START)),
            (FanOut, await env.client.start_workflow(
                FanOut, 4, task_list=env.task_list, **START)),
            (Approval, await env.client.start_workflow(
                Approval, 2, task_list=env.task_list, **START)),
        ]
        approval = runs[-1][1]
        await env.client.signal_workflow(approval.workflow_id, approval.run_id, "approve", "ann")
        await env.client.signal_workflow(approval.workflow_id, approval.run_id, "approve", "bo")
        histories = []
        for cls, run in runs:
            await env.client.get_workflow_result(run.workflow_id, run.run_id)
            histories.append((cls, await env.client.get_workflow_history(
                run.workflow_id, run.run_id)))
        # The environment's worker decided with kept instances (the first task of a run
        # cannot: nothing was kept yet).
        assert env.workflow_cache.hits >= 4
        assert env.workflow_cache.misses >= len(runs)
        # Closed runs are held without an instance (a copy of one of their tasks is dropped
        # without a read), their history ending with the close.
        for _, run in runs:
            held = env.workflow_cache.take((env.domain, run.workflow_id, run.run_id))
            assert held is not None and held.sticky is None
            assert held.history[-1].event_type is EventType.WorkflowExecutionCompleted
    for cls, events in histories:
        decided = sum(e.event_type is EventType.DecisionTaskCompleted for e in events)
        hits = check_sticky_matches_full(reg.get_workflow(cls.__name__), events)
        assert hits == decided - 1


async def test_a_kept_instance_whose_task_another_worker_decided_replays_fully() -> None:
    async with TestWorkflowEnvironment(reg, start_time=T0) as env:
        run = await env.client.start_workflow(MultipleActivities, "m", task_list=env.task_list,
                                              **START)
        await env.client.get_workflow_result(run.workflow_id, run.run_id)
        events = await env.client.get_workflow_history(run.workflow_id, run.run_id)
    definition = reg.get_workflow("MultipleActivities")
    tasks = tasks_of(events)
    assert len(tasks) == 4
    # This worker decided task 1, but its completion was lost; another worker decided it at
    # another moment (the one history records): the instance kept does not continue.
    seen, started_at = tasks[1]
    lost = run_sticky_decision_task(definition, seen, previous=None,
                                    started_at=started_at + MS, workflow_id="wf", run_id="run")
    assert lost.sticky is not None
    fresh, sticky = decide(definition, tasks[2][0], tasks[2][1], lost.sticky)
    assert not sticky.hit
    assert sticky.decisions == fresh.decisions
    # Kept after task 1 (its completion recorded), then task 2 decided elsewhere: the kept
    # instance replays task 2 from history and decides task 3 as a full replay does.
    kept = run_sticky_decision_task(definition, seen, previous=None, started_at=started_at,
                                    workflow_id="wf", run_id="run")
    fresh, sticky = decide(definition, tasks[3][0], tasks[3][1], kept.sticky)
    assert sticky.hit
    assert sticky.decisions == fresh.decisions
    assert sticky.sticky is None  # the run completes: nothing to keep


async def test_a_kept_instance_that_history_contradicts_is_dropped_for_a_full_replay() -> None:
    async with TestWorkflowEnvironment(reg, start_time=T0) as env:
        run = await env.client.start_workflow(MultipleActivities, "m", task_list=env.task_list,
                                              **START)
        await env.client.get_workflow_result(run.workflow_id, run.run_id)
        events = await env.client.get_workflow_history(run.workflow_id, run.run_id)
    tasks = tasks_of(events)
    # An instance of ParallelActivities kept for this run made other decisions than history
    # recorded (a deployment changed the code between two tasks): matching fails, the run is
    # replayed from its first event with the definition given, and decides as a replay does.
    parallel = run_sticky_decision_task(
        reg.get_workflow("ParallelActivities"), tasks[0][0], previous=None,
        started_at=tasks[0][1], workflow_id="wf", run_id="run")
    assert parallel.sticky is not None
    parallel.sticky.definition = reg.get_workflow("MultipleActivities")
    fresh, sticky = decide(reg.get_workflow("MultipleActivities"), tasks[1][0], tasks[1][1],
                           parallel.sticky)
    assert not sticky.hit
    assert sticky.decisions == fresh.decisions


class _Reads:
    """A backend serving reads of one stored history by commit (one commit per event)."""

    def __init__(self, events: Sequence[HistoryEvent]) -> None:
        self.events = list(events)
        self.reads: list[int] = []

    async def read_history_since(self, workflow_id: str, run_id: str, *, after_version: int = 0,
                                 page_size: int = 1000) -> HistorySince:
        self.reads.append(after_version)
        return HistorySince(tuple(self.events[after_version:]), len(self.events))


async def test_a_read_after_the_events_held_continues_them_and_a_gap_reads_everything() -> None:
    events = recorded("order_history.json")
    backend = _Reads(events)
    held = CachedRun(tuple(events[:10]), 10)
    run = await read_history(backend, "wf", "run", held)  # type: ignore[arg-type]
    assert [e.event_id for e in run.history] == [e.event_id for e in events]
    assert backend.reads == [10]
    # A held version behind the events held (they overlap): the duplicates are dropped.
    backend.reads.clear()
    run = await read_history(backend, "wf", "run",  # type: ignore[arg-type]
                             CachedRun(tuple(events[:10]), 4))
    assert [e.event_id for e in run.history] == [e.event_id for e in events]
    assert backend.reads == [4]
    # A version ahead of the events held (a gap): the whole history is read again.
    backend.reads.clear()
    run = await read_history(backend, "wf", "run",  # type: ignore[arg-type]
                             CachedRun(tuple(events[:5]), 10))
    assert [e.event_id for e in run.history] == [e.event_id for e in events]
    assert backend.reads == [10, 0]
    backend.reads.clear()
    await read_history(backend, "wf", "run", None)  # type: ignore[arg-type]
    assert backend.reads == [0]


def test_the_cache_evicts_the_least_recently_used_run_and_closes_its_instance() -> None:
    history = recorded("order_history.json")
    definition = replay_workflows.registry.get_workflow("OrderWorkflow")
    seen, started_at = tasks_of(history)[0]

    def kept() -> StickyInstance:
        result = run_sticky_decision_task(definition, seen, previous=None,
                                          started_at=started_at, workflow_id="wf", run_id="r")
        assert result.sticky is not None
        return result.sticky

    cache = WorkflowCache(2)
    first, second, third = kept(), kept(), kept()
    cache.put(("d", "a", "1"), CachedRun(tuple(seen), 3, first))
    cache.put(("d", "b", "1"), CachedRun(tuple(seen), 3, second))
    assert cache.take(("d", "a", "1")) is not None  # used: now the most recent
    cache.put(("d", "a", "1"), CachedRun(tuple(seen), 3, first))
    cache.put(("d", "c", "1"), CachedRun(tuple(seen), 3, third))
    assert ("d", "b", "1") not in cache
    assert ("d", "a", "1") in cache and ("d", "c", "1") in cache
    assert second.instance._loop.is_closed()  # evicted: its coroutines closed
    assert not first.instance._loop.is_closed()
    cache.clear()
    assert first.instance._loop.is_closed() and len(cache) == 0
    # Size 0 keeps nothing (and closes what it is given).
    none = WorkflowCache(0)
    fourth = kept()
    none.put(("d", "a", "1"), CachedRun(tuple(seen), 3, fourth))
    assert len(none) == 0 and fourth.instance._loop.is_closed()


async def test_a_worker_without_a_cache_decides_the_same_runs() -> None:
    async with TestWorkflowEnvironment(reg, start_time=T0) as env:
        env.workflow_cache = WorkflowCache(0)
        run = await env.client.start_workflow(FanOut, 3, task_list=env.task_list, **START)
        assert await env.client.get_workflow_result(run.workflow_id, run.run_id) == 6
        assert env.workflow_cache.hits == 0


async def test_a_worker_whose_clock_runs_ahead_still_continues_its_instances() -> None:
    async with TestWorkflowEnvironment(reg, start_time=T0) as env:
        decide = env._decide

        async def ahead(message: Any, handed: Any = None) -> Any:
            # The engine records the task started at its own time, not the worker's.
            clock = env._clock
            real = clock.now
            clock.now = lambda: real() + timedelta(seconds=1)  # type: ignore[method-assign]
            try:
                return await decide(message, handed)
            finally:
                clock.now = real  # type: ignore[method-assign]

        env._decide = ahead  # type: ignore[method-assign]
        run = await env.client.start_workflow(MultipleActivities, "a", task_list=env.task_list,
                                              **START)
        assert await env.client.get_workflow_result(run.workflow_id, run.run_id) == "a"
        assert (env.workflow_cache.hits, env.workflow_cache.misses) == (3, 1)
