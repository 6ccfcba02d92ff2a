"""The pure transition function: start, decisions, activities, termination, stale tasks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cadenza.core import (
    CompleteActivityTask,
    CompleteDecisionTask,
    Decision,
    DecisionType,
    EventType,
    FailActivityTask,
    FailDecisionTask,
    FireTimer,
    RequestCancelWorkflow,
    RunState,
    RunStatus,
    SignalWorkflow,
    StartWorkflow,
    TerminateWorkflow,
    apply,
    start,
    to_millis,
)
from cadenza.core.limits import MAX_PAYLOAD_BYTES
from cadenza.core.tasks import TimerKind
from cadenza.error import (
    BadRequestError,
    CancellationAlreadyRequestedError,
    HistoryChangedError,
    PayloadTooLargeError,
    StaleTaskError,
    TimerNotDueError,
    WorkflowExecutionAlreadyCompletedError,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def started(**overrides: object) -> RunState:
    command = dict(
        domain="default", workflow_id="order-1", run_id="run-1", workflow_type="Order",
        task_list="orders", input='"x"', execution_start_to_close_timeout_seconds=60,
        task_start_to_close_timeout_seconds=10,
    )
    command.update(overrides)
    return start(StartWorkflow(**command), now=T0).state  # type: ignore[arg-type]


def schedule(activity_id: str, activity_type: str = "reserve", **extra: object) -> Decision:
    # Cadence's rule: schedule_to_close, or both schedule_to_start and start_to_close.
    attributes = {"activity_id": activity_id, "activity_type": activity_type, "input": '"a"',
                  "schedule_to_start_timeout_seconds": 10, "start_to_close_timeout_seconds": 5,
                  **extra}
    return Decision(DecisionType.ScheduleActivityTask, attributes)


def decide(state: RunState, *decisions: Decision, at: datetime = T0) -> object:
    assert state.decision is not None
    return apply(state, CompleteDecisionTask(
        scheduled_event_id=state.decision.scheduled_event_id, attempt=state.decision.attempt,
        history_length=state.next_event_id, started_at=at, decisions=decisions,
    ), now=at + timedelta(milliseconds=5))


def test_start_writes_started_and_first_decision_task() -> None:
    transition = start(StartWorkflow(
        domain="default", workflow_id="w", run_id="r", workflow_type="T", task_list="tl",
        input=None, execution_start_to_close_timeout_seconds=30,
        task_start_to_close_timeout_seconds=10,
    ), now=T0)
    assert [e.event_type for e in transition.events] == [
        EventType.WorkflowExecutionStarted, EventType.DecisionTaskScheduled]
    assert [e.event_id for e in transition.events] == [1, 2]
    assert transition.state.next_event_id == 3
    assert transition.state.decision is not None
    assert transition.state.decision.scheduled_event_id == 2
    timeout, task = transition.tasks
    # The run's own execution timeout is armed with its start.
    assert (timeout.kind, timeout.fire_at) == ("timer", to_millis(T0) + 30_000)
    assert (task.kind, task.scheduled_event_id, task.task_list) == ("decision", 2, "tl")


@pytest.mark.parametrize("field,value", [("task_list", ""), ("workflow_type", ""),
                                         ("execution_start_to_close_timeout_seconds", 0)])
def test_start_rejects_bad_input_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(BadRequestError) as caught:
        started(**{field: value})
    assert field.removesuffix("_seconds") in str(caught.value.field)


def test_start_refuses_oversized_input_with_the_limit() -> None:
    with pytest.raises(PayloadTooLargeError) as caught:
        started(input="x" * (MAX_PAYLOAD_BYTES + 1))
    assert str(MAX_PAYLOAD_BYTES) in str(caught.value)


def test_decision_schedules_activities_with_dense_ids_and_tasks() -> None:
    state = started()
    transition = decide(state, schedule("0"), schedule("1", "charge"))
    events = transition.events  # type: ignore[attr-defined]
    assert [e.event_type for e in events] == [
        EventType.DecisionTaskStarted, EventType.DecisionTaskCompleted,
        EventType.ActivityTaskScheduled, EventType.ActivityTaskScheduled]
    assert [e.event_id for e in events] == [3, 4, 5, 6]
    assert events[2].attributes["decision_task_completed_event_id"] == 4
    assert events[2].attributes["task_list"] == "orders"  # defaults to the workflow's
    # No schedule_to_close given: all attempts together get schedule-to-start + start-to-close.
    assert events[2].attributes["schedule_to_close_timeout_seconds"] == 15
    assert events[2].attributes["schedule_to_start_timeout_seconds"] == 10
    assert events[2].attributes["start_to_close_timeout_seconds"] == 5
    new_state = transition.state  # type: ignore[attr-defined]
    assert new_state.decision is None
    assert [a.activity_id for a in new_state.activities] == ["0", "1"]
    tasks = transition.tasks  # type: ignore[attr-defined]
    # Each activity task comes with one timer for its earliest deadline (schedule-to-start).
    assert [t.kind for t in tasks] == ["activity", "activity", "timer", "timer"]
    assert [(t.timer_kind, t.started_event_id, t.attempt, t.fire_at) for t in tasks[2:]] == [
        (TimerKind.ACTIVITY_TIMEOUT, 5, 0, to_millis(T0) + 5 + 10_000),
        (TimerKind.ACTIVITY_TIMEOUT, 6, 0, to_millis(T0) + 5 + 10_000),
    ]


def test_activity_completion_schedules_one_decision_task() -> None:
    state = decide(started(), schedule("0"), schedule("1")).state  # type: ignore[attr-defined]
    first = apply(state, CompleteActivityTask(scheduled_event_id=5, attempt=0, result='"ok"'),
                  now=T0)
    assert [e.event_type for e in first.events] == [
        EventType.ActivityTaskStarted, EventType.ActivityTaskCompleted,
        EventType.DecisionTaskScheduled]
    assert first.events[1].attributes["started_event_id"] == first.events[0].event_id
    second = apply(first.state, FailActivityTask(scheduled_event_id=6, attempt=0,
                                                 reason="CardDeclined", details="no"), now=T0)
    # A decision task is already pending: no second one.
    assert [e.event_type for e in second.events] == [
        EventType.ActivityTaskStarted, EventType.ActivityTaskFailed]
    assert second.tasks == ()
    assert second.events[1].attributes["reason"] == "CardDeclined"


def test_duplicate_activity_completion_is_stale() -> None:
    state = decide(started(), schedule("0")).state  # type: ignore[attr-defined]
    done = apply(state, CompleteActivityTask(scheduled_event_id=5, attempt=0), now=T0).state
    with pytest.raises(StaleTaskError):
        apply(done, CompleteActivityTask(scheduled_event_id=5, attempt=0), now=T0)
    with pytest.raises(StaleTaskError):
        apply(state, CompleteActivityTask(scheduled_event_id=5, attempt=3), now=T0)


def test_duplicate_decision_completion_is_stale() -> None:
    state = started()
    after = decide(state, schedule("0")).state  # type: ignore[attr-defined]
    with pytest.raises(StaleTaskError):
        apply(after, CompleteDecisionTask(scheduled_event_id=2, attempt=0,
                                          history_length=after.next_event_id, started_at=T0),
              now=T0)


def test_decision_made_on_old_history_must_be_remade() -> None:
    state = decide(started(), schedule("0"), schedule("1")).state  # type: ignore[attr-defined]
    state = apply(state, CompleteActivityTask(scheduled_event_id=5, attempt=0), now=T0).state
    seen = state.next_event_id
    state = apply(state, CompleteActivityTask(scheduled_event_id=6, attempt=0), now=T0).state
    assert state.decision is not None
    with pytest.raises(HistoryChangedError):
        apply(state, CompleteDecisionTask(
            scheduled_event_id=state.decision.scheduled_event_id, attempt=0,
            history_length=seen, started_at=T0), now=T0)


def test_complete_workflow_closes_the_run() -> None:
    transition = decide(started(), Decision(DecisionType.CompleteWorkflowExecution,
                                            {"result": '"done"'}))
    state = transition.state  # type: ignore[attr-defined]
    assert state.status is RunStatus.COMPLETED
    assert state.close_attributes["result"] == '"done"'
    assert transition.events[-1].event_type is EventType.WorkflowExecutionCompleted  # type: ignore
    with pytest.raises(WorkflowExecutionAlreadyCompletedError):
        apply(state, TerminateWorkflow(reason="late"), now=T0)


def test_invalid_decision_fails_the_decision_task_once_and_retries() -> None:
    state = started()
    failed = decide(state, Decision(DecisionType.ScheduleActivityTask,
                                    {"activity_id": "0", "activity_type": "x"}))
    events = failed.events  # type: ignore[attr-defined]
    assert [e.event_type for e in events] == [
        EventType.DecisionTaskStarted, EventType.DecisionTaskFailed,
        EventType.DecisionTaskScheduled]
    assert events[1].attributes["cause"] == "BAD_SCHEDULE_ACTIVITY_ATTRIBUTES"
    assert "start_to_close_timeout" in events[1].attributes["details"]
    retry_state = failed.state  # type: ignore[attr-defined]
    assert retry_state.decision.attempt == 1
    # The second failure of the same task is not written.
    again = apply(retry_state, FailDecisionTask(
        scheduled_event_id=retry_state.decision.scheduled_event_id, attempt=1, started_at=T0,
        cause="WORKFLOW_WORKER_UNHANDLED_FAILURE"), now=T0)
    assert again.events == () and again.state == retry_state


def test_a_bad_child_decision_fails_the_task_naming_the_field() -> None:
    failed = decide(started(), Decision(DecisionType.StartChildWorkflowExecution,
                                        {"workflow_id": "child"}))
    attributes = failed.events[1].attributes  # type: ignore[attr-defined]
    assert attributes["cause"] == "BAD_START_CHILD_EXECUTION_ATTRIBUTES"
    assert "workflow_type is required" in attributes["details"]


def test_terminate_closes_and_drops_pending_work() -> None:
    state = decide(started(), schedule("0")).state  # type: ignore[attr-defined]
    transition = apply(state, TerminateWorkflow(reason="ops", identity="me"), now=T0)
    assert transition.state.status is RunStatus.TERMINATED
    assert transition.state.activities == ()
    assert transition.events[0].attributes["reason"] == "ops"
    with pytest.raises(WorkflowExecutionAlreadyCompletedError):
        apply(transition.state, CompleteActivityTask(scheduled_event_id=5, attempt=0), now=T0)


def test_decision_started_time_is_the_workers_clamped_to_now() -> None:
    state = started()
    later = T0 + timedelta(seconds=3)
    transition = decide(state, at=later)
    assert transition.events[0].timestamp == later  # type: ignore[attr-defined]
    future = apply(state, CompleteDecisionTask(
        scheduled_event_id=2, attempt=0, history_length=3,
        started_at=T0 + timedelta(hours=1)), now=T0 + timedelta(seconds=1))
    assert future.events[0].timestamp == T0 + timedelta(seconds=1)


def test_state_round_trips_through_its_stored_form() -> None:
    state = decide(started(), schedule("0")).state  # type: ignore[attr-defined]
    assert RunState.from_dict(state.to_dict()) == state


def test_signal_records_the_event_and_schedules_one_decision_task() -> None:
    state = decide(started(), schedule("0")).state  # type: ignore[attr-defined]
    first = apply(state, SignalWorkflow(signal_name="approve", input='"yes"', identity="ops"),
                  now=T0)
    assert [e.event_type for e in first.events] == [
        EventType.WorkflowExecutionSignaled, EventType.DecisionTaskScheduled]
    assert first.events[0].attributes["signal_name"] == "approve"
    assert first.events[0].attributes["input"] == '"yes"'
    second = apply(first.state, SignalWorkflow(signal_name="approve"), now=T0)
    assert [e.event_type for e in second.events] == [EventType.WorkflowExecutionSignaled]
    assert second.tasks == ()
    with pytest.raises(BadRequestError) as caught:
        apply(second.state, SignalWorkflow(signal_name=""), now=T0)
    assert caught.value.field == "signal_name"


def test_signal_with_start_puts_the_signal_before_the_first_decision_task() -> None:
    transition = start(StartWorkflow(
        domain="default", workflow_id="w", run_id="r", workflow_type="T", task_list="tl",
        input=None, execution_start_to_close_timeout_seconds=30,
        task_start_to_close_timeout_seconds=10,
    ), now=T0, signal=SignalWorkflow(signal_name="go", input="1"))
    assert [e.event_type for e in transition.events] == [
        EventType.WorkflowExecutionStarted, EventType.WorkflowExecutionSignaled,
        EventType.DecisionTaskScheduled]
    assert [t.scheduled_event_id for t in transition.tasks] == [1, 3]  # timeout, decision


def test_closed_runs_refuse_signals() -> None:
    state = apply(started(), TerminateWorkflow(), now=T0).state
    with pytest.raises(WorkflowExecutionAlreadyCompletedError):
        apply(state, SignalWorkflow(signal_name="late"), now=T0)


def test_cancel_request_then_cancelled_workflow_cancels_its_activities() -> None:
    state = decide(started(), schedule("0"), schedule("1")).state  # type: ignore[attr-defined]
    requested = apply(state, RequestCancelWorkflow(cause="user", identity="ops"), now=T0)
    assert [e.event_type for e in requested.events] == [
        EventType.WorkflowExecutionCancelRequested, EventType.DecisionTaskScheduled]
    assert requested.state.cancel_requested
    with pytest.raises(CancellationAlreadyRequestedError):
        apply(requested.state, RequestCancelWorkflow(), now=T0)
    # The workflow cancels one activity and goes on; then it gives up and is cancelled.
    going_on = decide(requested.state,
                      Decision(DecisionType.RequestCancelActivityTask, {"activity_id": "0"}))
    events = going_on.events  # type: ignore[attr-defined]
    assert [e.event_type for e in events][2:] == [
        EventType.ActivityTaskCancelRequested, EventType.ActivityTaskCanceled]
    assert events[3].attributes["scheduled_event_id"] == 5
    after = going_on.state  # type: ignore[attr-defined]
    assert [a.activity_id for a in after.activities] == ["1"]
    with pytest.raises(StaleTaskError):  # a late result of the cancelled activity is stale
        apply(after, CompleteActivityTask(scheduled_event_id=5, attempt=0), now=T0)
    after = apply(after, CompleteActivityTask(scheduled_event_id=6, attempt=0), now=T0).state
    cancelled = decide(after, Decision(DecisionType.RequestCancelActivityTask,
                                       {"activity_id": "1"}),
                       Decision(DecisionType.CancelWorkflowExecution, {"details": "bye"}))
    types = [e.event_type for e in cancelled.events]  # type: ignore[attr-defined]
    assert types[2:] == [EventType.RequestCancelActivityTaskFailed,
                         EventType.WorkflowExecutionCanceled]  # nothing follows the close
    assert cancelled.state.status is RunStatus.CANCELED  # type: ignore[attr-defined]


def test_timer_fires_once_never_early_and_cancelled_timers_are_stale() -> None:
    state = started()
    armed = decide(state, Decision(DecisionType.StartTimer,
                                   {"timer_id": "t1", "start_to_fire_timeout_seconds": 60}),
                   Decision(DecisionType.StartTimer,
                            {"timer_id": "t2", "start_to_fire_timeout_seconds": 5}))
    events = armed.events  # type: ignore[attr-defined]
    assert [e.event_type for e in events][2:] == [EventType.TimerStarted] * 2
    first, _ = armed.tasks  # type: ignore[attr-defined]
    assert first.kind == "timer" and first.fire_at == to_millis(T0) + 5 + 60_000
    after = armed.state  # type: ignore[attr-defined]
    with pytest.raises(TimerNotDueError) as early:
        apply(after, FireTimer(timer_id="t1", started_event_id=5),
              now=T0 + timedelta(seconds=59))
    assert early.value.fire_at == to_millis(T0) + 5 + 60_000  # the timer's own fire_at
    fired = apply(after, FireTimer(timer_id="t1", started_event_id=5),
                  now=T0 + timedelta(seconds=61))
    assert [e.event_type for e in fired.events] == [
        EventType.TimerFired, EventType.DecisionTaskScheduled]
    with pytest.raises(StaleTaskError):  # a duplicate firing
        apply(fired.state, FireTimer(timer_id="t1", started_event_id=5),
              now=T0 + timedelta(seconds=62))
    cancelled = decide(fired.state, Decision(DecisionType.CancelTimer, {"timer_id": "t2"}),
                       Decision(DecisionType.CancelTimer, {"timer_id": "t1"}))
    assert [e.event_type for e in cancelled.events][2:] == [  # type: ignore[attr-defined]
        EventType.TimerCanceled, EventType.CancelTimerFailed]
    with pytest.raises(StaleTaskError):  # the cancelled timer's message arrives: no-op
        apply(cancelled.state, FireTimer(timer_id="t2", started_event_id=6),  # type: ignore
              now=T0 + timedelta(hours=1))


def test_the_run_times_out_at_its_execution_timeout_never_before() -> None:
    state = decide(started(), schedule("0")).state  # type: ignore[attr-defined]
    timeout = FireTimer(timer_id="", started_event_id=1, timer_kind=TimerKind.WORKFLOW_TIMEOUT)
    with pytest.raises(TimerNotDueError) as early:
        apply(state, timeout, now=T0 + timedelta(seconds=59))
    assert early.value.fire_at == to_millis(T0) + 60_000
    closed = apply(state, timeout, now=T0 + timedelta(seconds=60))
    assert [e.event_type for e in closed.events] == [EventType.WorkflowExecutionTimedOut]
    assert closed.events[0].attributes["timeout_type"] == "START_TO_CLOSE"
    assert closed.state.status is RunStatus.TIMED_OUT and closed.state.activities == ()
    with pytest.raises(WorkflowExecutionAlreadyCompletedError):
        apply(closed.state, timeout, now=T0 + timedelta(seconds=61))
