"""Cut a run's history into what each decision task saw and what it decided.

For every completed decision task the workflow saw the non-decision events recorded after the
previous DecisionTaskCompleted and before this task's DecisionTaskStarted (the *inputs*), ran
at the DecisionTaskStarted time, and produced the events recorded after its
DecisionTaskCompleted (the *decision events*). A failed or timed-out decision task produced
nothing: its inputs are seen again by the next attempt. Whatever follows the last completed
task belongs to the task being decided now.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cadenza.core.events import EventType, HistoryEvent

__all__ = ["DECISION_EVENT_TYPES", "DecisionBatch", "ParsedHistory", "parse_history"]

#: Events that record a decision of the workflow.
DECISION_EVENT_TYPES: frozenset[EventType] = frozenset(
    {
        EventType.ActivityTaskScheduled,
        EventType.ActivityTaskCancelRequested,
        EventType.RequestCancelActivityTaskFailed,
        EventType.TimerStarted,
        EventType.TimerCanceled,
        EventType.CancelTimerFailed,
        EventType.MarkerRecorded,
        EventType.WorkflowExecutionCompleted,
        EventType.WorkflowExecutionFailed,
        EventType.WorkflowExecutionCanceled,
        EventType.WorkflowExecutionContinuedAsNew,
        EventType.CompleteWorkflowExecutionFailed,
        EventType.FailWorkflowExecutionFailed,
        EventType.CancelWorkflowExecutionFailed,
        EventType.ContinueAsNewWorkflowExecutionFailed,
        EventType.StartChildWorkflowExecutionInitiated,
        EventType.SignalExternalWorkflowExecutionInitiated,
        EventType.RequestCancelExternalWorkflowExecutionInitiated,
        EventType.UpsertWorkflowSearchAttributes,
    }
)

#: Close events the engine may write on its own (not as the result of a decision).
_ENGINE_CLOSE_EVENTS: frozenset[EventType] = frozenset(
    {EventType.WorkflowExecutionTimedOut, EventType.WorkflowExecutionTerminated}
)
#: A decision task that ended without decisions: its inputs are seen again by the next one.
_DECISION_TASK_LOST: frozenset[EventType] = frozenset(
    {EventType.DecisionTaskFailed, EventType.DecisionTaskTimedOut}
)


@dataclass(frozen=True, slots=True)
class DecisionBatch:
    """One completed decision task: what it saw, when it ran, what it decided."""

    inputs: tuple[HistoryEvent, ...]
    started: HistoryEvent
    completed: HistoryEvent
    decision_events: tuple[HistoryEvent, ...]

    @property
    def time(self) -> datetime:
        return self.started.timestamp


@dataclass(frozen=True, slots=True)
class ParsedHistory:
    started: HistoryEvent
    batches: tuple[DecisionBatch, ...]
    #: Inputs of the decision task being processed now (after the last completed one).
    pending_inputs: tuple[HistoryEvent, ...]
    #: The run was closed by the engine (timed out, terminated): nothing is left to decide.
    closed_by_engine: bool


def parse_history(history: Sequence[HistoryEvent]) -> ParsedHistory:
    if not history:
        raise ValueError("history is empty: it must start with WorkflowExecutionStarted")
    first = history[0]
    if first.event_type != EventType.WorkflowExecutionStarted:
        raise ValueError(
            f"history must start with WorkflowExecutionStarted, not {first.event_type} "
            f"(event {first.event_id})"
        )

    batches: list[_OpenBatch] = []
    by_completed_id: dict[int, _OpenBatch] = {}
    pending: list[HistoryEvent] = []
    started: HistoryEvent | None = None
    started_inputs: list[HistoryEvent] = []
    closed_by_engine = False

    for event in history:
        kind = event.event_type
        if kind == EventType.DecisionTaskScheduled:
            continue
        if kind == EventType.DecisionTaskStarted:
            if started is not None:  # a started task that never closed: its inputs remain
                pending = started_inputs + pending
            started, started_inputs, pending = event, pending, []
            continue
        if kind == EventType.DecisionTaskCompleted:
            if started is None:
                raise ValueError(
                    f"malformed history: DecisionTaskCompleted (event {event.event_id}) "
                    "without a DecisionTaskStarted"
                )
            # Anything recorded between started and completed is seen by the next task.
            batch = _OpenBatch(inputs=started_inputs, started=started, completed=event)
            batches.append(batch)
            by_completed_id[event.event_id] = batch
            started, started_inputs = None, []
            continue
        if kind in _DECISION_TASK_LOST:
            if started is not None:
                pending = started_inputs + pending
                started, started_inputs = None, []
            continue
        if kind in DECISION_EVENT_TYPES:
            owner_id = event.get("decision_task_completed_event_id")
            owner = by_completed_id.get(owner_id) if owner_id is not None else None
            if owner is None:
                if not batches:
                    raise ValueError(
                        f"malformed history: decision event {kind} (event {event.event_id}) "
                        "before any DecisionTaskCompleted"
                    )
                owner = batches[-1]
            owner.decision_events.append(event)
            continue
        if kind in _ENGINE_CLOSE_EVENTS:
            closed_by_engine = True
        pending.append(event)

    if started is not None:  # the current task was already marked started: it sees all
        pending = started_inputs + pending
    return ParsedHistory(
        started=first,
        batches=tuple(batch.freeze() for batch in batches),
        pending_inputs=tuple(pending),
        closed_by_engine=closed_by_engine,
    )


class _OpenBatch:
    def __init__(
        self, *, inputs: list[HistoryEvent], started: HistoryEvent, completed: HistoryEvent
    ) -> None:
        self.inputs = inputs
        self.started = started
        self.completed = completed
        self.decision_events: list[HistoryEvent] = []

    def freeze(self) -> DecisionBatch:
        return DecisionBatch(
            inputs=tuple(self.inputs),
            started=self.started,
            completed=self.completed,
            decision_events=tuple(self.decision_events),
        )
