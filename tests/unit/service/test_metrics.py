"""The engine's metrics, read off committed batches (service/metrics.py): pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cadenza import core
from cadenza.core import (
    CompleteDecisionTask,
    Decision,
    DecisionType,
    FailActivityTask,
    StartActivityTask,
    StartWorkflow,
    Transition,
    to_millis,
)
from cadenza.core.records import StoredBatch
from cadenza.error import CommitConflictError
from cadenza.service import metrics as names
from cadenza.service.metrics import MeteredQueues, MeteredStore, measure_batch

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Recorded:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.latencies: dict[str, list[float]] = {}

    def count(self, name: str, value: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + value

    def milliseconds(self, name: str, value: float) -> None:
        self.latencies.setdefault(name, []).append(value)


def batch(transition: Transition, at: datetime) -> StoredBatch:
    state = transition.state
    return StoredBatch(run_id=state.run_id, events=transition.events, state=state, tasks=(),
                       committed_at=to_millis(at))


def a_run() -> list[StoredBatch]:
    """Start, a decision scheduling an activity, its attempt started then failed (retried by
    no policy: the run's decision sees it), a decision completing the run, 90 s after start."""
    started = core.start(StartWorkflow(
        domain="default", workflow_id="w", run_id="r", workflow_type="T", task_list="tl",
        input=None, execution_start_to_close_timeout_seconds=600,
        task_start_to_close_timeout_seconds=10), now=T0)
    state = started.state
    assert state.decision is not None
    decided = core.apply(state, CompleteDecisionTask(
        scheduled_event_id=state.decision.scheduled_event_id, attempt=0,
        history_length=state.next_event_id, started_at=T0 + timedelta(seconds=1),
        decisions=[Decision(DecisionType.ScheduleActivityTask, {
            "activity_id": "0", "activity_type": "a", "schedule_to_close_timeout_seconds": 60,
            "start_to_close_timeout_seconds": 5})]), now=T0 + timedelta(seconds=2))
    scheduled = decided.events[-1].event_id
    taken = core.apply(decided.state, StartActivityTask(scheduled_event_id=scheduled, attempt=0),
                       now=T0 + timedelta(seconds=10))
    failed = core.apply(taken.state, FailActivityTask(scheduled_event_id=scheduled, attempt=0,
                                                      reason="boom"),
                        now=T0 + timedelta(seconds=13))
    state = failed.state
    assert state.decision is not None
    closed = core.apply(state, CompleteDecisionTask(
        scheduled_event_id=state.decision.scheduled_event_id, attempt=0,
        history_length=state.next_event_id, started_at=T0 + timedelta(seconds=89),
        decisions=[Decision(DecisionType.CompleteWorkflowExecution, {"result": None})]),
        now=T0 + timedelta(seconds=90))
    return [batch(started, T0), batch(decided, T0), batch(taken, T0), batch(failed, T0),
            batch(closed, T0)]


def test_a_runs_commits_count_what_happened() -> None:
    recorded = Recorded()
    for committed in a_run():
        measure_batch(recorded, committed)
    assert recorded.counts == {
        names.DECISIONS: 2, names.ACTIVITIES_STARTED: 1, names.ACTIVITIES_FAILED: 1,
        names.WORKFLOWS_CLOSED: 1}
    assert recorded.latencies[names.WORKFLOW_LATENCY] == [90_000]
    assert recorded.latencies[names.ACTIVITY_LATENCY] == [3_000]  # started at 10 s, failed 13 s
    assert recorded.latencies[names.DECISION_LATENCY] == [1_000, 1_000]


class _Store:
    """A store whose commits lose the race; everything else answers."""

    def append(self, transition: Transition, *, committed_at: int) -> StoredBatch:
        raise CommitConflictError("the run changed since it was read")

    def latest(self, *args: Any) -> str:
        return "passed through"


def test_a_lost_race_is_counted_and_still_raised() -> None:
    recorded = Recorded()
    store = MeteredStore(_Store(), recorded)
    transition = core.start(StartWorkflow(
        domain="d", workflow_id="w", run_id="r", workflow_type="T", task_list="tl",
        input=None, execution_start_to_close_timeout_seconds=60,
        task_start_to_close_timeout_seconds=10), now=T0)
    with pytest.raises(CommitConflictError):
        store.append(transition, committed_at=0)
    assert recorded.counts == {names.COMMIT_CONFLICTS: 1}
    assert store.latest("d", "w") == "passed through"


def test_sent_tasks_are_counted_under_the_name_given() -> None:
    recorded, sent = Recorded(), []
    queues = MeteredQueues(type("Q", (), {"send": lambda self, m: sent.extend(m)})(), recorded,
                           name=names.REDRIVES)
    queues.send(["a", "b"])  # type: ignore[list-item]
    queues.send([])
    assert sent == ["a", "b"] and recorded.counts == {names.REDRIVES: 2}
