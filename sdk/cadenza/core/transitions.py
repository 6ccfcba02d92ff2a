"""The transition function: (state, command, now) -> new state, new events, tasks to dispatch.

Pure on purpose: the same inputs always give the same commit, so the rules of the engine are
tested without AWS, and adapters only persist and deliver what this module decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..error import (
    BadRequestError,
    CancellationAlreadyRequestedError,
    PayloadTooLargeError,
    StaleTaskError,
    WorkflowExecutionAlreadyCompletedError,
)
from .commands import (
    Command,
    CompleteActivityTask,
    CompleteDecisionTask,
    FailActivityTask,
    FailDecisionTask,
    FireTimer,
    RequestCancelWorkflow,
    SignalWorkflow,
    StartWorkflow,
    TerminateWorkflow,
)
from .decisions import Decision, DecisionType
from .events import EventType, HistoryEvent, from_millis, to_millis
from .limits import MAX_ID_LENGTH, MAX_PAYLOAD_BYTES, MAX_REASON_LENGTH, payload_size
from .state import PendingActivity, PendingDecision, PendingTimer, RunState, RunStatus
from .tasks import WORKFLOW_TIMEOUT_TIMER, Task, tasks_of

#: ``StaleTaskError.details["reason"]`` when events arrived after the history a worker replayed:
#: the decision is not stale, the worker must reload and decide again.
HISTORY_CHANGED = "history_changed"


@dataclass(frozen=True, slots=True)
class Transition:
    state: RunState
    events: tuple[HistoryEvent, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.events)

    @property
    def tasks(self) -> tuple[Task, ...]:
        return tasks_of(self.state, self.events)


class _Batch:
    """Events of one commit, numbered densely from the run's next event id."""

    def __init__(self, state: RunState, now: datetime) -> None:
        self.state = state
        # Stored times have millisecond precision; events carry exactly what is stored.
        self.now = from_millis(to_millis(now))
        self.events: list[HistoryEvent] = []

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

    def close(self, status: RunStatus, event_type: EventType, **attributes: Any) -> None:
        event_id = self.add(event_type, **attributes)
        self.state = self.state.with_changes(
            status=status,
            close_time=to_millis(self.now),
            close_event_id=event_id,
            close_attributes=dict(attributes),
            decision=None,
            activities=(),
            timers=(),
        )

    def done(self) -> Transition:
        return Transition(self.state, tuple(self.events))


def start(
    command: StartWorkflow, *, now: datetime, signal: SignalWorkflow | None = None
) -> Transition:
    """Create a run: WorkflowExecutionStarted, then its first decision task.

    With ``signal`` (signal-with-start) the signal is recorded between the two, so the first
    decision already sees it.
    """
    if signal is not None:
        _check_signal(signal)
    _check_id("workflow_id", command.workflow_id)
    _check_id("workflow_type", command.workflow_type)
    _check_id("task_list", command.task_list)
    check_payload("input", command.input)
    if command.execution_start_to_close_timeout_seconds <= 0:
        raise BadRequestError(
            "execution_start_to_close_timeout must be greater than 0",
            field="execution_start_to_close_timeout",
        )
    if command.task_start_to_close_timeout_seconds <= 0:
        raise BadRequestError(
            "task_start_to_close_timeout must be greater than 0",
            field="task_start_to_close_timeout",
        )
    state = RunState(
        domain=command.domain,
        workflow_id=command.workflow_id,
        run_id=command.run_id,
        workflow_type=command.workflow_type,
        task_list=command.task_list,
        execution_start_to_close_timeout_seconds=command.execution_start_to_close_timeout_seconds,
        task_start_to_close_timeout_seconds=command.task_start_to_close_timeout_seconds,
        start_time=to_millis(now),
        next_event_id=1,
        memo=command.memo,
        search_attributes=command.search_attributes,
    )
    batch = _Batch(state, now)
    batch.add(
        EventType.WorkflowExecutionStarted,
        workflow_type=command.workflow_type,
        task_list=command.task_list,
        input=command.input,
        execution_start_to_close_timeout_seconds=command.execution_start_to_close_timeout_seconds,
        task_start_to_close_timeout_seconds=command.task_start_to_close_timeout_seconds,
        identity=command.identity,
        request_id=command.request_id,
        attempt=command.attempt,
        memo=dict(command.memo) if command.memo else None,
        search_attributes=dict(command.search_attributes) if command.search_attributes else None,
        retry_policy=dict(command.retry_policy) if command.retry_policy else None,
        cron_schedule=command.cron_schedule,
        original_execution_run_id=command.run_id,
        first_execution_run_id=command.run_id,
    )
    if signal is not None:
        _add_signal(batch, signal)
    batch.schedule_decision()
    return batch.done()


def apply(state: RunState, command: Command, *, now: datetime) -> Transition:
    """Apply a command to an existing run."""
    if isinstance(command, StartWorkflow):
        raise TypeError("use start() to create a run")
    if not state.is_open:
        raise WorkflowExecutionAlreadyCompletedError(
            f"workflow execution already completed ({state.status})",
            workflow_id=state.workflow_id,
            run_id=state.run_id,
        )
    if isinstance(command, CompleteDecisionTask):
        return _complete_decision(state, command, now)
    if isinstance(command, FailDecisionTask):
        return _fail_decision(state, command, now)
    if isinstance(command, CompleteActivityTask | FailActivityTask):
        return _finish_activity(state, command, now)
    if isinstance(command, SignalWorkflow):
        _check_signal(command)
        batch = _Batch(state, now)
        _add_signal(batch, command)
        if batch.state.decision is None:
            batch.schedule_decision()
        return batch.done()
    if isinstance(command, FireTimer):
        return _fire_timer(state, command, now)
    if isinstance(command, RequestCancelWorkflow):
        if state.cancel_requested:
            raise CancellationAlreadyRequestedError(
                "cancellation of this run was already requested",
                workflow_id=state.workflow_id, run_id=state.run_id,
            )
        _check_reason(command.cause)
        batch = _Batch(state.with_changes(cancel_requested=True), now)
        batch.add(
            EventType.WorkflowExecutionCancelRequested,
            cause=command.cause,
            identity=command.identity,
            request_id=command.request_id,
        )
        if batch.state.decision is None:
            batch.schedule_decision()
        return batch.done()
    if isinstance(command, TerminateWorkflow):
        _check_reason(command.reason)
        check_payload("details", command.details)
        batch = _Batch(state, now)
        batch.close(
            RunStatus.TERMINATED,
            EventType.WorkflowExecutionTerminated,
            reason=command.reason,
            details=command.details,
            identity=command.identity,
        )
        return batch.done()
    raise TypeError(f"unknown command {type(command).__name__}")


# --- decision tasks ---------------------------------------------------------------------------


def _pending_decision(
    state: RunState, scheduled_event_id: int, attempt: int
) -> PendingDecision:
    decision = state.decision
    if decision is None or decision.scheduled_event_id != scheduled_event_id:
        raise StaleTaskError(
            f"decision task {scheduled_event_id} is not pending",
            workflow_id=state.workflow_id,
            run_id=state.run_id,
        )
    if decision.attempt != attempt:
        raise StaleTaskError(
            f"decision task {scheduled_event_id} attempt {attempt} is not the current attempt",
            workflow_id=state.workflow_id,
            run_id=state.run_id,
        )
    return decision


def _started_time(state: RunState, started_at: datetime, now: datetime) -> datetime:
    """When the worker says it started, kept between the run's start and now."""
    started = from_millis(to_millis(min(started_at, now)))
    return max(started, from_millis(state.start_time))


def _complete_decision(
    state: RunState, command: CompleteDecisionTask, now: datetime
) -> Transition:
    decision = _pending_decision(state, command.scheduled_event_id, command.attempt)
    if command.history_length != state.next_event_id:
        raise StaleTaskError(
            "new events arrived after the history the decision was made on",
            reason=HISTORY_CHANGED,
            workflow_id=state.workflow_id,
            run_id=state.run_id,
        )
    problem = _validate_decisions(state, command.decisions)
    if problem is not None:
        cause, details = problem
        return _fail_decision(
            state,
            FailDecisionTask(
                scheduled_event_id=command.scheduled_event_id,
                attempt=command.attempt,
                started_at=command.started_at,
                cause=cause,
                details=details,
                identity=command.identity,
            ),
            now,
        )
    batch = _Batch(state.with_changes(decision=None), now)
    started_id = batch.add(
        EventType.DecisionTaskStarted,
        at=_started_time(state, command.started_at, now),
        scheduled_event_id=decision.scheduled_event_id,
        identity=command.identity,
    )
    completed_id = batch.add(
        EventType.DecisionTaskCompleted,
        scheduled_event_id=decision.scheduled_event_id,
        started_event_id=started_id,
        identity=command.identity,
        binary_checksum=command.binary_checksum,
    )
    cancelled: list[PendingActivity] = []
    for item in command.decisions:
        cancelled += _apply_decision(batch, item, completed_id)
        if not batch.state.is_open:
            break
    if batch.state.is_open:
        # Written after the decisions' own events, so each decision's events stay together.
        for pending in cancelled:
            batch.add(
                EventType.ActivityTaskCanceled,
                scheduled_event_id=pending.scheduled_event_id,
                started_event_id=0,
                activity_id=pending.activity_id,
                identity=command.identity,
            )
    return batch.done()


def _fail_decision(state: RunState, command: FailDecisionTask, now: datetime) -> Transition:
    """Record the first failure of a decision task and retry it.

    Later attempts that fail again are not written (Cadence does the same): a workflow stuck on a
    bug does not grow its history, and the worker retries the task with a backoff.
    """
    decision = _pending_decision(state, command.scheduled_event_id, command.attempt)
    if decision.attempt > 0:
        return Transition(state)
    batch = _Batch(state.with_changes(decision=None), now)
    started_id = batch.add(
        EventType.DecisionTaskStarted,
        at=_started_time(state, command.started_at, now),
        scheduled_event_id=decision.scheduled_event_id,
        identity=command.identity,
    )
    batch.add(
        EventType.DecisionTaskFailed,
        scheduled_event_id=decision.scheduled_event_id,
        started_event_id=started_id,
        cause=command.cause,
        details=_truncate(command.details),
        identity=command.identity,
    )
    batch.schedule_decision(attempt=decision.attempt + 1)
    return batch.done()


def _truncate(details: str | None) -> str | None:
    if details is None or payload_size(details) <= MAX_PAYLOAD_BYTES:
        return details
    return details.encode("utf-8")[: MAX_PAYLOAD_BYTES - 64].decode("utf-8", "ignore") + (
        "\n... (truncated)"
    )


_BAD_CAUSE = {
    DecisionType.ScheduleActivityTask: "BAD_SCHEDULE_ACTIVITY_ATTRIBUTES",
    DecisionType.RequestCancelActivityTask: "BAD_REQUEST_CANCEL_ACTIVITY_ATTRIBUTES",
    DecisionType.CompleteWorkflowExecution: "BAD_COMPLETE_WORKFLOW_EXECUTION_ATTRIBUTES",
    DecisionType.FailWorkflowExecution: "BAD_FAIL_WORKFLOW_EXECUTION_ATTRIBUTES",
    DecisionType.CancelWorkflowExecution: "BAD_CANCEL_WORKFLOW_EXECUTION_ATTRIBUTES",
    DecisionType.StartTimer: "BAD_START_TIMER_ATTRIBUTES",
    DecisionType.CancelTimer: "BAD_CANCEL_TIMER_ATTRIBUTES",
}
_SUPPORTED = frozenset(_BAD_CAUSE)
_CLOSING = frozenset(
    {
        DecisionType.CompleteWorkflowExecution,
        DecisionType.FailWorkflowExecution,
        DecisionType.CancelWorkflowExecution,
    }
)


def _validate_decisions(
    state: RunState, decisions: tuple[Decision, ...] | Any
) -> tuple[str, str] | None:
    """The first invalid decision as (cause, details), or None when all can be applied."""
    activity_ids = {pending.activity_id for pending in state.activities}
    timer_ids = {timer.timer_id for timer in state.timers}
    for index, item in enumerate(decisions):
        kind = item.decision_type
        if kind not in _SUPPORTED:
            return "UNSUPPORTED_DECISION", f"decision {index} ({kind}) is not supported yet"
        if kind in _CLOSING and index != len(decisions) - 1:
            return _BAD_CAUSE[kind], f"decision {index} ({kind}) must be the last decision"
        try:
            if kind is DecisionType.ScheduleActivityTask:
                activity_id = str(item.get("activity_id") or "")
                _check_id("activity_id", activity_id)
                _check_id("activity_type", str(item.get("activity_type") or ""))
                if activity_id in activity_ids:
                    raise BadRequestError(
                        f"activity id {activity_id!r} is already in use", field="activity_id"
                    )
                activity_ids.add(activity_id)
                _activity_timeouts(state, item.attributes)
                check_payload("input", item.get("input"))
            elif kind is DecisionType.CompleteWorkflowExecution:
                check_payload("result", item.get("result"))
            elif kind is DecisionType.FailWorkflowExecution:
                _check_reason(str(item.get("reason") or ""))
                check_payload("details", item.get("details"))
            elif kind is DecisionType.RequestCancelActivityTask:
                _check_id("activity_id", str(item.get("activity_id") or ""))
            elif kind is DecisionType.CancelWorkflowExecution:
                check_payload("details", item.get("details"))
            elif kind is DecisionType.StartTimer:
                timer_id = str(item.get("timer_id") or "")
                _check_id("timer_id", timer_id)
                if timer_id in timer_ids:
                    raise BadRequestError(
                        f"timer id {timer_id!r} is already in use", field="timer_id"
                    )
                timer_ids.add(timer_id)
                if _optional_seconds(item.attributes, "start_to_fire_timeout_seconds") is None:
                    raise BadRequestError(
                        "start_to_fire_timeout_seconds is required",
                        field="start_to_fire_timeout_seconds",
                    )
            elif kind is DecisionType.CancelTimer:
                _check_id("timer_id", str(item.get("timer_id") or ""))
        except BadRequestError as error:
            return _BAD_CAUSE[kind], f"decision {index} ({kind}): {error.message}"
    return None


def _optional_seconds(attributes: Mapping[str, Any], name: str) -> int | None:
    value = attributes.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise BadRequestError(f"{name} must be a positive number of seconds", field=name)
    return int(value)


def _activity_timeouts(state: RunState, attributes: Mapping[str, Any]) -> dict[str, int]:
    """Cadence's rules: schedule_to_close or start_to_close must be given; the rest is derived."""
    workflow_timeout = state.execution_start_to_close_timeout_seconds
    schedule_to_close = _optional_seconds(attributes, "schedule_to_close_timeout_seconds")
    schedule_to_start = _optional_seconds(attributes, "schedule_to_start_timeout_seconds")
    start_to_close = _optional_seconds(attributes, "start_to_close_timeout_seconds")
    heartbeat = _optional_seconds(attributes, "heartbeat_timeout_seconds")
    if schedule_to_close is None and start_to_close is None:
        raise BadRequestError(
            "one of schedule_to_close_timeout and start_to_close_timeout is required",
            field="start_to_close_timeout",
        )
    if schedule_to_close is None:
        assert start_to_close is not None
        schedule_to_close = min(workflow_timeout, (schedule_to_start or workflow_timeout)
                                + start_to_close)
    schedule_to_close = min(schedule_to_close, workflow_timeout)
    if schedule_to_start is None:
        schedule_to_start = schedule_to_close
    if start_to_close is None:
        start_to_close = schedule_to_close
    return {
        "schedule_to_close_timeout_seconds": schedule_to_close,
        "schedule_to_start_timeout_seconds": min(schedule_to_start, schedule_to_close),
        "start_to_close_timeout_seconds": min(start_to_close, schedule_to_close),
        "heartbeat_timeout_seconds": heartbeat if heartbeat is not None else 0,
    }


def _apply_decision(batch: _Batch, item: Decision, completed_id: int) -> list[PendingActivity]:
    """Apply one decision; returns the activities it cancelled (their Canceled events follow).

    An activity's start is not recorded until its result arrives, so a cancelled activity is
    treated as not started (Cadence's TRY_CANCEL): it is cancelled at once, and a result that
    arrives later is stale.
    """
    state = batch.state
    kind = item.decision_type
    if kind is DecisionType.ScheduleActivityTask:
        attributes = item.attributes
        timeouts: dict[str, Any] = dict(_activity_timeouts(state, attributes))
        task_list = str(attributes.get("task_list") or state.task_list)
        activity_id = str(attributes["activity_id"])
        activity_type = str(attributes["activity_type"])
        scheduled_id = batch.add(
            EventType.ActivityTaskScheduled,
            activity_id=activity_id,
            activity_type=activity_type,
            task_list=task_list,
            input=attributes.get("input"),
            **timeouts,
            retry_policy=attributes.get("retry_policy"),
            decision_task_completed_event_id=completed_id,
        )
        pending = PendingActivity(
            scheduled_event_id=scheduled_id,
            activity_id=activity_id,
            activity_type=activity_type,
            task_list=task_list,
            **timeouts,
        )
        batch.state = batch.state.with_changes(activities=(*batch.state.activities, pending))
    elif kind is DecisionType.CompleteWorkflowExecution:
        batch.close(
            RunStatus.COMPLETED,
            EventType.WorkflowExecutionCompleted,
            result=item.get("result"),
            decision_task_completed_event_id=completed_id,
        )
    elif kind is DecisionType.FailWorkflowExecution:
        batch.close(
            RunStatus.FAILED,
            EventType.WorkflowExecutionFailed,
            reason=str(item.get("reason") or ""),
            details=item.get("details"),
            decision_task_completed_event_id=completed_id,
        )
    elif kind is DecisionType.CancelWorkflowExecution:
        batch.close(
            RunStatus.CANCELED,
            EventType.WorkflowExecutionCanceled,
            details=item.get("details"),
            decision_task_completed_event_id=completed_id,
        )
    elif kind is DecisionType.StartTimer:
        seconds = _optional_seconds(item.attributes, "start_to_fire_timeout_seconds")
        assert seconds is not None
        timer_id = str(item.get("timer_id"))
        started_id = batch.add(
            EventType.TimerStarted,
            timer_id=timer_id,
            start_to_fire_timeout_seconds=seconds,
            decision_task_completed_event_id=completed_id,
        )
        timer = PendingTimer(timer_id, started_id, to_millis(batch.now) + 1000 * seconds)
        batch.state = batch.state.with_changes(timers=(*batch.state.timers, timer))
    elif kind is DecisionType.CancelTimer:
        timer_id = str(item.get("timer_id"))
        found = next((t for t in batch.state.timers if t.timer_id == timer_id), None)
        if found is None:
            batch.add(
                EventType.CancelTimerFailed,
                timer_id=timer_id,
                cause="TIMER_ID_UNKNOWN",
                decision_task_completed_event_id=completed_id,
            )
        else:
            batch.add(
                EventType.TimerCanceled,
                timer_id=timer_id,
                started_event_id=found.started_event_id,
                decision_task_completed_event_id=completed_id,
            )
            batch.state = batch.state.with_changes(
                timers=tuple(t for t in batch.state.timers if t.timer_id != timer_id)
            )
    elif kind is DecisionType.RequestCancelActivityTask:
        activity_id = str(item.get("activity_id"))
        target = next((a for a in batch.state.activities if a.activity_id == activity_id), None)
        if target is None:
            batch.add(
                EventType.RequestCancelActivityTaskFailed,
                activity_id=activity_id,
                cause="ACTIVITY_ID_UNKNOWN",
                decision_task_completed_event_id=completed_id,
            )
            return []
        batch.add(
            EventType.ActivityTaskCancelRequested,
            activity_id=activity_id,
            decision_task_completed_event_id=completed_id,
        )
        batch.state = batch.state.with_changes(
            activities=tuple(a for a in batch.state.activities if a.activity_id != activity_id)
        )
        return [target]
    else:  # pragma: no cover - _validate_decisions refuses these first
        raise TypeError(f"unsupported decision {kind}")
    return []


# --- activity tasks ---------------------------------------------------------------------------


def _finish_activity(
    state: RunState, command: CompleteActivityTask | FailActivityTask, now: datetime
) -> Transition:
    pending = state.activity(command.scheduled_event_id)
    if pending is None or pending.attempt != command.attempt:
        raise StaleTaskError(
            f"activity task {command.scheduled_event_id} attempt {command.attempt} is not pending",
            workflow_id=state.workflow_id,
            run_id=state.run_id,
        )
    remaining = tuple(
        a for a in state.activities if a.scheduled_event_id != pending.scheduled_event_id
    )
    batch = _Batch(state.with_changes(activities=remaining), now)
    started_id = batch.add(
        EventType.ActivityTaskStarted,
        scheduled_event_id=pending.scheduled_event_id,
        attempt=pending.attempt,
        identity=command.identity,
    )
    if isinstance(command, CompleteActivityTask):
        check_payload("result", command.result)
        batch.add(
            EventType.ActivityTaskCompleted,
            scheduled_event_id=pending.scheduled_event_id,
            started_event_id=started_id,
            result=command.result,
            identity=command.identity,
        )
    else:
        check_payload("details", command.details)
        batch.add(
            EventType.ActivityTaskFailed,
            scheduled_event_id=pending.scheduled_event_id,
            started_event_id=started_id,
            reason=command.reason[:MAX_REASON_LENGTH],
            details=command.details,
            identity=command.identity,
        )
    if batch.state.decision is None:
        batch.schedule_decision()
    return batch.done()


# --- timers -----------------------------------------------------------------------------------

#: ``StaleTaskError.details["reason"]`` for a timer message that arrived before its time.
TIMER_NOT_DUE = "timer_not_due"


def _fire_timer(state: RunState, command: FireTimer, now: datetime) -> Transition:
    """Fire a timer that is still pending and due; anything else is stale (never early)."""
    if command.timer_id == WORKFLOW_TIMEOUT_TIMER:
        return _time_out_workflow(state, now)
    timer = next(
        (t for t in state.timers
         if t.timer_id == command.timer_id and t.started_event_id == command.started_event_id),
        None,
    )
    if timer is None:
        raise StaleTaskError(
            f"timer {command.timer_id!r} ({command.started_event_id}) is not pending",
            workflow_id=state.workflow_id, run_id=state.run_id,
        )
    if to_millis(now) < timer.fire_at:
        raise StaleTaskError(
            f"timer {command.timer_id!r} is due at {timer.fire_at}",
            reason=TIMER_NOT_DUE, fire_at=timer.fire_at,
            workflow_id=state.workflow_id, run_id=state.run_id,
        )
    remaining = tuple(t for t in state.timers if t is not timer)
    batch = _Batch(state.with_changes(timers=remaining), now)
    batch.add(EventType.TimerFired, timer_id=timer.timer_id,
              started_event_id=timer.started_event_id)
    if batch.state.decision is None:
        batch.schedule_decision()
    return batch.done()


def _time_out_workflow(state: RunState, now: datetime) -> Transition:
    """Close the run at its execution_start_to_close_timeout (it is open: apply checked)."""
    due = state.start_time + 1000 * state.execution_start_to_close_timeout_seconds
    if to_millis(now) < due:
        raise StaleTaskError(
            "the workflow execution timeout is not due yet", reason=TIMER_NOT_DUE, fire_at=due,
            workflow_id=state.workflow_id, run_id=state.run_id,
        )
    batch = _Batch(state, now)
    batch.close(RunStatus.TIMED_OUT, EventType.WorkflowExecutionTimedOut,
                timeout_type="START_TO_CLOSE")
    return batch.done()


# --- signals ----------------------------------------------------------------------------------


def _check_signal(signal: SignalWorkflow) -> None:
    _check_id("signal_name", signal.signal_name)
    check_payload("input", signal.input)


def _add_signal(batch: _Batch, signal: SignalWorkflow) -> None:
    batch.add(
        EventType.WorkflowExecutionSignaled,
        signal_name=signal.signal_name,
        input=signal.input,
        identity=signal.identity,
        request_id=signal.request_id,
    )


# --- input checks -----------------------------------------------------------------------------


def _check_id(name: str, value: str) -> None:
    if not value or not value.strip():
        raise BadRequestError(f"{name} is required", field=name)
    if len(value) > MAX_ID_LENGTH:
        raise BadRequestError(
            f"{name} is longer than {MAX_ID_LENGTH} characters", field=name
        )


def _check_reason(reason: str) -> None:
    if len(reason) > MAX_REASON_LENGTH:
        raise BadRequestError(
            f"reason is longer than {MAX_REASON_LENGTH} characters", field="reason"
        )


def check_payload(name: str, payload: str | None) -> None:
    """PayloadTooLargeError, naming the limit, for a payload over it."""
    size = payload_size(payload)
    if size > MAX_PAYLOAD_BYTES:
        raise PayloadTooLargeError(
            f"{name} is {size} bytes; the limit is {MAX_PAYLOAD_BYTES} bytes",
            field=name,
            limit=MAX_PAYLOAD_BYTES,
            size=size,
        )


__all__ = ["HISTORY_CHANGED", "TIMER_NOT_DUE", "Transition", "apply", "check_payload", "start"]
