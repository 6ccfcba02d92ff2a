"""The transition function: (state, command, now) -> new state, new events, tasks to dispatch.

Pure on purpose: the same inputs always give the same commit, so the rules of the engine are
tested without AWS, and adapters only persist and deliver what this module decides.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from ..error import (
    ActivityTaskAlreadyStartedError,
    BadRequestError,
    CancellationAlreadyRequestedError,
    HistoryChangedError,
    ServiceError,
    StaleTaskError,
    TimerNotDueError,
    WorkflowExecutionAlreadyCompletedError,
)
from . import activities, cron, runs
from .batch import (
    Batch,
    DecisionHandler,
    Seen,
    Transition,
    check_id,
    check_payload,
    check_reason,
    optional_seconds,
    truncate,
)
from .commands import (
    CancelActivityTask,
    Command,
    CompleteActivityTask,
    CompleteDecisionTask,
    FailActivityTask,
    FailDecisionTask,
    FireTimer,
    RecordActivityHeartbeat,
    RequestCancelWorkflow,
    SignalWorkflow,
    StartActivityTask,
    StartWorkflow,
    TerminateWorkflow,
)
from .decisions import Decision, DecisionType
from .events import EventType, HistoryEvent, from_millis, to_millis
from .limits import MAX_REASON_LENGTH
from .state import (
    PendingActivity,
    PendingDecision,
    PendingTimer,
    RunState,
    RunStatus,
    request_digest,
)
from .tasks import Task, TimerKind, TimerTask


def start(
    command: StartWorkflow, *, now: datetime, signal: SignalWorkflow | None = None
) -> Transition:
    """Create a run: WorkflowExecutionStarted, then its first decision task.

    With ``signal`` (signal-with-start) the signal is recorded between the two, so the first
    decision already sees it.
    """
    if signal is not None:
        _check_signal(signal)
    check_id("workflow_id", command.workflow_id)
    check_id("workflow_type", command.workflow_type)
    check_id("task_list", command.task_list)
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
    if command.delay_start_seconds < 0:
        raise BadRequestError("delay_start cannot be negative", field="delay_start_seconds")
    activities.check_retry_policy(command.retry_policy)
    if command.cron_schedule:
        cron.CronSchedule.parse(command.cron_schedule)
    started = to_millis(now)
    parent = command.parent
    backoff = command.delay_start_seconds
    if command.cron_schedule and not command.continued_execution_run_id:
        # A cron chain's first run waits for the first scheduled time (after any delay).
        backoff += cron.backoff_seconds(command.cron_schedule, started + 1000 * backoff)
    state = RunState(
        domain=command.domain,
        workflow_id=command.workflow_id,
        run_id=command.run_id,
        workflow_type=command.workflow_type,
        task_list=command.task_list,
        execution_start_to_close_timeout_seconds=command.execution_start_to_close_timeout_seconds,
        task_start_to_close_timeout_seconds=command.task_start_to_close_timeout_seconds,
        start_time=started,
        next_event_id=1,
        memo=command.memo,
        search_attributes=command.search_attributes,
        start_request_id=command.request_id,
        parent=parent,
        attempt=command.attempt,
        retry_policy=command.retry_policy,
        first_attempt_time=command.first_attempt_time or started,
        cron_schedule=command.cron_schedule or None,
        first_execution_run_id=command.first_execution_run_id or command.run_id,
        backoff_seconds=backoff,
        awaiting_backoff=backoff > 0,
    )
    batch = Batch(state, now)
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
        cron_schedule=command.cron_schedule or None,
        first_decision_task_backoff_seconds=backoff,
        original_execution_run_id=command.run_id,
        first_execution_run_id=state.first_execution_run_id,
        continued_execution_run_id=command.continued_execution_run_id or None,
        initiator=command.initiator or None,
        last_completion_result=command.last_completion_result,
        continued_failure_reason=command.continued_failure_reason,
        continued_failure_details=command.continued_failure_details,
        parent_workflow_domain=parent.domain if parent else None,
        parent_workflow_execution=(
            {"workflow_id": parent.workflow_id, "run_id": parent.run_id} if parent else None),
        parent_initiated_event_id=parent.initiated_event_id if parent else None,
    )
    if signal is not None:
        _add_signal(batch, signal)
        if signal.request_id:
            batch.state = batch.state.remembering(signal.request_id)
    batch.need_decision()
    return batch.done()


def apply(state: RunState, command: Command, *, now: datetime) -> Transition:
    """Apply a command to an existing run (one handler per command type).

    A command carrying the request id of one the run applied already is that request again
    (its answer was lost and the caller retried): it changes nothing and succeeds, even when
    the first one closed the run.
    """
    if isinstance(command, StartWorkflow):
        raise TypeError("use start() to create a run")
    request_id = getattr(command, "request_id", "")
    if state.knows_request(request_id):
        return Transition(state)
    if not state.is_open:
        raise WorkflowExecutionAlreadyCompletedError(
            f"workflow execution already completed ({state.status})",
            workflow_id=state.workflow_id,
            run_id=state.run_id,
        )
    handler = _COMMANDS.get(type(command))
    if handler is None:
        raise TypeError(f"unknown command {type(command).__name__}")
    transition = handler(state, command, now)
    if request_id and transition.changed:
        transition = replace(transition, state=transition.state.remembering(request_id))
    return transition


def apply_all(
    state: RunState, commands: Sequence[Command], *, now: datetime
) -> tuple[Transition, list[bool | ServiceError]]:
    """Apply several commands to one state as one commit (group commit of a hot run).

    Decision task outcomes go first (a decision is made on the history as read; events of
    the others would make it stale), the rest in their order. Each command is applied to the
    state the previous ones left, as if committed alone; one that fails gets its error and
    changes nothing. Returns the combined transition (one version later than ``state``) and
    each command's outcome: True (changed the run), False (nothing to change), or its error.
    """
    first = sorted(range(len(commands)), key=lambda i: not isinstance(
        commands[i], CompleteDecisionTask | FailDecisionTask))
    outcomes: list[bool | ServiceError] = [False] * len(commands)
    current = state
    events: list[HistoryEvent] = []
    outbox: list[Task] = []
    for index in first:
        try:
            # Every command writes as the commit's version: the one they will share.
            transition = apply(current.with_changes(version=state.version), commands[index],
                               now=now)
        except ServiceError as error:
            outcomes[index] = error
            continue
        outcomes[index] = transition.changed
        if transition.changed:
            current = transition.state
            events += transition.events
            outbox += transition.outbox
    if current is state:
        return Transition(state), outcomes
    return Transition(current.with_changes(version=state.version + 1), tuple(events),
                      tuple(outbox), commit=True), outcomes


def _signal(state: RunState, command: SignalWorkflow, now: datetime) -> Transition:
    _check_signal(command)
    batch = Batch(state, now)
    _add_signal(batch, command)
    batch.need_decision()
    return batch.done()


def _request_cancel(state: RunState, command: RequestCancelWorkflow, now: datetime) -> Transition:
    if state.cancel_requested:
        raise CancellationAlreadyRequestedError(
            "cancellation of this run was already requested",
            workflow_id=state.workflow_id, run_id=state.run_id,
        )
    check_reason(command.cause)
    batch = Batch(state.with_changes(cancel_requested=True), now)
    batch.add(
        EventType.WorkflowExecutionCancelRequested,
        cause=command.cause,
        identity=command.identity,
        request_id=command.request_id,
    )
    batch.need_decision()
    return batch.done()


def _terminate(state: RunState, command: TerminateWorkflow, now: datetime) -> Transition:
    check_reason(command.reason)
    check_payload("details", command.details)
    batch = Batch(state, now)
    batch.close(
        RunStatus.TERMINATED,
        EventType.WorkflowExecutionTerminated,
        reason=command.reason,
        details=command.details,
        identity=command.identity,
        request_id=command.request_id or None,
    )
    return batch.done()


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
        raise HistoryChangedError(
            "new events arrived after the history the decision was made on",
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
    batch = Batch(state.with_changes(decision=None), now)
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
        cancelled += _DECISIONS[item.decision_type].apply(batch, item, completed_id)
        if not batch.state.is_open:
            break
    if command.eager_activities > 0 and batch.state.is_open:
        _start_eagerly(batch, command)
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
        if any(p.wait_for_cancellation for p in cancelled) and batch.state.decision is None:
            # A workflow that waits for the outcome needs a decision task to see it (Cadence
            # schedules one too); one that did not wait has moved on already.
            batch.schedule_decision()
    return batch.done()


def _fail_decision(state: RunState, command: FailDecisionTask, now: datetime) -> Transition:
    """Record the first failure of a decision task and retry it.

    Later attempts that fail again are not written (Cadence does the same): a workflow stuck on a
    bug does not grow its history, and the worker retries the task with a backoff.
    """
    decision = _pending_decision(state, command.scheduled_event_id, command.attempt)
    if decision.attempt > 0:
        return Transition(state)
    batch = Batch(state.with_changes(decision=None), now)
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
        details=truncate(command.details),
        identity=command.identity,
    )
    batch.schedule_decision(attempt=decision.attempt + 1)
    return batch.done()


def _validate_decisions(
    state: RunState, decisions: tuple[Decision, ...] | Any
) -> tuple[str, str] | None:
    """The first invalid decision as (cause, details), or None when all can be applied."""
    seen = Seen(state)
    for index, item in enumerate(decisions):
        kind = item.decision_type
        handler = _DECISIONS.get(kind)
        if handler is None:
            return "UNSUPPORTED_DECISION", f"decision {index} ({kind}) is not supported yet"
        if handler.closes and index != len(decisions) - 1:
            return handler.bad_cause, f"decision {index} ({kind}) must be the last decision"
        try:
            handler.check(state, item, seen)
        except BadRequestError as error:
            return handler.bad_cause, f"decision {index} ({kind}): {error.message}"
    return None


def _activity_timeouts(state: RunState, attributes: Mapping[str, Any]) -> dict[str, int]:
    """Cadence's rule: schedule-to-close, or both schedule-to-start and start-to-close, are
    required; the missing ones are derived from them and none exceeds the run's timeout."""
    workflow_timeout = state.execution_start_to_close_timeout_seconds
    schedule_to_close = optional_seconds(attributes, "schedule_to_close_timeout_seconds")
    schedule_to_start = optional_seconds(attributes, "schedule_to_start_timeout_seconds")
    start_to_close = optional_seconds(attributes, "start_to_close_timeout_seconds")
    heartbeat = optional_seconds(attributes, "heartbeat_timeout_seconds")
    if schedule_to_close is None:
        if schedule_to_start is None or start_to_close is None:
            missing = ("schedule_to_start_timeout_seconds" if schedule_to_start is None
                       else "start_to_close_timeout_seconds")
            raise BadRequestError(
                "either schedule_to_close_timeout or both schedule_to_start_timeout and "
                f"start_to_close_timeout are required ({missing} is missing)",
                field="schedule_to_close_timeout_seconds",
            )
        schedule_to_close = schedule_to_start + start_to_close
    schedule_to_close = min(schedule_to_close, workflow_timeout)
    schedule_to_start = min(schedule_to_start or schedule_to_close, schedule_to_close)
    start_to_close = min(start_to_close or schedule_to_close, schedule_to_close)
    if heartbeat is not None and heartbeat > start_to_close:
        raise BadRequestError(
            f"heartbeat_timeout_seconds ({heartbeat}) is longer than "
            f"start_to_close_timeout_seconds ({start_to_close})",
            field="heartbeat_timeout_seconds",
        )
    return {
        "schedule_to_close_timeout_seconds": schedule_to_close,
        "schedule_to_start_timeout_seconds": schedule_to_start,
        "start_to_close_timeout_seconds": start_to_close,
        "heartbeat_timeout_seconds": heartbeat if heartbeat is not None else 0,
    }


def _check_schedule_activity(state: RunState, item: Decision, seen: Seen) -> None:
    activity_id = str(item.get("activity_id") or "")
    check_id("activity_id", activity_id)
    check_id("activity_type", str(item.get("activity_type") or ""))
    if activity_id in seen.activity_ids:
        raise BadRequestError(f"activity id {activity_id!r} is already in use",
                              field="activity_id")
    seen.activity_ids.add(activity_id)
    _activity_timeouts(state, item.attributes)
    activities.check_retry_policy(item.get("retry_policy"))
    if not isinstance(item.get("wait_for_cancellation", False), bool):
        raise BadRequestError("wait_for_cancellation must be true or false",
                              field="wait_for_cancellation")
    check_payload("input", item.get("input"))


def _apply_schedule_activity(batch: Batch, item: Decision, completed_id: int) \
        -> list[PendingActivity]:
    attributes = item.attributes
    timeouts: dict[str, Any] = dict(_activity_timeouts(batch.state, attributes))
    task_list = str(attributes.get("task_list") or batch.state.task_list)
    activity_id = str(attributes["activity_id"])
    activity_type = str(attributes["activity_type"])
    retry_policy = attributes.get("retry_policy")
    wait = bool(attributes.get("wait_for_cancellation", False))
    scheduled_id = batch.add(
        EventType.ActivityTaskScheduled,
        activity_id=activity_id,
        activity_type=activity_type,
        task_list=task_list,
        input=attributes.get("input"),
        **timeouts,
        retry_policy=retry_policy,
        wait_for_cancellation=wait,
        decision_task_completed_event_id=completed_id,
    )
    pending = PendingActivity(
        scheduled_event_id=scheduled_id,
        activity_id=activity_id,
        activity_type=activity_type,
        task_list=task_list,
        **timeouts,
        scheduled_time=batch.now_ms,
        attempt_scheduled_time=batch.now_ms,
        scheduled_version=batch.version,
        retry_policy=dict(retry_policy) if retry_policy else None,
        wait_for_cancellation=wait,
    )
    batch.state = batch.state.with_changes(activities=(*batch.state.activities, pending))
    _arm_deadline(batch, pending)
    return []


def _check_request_cancel_activity(state: RunState, item: Decision, seen: Seen) -> None:
    check_id("activity_id", str(item.get("activity_id") or ""))


def _apply_request_cancel_activity(batch: Batch, item: Decision, completed_id: int) \
        -> list[PendingActivity]:
    """TRY_CANCEL unless the activity waits for its cancellation and is running: then the
    request is recorded and the activity learns of it at its next heartbeat."""
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
    if target.wait_for_cancellation and target.started:
        batch.replace_activity(replace(target, cancel_requested=True), target.scheduled_event_id)
        return []
    batch.replace_activity(None, target.scheduled_event_id)
    return [target]


def _check_start_timer(state: RunState, item: Decision, seen: Seen) -> None:
    timer_id = str(item.get("timer_id") or "")
    check_id("timer_id", timer_id)
    if timer_id in seen.timer_ids:
        raise BadRequestError(f"timer id {timer_id!r} is already in use", field="timer_id")
    seen.timer_ids.add(timer_id)
    if optional_seconds(item.attributes, "start_to_fire_timeout_seconds") is None:
        raise BadRequestError(
            "start_to_fire_timeout_seconds is required", field="start_to_fire_timeout_seconds"
        )


def _apply_start_timer(batch: Batch, item: Decision, completed_id: int) \
        -> list[PendingActivity]:
    seconds = optional_seconds(item.attributes, "start_to_fire_timeout_seconds")
    assert seconds is not None
    timer_id = str(item.get("timer_id"))
    started_id = batch.add(
        EventType.TimerStarted,
        timer_id=timer_id,
        start_to_fire_timeout_seconds=seconds,
        decision_task_completed_event_id=completed_id,
    )
    timer = PendingTimer(timer_id, started_id, batch.now_ms + 1000 * seconds)
    batch.state = batch.state.with_changes(timers=(*batch.state.timers, timer))
    return []


def _check_cancel_timer(state: RunState, item: Decision, seen: Seen) -> None:
    check_id("timer_id", str(item.get("timer_id") or ""))


def _apply_cancel_timer(batch: Batch, item: Decision, completed_id: int) \
        -> list[PendingActivity]:
    timer_id = str(item.get("timer_id"))
    found = next((t for t in batch.state.timers if t.timer_id == timer_id), None)
    if found is None:
        batch.add(
            EventType.CancelTimerFailed,
            timer_id=timer_id,
            cause="TIMER_ID_UNKNOWN",
            decision_task_completed_event_id=completed_id,
        )
        return []
    batch.add(
        EventType.TimerCanceled,
        timer_id=timer_id,
        started_event_id=found.started_event_id,
        decision_task_completed_event_id=completed_id,
    )
    batch.state = batch.state.with_changes(
        timers=tuple(t for t in batch.state.timers if t.timer_id != timer_id)
    )
    return []


def _check_record_marker(state: RunState, item: Decision, seen: Seen) -> None:
    check_id("marker_name", str(item.get("marker_name") or ""))
    check_payload("details", item.get("details"))


def _apply_record_marker(batch: Batch, item: Decision, completed_id: int) \
        -> list[PendingActivity]:
    batch.add(
        EventType.MarkerRecorded,
        marker_name=str(item.get("marker_name")),
        details=item.get("details"),
        header=item.get("header"),
        decision_task_completed_event_id=completed_id,
    )
    return []


def _check_complete(state: RunState, item: Decision, seen: Seen) -> None:
    check_payload("result", item.get("result"))


def _apply_complete(batch: Batch, item: Decision, completed_id: int) -> list[PendingActivity]:
    runs.close_run(
        batch,
        RunStatus.COMPLETED,
        EventType.WorkflowExecutionCompleted,
        result=item.get("result"),
        decision_task_completed_event_id=completed_id,
    )
    return []


def _check_fail(state: RunState, item: Decision, seen: Seen) -> None:
    check_reason(str(item.get("reason") or ""))
    check_payload("details", item.get("details"))


def _apply_fail(batch: Batch, item: Decision, completed_id: int) -> list[PendingActivity]:
    reason = str(item.get("reason") or "")
    runs.close_run(
        batch,
        RunStatus.FAILED,
        EventType.WorkflowExecutionFailed,
        failure_reason=reason,
        reason=reason,
        details=item.get("details"),
        decision_task_completed_event_id=completed_id,
    )
    return []


def _check_cancel_workflow(state: RunState, item: Decision, seen: Seen) -> None:
    check_payload("details", item.get("details"))


def _apply_cancel_workflow(batch: Batch, item: Decision, completed_id: int) \
        -> list[PendingActivity]:
    batch.close(
        RunStatus.CANCELED,
        EventType.WorkflowExecutionCanceled,
        details=item.get("details"),
        decision_task_completed_event_id=completed_id,
    )
    return []


_DECISIONS: Mapping[DecisionType, DecisionHandler] = {
    **runs.DECISIONS,
    DecisionType.ScheduleActivityTask: DecisionHandler(
        "BAD_SCHEDULE_ACTIVITY_ATTRIBUTES", _check_schedule_activity, _apply_schedule_activity),
    DecisionType.RequestCancelActivityTask: DecisionHandler(
        "BAD_REQUEST_CANCEL_ACTIVITY_ATTRIBUTES", _check_request_cancel_activity,
        _apply_request_cancel_activity),
    DecisionType.StartTimer: DecisionHandler(
        "BAD_START_TIMER_ATTRIBUTES", _check_start_timer, _apply_start_timer),
    DecisionType.CancelTimer: DecisionHandler(
        "BAD_CANCEL_TIMER_ATTRIBUTES", _check_cancel_timer, _apply_cancel_timer),
    DecisionType.RecordMarker: DecisionHandler(
        "BAD_RECORD_MARKER_ATTRIBUTES", _check_record_marker, _apply_record_marker),
    DecisionType.CompleteWorkflowExecution: DecisionHandler(
        "BAD_COMPLETE_WORKFLOW_EXECUTION_ATTRIBUTES", _check_complete, _apply_complete,
        closes=True),
    DecisionType.FailWorkflowExecution: DecisionHandler(
        "BAD_FAIL_WORKFLOW_EXECUTION_ATTRIBUTES", _check_fail, _apply_fail, closes=True),
    DecisionType.CancelWorkflowExecution: DecisionHandler(
        "BAD_CANCEL_WORKFLOW_EXECUTION_ATTRIBUTES", _check_cancel_workflow,
        _apply_cancel_workflow, closes=True),
}


# --- activity tasks ---------------------------------------------------------------------------


def _pending_activity(state: RunState, scheduled_event_id: int, attempt: int) -> PendingActivity:
    pending = state.activity(scheduled_event_id)
    if pending is None or pending.attempt != attempt:
        raise StaleTaskError(
            f"activity task {scheduled_event_id} attempt {attempt} is not pending",
            workflow_id=state.workflow_id,
            run_id=state.run_id,
        )
    return pending


def _arm_deadline(batch: Batch, pending: PendingActivity) -> PendingActivity:
    """Start a new deadline-timer chain for the attempt; older chains become stale."""
    armed = replace(pending, timer_seq=pending.timer_seq + 1)
    batch.replace_activity(armed, pending.scheduled_event_id)
    fire_at, _ = activities.deadline(armed)
    batch.timer(TimerKind.ACTIVITY_TIMEOUT, pending.scheduled_event_id, fire_at,
                attempt=armed.attempt, seq=armed.timer_seq)
    return armed


def startable_activity(state: RunState, scheduled_event_id: int, attempt: int) \
        -> PendingActivity:
    """The attempt a worker may start: pending, this attempt, not started yet (else the
    stale errors a start meets; the redrive's rule for an activity task is this check)."""
    pending = _pending_activity(state, scheduled_event_id, attempt)
    if pending.started:
        raise ActivityTaskAlreadyStartedError(
            f"activity task {scheduled_event_id} attempt {attempt} is already "
            f"running ({pending.started_identity or 'unknown worker'})",
            workflow_id=state.workflow_id, run_id=state.run_id,
        )
    return pending


def _start_activity(state: RunState, command: StartActivityTask, now: datetime) -> Transition:
    pending = startable_activity(state, command.scheduled_event_id, command.attempt)
    batch = Batch(state, now)
    before, _ = activities.deadline(pending)
    started = replace(pending, started_time=batch.now_ms, started_identity=command.identity)
    batch.replace_activity(started, pending.scheduled_event_id)
    if activities.deadline(started)[0] < before:
        # The armed chain would surface too late for the new deadline: arm one for it. When
        # the armed one is earlier it simply re-arms for the new deadline when it surfaces.
        _arm_deadline(batch, started)
    return batch.done()


def _start_eagerly(batch: Batch, command: CompleteDecisionTask) -> None:
    """Record started, for the completing worker, the first ``eager_activities`` activities
    this commit schedules on ``eager_task_list`` (eager execution). Each gets one deadline
    chain, for the started attempt, in place of the one its schedule armed: that timer was
    never committed, so dropping it loses nothing."""
    left = command.eager_activities
    for event in list(batch.events):
        if left <= 0:
            return
        if event.event_type is not EventType.ActivityTaskScheduled \
                or event.attributes.get("task_list") != command.eager_task_list:
            continue
        pending = batch.state.activity(event.event_id)
        if pending is None or pending.started:
            continue
        batch.outbox = [task for task in batch.outbox if not (
            isinstance(task, TimerTask) and task.timer_kind is TimerKind.ACTIVITY_TIMEOUT
            and task.started_event_id == pending.scheduled_event_id)]
        started = replace(pending, started_time=batch.now_ms, started_identity=command.identity,
                          eager_request=request_digest(command.request_id))
        _arm_deadline(batch, started)
        left -= 1


def _heartbeat(state: RunState, command: RecordActivityHeartbeat, now: datetime) -> Transition:
    pending = _pending_activity(state, command.scheduled_event_id, command.attempt)
    check_payload("details", command.details)
    batch = Batch(state, now)
    beat = replace(
        pending,
        last_heartbeat_time=batch.now_ms,
        heartbeat_details=command.details,
        started_time=pending.started_time if pending.started else batch.now_ms,
        started_identity=pending.started_identity or command.identity,
    )
    batch.replace_activity(beat, pending.scheduled_event_id)
    if not pending.started and activities.deadline(beat)[0] < activities.deadline(pending)[0]:
        _arm_deadline(batch, beat)  # the heartbeat started the attempt: as a start would
    return batch.done()


def _add_activity_started(batch: Batch, pending: PendingActivity, identity: str) -> int:
    return batch.add(
        EventType.ActivityTaskStarted,
        at=from_millis(pending.started_time) if pending.started_time else None,
        scheduled_event_id=pending.scheduled_event_id,
        attempt=pending.attempt,
        identity=pending.started_identity or identity,
        last_failure_reason=pending.last_failure_reason,
    )


def _close_activity(batch: Batch, pending: PendingActivity, started_by: str | None,
                    outcome: EventType, **attributes: Any) -> None:
    """The activity's outcome: ActivityTaskStarted of the last attempt (none for an attempt
    that never started: ``started_by`` None), then ``outcome``."""
    started_id = (_add_activity_started(batch, pending, started_by)
                  if started_by is not None else 0)
    batch.add(outcome, scheduled_event_id=pending.scheduled_event_id,
              started_event_id=started_id, **attributes)
    batch.replace_activity(None, pending.scheduled_event_id)
    batch.need_decision()


def _complete_activity(state: RunState, command: CompleteActivityTask, now: datetime) \
        -> Transition:
    pending = _pending_activity(state, command.scheduled_event_id, command.attempt)
    check_payload("result", command.result)
    batch = Batch(state, now)
    _close_activity(batch, pending, command.identity, EventType.ActivityTaskCompleted,
                    result=command.result, identity=command.identity)
    decision = batch.state.decision
    # Handed back only when no other activity of the run is pending: a fan-out's results
    # are better decided together, as the queue gathers them, than one decision each.
    if command.hand_back_task_list and command.request_id and decision is not None \
            and not batch.state.activities \
            and decision.task_list == command.hand_back_task_list \
            and decision.scheduled_event_id >= state.next_event_id:  # scheduled just now
        batch.state = batch.state.with_changes(
            decision=replace(decision, handed_to=request_digest(command.request_id)))
    return batch.done()


def _fail_activity(state: RunState, command: FailActivityTask, now: datetime) -> Transition:
    pending = _pending_activity(state, command.scheduled_event_id, command.attempt)
    check_payload("details", command.details)
    reason = command.reason[:MAX_REASON_LENGTH]
    batch = Batch(state, now)
    delay = activities.retry_delay(pending, reason, batch.now_ms)
    if delay is not None:
        _retry(batch, pending, delay, reason, command.details)
        return batch.done()
    _close_activity(batch, pending, command.identity, EventType.ActivityTaskFailed,
                    reason=reason, details=command.details, identity=command.identity)
    return batch.done()


def _cancel_activity(state: RunState, command: CancelActivityTask, now: datetime) -> Transition:
    pending = _pending_activity(state, command.scheduled_event_id, command.attempt)
    check_payload("details", command.details)
    batch = Batch(state, now)
    _close_activity(batch, pending, command.identity, EventType.ActivityTaskCanceled,
                    activity_id=pending.activity_id, details=command.details,
                    identity=command.identity)
    return batch.done()


def _retry(batch: Batch, pending: PendingActivity, delay: Any, reason: str,
           details: str | None) -> None:
    """The next attempt after ``delay``: no history event, a backoff timer and a new chain."""
    due = batch.now_ms + int(delay.total_seconds() * 1000)
    following = replace(
        pending,
        attempt=pending.attempt + 1,
        attempt_scheduled_time=due,
        started_time=None,
        started_identity="",
        last_heartbeat_time=None,
        last_failure_reason=reason,
        last_failure_details=truncate(details),
    )
    batch.replace_activity(following, pending.scheduled_event_id)
    batch.timer(TimerKind.ACTIVITY_RETRY, pending.scheduled_event_id, due,
                attempt=following.attempt)
    _arm_deadline(batch, following)


def current_deadline(state: RunState, scheduled_event_id: int, attempt: int, seq: int) \
        -> PendingActivity:
    """The activity whose deadline chain ``seq`` of ``attempt`` is still the armed one (else
    stale: what a surfacing deadline meets, and the redrive's rule for it)."""
    pending = state.activity(scheduled_event_id)
    if pending is None or pending.attempt != attempt or pending.timer_seq != seq:
        raise StaleTaskError(
            f"activity timer of {scheduled_event_id} (attempt {attempt}, chain "
            f"{seq}) is not current",
            workflow_id=state.workflow_id, run_id=state.run_id,
        )
    return pending


def _time_out_activity(state: RunState, command: FireTimer, now: datetime) -> Transition:
    pending = current_deadline(state, command.started_event_id, command.attempt, command.seq)
    due, timeout = activities.deadline(pending)
    if to_millis(now) < due:
        raise TimerNotDueError(
            f"activity {pending.activity_id!r} has no timeout due before {due}", fire_at=due,
            workflow_id=state.workflow_id, run_id=state.run_id,
        )
    batch = Batch(state, now)
    reason = activities.timeout_reason(timeout)
    if timeout in activities.RETRYABLE_TIMEOUTS:
        delay = activities.retry_delay(pending, reason, batch.now_ms)
        if delay is not None:
            _retry(batch, pending, delay, reason, None)
            return batch.done()
    _close_activity(batch, pending, "" if pending.started else None,
                    EventType.ActivityTaskTimedOut, timeout_type=str(timeout),
                    details=pending.heartbeat_details,
                    last_failure_reason=pending.last_failure_reason,
                    last_failure_details=pending.last_failure_details)
    return batch.done()


def due_retry(state: RunState, timer: TimerTask, now: datetime) -> PendingActivity:
    """The activity whose next attempt a retry timer hands to its task list.

    Pure check; the caller reads the ActivityTaskScheduled event (the attempt's input) and
    sends the task. Nothing is committed: the task's key makes a redelivered timer's second
    send a duplicate the queue drops, and the attempt's start is recorded when a worker takes it.
    """
    if not state.is_open:
        raise WorkflowExecutionAlreadyCompletedError(
            f"workflow execution already completed ({state.status})",
            workflow_id=state.workflow_id, run_id=state.run_id,
        )
    pending = state.activity(timer.started_event_id)
    if pending is None or pending.attempt != timer.attempt or pending.started:
        raise StaleTaskError(
            f"retry {timer.attempt} of activity {timer.started_event_id} is not pending",
            workflow_id=state.workflow_id, run_id=state.run_id,
        )
    if to_millis(now) < pending.attempt_scheduled_time:
        raise TimerNotDueError(
            "the retry backoff has not passed", fire_at=pending.attempt_scheduled_time,
            workflow_id=state.workflow_id, run_id=state.run_id,
        )
    return pending


# --- timers -----------------------------------------------------------------------------------


def _fire_timer(state: RunState, command: FireTimer, now: datetime) -> Transition:
    """Fire a timer that is still pending and due; anything else is stale (never early)."""
    if command.timer_kind is TimerKind.WORKFLOW_TIMEOUT:
        return _time_out_workflow(state, now)
    if command.timer_kind is TimerKind.WORKFLOW_BACKOFF:
        return _end_backoff(state, now)
    if command.timer_kind is TimerKind.ACTIVITY_TIMEOUT:
        return _time_out_activity(state, command, now)
    if command.timer_kind is TimerKind.ACTIVITY_RETRY:
        raise TypeError("a retry timer is handled by due_retry(), not committed")
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
        raise TimerNotDueError(
            f"timer {command.timer_id!r} is due at {timer.fire_at}", fire_at=timer.fire_at,
            workflow_id=state.workflow_id, run_id=state.run_id,
        )
    remaining = tuple(t for t in state.timers if t is not timer)
    batch = Batch(state.with_changes(timers=remaining), now)
    batch.add(EventType.TimerFired, timer_id=timer.timer_id,
              started_event_id=timer.started_event_id)
    batch.need_decision()
    return batch.done()


def _time_out_workflow(state: RunState, now: datetime) -> Transition:
    """Close the run at its execution_start_to_close_timeout (it is open: apply checked)."""
    due = state.timeout_at
    if to_millis(now) < due:
        raise TimerNotDueError(
            "the workflow execution timeout is not due yet", fire_at=due,
            workflow_id=state.workflow_id, run_id=state.run_id,
        )
    batch = Batch(state, now)
    runs.close_run(batch, RunStatus.TIMED_OUT, EventType.WorkflowExecutionTimedOut,
                   failure_reason=runs.WORKFLOW_TIMEOUT_REASON, timeout_type="START_TO_CLOSE")
    return batch.done()


def _end_backoff(state: RunState, now: datetime) -> Transition:
    """The start backoff passed: the run's first decision task."""
    if not state.awaiting_backoff:
        raise StaleTaskError("the run's start backoff is over", workflow_id=state.workflow_id,
                             run_id=state.run_id)
    due = state.start_time + 1000 * state.backoff_seconds
    if to_millis(now) < due:
        raise TimerNotDueError("the run's start backoff is not over", fire_at=due,
                               workflow_id=state.workflow_id, run_id=state.run_id)
    batch = Batch(state.with_changes(awaiting_backoff=False), now)
    batch.need_decision()
    return batch.done()


_COMMANDS: Mapping[type, Callable[[RunState, Any, datetime], Transition]] = {
    **runs.COMMANDS,
    CompleteDecisionTask: _complete_decision,
    FailDecisionTask: _fail_decision,
    StartActivityTask: _start_activity,
    RecordActivityHeartbeat: _heartbeat,
    CompleteActivityTask: _complete_activity,
    FailActivityTask: _fail_activity,
    CancelActivityTask: _cancel_activity,
    SignalWorkflow: _signal,
    FireTimer: _fire_timer,
    RequestCancelWorkflow: _request_cancel,
    TerminateWorkflow: _terminate,
}


# --- signals ----------------------------------------------------------------------------------


def _check_signal(signal: SignalWorkflow) -> None:
    check_id("signal_name", signal.signal_name)
    check_payload("input", signal.input)


def _add_signal(batch: Batch, signal: SignalWorkflow) -> None:
    batch.add(
        EventType.WorkflowExecutionSignaled,
        signal_name=signal.signal_name,
        input=signal.input,
        identity=signal.identity,
        request_id=signal.request_id,
    )


__all__ = ["Transition", "apply", "apply_all", "check_payload", "due_retry", "start"]
