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
    """An activity scheduled and not yet closed, with what its timeouts and retries need.

    Retries write no history: the current attempt, when it started, its last heartbeat and
    the last failure live here until the activity closes. Times are epoch milliseconds.
    """

    scheduled_event_id: int
    activity_id: str
    activity_type: str
    task_list: str
    attempt: int = 0
    schedule_to_close_timeout_seconds: int | None = None
    schedule_to_start_timeout_seconds: int | None = None
    start_to_close_timeout_seconds: int | None = None
    heartbeat_timeout_seconds: int | None = None
    #: When ActivityTaskScheduled was written: schedule-to-close and expiration count from it.
    scheduled_time: int = 0
    #: When the current attempt became available to workers (the schedule, or its retry time).
    attempt_scheduled_time: int = 0
    #: Version of the commit that wrote ActivityTaskScheduled (a retry re-reads its input).
    scheduled_version: int = 0
    retry_policy: Mapping[str, Any] | None = None
    wait_for_cancellation: bool = False
    started_time: int | None = None
    started_identity: str = ""
    last_heartbeat_time: int | None = None
    #: Details of the last heartbeat, of this attempt or a previous one (the next resumes).
    heartbeat_details: str | None = None
    last_failure_reason: str | None = None
    last_failure_details: str | None = None
    cancel_requested: bool = False
    #: Which deadline-timer chain is current: older chains are dropped when they surface.
    timer_seq: int = 0

    @property
    def started(self) -> bool:
        return self.started_time is not None


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
    #: Commits so far: every commit (with events or only a state change) adds one, and the
    #: store refuses a second commit of the same version (the optimistic concurrency check).
    version: int = 0
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
