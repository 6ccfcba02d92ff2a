"""A commit being built: events numbered densely, the state as it changes, extra tasks.

Shared by the transition rules (transitions.py for one run's own commands, runs.py for what
runs do to each other) so that every rule writes events the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..error import BadRequestError, PayloadTooLargeError
from .decisions import Decision
from .events import EventType, HistoryEvent, from_millis, to_millis
from .limits import MAX_ID_BYTES, MAX_PAYLOAD_BYTES, MAX_REASON_BYTES, check_text, payload_size
from .state import PendingActivity, PendingDecision, RunState, RunStatus
from .tasks import Task, TimerKind, TimerTask, tasks_of


@dataclass(frozen=True, slots=True)
class Transition:
    """What one commit stores: the state after it, its events, and the tasks it sends.

    ``outbox`` holds the tasks that no event implies (an activity's timeout timers, a retry's
    backoff timer); they are stored with the commit, so they survive a crash like the rest.
    A commit may change only the state (an activity started, a heartbeat, a retry), with
    ``events`` empty and ``commit`` true.
    """

    state: RunState
    events: tuple[HistoryEvent, ...] = ()
    outbox: tuple[Task, ...] = ()
    commit: bool = False

    @property
    def changed(self) -> bool:
        return self.commit or bool(self.events)

    @property
    def tasks(self) -> tuple[Task, ...]:
        return (*tasks_of(self.state, self.events), *self.outbox)


class Batch:
    """Events of one commit, numbered densely from the run's next event id."""

    def __init__(self, state: RunState, now: datetime) -> None:
        self.state = state
        #: The version this commit will have; a commit at a taken version is a conflict.
        self.version = state.version + 1
        # Stored times have millisecond precision; events carry exactly what is stored.
        self.now = from_millis(to_millis(now))
        self.events: list[HistoryEvent] = []
        self.outbox: list[Task] = []
        self.touched = False

    @property
    def now_ms(self) -> int:
        return to_millis(self.now)

    def add(self, event_type: EventType, *, at: datetime | None = None, **attributes: Any) -> int:
        """Append an event; ``at`` overrides the commit time (the worker's start of a task)."""
        event_id = self.state.next_event_id
        self.events.append(HistoryEvent(event_id, event_type, at or self.now, attributes))
        self.state = self.state.with_changes(next_event_id=event_id + 1)
        return event_id

    def schedule_decision(self, *, attempt: int = 0) -> None:
        state = self.state
        scheduled_id = self.add(
            EventType.DecisionTaskScheduled,
            task_list=state.task_list,
            start_to_close_timeout_seconds=state.task_start_to_close_timeout_seconds,
            attempt=attempt,
        )
        self.state = self.state.with_changes(
            decision=PendingDecision(
                scheduled_event_id=scheduled_id,
                attempt=attempt,
                task_list=state.task_list,
                start_to_close_timeout_seconds=state.task_start_to_close_timeout_seconds,
            )
        )

    def need_decision(self) -> None:
        """Schedule a decision task unless one is pending or the run's start backoff is."""
        if self.state.decision is None and not self.state.awaiting_backoff:
            self.schedule_decision()

    def close(self, status: RunStatus, event_type: EventType, **attributes: Any) -> None:
        """Close the run. Its open children stay in the state: the close applies their parent
        close policies (tasks_of reads them)."""
        event_id = self.add(event_type, **attributes)
        self.state = self.state.with_changes(
            status=status,
            close_time=to_millis(self.now),
            close_event_id=event_id,
            close_attributes=dict(attributes),
            decision=None,
            activities=(),
            timers=(),
            externals=(),
            awaiting_backoff=False,
        )

    def timer(self, kind: TimerKind, event_id: int, fire_at: int, *, timer_id: str = "",
              attempt: int = 0, seq: int = 0) -> None:
        state = self.state
        self.outbox.append(TimerTask(
            domain=state.domain, workflow_id=state.workflow_id, run_id=state.run_id,
            workflow_type=state.workflow_type, timer_id=timer_id, started_event_id=event_id,
            fire_at=fire_at, timer_kind=kind, attempt=attempt, seq=seq,
        ))

    def replace_activity(self, pending: PendingActivity | None, scheduled_event_id: int) -> None:
        """Put ``pending`` in place of the activity (or drop it when ``None``)."""
        kept = []
        for activity in self.state.activities:
            if activity.scheduled_event_id != scheduled_event_id:
                kept.append(activity)
            elif pending is not None:
                kept.append(pending)
        self.state = self.state.with_changes(activities=tuple(kept))
        self.touched = True

    def done(self) -> Transition:
        if not self.events and not self.touched:
            return Transition(self.state)
        return Transition(
            self.state.with_changes(version=self.version), tuple(self.events),
            tuple(self.outbox), commit=True,
        )


class Seen:
    """Ids used so far by the decisions of one task (and the run), to refuse duplicates."""

    def __init__(self, state: RunState) -> None:
        self.activity_ids = {pending.activity_id for pending in state.activities}
        self.timer_ids = {timer.timer_id for timer in state.timers}
        self.child_ids = {child.workflow_id for child in state.children}


@dataclass(frozen=True, slots=True)
class DecisionHandler:
    """How one decision type is checked (before anything is written) and applied.

    ``check`` raises BadRequestError describing what is wrong; ``apply`` returns the
    activities it cancelled at once (their ActivityTaskCanceled events follow the decisions).
    """

    bad_cause: str
    check: Callable[[RunState, Decision, Seen], None]
    apply: Callable[[Batch, Decision, int], list[PendingActivity]]
    closes: bool = False


def truncate(details: str | None) -> str | None:
    if details is None or payload_size(details) <= MAX_PAYLOAD_BYTES:
        return details
    return details.encode("utf-8")[: MAX_PAYLOAD_BYTES - 64].decode("utf-8", "ignore") + (
        "\n... (truncated)"
    )



# --- input checks -----------------------------------------------------------------------------


def check_id(name: str, value: str) -> None:
    if not value or not value.strip():
        raise BadRequestError(f"{name} is required", field=name)
    check_text(value, field=name, limit=MAX_ID_BYTES)  # bytes, as DynamoDB keys count


def check_reason(reason: str) -> None:
    check_text(reason, field="reason", limit=MAX_REASON_BYTES)


def optional_seconds(attributes: Mapping[str, Any], name: str) -> int | None:
    """A decision attribute in whole seconds: None when absent, > 0 when given."""
    value = attributes.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise BadRequestError(f"{name} must be a positive number of seconds", field=name)
    return int(value)


def check_payload(name: str, payload: str | None) -> None:
    """PayloadTooLargeError, naming the limit, for a payload over it."""
    size = payload_size(payload, field=name)
    if size > MAX_PAYLOAD_BYTES:
        raise PayloadTooLargeError(
            f"{name} is {size} bytes; the limit is {MAX_PAYLOAD_BYTES} bytes",
            field=name,
            limit=MAX_PAYLOAD_BYTES,
            size=size,
        )



__all__ = [
    "Batch",
    "DecisionHandler",
    "Seen",
    "Transition",
    "check_id",
    "check_payload",
    "check_reason",
    "optional_seconds",
    "truncate",
]
