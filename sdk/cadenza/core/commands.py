"""Inputs of the transition function: one per state change the engine performs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .decisions import Decision
from .state import ParentRun, RunStatus
from .tasks import TimerKind


@dataclass(frozen=True, slots=True, kw_only=True)
class StartWorkflow:
    domain: str
    workflow_id: str
    run_id: str
    workflow_type: str
    task_list: str
    input: str | None
    execution_start_to_close_timeout_seconds: int
    task_start_to_close_timeout_seconds: int
    identity: str = ""
    request_id: str = ""
    memo: Mapping[str, Any] | None = None
    search_attributes: Mapping[str, Any] | None = None
    retry_policy: Mapping[str, Any] | None = None
    cron_schedule: str | None = None
    attempt: int = 0
    #: Seconds before the first decision task (delay_start, a cron period, a retry backoff).
    delay_start_seconds: int = 0
    parent: ParentRun | None = None
    #: Set for a run that continues another (continue-as-new, cron, retry).
    continued_execution_run_id: str = ""
    initiator: str = ""
    first_execution_run_id: str = ""
    #: When the first attempt of a retried workflow started (epoch ms); 0 for this run's start.
    first_attempt_time: int = 0
    last_completion_result: str | None = None
    continued_failure_reason: str | None = None
    continued_failure_details: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CompleteDecisionTask:
    scheduled_event_id: int
    attempt: int
    #: next_event_id of the history the worker replayed; newer events make the decision stale.
    history_length: int
    started_at: datetime
    decisions: Sequence[Decision] = field(default_factory=tuple)
    identity: str = ""
    binary_checksum: str = ""
    #: The same completion sent again (its answer was lost) changes nothing and answers with
    #: the activities the first one started eagerly.
    request_id: str = ""
    #: Eager execution: how many of the activities these decisions schedule on
    #: ``eager_task_list`` the completing worker takes at once. They are recorded started in
    #: this commit (for ``identity``) and sent to no queue; their deadlines guard them.
    eager_activities: int = 0
    eager_task_list: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class FailDecisionTask:
    scheduled_event_id: int
    attempt: int
    started_at: datetime
    cause: str
    details: str | None = None
    identity: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CompleteActivityTask:
    scheduled_event_id: int
    attempt: int
    result: str | None = None
    identity: str = ""
    request_id: str = ""
    #: Decision hand-back: the completing worker decides tasks of this task list and has a
    #: free slot; the decision task this result schedules there is handed to it (with
    #: ``request_id``) instead of being sent right after the commit.
    hand_back_task_list: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class FailActivityTask:
    scheduled_event_id: int
    attempt: int
    reason: str
    details: str | None = None
    identity: str = ""
    request_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class StartActivityTask:
    """A worker took an activity attempt (Cadence's RecordActivityTaskStarted).

    Recorded in the run's state, not in history: it arms the attempt's start-to-close and
    heartbeat timeouts and makes a redelivered copy of the same attempt stale, so one attempt
    never runs twice at once.
    """

    scheduled_event_id: int
    attempt: int
    identity: str = ""
    #: The same start sent again (its answer was lost) answers as the first one did.
    request_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordActivityHeartbeat:
    scheduled_event_id: int
    attempt: int
    details: str | None = None
    identity: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelActivityTask:
    """The activity acknowledged a cancellation (Cadence's RespondActivityTaskCanceled)."""

    scheduled_event_id: int
    attempt: int
    details: str | None = None
    identity: str = ""
    request_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalWorkflow:
    signal_name: str
    input: str | None = None
    identity: str = ""
    request_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class FireTimer:
    timer_id: str
    started_event_id: int
    timer_kind: TimerKind = TimerKind.USER
    attempt: int = 0
    seq: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestCancelWorkflow:
    cause: str = ""
    identity: str = ""
    request_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TerminateWorkflow:
    reason: str = ""
    details: str | None = None
    identity: str = ""
    request_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordChildStarted:
    """The child of ``initiated_event_id`` started as ``run_id`` (reported by the child)."""

    initiated_event_id: int
    run_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordChildStartFailed:
    """The child could not start (its id is taken): StartChildWorkflowExecutionFailed."""

    initiated_event_id: int
    cause: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordChildClosed:
    """The child closed: ChildWorkflowExecution<Completed|Failed|...> with its attributes."""

    initiated_event_id: int
    run_id: str
    status: RunStatus
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordExternalOutcome:
    """A signal or cancel request sent to another run was delivered, or failed with ``cause``."""

    initiated_event_id: int
    failed_cause: str | None = None


Command = (
    StartWorkflow
    | CompleteDecisionTask
    | FailDecisionTask
    | CompleteActivityTask
    | FailActivityTask
    | StartActivityTask
    | RecordActivityHeartbeat
    | CancelActivityTask
    | SignalWorkflow
    | FireTimer
    | RequestCancelWorkflow
    | TerminateWorkflow
    | RecordChildStarted
    | RecordChildStartFailed
    | RecordChildClosed
    | RecordExternalOutcome
)
