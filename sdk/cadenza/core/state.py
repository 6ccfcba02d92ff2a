"""A run's mutable state: what the engine must know between commits, derived from its history.

Every commit stores the state as it is after the commit next to the events that produced it, so a
handler needs one read to validate a task and never replays history to do so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any


class RunStatus(StrEnum):
    OPEN = "OPEN"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    TERMINATED = "TERMINATED"
    CONTINUED_AS_NEW = "CONTINUED_AS_NEW"
    TIMED_OUT = "TIMED_OUT"


@dataclass(frozen=True, slots=True)
class PendingDecision:
    scheduled_event_id: int
    attempt: int
    task_list: str
    start_to_close_timeout_seconds: int


@dataclass(frozen=True, slots=True)
class PendingActivity:
    scheduled_event_id: int
    activity_id: str
    activity_type: str
    task_list: str
    attempt: int = 0
    schedule_to_close_timeout_seconds: int | None = None
    schedule_to_start_timeout_seconds: int | None = None
    start_to_close_timeout_seconds: int | None = None
    heartbeat_timeout_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class PendingTimer:
    timer_id: str
    started_event_id: int
    fire_at: int  # epoch milliseconds


@dataclass(frozen=True, slots=True)
class RunState:
    domain: str
    workflow_id: str
    run_id: str
    workflow_type: str
    task_list: str
    execution_start_to_close_timeout_seconds: int
    task_start_to_close_timeout_seconds: int
    start_time: int  # epoch milliseconds of WorkflowExecutionStarted
    next_event_id: int
    status: RunStatus = RunStatus.OPEN
    close_time: int | None = None
    close_event_id: int | None = None
    #: Attributes of the close event (result, or reason/details): what a result call returns.
    close_attributes: Mapping[str, Any] | None = None
    decision: PendingDecision | None = None
    activities: tuple[PendingActivity, ...] = ()
    timers: tuple[PendingTimer, ...] = ()
    cancel_requested: bool = False
    memo: Mapping[str, Any] | None = None
    search_attributes: Mapping[str, Any] | None = None

    @property
    def is_open(self) -> bool:
        return self.status is RunStatus.OPEN

    def activity(self, scheduled_event_id: int) -> PendingActivity | None:
        for pending in self.activities:
            if pending.scheduled_event_id == scheduled_event_id:
                return pending
        return None

    def with_changes(self, **changes: Any) -> RunState:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = str(self.status)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunState:
        values = dict(data)
        values["status"] = RunStatus(values["status"])
        decision = values.get("decision")
        values["decision"] = PendingDecision(**decision) if decision else None
        values["activities"] = tuple(PendingActivity(**a) for a in values.get("activities") or ())
        values["timers"] = tuple(PendingTimer(**t) for t in values.get("timers") or ())
        return cls(**values)


__all__ = ["PendingActivity", "PendingDecision", "PendingTimer", "RunState", "RunStatus"]
