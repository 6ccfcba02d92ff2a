"""A run's mutable state: what the engine must know between commits, derived from its history.

Every commit stores the state as it is after the commit next to the events that produced it, so a
handler needs one read to validate a task and never replays history to do so.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields, is_dataclass, replace
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
    #: The request digest of the activity completion whose answer handed this task to its worker
    #: (decision hand-back): no queue gets it right after the commit, the redrive still does
    #: unless a later commit shows it consumed.
    handed_to: str = ""


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
    #: The request digest of the decision completion that started this attempt eagerly (its
    #: retry answers with the same task); empty for an attempt a worker took from a queue.
    eager_request: str = ""

    @property
    def started(self) -> bool:
        return self.started_time is not None


@dataclass(frozen=True, slots=True)
class PendingTimer:
    timer_id: str
    started_event_id: int
    fire_at: int  # epoch milliseconds


@dataclass(frozen=True, slots=True)
class ParentRun:
    """The run that started this one as a child, and its StartChildWorkflowExecutionInitiated."""

    domain: str
    workflow_id: str
    run_id: str
    initiated_event_id: int


@dataclass(frozen=True, slots=True)
class PendingChild:
    """A child this run initiated and that has not closed (as far as this run knows)."""

    initiated_event_id: int
    domain: str
    workflow_id: str
    workflow_type: str
    parent_close_policy: str
    #: Set by ChildWorkflowExecutionStarted.
    run_id: str = ""

    @property
    def started(self) -> bool:
        return bool(self.run_id)


@dataclass(frozen=True, slots=True)
class PendingExternal:
    """A signal or cancel request this run sent to another run, awaiting its outcome."""

    initiated_event_id: int
    domain: str
    workflow_id: str
    run_id: str
    cancel: bool = False
    signal_name: str = ""
    child_workflow_only: bool = False


#: How many request ids of recent requests (signals, cancels, completions by token ...) a run
#: remembers, so that a request retried after its answer was lost changes nothing. A retry
#: follows its lost answer within seconds; 128 newer requests of one run in between would
#: take a hot run indeed, and each remembered id costs 8 bytes of every commit.
REQUEST_IDS_KEPT = 128
#: Characters of a request id's digest as the state keeps it (6 bytes of SHA-256, base64).
REQUEST_DIGEST_LENGTH = 8


def request_digest(request_id: str) -> str:
    """The short form of a request id a run remembers: 6 bytes of its SHA-256 (URL-safe
    base64, 8 characters). A new request passes for one of the 128 remembered with
    probability about 2**-41: a retry is still told from a new request, at a fifth of a
    UUID's 36 characters, so the state stays small in every commit that rewrites it."""
    digest = hashlib.sha256(request_id.encode()).digest()[:6]
    return base64.urlsafe_b64encode(digest).decode()


def _compact(value: Any) -> Any:
    """A state's JSON form without the fields that hold their defaults (most of them, most
    of the time: the commit that rewrites the state stays small)."""
    if is_dataclass(value) and not isinstance(value, type):
        out = {}
        for f in fields(value):
            item = getattr(value, f.name)
            default = f.default if f.default is not MISSING else (
                f.default_factory() if f.default_factory is not MISSING else MISSING)
            if default is MISSING or item != default:
                out[f.name] = _compact(item)
        return out
    if isinstance(value, tuple | list):
        return [_compact(item) for item in value]
    if isinstance(value, StrEnum):
        return str(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value


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
    #: The request id of the start that created the run: a start retried with it is the same.
    start_request_id: str = ""
    parent: ParentRun | None = None
    children: tuple[PendingChild, ...] = ()
    externals: tuple[PendingExternal, ...] = ()
    #: Digests (request_digest) of the request ids of the latest requests that changed the
    #: run (at most REQUEST_IDS_KEPT), oldest first: see knows_request / remembering.
    request_ids: tuple[str, ...] = ()
    #: Workflow retries: the run's attempt (0 first) and when its first attempt started.
    attempt: int = 0
    retry_policy: Mapping[str, Any] | None = None
    first_attempt_time: int = 0
    cron_schedule: str | None = None
    first_execution_run_id: str = ""
    #: Seconds between the start and the first decision task (delay_start, cron, retry).
    backoff_seconds: int = 0
    #: True until the backoff timer schedules the first decision task.
    awaiting_backoff: bool = False

    @property
    def is_open(self) -> bool:
        return self.status is RunStatus.OPEN

    def activity(self, scheduled_event_id: int) -> PendingActivity | None:
        for pending in self.activities:
            if pending.scheduled_event_id == scheduled_event_id:
                return pending
        return None

    def child(self, initiated_event_id: int) -> PendingChild | None:
        return next((c for c in self.children if c.initiated_event_id == initiated_event_id),
                    None)

    def external(self, initiated_event_id: int) -> PendingExternal | None:
        return next((e for e in self.externals if e.initiated_event_id == initiated_event_id),
                    None)

    @property
    def timeout_at(self) -> int:
        """Epoch ms of the execution timeout: it counts from the first decision task's time."""
        return self.start_time + 1000 * (
            self.backoff_seconds + self.execution_start_to_close_timeout_seconds)

    def with_changes(self, **changes: Any) -> RunState:
        return replace(self, **changes)

    def knows_request(self, request_id: str) -> bool:
        """Whether a request with this id changed the run already (it is that request again)."""
        return bool(request_id) and request_digest(request_id) in self.request_ids

    def remembering(self, request_id: str) -> RunState:
        """The state that also remembers ``request_id`` (the oldest forgotten past the bound)."""
        kept = (*self.request_ids, request_digest(request_id))[-REQUEST_IDS_KEPT:]
        return replace(self, request_ids=kept)

    def to_dict(self) -> dict[str, Any]:
        """The stored form: fields at their defaults left out, the remembered request ids as
        one string of their digests."""
        data: dict[str, Any] = _compact(self)
        if self.request_ids:
            data["request_ids"] = "".join(self.request_ids)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunState:
        values = dict(data)
        values["status"] = RunStatus(values.get("status") or RunStatus.OPEN)
        decision = values.get("decision")
        values["decision"] = PendingDecision(**decision) if decision else None
        values["activities"] = tuple(PendingActivity(**a) for a in values.get("activities") or ())
        values["timers"] = tuple(PendingTimer(**t) for t in values.get("timers") or ())
        parent = values.get("parent")
        values["parent"] = ParentRun(**parent) if parent else None
        values["children"] = tuple(PendingChild(**c) for c in values.get("children") or ())
        values["externals"] = tuple(PendingExternal(**e) for e in values.get("externals") or ())
        remembered = values.get("request_ids") or ""
        if isinstance(remembered, str):
            n = REQUEST_DIGEST_LENGTH
            values["request_ids"] = tuple(remembered[i:i + n] for i in range(0, len(remembered), n))
        else:  # stored before digests: a list of whole ids (or of longer digests)
            values["request_ids"] = tuple(request_digest(r) for r in remembered)
        return cls(**values)


__all__ = [
    "REQUEST_DIGEST_LENGTH",
    "REQUEST_IDS_KEPT",
    "ParentRun",
    "PendingActivity",
    "PendingChild",
    "PendingDecision",
    "PendingExternal",
    "PendingTimer",
    "RunState",
    "RunStatus",
    "request_digest",
]
