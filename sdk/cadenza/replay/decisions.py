"""Decisions made by workflow code, their state machines, and the check against history.

Every call that asks the engine for something (schedule an activity, start a timer, record a
marker, complete the run ...) adds a :class:`PendingDecision` to the :class:`DecisionManager`.
At the end of a replayed decision task the pending decisions must equal, one by one and in
order, the decision events history recorded for that task (Version and MutableSideEffect
markers excepted, as in Cadence); at the end of the current task they are the new decisions.
Activities, timers, child workflows, external signals and external cancellation requests also
have a state machine that turns later history events (ActivityTaskCompleted, TimerFired ...)
into the result of the awaitable the workflow code holds, and turns a cancelled awaitable
into a cancel decision (or drops the original decision if it was never sent).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cadenza.core.decisions import Decision, DecisionType
from cadenza.core.events import EventType, HistoryEvent
from cadenza.error import (
    ActivityFailure,
    NonDeterministicError,
    WorkflowExecutionAlreadyStartedError,
    WorkflowFailure,
)

__all__ = [
    "ActivityMachine",
    "CancelExternalMachine",
    "ChildWorkflowMachine",
    "DecisionManager",
    "PendingDecision",
    "SignalExternalMachine",
    "TimerMachine",
    "describe_event",
]

#: Events that may record each kind of decision. Completion decisions accept every close
#: event because the engine turns a completion into ContinuedAsNew for cron and retries.
_CLOSE_EVENTS = frozenset(
    {
        EventType.WorkflowExecutionCompleted,
        EventType.WorkflowExecutionFailed,
        EventType.WorkflowExecutionCanceled,
        EventType.WorkflowExecutionContinuedAsNew,
    }
)
RECORDED_BY: Mapping[DecisionType, frozenset[EventType]] = {
    DecisionType.ScheduleActivityTask: frozenset({EventType.ActivityTaskScheduled}),
    DecisionType.RequestCancelActivityTask: frozenset(
        {EventType.ActivityTaskCancelRequested, EventType.RequestCancelActivityTaskFailed}
    ),
    DecisionType.StartTimer: frozenset({EventType.TimerStarted}),
    DecisionType.CancelTimer: frozenset({EventType.TimerCanceled, EventType.CancelTimerFailed}),
    DecisionType.RecordMarker: frozenset({EventType.MarkerRecorded}),
    DecisionType.CompleteWorkflowExecution: _CLOSE_EVENTS
    | {EventType.CompleteWorkflowExecutionFailed},
    DecisionType.FailWorkflowExecution: _CLOSE_EVENTS | {EventType.FailWorkflowExecutionFailed},
    DecisionType.CancelWorkflowExecution: _CLOSE_EVENTS
    | {EventType.CancelWorkflowExecutionFailed},
    DecisionType.ContinueAsNewWorkflowExecution: _CLOSE_EVENTS
    | {EventType.ContinueAsNewWorkflowExecutionFailed},
    DecisionType.StartChildWorkflowExecution: frozenset(
        {EventType.StartChildWorkflowExecutionInitiated}
    ),
    DecisionType.SignalExternalWorkflowExecution: frozenset(
        {EventType.SignalExternalWorkflowExecutionInitiated}
    ),
    DecisionType.RequestCancelExternalWorkflowExecution: frozenset(
        {EventType.RequestCancelExternalWorkflowExecutionInitiated}
    ),
    DecisionType.UpsertWorkflowSearchAttributes: frozenset(
        {EventType.UpsertWorkflowSearchAttributes}
    ),
}

#: Marker names. Version and MutableSideEffect markers are left out of the check against
#: history, as Cadence does: their values are looked up by change id / id rather than by
#: position, so adding or removing a get_version or mutable_side_effect call (a get_version
#: dropped once no run of the old code is left) does not shift the other decisions.
LOCAL_ACTIVITY_MARKER = "LocalActivity"
SIDE_EFFECT_MARKER = "SideEffect"
MUTABLE_SIDE_EFFECT_MARKER = "MutableSideEffect"
VERSION_MARKER = "Version"
_UNCHECKED_MARKERS = frozenset({VERSION_MARKER, MUTABLE_SIDE_EFFECT_MARKER})

#: Attributes compared between a decision and the event recording it (Cadence compares ids
#: and types, never payloads, so that input encoding changes are not non-determinism).
_COMPARED: Mapping[DecisionType, tuple[str, ...]] = {
    DecisionType.ScheduleActivityTask: ("activity_id", "activity_type"),
    DecisionType.RequestCancelActivityTask: ("activity_id",),
    DecisionType.StartTimer: ("timer_id",),
    DecisionType.CancelTimer: ("timer_id",),
    DecisionType.RecordMarker: ("marker_name",),
    DecisionType.StartChildWorkflowExecution: ("workflow_id", "workflow_type"),
    DecisionType.SignalExternalWorkflowExecution: ("workflow_id", "signal_name"),
    DecisionType.RequestCancelExternalWorkflowExecution: ("workflow_id",),
}


def describe_event(event: HistoryEvent) -> str:
    keys = (
        "activity_id",
        "activity_type",
        "timer_id",
        "marker_name",
        "workflow_id",
        "workflow_type",
        "signal_name",
    )
    shown = ", ".join(f"{key}={event.get(key)!r}" for key in keys if event.get(key) is not None)
    return f"event {event.event_id} {event.event_type}" + (f" ({shown})" if shown else "")


def describe_decision(decision: Decision) -> str:
    keys = _COMPARED.get(decision.decision_type, ())
    shown = ", ".join(f"{key}={decision.get(key)!r}" for key in keys)
    return f"{decision.decision_type}" + (f" ({shown})" if shown else "")


@dataclass(eq=False)
class PendingDecision:
    """A decision made during the current decision task, not yet matched or returned.

    ``extra_check`` compares what ``_COMPARED`` cannot (a marker's id inside its details);
    it returns a description of the difference or ``None``. ``on_recorded`` receives the
    history event that recorded the decision (to learn its event id).
    """

    decision: Decision
    on_recorded: Callable[[HistoryEvent], None] | None = None
    extra_check: Callable[[HistoryEvent], str | None] | None = None
    label: str = ""

    def mismatch(self, event: HistoryEvent) -> str | None:
        decision = self.decision
        allowed = RECORDED_BY.get(decision.decision_type, frozenset())
        if event.event_type not in allowed:
            return "a different kind of decision"
        for key in _COMPARED.get(decision.decision_type, ()):
            expected = event.get(key)
            actual = decision.get(key)
            if expected != actual and str(expected) != str(actual):
                return f"{key} differs: history has {expected!r}, the code has {actual!r}"
        if self.extra_check is not None:
            return self.extra_check(event)
        return None


@dataclass
class DecisionManager:
    """The ordered decisions of the current decision task."""

    _pending: list[PendingDecision] = field(default_factory=list)
    #: Set once a completion decision is made (or the task is being torn down): later
    #: decisions are dropped, since nothing may follow a run's close.
    frozen: bool = False

    def add(self, pending: PendingDecision) -> PendingDecision:
        if not self.frozen:
            self._pending.append(pending)
        return pending

    def discard(self, pending: PendingDecision) -> bool:
        """Drop a decision not yet sent; ``False`` if it already was (or never added)."""
        try:
            self._pending.remove(pending)
        except ValueError:
            return False
        return True

    def is_pending(self, pending: PendingDecision) -> bool:
        return any(item is pending for item in self._pending)

    def take(self) -> list[PendingDecision]:
        taken, self._pending = self._pending, []
        return taken

    def restore(self, taken: Sequence[PendingDecision]) -> None:
        """Put decisions taken earlier back in front (a sticky instance matching them)."""
        self._pending = [*taken, *self._pending]

    def match(self, recorded: Sequence[HistoryEvent], completed: HistoryEvent) -> None:
        """Check this task's decisions against the events history recorded for it.

        Raises :class:`NonDeterministicError` naming the first event that differs, or the
        DecisionTaskCompleted event when the code made more decisions than history holds.
        Version and MutableSideEffect markers take no part (see ``_UNCHECKED_MARKERS``).
        """
        made = [pending for pending in self.take() if not _unchecked(pending.decision)]
        recorded = [event for event in recorded if not _unchecked_event(event)]
        for index, event in enumerate(recorded):
            if index >= len(made):
                raise NonDeterministicError(
                    f"history {describe_event(event)} was recorded by decision task "
                    f"{completed.event_id}, but the workflow code made no such decision "
                    f"(it made {len(made)} decision(s) in that task)"
                )
            pending = made[index]
            difference = pending.mismatch(event)
            if difference is not None:
                raise NonDeterministicError(
                    f"history {describe_event(event)} does not match the decision the "
                    f"workflow code made: {describe_decision(pending.decision)} "
                    f"({difference})"
                )
            if pending.on_recorded is not None:
                pending.on_recorded(event)
        if len(made) > len(recorded):
            extra = made[len(recorded)]
            raise NonDeterministicError(
                f"the workflow code made decision {describe_decision(extra.decision)} in "
                f"decision task {completed.event_id}, but history recorded "
                f"{len(recorded)} decision(s) for it and not this one"
            )


def _unchecked(decision: Decision) -> bool:
    return (
        decision.decision_type is DecisionType.RecordMarker
        and decision.get("marker_name") in _UNCHECKED_MARKERS
    )


def _unchecked_event(event: HistoryEvent) -> bool:
    return (
        event.event_type == EventType.MarkerRecorded
        and event.get("marker_name") in _UNCHECKED_MARKERS
    )


# --- activities --------------------------------------------------------------------------------


class ActivityMachine:
    """One scheduled activity: created -> scheduled -> (cancel requested) -> closed."""

    def __init__(
        self,
        *,
        manager: DecisionManager,
        loop: asyncio.AbstractEventLoop,
        attributes: dict[str, Any],
    ) -> None:
        self.activity_id: str = attributes["activity_id"]
        self.activity_type: str = attributes["activity_type"]
        self.scheduled_event_id: int | None = None
        self.attempt = 0
        self._manager = manager
        self.future: asyncio.Future[str | None] = loop.create_future()
        self.request = manager.add(
            PendingDecision(
                Decision(DecisionType.ScheduleActivityTask, attributes),
                on_recorded=self._on_scheduled,
            )
        )
        self._cancel: PendingDecision | None = None
        self._closed = False
        self.future.add_done_callback(self._on_future_done)

    def _on_scheduled(self, event: HistoryEvent) -> None:
        self.scheduled_event_id = event.event_id

    def _on_future_done(self, future: asyncio.Future[str | None]) -> None:
        # Only a cancellation by workflow code asks for a cancel decision.
        if not future.cancelled() or self._closed:
            return
        self.request_cancel()

    def request_cancel(self) -> bool:
        """Ask the engine to cancel the activity; False when it was never sent (dropped)."""
        if self._cancel is not None:
            return True
        if self._manager.discard(self.request):
            return False  # never sent: nothing to cancel
        self._cancel = self._manager.add(
            PendingDecision(
                Decision(DecisionType.RequestCancelActivityTask, {"activity_id": self.activity_id})
            )
        )
        return True

    async def wait_for_cancellation(self) -> str | None:
        """The activity's outcome for ``wait_for_cancellation=True``: cancelling the workflow
        task that awaits it sends the cancel request and keeps waiting until the activity
        acknowledges (CancelledError) or finishes anyway (its result or failure stands)."""
        while True:
            try:
                return await asyncio.shield(self.future)
            except asyncio.CancelledError:
                if self.future.done():
                    raise
                if not self.request_cancel():
                    self.future.cancel()
                    raise

    def _label(self) -> str:
        return f"activity {self.activity_type!r} (id {self.activity_id!r})"

    def handle(self, event: HistoryEvent) -> None:
        if event.event_type == EventType.ActivityTaskStarted:
            self.attempt = int(event.get("attempt") or 0)
            return
        if self.future.done():
            return
        match event.event_type:
            case EventType.ActivityTaskCompleted:
                self.future.set_result(event.get("result"))
            case EventType.ActivityTaskFailed:
                reason = str(event.get("reason") or "")
                self.future.set_exception(
                    ActivityFailure(
                        f"{self._label()} failed: {reason}",
                        event.get("details"),
                        reason=reason,
                    )
                )
            case EventType.ActivityTaskTimedOut:
                timeout_type = str(event.get("timeout_type") or "")
                self.future.set_exception(
                    ActivityFailure(
                        f"{self._label()} timed out ({timeout_type})",
                        None,
                        event.get("details"),
                        reason=f"cadenceInternal:Timeout {timeout_type}",
                        timeout_type=timeout_type,
                    )
                )
            case EventType.ActivityTaskCanceled:
                self._closed = True
                self.future.cancel()


# --- timers ------------------------------------------------------------------------------------


class TimerMachine:
    def __init__(
        self,
        *,
        manager: DecisionManager,
        loop: asyncio.AbstractEventLoop,
        timer_id: str,
        seconds: int,
    ) -> None:
        self.timer_id = timer_id
        self.started_event_id: int | None = None
        self._manager = manager
        self.future: asyncio.Future[None] = loop.create_future()
        self.request = manager.add(
            PendingDecision(
                Decision(
                    DecisionType.StartTimer,
                    {"timer_id": timer_id, "start_to_fire_timeout_seconds": seconds},
                ),
                on_recorded=self._on_started,
            )
        )
        self._cancel: PendingDecision | None = None
        self.future.add_done_callback(self._on_future_done)

    def _on_started(self, event: HistoryEvent) -> None:
        self.started_event_id = event.event_id

    def _on_future_done(self, future: asyncio.Future[None]) -> None:
        if not future.cancelled() or self._cancel is not None:
            return
        if self._manager.discard(self.request):
            return
        self._cancel = self._manager.add(
            PendingDecision(Decision(DecisionType.CancelTimer, {"timer_id": self.timer_id}))
        )

    def handle(self, event: HistoryEvent) -> None:
        if event.event_type == EventType.TimerFired and not self.future.done():
            self.future.set_result(None)


# --- child workflows ---------------------------------------------------------------------------

#: Close status of a child run, by the event that reports it.
_CHILD_CLOSE_STATUS: Mapping[EventType, str] = {
    EventType.ChildWorkflowExecutionFailed: "FAILED",
    EventType.ChildWorkflowExecutionCanceled: "CANCELED",
    EventType.ChildWorkflowExecutionTimedOut: "TIMED_OUT",
    EventType.ChildWorkflowExecutionTerminated: "TERMINATED",
}


class ChildWorkflowMachine:
    """A child run: initiated -> started (ids known) -> closed (result or failure).

    Cancelling its result asks for a RequestCancelExternalWorkflowExecution of the child
    (``child_workflow_only``), made by ``request_cancel(domain, workflow_id)`` when given (so
    that the instance routes the request's outcome events), else by a machine of its own.
    """

    def __init__(
        self,
        *,
        manager: DecisionManager,
        loop: asyncio.AbstractEventLoop,
        attributes: dict[str, Any],
        request_cancel: Callable[[str, str], CancelExternalMachine] | None = None,
    ) -> None:
        self.workflow_id: str = attributes["workflow_id"]
        self.workflow_type: str = attributes["workflow_type"]
        self.domain: str = attributes.get("domain") or ""
        self.initiated_event_id: int | None = None
        self._manager = manager
        self._loop = loop
        self._request_cancel = request_cancel
        self.started: asyncio.Future[str] = loop.create_future()
        self.result: asyncio.Future[str | None] = loop.create_future()
        self.request = manager.add(
            PendingDecision(
                Decision(DecisionType.StartChildWorkflowExecution, attributes),
                on_recorded=self._on_initiated,
            )
        )
        self._cancel: CancelExternalMachine | None = None
        self._closed = False
        self.started.add_done_callback(self._on_future_done)
        self.result.add_done_callback(self._on_future_done)

    def _on_initiated(self, event: HistoryEvent) -> None:
        self.initiated_event_id = event.event_id

    def _on_future_done(self, future: asyncio.Future[Any]) -> None:
        if not future.cancelled() or self._cancel is not None or self._closed:
            return
        if self._manager.discard(self.request):
            self._closed = True
            for other in (self.started, self.result):
                if not other.done():
                    other.cancel()
            return
        if self.result.done() and not self.result.cancelled():
            return
        if self._request_cancel is not None:
            self._cancel = self._request_cancel(self.domain, self.workflow_id)
        else:
            self._cancel = CancelExternalMachine(
                manager=self._manager,
                loop=self._loop,
                attributes={
                    "domain": self.domain,
                    "workflow_id": self.workflow_id,
                    "run_id": "",
                    "child_workflow_only": True,
                },
            )
        # Nobody awaits the request itself: the child's close events tell how it ended.
        self._cancel.future.add_done_callback(_retrieve)

    def handle(self, event: HistoryEvent) -> None:
        match event.event_type:
            case EventType.ChildWorkflowExecutionStarted:
                if not self.started.done():
                    execution = event.get("workflow_execution") or {}
                    run_id = event.get("run_id") or execution.get("run_id") or ""
                    self.started.set_result(str(run_id))
                return
            case EventType.StartChildWorkflowExecutionFailed:
                cause = str(event.get("cause") or "")
                error: Exception = (
                    WorkflowExecutionAlreadyStartedError(
                        f"child workflow {self.workflow_id!r} is already running"
                    )
                    if "ALREADY" in cause.upper()
                    else WorkflowFailure(
                        f"child workflow {self.workflow_id!r} could not start: {cause}",
                        reason=cause,
                    )
                )
                for future in (self.started, self.result):
                    if not future.done():
                        future.set_exception(error)
                return
        if self.result.done():
            return
        if event.event_type == EventType.ChildWorkflowExecutionCompleted:
            self.result.set_result(event.get("result"))
            return
        status = _CHILD_CLOSE_STATUS.get(event.event_type)
        if status is not None:
            reason = str(event.get("reason") or event.get("timeout_type") or status)
            self.result.set_exception(
                WorkflowFailure(
                    f"child workflow {self.workflow_type!r} ({self.workflow_id!r}) "
                    f"{status.lower().replace('_', ' ')}: {reason}",
                    reason=reason,
                    details=event.get("details"),
                    close_status=status,
                )
            )


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


# --- signals to other runs ---------------------------------------------------------------------


class _ExternalRequestMachine:
    """A request to another run: initiated -> done | failed; dropped if cancelled unsent.

    ``DONE`` resolves the future; ``FAILED`` fails it with a :class:`~cadenza.error.
    WorkflowFailure` whose ``reason`` is the event's cause (``UNKNOWN_EXTERNAL_WORKFLOW_EXECUTION``
    ...).
    """

    DECISION: DecisionType
    DONE: EventType
    FAILED: EventType

    def __init__(
        self,
        *,
        manager: DecisionManager,
        loop: asyncio.AbstractEventLoop,
        attributes: dict[str, Any],
    ) -> None:
        self.workflow_id: str = attributes["workflow_id"]
        self.run_id: str = attributes.get("run_id") or ""
        self.initiated_event_id: int | None = None
        self.future: asyncio.Future[None] = loop.create_future()
        self._manager = manager
        self.request = manager.add(
            PendingDecision(Decision(self.DECISION, attributes), on_recorded=self._on_initiated)
        )
        self.future.add_done_callback(self._on_future_done)

    def _on_initiated(self, event: HistoryEvent) -> None:
        self.initiated_event_id = event.event_id

    def _on_future_done(self, future: asyncio.Future[None]) -> None:
        if future.cancelled():
            self._manager.discard(self.request)

    def _failure(self, cause: str) -> str:
        raise NotImplementedError

    def handle(self, event: HistoryEvent) -> None:
        if self.future.done():
            return
        if event.event_type is self.DONE:
            self.future.set_result(None)
        elif event.event_type is self.FAILED:
            cause = str(event.get("cause") or "request failed")
            self.future.set_exception(
                WorkflowFailure(self._failure(cause), reason=cause, details=event.get("details"))
            )


class SignalExternalMachine(_ExternalRequestMachine):
    DECISION = DecisionType.SignalExternalWorkflowExecution
    DONE = EventType.ExternalWorkflowExecutionSignaled
    FAILED = EventType.SignalExternalWorkflowExecutionFailed

    def __init__(self, *, manager: DecisionManager, loop: asyncio.AbstractEventLoop,
                 attributes: dict[str, Any]) -> None:
        self.signal_name: str = attributes["signal_name"]
        super().__init__(manager=manager, loop=loop, attributes=attributes)

    def _failure(self, cause: str) -> str:
        return f"signal {self.signal_name!r} to workflow {self.workflow_id!r} failed: {cause}"


# --- cancellation requests to other runs ---------------------------------------------------------


class CancelExternalMachine(_ExternalRequestMachine):
    """A cancellation request to another run (or a child); the future resolves once the
    target recorded it (ExternalWorkflowExecutionCancelRequested)."""

    DECISION = DecisionType.RequestCancelExternalWorkflowExecution
    DONE = EventType.ExternalWorkflowExecutionCancelRequested
    FAILED = EventType.RequestCancelExternalWorkflowExecutionFailed

    def _failure(self, cause: str) -> str:
        target = self.workflow_id + (f" (run {self.run_id})" if self.run_id else "")
        return f"cancellation request to workflow {target!r} failed: {cause}"
