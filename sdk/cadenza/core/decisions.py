"""Decisions: what workflow code asks the engine to do at the end of a decision task.

Names and attribute keys are Cadence's (``ScheduleActivityTask`` with ``activity_id``,
``activity_type``, ``task_list``, ``input``, the four ``*_timeout_seconds`` and ``retry_policy``;
``CompleteWorkflowExecution`` with ``result``; ``FailWorkflowExecution`` with ``reason`` and
``details``). The replayer produces them, the core validates and applies them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class DecisionType(StrEnum):
    ScheduleActivityTask = "ScheduleActivityTask"
    RequestCancelActivityTask = "RequestCancelActivityTask"
    StartTimer = "StartTimer"
    CancelTimer = "CancelTimer"
    CompleteWorkflowExecution = "CompleteWorkflowExecution"
    FailWorkflowExecution = "FailWorkflowExecution"
    CancelWorkflowExecution = "CancelWorkflowExecution"
    ContinueAsNewWorkflowExecution = "ContinueAsNewWorkflowExecution"
    RecordMarker = "RecordMarker"
    StartChildWorkflowExecution = "StartChildWorkflowExecution"
    SignalExternalWorkflowExecution = "SignalExternalWorkflowExecution"
    RequestCancelExternalWorkflowExecution = "RequestCancelExternalWorkflowExecution"
    UpsertWorkflowSearchAttributes = "UpsertWorkflowSearchAttributes"


@dataclass(frozen=True, slots=True)
class Decision:
    decision_type: DecisionType
    attributes: Mapping[str, Any] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        return self.attributes.get(name, default)

    def to_dict(self) -> dict[str, Any]:
        return {"decision_type": str(self.decision_type), "attributes": dict(self.attributes)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Decision:
        return cls(DecisionType(data["decision_type"]), dict(data.get("attributes") or {}))
