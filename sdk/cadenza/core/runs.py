"""What runs do to each other and to their own chain, as transition rules.

Children, signals and cancel requests to other runs, continue-as-new, cron and workflow
retries, search attributes. A rule here only writes the source run's events; the change to the
other run is an effect (tasks.EffectTask) that the commit implies and the service performs
after it, so a crash between the two loses nothing. The outcome comes back as a command
(RecordChildStarted, RecordExternalOutcome ...) checked against the pending entry in the state,
so a repeated report is stale and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from ..error import BadRequestError, StaleTaskError
from . import activities, cron
from .batch import (
    Batch,
    DecisionHandler,
    Seen,
    Transition,
    check_id,
    check_payload,
    optional_seconds,
    truncate,
)
from .commands import (
    RecordChildClosed,
    RecordChildStarted,
    RecordChildStartFailed,
    RecordExternalOutcome,
)
from .decisions import Decision, DecisionType
from .events import EventType, HistoryEvent, to_millis
from .ids import next_run_id
from .policies import ParentClosePolicy, ReusePolicy
from .retry import RetryPolicy, next_retry_delay
from .state import PendingActivity, PendingChild, PendingExternal, RunState, RunStatus
from .tasks import TimerKind, activity_task

#: The reason a run's timeout counts as for its retry policy (as for activities).
WORKFLOW_TIMEOUT_REASON = "cadenceInternal:Timeout START_TO_CLOSE"


class Initiator:
    """Who continued a run (WorkflowExecutionContinuedAsNew's ``initiator``)."""

    DECIDER = "Decider"
    RETRY_POLICY = "RetryPolicy"
    CRON_SCHEDULE = "CronSchedule"


# --- closing, and continuing ----------------------------------------------------------------


def close_run(batch: Batch, status: RunStatus, event_type: EventType, *,
              failure_reason: str | None = None, **attributes: Any) -> None:
    """Close the run as the workflow or its timeout asks, unless its retry policy or its cron
    schedule continues it: then the close is WorkflowExecutionContinuedAsNew and the next
    run of the chain waits for its backoff (Cadence's rule: cancel and terminate end a chain).
    """
    state = batch.state
    completed_id = attributes.get("decision_task_completed_event_id")
    if status in (RunStatus.FAILED, RunStatus.TIMED_OUT):
        delay = _retry_backoff(state, failure_reason, batch.now_ms)
        if delay is not None:
            continue_as_new(
                batch, initiator=Initiator.RETRY_POLICY, backoff_seconds=delay,
                attempt=state.attempt + 1, first_attempt_time=state.first_attempt_time,
                failure_reason=failure_reason, failure_details=attributes.get("details"),
                completed_id=completed_id,
            )
            return
    if status in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.TIMED_OUT) \
            and state.cron_schedule:
        continue_as_new(
            batch, initiator=Initiator.CRON_SCHEDULE,
            backoff_seconds=cron.backoff_seconds(state.cron_schedule, batch.now_ms),
            last_completion_result=attributes.get("result"),
            failure_reason=failure_reason if status is not RunStatus.COMPLETED else None,
            failure_details=attributes.get("details") if status is not RunStatus.COMPLETED
            else None,
            completed_id=completed_id,
        )
        return
    batch.close(status, event_type, **attributes)


def _retry_backoff(state: RunState, reason: str | None, now_ms: int) -> int | None:
    policy = RetryPolicy.from_attributes(state.retry_policy)
    if policy is None or state.cancel_requested:
        return None
    elapsed = timedelta(milliseconds=now_ms - (state.first_attempt_time or state.start_time))
    delay = next_retry_delay(policy, state.attempt, elapsed, reason)
    return None if delay is None else max(1, int(delay.total_seconds()))


def continue_as_new(
    batch: Batch, *, initiator: str, backoff_seconds: int = 0, attempt: int = 0,
    first_attempt_time: int = 0, input: str | None = None, same_input: bool = True,
    workflow_type: str | None = None, task_list: str | None = None,
    execution_timeout: int | None = None, task_timeout: int | None = None,
    last_completion_result: str | None = None, failure_reason: str | None = None,
    failure_details: str | None = None, completed_id: int | None = None,
) -> None:
    """Close the run with WorkflowExecutionContinuedAsNew naming the next run.

    The next run's id is the workflow id's next run id, so the effect that creates it (and a
    start that finds the chain mid-step) can only ever create that one run.
    """
    state = batch.state
    batch.close(
        RunStatus.CONTINUED_AS_NEW,
        EventType.WorkflowExecutionContinuedAsNew,
        new_execution_run_id=next_run_id(state.domain, state.workflow_id, state.run_id),
        workflow_type=workflow_type or state.workflow_type,
        task_list=task_list or state.task_list,
        input=None if same_input else input,
        #: True: the next run gets this chain's input again (cron, retry), read by the effect.
        same_input=same_input,
        execution_start_to_close_timeout_seconds=(
            execution_timeout or state.execution_start_to_close_timeout_seconds),
        task_start_to_close_timeout_seconds=(
            task_timeout or state.task_start_to_close_timeout_seconds),
        decision_task_completed_event_id=completed_id,
        backoff_start_interval_seconds=backoff_seconds,
        initiator=initiator,
        attempt=attempt,
        first_attempt_time=first_attempt_time,
        failure_reason=failure_reason,
        failure_details=truncate(failure_details),
        last_completion_result=last_completion_result,
    )


# --- reset -----------------------------------------------------------------------------------


def reset(
    base: RunState, prefix: Sequence[HistoryEvent], reapplied: Sequence[HistoryEvent], *,
    new_run_id: str, reason: str, identity: str, request_id: str, now: datetime,
) -> Transition:
    """A new run whose history is ``prefix`` (up to the DecisionTaskStarted of the decision
    task reset to), that task failed with RESET_WORKFLOW, the ``reapplied`` signals that came
    after it, and a new decision task: the code decides again from there.

    ``base`` is the old run's state as it was just before that decision task completed. Its
    pending activities get their current attempt's task and deadline timer again under the
    new run id (the prefix's own tasks cover timers, children and the first attempts).
    The execution timeout counts again from the reset.
    """
    started = prefix[-1]
    if started.event_type is not EventType.DecisionTaskStarted:
        raise ValueError("a reset prefix ends with the DecisionTaskStarted of the reset task")
    state = base.with_changes(
        run_id=new_run_id, version=0, next_event_id=started.event_id + 1, decision=None,
        start_request_id=request_id, start_time=to_millis(now), backoff_seconds=0,
        awaiting_backoff=False, status=RunStatus.OPEN, close_time=None, close_event_id=None,
        close_attributes=None, request_ids=(),
    )
    batch = Batch(state, now)
    batch.add(EventType.DecisionTaskFailed, scheduled_event_id=started.get("scheduled_event_id"),
              started_event_id=started.event_id, cause="RESET_WORKFLOW", reason=reason,
              base_run_id=base.run_id, new_run_id=new_run_id, identity=identity,
              request_id=request_id)
    for signal in reapplied:
        batch.add(EventType.WorkflowExecutionSignaled, **signal.attributes)
    batch.schedule_decision()
    for pending in batch.state.activities:
        scheduled = next(e for e in prefix if e.event_id == pending.scheduled_event_id)
        batch.outbox.append(activity_task(batch.state, scheduled, attempt=pending.attempt,
                                          scheduled_time=pending.attempt_scheduled_time))
        fire_at, _ = activities.deadline(pending)
        batch.timer(TimerKind.ACTIVITY_TIMEOUT, pending.scheduled_event_id, fire_at,
                    attempt=pending.attempt, seq=pending.timer_seq)
    done = batch.done()
    return Transition(done.state, (*prefix, *done.events), done.outbox, commit=True)


# --- decisions --------------------------------------------------------------------------------


def _optional_mapping(attributes: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    value = attributes.get(name)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise BadRequestError(f"{name} must be an object", field=name)
    return dict(value)


def _check_start_child(state: RunState, item: Decision, seen: Seen) -> None:
    workflow_id = str(item.get("workflow_id") or "")
    check_id("workflow_id", workflow_id)
    check_id("workflow_type", str(item.get("workflow_type") or ""))
    if workflow_id in seen.child_ids:
        raise BadRequestError(f"child workflow id {workflow_id!r} is already in use by this run",
                              field="workflow_id")
    seen.child_ids.add(workflow_id)
    _check_run_options(item)
    ParentClosePolicy.parse(item.get("parent_close_policy"))
    ReusePolicy.parse(item.get("workflow_id_reuse_policy"))
    activities.check_retry_policy(item.get("retry_policy"))
    if item.get("cron_schedule"):
        cron.CronSchedule.parse(str(item.get("cron_schedule")))
    _optional_mapping(item.attributes, "memo")
    _optional_mapping(item.attributes, "search_attributes")


def _check_run_options(item: Decision) -> None:
    """What a decision that starts a run (a child, the next run of a chain) may set."""
    if item.get("task_list"):
        check_id("task_list", str(item.get("task_list")))
    optional_seconds(item.attributes, "execution_start_to_close_timeout_seconds")
    optional_seconds(item.attributes, "task_start_to_close_timeout_seconds")
    check_payload("input", item.get("input"))


def _apply_start_child(batch: Batch, item: Decision, completed_id: int) \
        -> list[PendingActivity]:
    state = batch.state
    attributes = item.attributes
    domain = str(attributes.get("domain") or state.domain)
    workflow_id = str(attributes["workflow_id"])
    workflow_type = str(attributes["workflow_type"])
    policy = ParentClosePolicy.parse(attributes.get("parent_close_policy"))
    initiated_id = batch.add(
        EventType.StartChildWorkflowExecutionInitiated,
        domain=domain,
        workflow_id=workflow_id,
        workflow_type=workflow_type,
        task_list=str(attributes.get("task_list") or state.task_list),
        input=attributes.get("input"),
        execution_start_to_close_timeout_seconds=(
            optional_seconds(attributes, "execution_start_to_close_timeout_seconds")
            or state.execution_start_to_close_timeout_seconds),
        task_start_to_close_timeout_seconds=(
            optional_seconds(attributes, "task_start_to_close_timeout_seconds")
            or state.task_start_to_close_timeout_seconds),
        parent_close_policy=str(policy),
        workflow_id_reuse_policy=str(ReusePolicy.parse(attributes.get("workflow_id_reuse_policy"))),
        retry_policy=attributes.get("retry_policy"),
        cron_schedule=attributes.get("cron_schedule") or None,
        memo=_optional_mapping(attributes, "memo"),
        search_attributes=_optional_mapping(attributes, "search_attributes"),
        control=attributes.get("control"),
        decision_task_completed_event_id=completed_id,
    )
    child = PendingChild(initiated_id, domain, workflow_id, workflow_type, str(policy))
    batch.state = batch.state.with_changes(children=(*batch.state.children, child))
    return []


def _check_external(state: RunState, item: Decision, seen: Seen) -> None:
    check_id("workflow_id", str(item.get("workflow_id") or ""))
    if not isinstance(item.get("child_workflow_only", False), bool):
        raise BadRequestError("child_workflow_only must be true or false",
                              field="child_workflow_only")


def _check_signal_external(state: RunState, item: Decision, seen: Seen) -> None:
    _check_external(state, item, seen)
    check_id("signal_name", str(item.get("signal_name") or ""))
    check_payload("input", item.get("input"))


def _add_external(batch: Batch, item: Decision, event_type: EventType, completed_id: int,
                  **extra: Any) -> None:
    attributes = item.attributes
    domain = str(attributes.get("domain") or batch.state.domain)
    workflow_id = str(attributes["workflow_id"])
    run_id = str(attributes.get("run_id") or "")
    only_child = bool(attributes.get("child_workflow_only", False))
    initiated_id = batch.add(
        event_type,
        domain=domain,
        workflow_id=workflow_id,
        run_id=run_id,
        workflow_execution={"workflow_id": workflow_id, "run_id": run_id},
        control=attributes.get("control"),
        child_workflow_only=only_child,
        decision_task_completed_event_id=completed_id,
        **extra,
    )
    pending = PendingExternal(
        initiated_id, domain, workflow_id, run_id,
        cancel=event_type is EventType.RequestCancelExternalWorkflowExecutionInitiated,
        signal_name=str(extra.get("signal_name") or ""), child_workflow_only=only_child,
    )
    batch.state = batch.state.with_changes(externals=(*batch.state.externals, pending))


def _apply_signal_external(batch: Batch, item: Decision, completed_id: int) \
        -> list[PendingActivity]:
    _add_external(batch, item, EventType.SignalExternalWorkflowExecutionInitiated, completed_id,
                  signal_name=str(item.get("signal_name")), input=item.get("input"))
    return []


def _apply_cancel_external(batch: Batch, item: Decision, completed_id: int) \
        -> list[PendingActivity]:
    _add_external(batch, item, EventType.RequestCancelExternalWorkflowExecutionInitiated,
                  completed_id)
    return []


def _check_continue_as_new(state: RunState, item: Decision, seen: Seen) -> None:
    if item.get("workflow_type"):
        check_id("workflow_type", str(item.get("workflow_type")))
    _check_run_options(item)


def _apply_continue_as_new(batch: Batch, item: Decision, completed_id: int) \
        -> list[PendingActivity]:
    attributes = item.attributes
    continue_as_new(
        batch, initiator=Initiator.DECIDER, input=attributes.get("input"), same_input=False,
        workflow_type=attributes.get("workflow_type") or None,
        task_list=attributes.get("task_list") or None,
        execution_timeout=optional_seconds(attributes, "execution_start_to_close_timeout_seconds"),
        task_timeout=optional_seconds(attributes, "task_start_to_close_timeout_seconds"),
        completed_id=completed_id,
    )
    return []


def _check_upsert(state: RunState, item: Decision, seen: Seen) -> None:
    attributes = _optional_mapping(item.attributes, "search_attributes")
    if not attributes:
        raise BadRequestError("search_attributes must name at least one attribute",
                              field="search_attributes")
    for name in attributes:
        check_id("search attribute name", str(name))


def _apply_upsert(batch: Batch, item: Decision, completed_id: int) -> list[PendingActivity]:
    attributes = dict(item.get("search_attributes"))
    batch.add(EventType.UpsertWorkflowSearchAttributes, search_attributes=attributes,
              decision_task_completed_event_id=completed_id)
    merged = {**(batch.state.search_attributes or {}), **attributes}
    batch.state = batch.state.with_changes(search_attributes=merged)
    return []


DECISIONS: Mapping[DecisionType, DecisionHandler] = {
    DecisionType.StartChildWorkflowExecution: DecisionHandler(
        "BAD_START_CHILD_EXECUTION_ATTRIBUTES", _check_start_child, _apply_start_child),
    DecisionType.SignalExternalWorkflowExecution: DecisionHandler(
        "BAD_SIGNAL_WORKFLOW_EXECUTION_ATTRIBUTES", _check_signal_external,
        _apply_signal_external),
    DecisionType.RequestCancelExternalWorkflowExecution: DecisionHandler(
        "BAD_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_ATTRIBUTES", _check_external,
        _apply_cancel_external),
    DecisionType.ContinueAsNewWorkflowExecution: DecisionHandler(
        "BAD_CONTINUE_AS_NEW_ATTRIBUTES", _check_continue_as_new, _apply_continue_as_new,
        closes=True),
    DecisionType.UpsertWorkflowSearchAttributes: DecisionHandler(
        "BAD_SEARCH_ATTRIBUTES", _check_upsert, _apply_upsert),
}


# --- outcomes reported by other runs ----------------------------------------------------------


def _stale(state: RunState, what: str) -> StaleTaskError:
    return StaleTaskError(f"{what} is not pending", workflow_id=state.workflow_id,
                          run_id=state.run_id)


def _child_attributes(child: PendingChild, run_id: str) -> dict[str, Any]:
    return {
        "initiated_event_id": child.initiated_event_id,
        "domain": child.domain,
        "workflow_execution": {"workflow_id": child.workflow_id, "run_id": run_id},
        "workflow_type": child.workflow_type,
    }


def _without_child(state: RunState, initiated_event_id: int) -> RunState:
    return state.with_changes(
        children=tuple(c for c in state.children if c.initiated_event_id != initiated_event_id))


def _record_child_started(state: RunState, command: RecordChildStarted, now: datetime) \
        -> Transition:
    child = state.child(command.initiated_event_id)
    if child is None or child.started:
        raise _stale(state, f"the start of child {command.initiated_event_id}")
    batch = Batch(state, now)
    _add_child_started(batch, child, command.run_id)
    batch.need_decision()
    return batch.done()


def _add_child_started(batch: Batch, child: PendingChild, run_id: str) -> int:
    started_id = batch.add(EventType.ChildWorkflowExecutionStarted,
                           **_child_attributes(child, run_id))
    batch.state = batch.state.with_changes(children=tuple(
        replace(c, run_id=run_id) if c.initiated_event_id == child.initiated_event_id else c
        for c in batch.state.children))
    return started_id


def _record_child_start_failed(state: RunState, command: RecordChildStartFailed,
                               now: datetime) -> Transition:
    child = state.child(command.initiated_event_id)
    if child is None or child.started:
        raise _stale(state, f"the start of child {command.initiated_event_id}")
    batch = Batch(_without_child(state, child.initiated_event_id), now)
    batch.add(EventType.StartChildWorkflowExecutionFailed,
              initiated_event_id=child.initiated_event_id, domain=child.domain,
              workflow_id=child.workflow_id, workflow_type=child.workflow_type,
              cause=command.cause)
    batch.need_decision()
    return batch.done()


_CHILD_CLOSED: Mapping[RunStatus, tuple[EventType, tuple[str, ...]]] = {
    RunStatus.COMPLETED: (EventType.ChildWorkflowExecutionCompleted, ("result",)),
    RunStatus.FAILED: (EventType.ChildWorkflowExecutionFailed, ("reason", "details")),
    RunStatus.CANCELED: (EventType.ChildWorkflowExecutionCanceled, ("details",)),
    RunStatus.TIMED_OUT: (EventType.ChildWorkflowExecutionTimedOut, ("timeout_type",)),
    RunStatus.TERMINATED: (EventType.ChildWorkflowExecutionTerminated, ("reason", "details")),
}


def _record_child_closed(state: RunState, command: RecordChildClosed, now: datetime) \
        -> Transition:
    child = state.child(command.initiated_event_id)
    if child is None or command.status not in _CHILD_CLOSED:
        raise _stale(state, f"child {command.initiated_event_id}")
    batch = Batch(state, now)
    started_id = 0
    if not child.started:  # the close overtook the start's report: it carries the run id
        started_id = _add_child_started(batch, child, command.run_id)
    event_type, names = _CHILD_CLOSED[command.status]
    batch.add(event_type, **_child_attributes(child, command.run_id),
              started_event_id=started_id or None,
              **{name: command.attributes.get(name) for name in names})
    batch.state = _without_child(batch.state, child.initiated_event_id)
    batch.need_decision()
    return batch.done()


def _record_external_outcome(state: RunState, command: RecordExternalOutcome, now: datetime) \
        -> Transition:
    external = state.external(command.initiated_event_id)
    if external is None:
        raise _stale(state, f"external request {command.initiated_event_id}")
    batch = Batch(state.with_changes(externals=tuple(
        e for e in state.externals if e.initiated_event_id != external.initiated_event_id)), now)
    attributes: dict[str, Any] = {
        "initiated_event_id": external.initiated_event_id,
        "domain": external.domain,
        "workflow_execution": {"workflow_id": external.workflow_id, "run_id": external.run_id},
    }
    if command.failed_cause is not None:
        attributes["cause"] = command.failed_cause
        event_type = (EventType.RequestCancelExternalWorkflowExecutionFailed if external.cancel
                      else EventType.SignalExternalWorkflowExecutionFailed)
    else:
        event_type = (EventType.ExternalWorkflowExecutionCancelRequested if external.cancel
                      else EventType.ExternalWorkflowExecutionSignaled)
    batch.add(event_type, **attributes)
    batch.need_decision()
    return batch.done()


COMMANDS: Mapping[type, Callable[[RunState, Any, datetime], Transition]] = {
    RecordChildStarted: _record_child_started,
    RecordChildStartFailed: _record_child_start_failed,
    RecordChildClosed: _record_child_closed,
    RecordExternalOutcome: _record_external_outcome,
}


__all__ = [
    "COMMANDS",
    "DECISIONS",
    "WORKFLOW_TIMEOUT_REASON",
    "Initiator",
    "close_run",
    "continue_as_new",
    "reset",
]
