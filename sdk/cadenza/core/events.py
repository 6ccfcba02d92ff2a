"""History events: Cadence's event types and attribute names, as immutable records.

A run's history is the list of these records, ids dense from 1. Attributes use Cadence's
attribute names in snake_case (``ActivityTaskFailed`` has ``reason`` and ``details``); payloads
(inputs, results, details) are the data converter's text (JSON values separated by spaces) or
``None``. Times are timezone-aware UTC datetimes; durations are whole seconds, as in Cadence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class EventType(StrEnum):
    WorkflowExecutionStarted = "WorkflowExecutionStarted"
    WorkflowExecutionCompleted = "WorkflowExecutionCompleted"
    WorkflowExecutionFailed = "WorkflowExecutionFailed"
    WorkflowExecutionTimedOut = "WorkflowExecutionTimedOut"
    WorkflowExecutionTerminated = "WorkflowExecutionTerminated"
    WorkflowExecutionCanceled = "WorkflowExecutionCanceled"
    WorkflowExecutionContinuedAsNew = "WorkflowExecutionContinuedAsNew"
    WorkflowExecutionSignaled = "WorkflowExecutionSignaled"
    WorkflowExecutionCancelRequested = "WorkflowExecutionCancelRequested"
    DecisionTaskScheduled = "DecisionTaskScheduled"
    DecisionTaskStarted = "DecisionTaskStarted"
    DecisionTaskCompleted = "DecisionTaskCompleted"
    DecisionTaskTimedOut = "DecisionTaskTimedOut"
    DecisionTaskFailed = "DecisionTaskFailed"
    ActivityTaskScheduled = "ActivityTaskScheduled"
    ActivityTaskStarted = "ActivityTaskStarted"
    ActivityTaskCompleted = "ActivityTaskCompleted"
    ActivityTaskFailed = "ActivityTaskFailed"
    ActivityTaskTimedOut = "ActivityTaskTimedOut"
    ActivityTaskCancelRequested = "ActivityTaskCancelRequested"
    ActivityTaskCanceled = "ActivityTaskCanceled"
    RequestCancelActivityTaskFailed = "RequestCancelActivityTaskFailed"
    TimerStarted = "TimerStarted"
    TimerFired = "TimerFired"
    TimerCanceled = "TimerCanceled"
    CancelTimerFailed = "CancelTimerFailed"
    MarkerRecorded = "MarkerRecorded"
    UpsertWorkflowSearchAttributes = "UpsertWorkflowSearchAttributes"
    StartChildWorkflowExecutionInitiated = "StartChildWorkflowExecutionInitiated"
    StartChildWorkflowExecutionFailed = "StartChildWorkflowExecutionFailed"
    ChildWorkflowExecutionStarted = "ChildWorkflowExecutionStarted"
    ChildWorkflowExecutionCompleted = "ChildWorkflowExecutionCompleted"
    ChildWorkflowExecutionFailed = "ChildWorkflowExecutionFailed"
    ChildWorkflowExecutionCanceled = "ChildWorkflowExecutionCanceled"
    ChildWorkflowExecutionTimedOut = "ChildWorkflowExecutionTimedOut"
    ChildWorkflowExecutionTerminated = "ChildWorkflowExecutionTerminated"
    SignalExternalWorkflowExecutionInitiated = "SignalExternalWorkflowExecutionInitiated"
    SignalExternalWorkflowExecutionFailed = "SignalExternalWorkflowExecutionFailed"
    ExternalWorkflowExecutionSignaled = "ExternalWorkflowExecutionSignaled"
    RequestCancelExternalWorkflowExecutionInitiated = (
        "RequestCancelExternalWorkflowExecutionInitiated"
    )
    RequestCancelExternalWorkflowExecutionFailed = "RequestCancelExternalWorkflowExecutionFailed"
    ExternalWorkflowExecutionCancelRequested = "ExternalWorkflowExecutionCancelRequested"
    CompleteWorkflowExecutionFailed = "CompleteWorkflowExecutionFailed"
    FailWorkflowExecutionFailed = "FailWorkflowExecutionFailed"
    CancelWorkflowExecutionFailed = "CancelWorkflowExecutionFailed"
    ContinueAsNewWorkflowExecutionFailed = "ContinueAsNewWorkflowExecutionFailed"


#: Events that close a run; nothing may follow them.
CLOSE_EVENTS = frozenset(
    {
        EventType.WorkflowExecutionCompleted,
        EventType.WorkflowExecutionFailed,
        EventType.WorkflowExecutionTimedOut,
        EventType.WorkflowExecutionTerminated,
        EventType.WorkflowExecutionCanceled,
        EventType.WorkflowExecutionContinuedAsNew,
    }
)


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    """One entry of a run's history."""

    event_id: int
    event_type: EventType
    timestamp: datetime
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.timestamp.tzinfo is None:
            raise ValueError("HistoryEvent.timestamp must be timezone-aware")

    def get(self, name: str, default: Any = None) -> Any:
        return self.attributes.get(name, default)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able form; the storage and wire format of an event."""
        return {
            "event_id": self.event_id,
            "event_type": str(self.event_type),
            "timestamp": to_millis(self.timestamp),
            "attributes": dict(self.attributes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HistoryEvent:
        return cls(
            event_id=int(data["event_id"]),
            event_type=EventType(data["event_type"]),
            timestamp=from_millis(int(data["timestamp"])),
            attributes=dict(data.get("attributes") or {}),
        )


def to_millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_millis(millis: int) -> datetime:
    return datetime.fromtimestamp(millis / 1000, tz=UTC)
