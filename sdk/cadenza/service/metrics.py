"""What the engine counts, through a port: the functions plug in CloudWatch (EMF) metrics.

The counts are read off what is committed, not sprinkled through the engine: a wrapper of the
history store looks at each committed batch's events (decisions made, activity attempts started,
failed and timed out, runs closed and how long they ran) and at lost races (commit conflicts);
a wrapper of the task queues counts the tasks sent (in the stream function: redrives). The
engine itself, core and replay know nothing of it; ``cadenza.aws.metrics`` is the powertools
adapter, and without one (tests, the local stack's default) nothing is measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ..core import EventType, HistoryEvent, Transition
from ..core.records import OutgoingMessage, StoredBatch
from ..error import CommitConflictError

# Metric names (CloudWatch namespace "Cadenza", POWERTOOLS_METRICS_NAMESPACE).
DECISIONS = "Decisions"
DECISION_FAILURES = "DecisionFailures"
ACTIVITIES_STARTED = "ActivitiesStarted"
ACTIVITIES_COMPLETED = "ActivitiesCompleted"
ACTIVITIES_FAILED = "ActivitiesFailed"
ACTIVITIES_TIMED_OUT = "ActivitiesTimedOut"
WORKFLOWS_CLOSED = "WorkflowsClosed"
COMMIT_CONFLICTS = "CommitConflicts"
TASKS_SENT = "TasksSent"
#: Tasks the history stream sent again (the outbox redrive): what direct sends missed, or
#: duplicates SQS dropped.
REDRIVES = "Redrives"
#: Milliseconds from a run's start to its close (end to end).
WORKFLOW_LATENCY = "WorkflowLatency"
#: Milliseconds a worker took on a decision task (DecisionTaskStarted to Completed).
DECISION_LATENCY = "DecisionLatency"
#: Milliseconds of an activity attempt, from its start to its outcome.
ACTIVITY_LATENCY = "ActivityLatency"

_COUNTED = {
    EventType.DecisionTaskCompleted: DECISIONS,
    EventType.DecisionTaskFailed: DECISION_FAILURES,
    EventType.ActivityTaskStarted: ACTIVITIES_STARTED,
    EventType.ActivityTaskCompleted: ACTIVITIES_COMPLETED,
    EventType.ActivityTaskFailed: ACTIVITIES_FAILED,
    EventType.ActivityTaskTimedOut: ACTIVITIES_TIMED_OUT,
}
_CLOSES = {EventType.WorkflowExecutionCompleted, EventType.WorkflowExecutionFailed,
           EventType.WorkflowExecutionTimedOut, EventType.WorkflowExecutionTerminated,
           EventType.WorkflowExecutionCanceled, EventType.WorkflowExecutionContinuedAsNew}
_ACTIVITY_OUTCOMES = {EventType.ActivityTaskCompleted, EventType.ActivityTaskFailed,
                      EventType.ActivityTaskTimedOut, EventType.ActivityTaskCanceled}


class EngineMetrics(Protocol):
    """Where counts and latencies go (a CloudWatch EMF adapter in Lambda)."""

    def count(self, name: str, value: int = 1) -> None: ...

    def milliseconds(self, name: str, value: float) -> None: ...


class NoMetrics:
    """Measures nothing."""

    def count(self, name: str, value: int = 1) -> None:
        pass

    def milliseconds(self, name: str, value: float) -> None:
        pass


def _millis(later: HistoryEvent, earlier: HistoryEvent) -> float:
    return (later.timestamp - earlier.timestamp).total_seconds() * 1000


def measure_batch(metrics: EngineMetrics, batch: StoredBatch) -> None:
    """Counts and latencies of one committed batch's events."""
    counts: dict[str, int] = {}
    started: dict[int, HistoryEvent] = {}  # ActivityTaskStarted by scheduled event id
    decision_started: HistoryEvent | None = None
    for event in batch.events:
        name = _COUNTED.get(event.event_type)
        if name is not None:
            counts[name] = counts.get(name, 0) + 1
        if event.event_type is EventType.ActivityTaskStarted:
            started[int(event.get("scheduled_event_id", 0))] = event
        elif event.event_type in _ACTIVITY_OUTCOMES:
            start = started.get(int(event.get("scheduled_event_id", 0)))
            if start is not None:
                metrics.milliseconds(ACTIVITY_LATENCY, _millis(event, start))
        elif event.event_type is EventType.DecisionTaskStarted:
            decision_started = event
        elif event.event_type is EventType.DecisionTaskCompleted and decision_started:
            metrics.milliseconds(DECISION_LATENCY, _millis(event, decision_started))
        elif event.event_type in _CLOSES:
            counts[WORKFLOWS_CLOSED] = counts.get(WORKFLOWS_CLOSED, 0) + 1
            state = batch.state
            if state.close_time is not None:
                metrics.milliseconds(WORKFLOW_LATENCY, state.close_time - state.start_time)
    for name, value in counts.items():
        metrics.count(name, value)


class MeteredStore:
    """The history store port, measuring what is committed. Every other call passes through."""

    def __init__(self, store: Any, metrics: EngineMetrics) -> None:
        self._store = store
        self._metrics = metrics

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def append(self, transition: Transition, *, committed_at: int) -> StoredBatch:
        try:
            batch: StoredBatch = self._store.append(transition, committed_at=committed_at)
        except CommitConflictError:
            self._metrics.count(COMMIT_CONFLICTS)
            raise
        measure_batch(self._metrics, batch)
        return batch

    def append_together(
        self, transitions: Sequence[Transition], *, committed_at: int
    ) -> list[StoredBatch]:
        try:
            batches: list[StoredBatch] = self._store.append_together(
                transitions, committed_at=committed_at)
        except CommitConflictError:
            self._metrics.count(COMMIT_CONFLICTS)
            raise
        for batch in batches:
            measure_batch(self._metrics, batch)
        return batches


class MeteredQueues:
    """The task queues port, counting the tasks sent (as ``name``). Everything else passes."""

    def __init__(self, queues: Any, metrics: EngineMetrics, *, name: str = TASKS_SENT) -> None:
        self._queues = queues
        self._metrics = metrics
        self._name = name

    def __getattr__(self, name: str) -> Any:
        return getattr(self._queues, name)

    def send(self, messages: Sequence[OutgoingMessage]) -> None:
        self._queues.send(messages)
        if messages:
            self._metrics.count(self._name, len(messages))
