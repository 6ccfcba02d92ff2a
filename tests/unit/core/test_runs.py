"""Pure rules of what runs do to each other: children, external requests, chains, reset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cadenza.core import (
    CompleteDecisionTask,
    Decision,
    DecisionType,
    EffectKind,
    EffectTask,
    EventType,
    FireTimer,
    RunState,
    RunStatus,
    SignalWorkflow,
    StartWorkflow,
    TerminateWorkflow,
    Transition,
    apply,
    runs,
    start,
)
from cadenza.core.commands import (
    RecordChildClosed,
    RecordChildStarted,
    RecordChildStartFailed,
    RecordExternalOutcome,
)
from cadenza.core.ids import next_run_id
from cadenza.core.state import ParentRun
from cadenza.core.tasks import TimerKind, TimerTask
from cadenza.error import BadRequestError, StaleTaskError, TimerNotDueError

T0 = datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC)


def begin(**overrides: Any) -> Transition:
    command: dict[str, Any] = dict(
        domain="default", workflow_id="order-1", run_id=next_run_id("default", "order-1", None),
        workflow_type="Order", task_list="orders", input='"x"',
        execution_start_to_close_timeout_seconds=60, task_start_to_close_timeout_seconds=10)
    command.update(overrides)
    return start(StartWorkflow(**command), now=T0)


def decide(state: RunState, *decisions: Decision, at: datetime = T0) -> Transition:
    assert state.decision is not None
    return apply(state, CompleteDecisionTask(
        scheduled_event_id=state.decision.scheduled_event_id, attempt=state.decision.attempt,
        history_length=state.next_event_id, started_at=at, decisions=decisions), now=at)


def child(workflow_id: str = "kid", **extra: Any) -> Decision:
    return Decision(DecisionType.StartChildWorkflowExecution,
                    {"workflow_id": workflow_id, "workflow_type": "Kid", **extra})


def effects(transition: Transition) -> list[EffectTask]:
    return [t for t in transition.tasks if isinstance(t, EffectTask)]


def test_a_child_decision_initiates_and_implies_its_start() -> None:
    made = decide(begin().state, child(parent_close_policy="PARENT_CLOSE_POLICY_ABANDON"))
    initiated = made.events[-1]
    assert initiated.event_type is EventType.StartChildWorkflowExecutionInitiated
    assert initiated.attributes["parent_close_policy"] == "ABANDON"
    assert initiated.attributes["execution_start_to_close_timeout_seconds"] == 60  # the parent's
    (effect,) = effects(made)
    assert (effect.effect, effect.event_id, effect.target_workflow_id) == (
        EffectKind.START_CHILD, initiated.event_id, "kid")
    assert made.state.child(initiated.event_id) is not None


@pytest.mark.parametrize(("attributes", "field"), [
    ({"workflow_type": ""}, "workflow_type is required"),
    ({"parent_close_policy": "SOMETIMES"}, "parent_close_policy"),
    ({"workflow_id_reuse_policy": "Never"}, "workflow_id_reuse_policy"),
    ({"cron_schedule": "every day"}, "cron_schedule"),
    ({"execution_start_to_close_timeout_seconds": -1}, "execution_start_to_close_timeout"),
])
def test_bad_child_attributes_fail_the_task_naming_them(attributes: dict[str, Any],
                                                        field: str) -> None:
    failed = decide(begin().state, child(**attributes))
    assert failed.events[1].event_type is EventType.DecisionTaskFailed
    assert failed.events[1].attributes["cause"] == "BAD_START_CHILD_EXECUTION_ATTRIBUTES"
    assert field in failed.events[1].attributes["details"]


def test_two_children_with_one_id_in_one_task_are_refused() -> None:
    failed = decide(begin().state, child("same"), child("same"))
    assert "already in use" in failed.events[1].attributes["details"]


def test_child_outcomes_are_recorded_once_and_a_close_may_overtake_the_start() -> None:
    state = decide(begin().state, child()).state
    initiated = state.children[0].initiated_event_id
    closed = apply(state, RecordChildClosed(
        initiated_event_id=initiated, run_id="child-run", status=RunStatus.FAILED,
        attributes={"reason": "boom", "details": None}), now=T0)
    assert [e.event_type for e in closed.events[:2]] == [
        EventType.ChildWorkflowExecutionStarted, EventType.ChildWorkflowExecutionFailed]
    assert closed.events[1].attributes["reason"] == "boom"
    assert closed.state.children == ()
    assert closed.state.decision is not None  # the parent decides on it
    for repeat in (RecordChildStarted(initiated_event_id=initiated, run_id="child-run"),
                   RecordChildClosed(initiated_event_id=initiated, run_id="child-run",
                                     status=RunStatus.COMPLETED),
                   RecordChildStartFailed(initiated_event_id=initiated, cause="x")):
        with pytest.raises(StaleTaskError):
            apply(closed.state, repeat, now=T0)


def test_a_taken_child_id_fails_the_start_in_the_parent() -> None:
    state = decide(begin().state, child()).state
    initiated = state.children[0].initiated_event_id
    failed = apply(state, RecordChildStartFailed(initiated_event_id=initiated,
                                                 cause="WORKFLOW_ALREADY_RUNNING"), now=T0)
    assert failed.events[0].event_type is EventType.StartChildWorkflowExecutionFailed
    assert failed.events[0].attributes["cause"] == "WORKFLOW_ALREADY_RUNNING"
    assert failed.state.children == ()


def test_the_close_applies_each_open_childs_policy_however_the_run_closes() -> None:
    state = decide(begin().state, child("a"), child("b", parent_close_policy="REQUEST_CANCEL"),
                   child("c", parent_close_policy="ABANDON")).state
    terminated = apply(state, TerminateWorkflow(reason="ops"), now=T0)
    policies = [(e.target_workflow_id, e.attributes["parent_close_policy"])
                for e in effects(terminated) if e.effect is EffectKind.PARENT_CLOSE_POLICY]
    assert policies == [("a", "TERMINATE"), ("b", "REQUEST_CANCEL")]


def test_a_child_reports_its_start_once_and_its_close_to_its_parent() -> None:
    parent = ParentRun("default", "order-1", "parent-run", 5)
    begun = begin(workflow_id="kid", parent=parent)
    (report,) = effects(begun)
    assert (report.effect, report.target_run_id, report.attributes["initiated_event_id"]) == (
        EffectKind.REPORT_CHILD_STARTED, "parent-run", 5)
    done = decide(begun.state, Decision(DecisionType.CompleteWorkflowExecution,
                                        {"result": "42"}))
    (closed,) = effects(done)
    assert closed.effect is EffectKind.REPORT_CHILD_CLOSED
    assert closed.attributes["close_status"] == "COMPLETED"
    assert closed.attributes["result"] == "42"
    # A run that continues a child's chain does not report a start again.
    continued = begin(workflow_id="kid", parent=parent, continued_execution_run_id="r1")
    assert effects(continued) == []


def test_external_requests_resolve_once() -> None:
    state = decide(begin().state, Decision(DecisionType.SignalExternalWorkflowExecution,
                                           {"workflow_id": "t", "signal_name": "go"})).state
    (external,) = state.externals
    failed = apply(state, RecordExternalOutcome(initiated_event_id=external.initiated_event_id,
                                                failed_cause="UNKNOWN"), now=T0)
    assert failed.events[0].event_type is EventType.SignalExternalWorkflowExecutionFailed
    with pytest.raises(StaleTaskError):
        apply(failed.state, RecordExternalOutcome(
            initiated_event_id=external.initiated_event_id), now=T0)


def test_a_signal_repeated_with_its_request_id_is_recorded_once() -> None:
    state = begin().state
    once = apply(state, SignalWorkflow(signal_name="go", request_id="req-1"), now=T0)
    again = apply(once.state, SignalWorkflow(signal_name="go", request_id="req-1"), now=T0)
    assert len(once.events) == 1 and not again.changed


def test_continue_as_new_names_the_workflow_ids_next_run() -> None:
    state = begin().state
    made = decide(state, Decision(DecisionType.ContinueAsNewWorkflowExecution,
                                  {"input": '"next"'}))
    closed = made.events[-1]
    assert closed.event_type is EventType.WorkflowExecutionContinuedAsNew
    assert closed.attributes["new_execution_run_id"] == next_run_id(
        "default", "order-1", state.run_id)
    assert closed.attributes["initiator"] == "Decider"
    (effect,) = effects(made)
    assert effect.effect is EffectKind.START_NEXT_RUN


def test_a_cron_run_continues_at_the_next_scheduled_time() -> None:
    begun = begin(cron_schedule="*/5 * * * *")
    state = begun.state
    assert state.awaiting_backoff and state.backoff_seconds == 270  # 12:00:30 -> 12:05
    assert begun.events[-1].event_type is EventType.WorkflowExecutionStarted  # no decision yet
    with pytest.raises(TimerNotDueError):
        apply(state, FireTimer(timer_id="", started_event_id=1,
                               timer_kind=TimerKind.WORKFLOW_BACKOFF), now=T0)
    woke = apply(state, FireTimer(timer_id="", started_event_id=1,
                                  timer_kind=TimerKind.WORKFLOW_BACKOFF),
                 now=T0 + timedelta(seconds=270))
    assert woke.events[0].event_type is EventType.DecisionTaskScheduled
    done = decide(woke.state, Decision(DecisionType.CompleteWorkflowExecution, {"result": "1"}),
                  at=T0 + timedelta(seconds=271))
    closed = done.events[-1]
    assert closed.event_type is EventType.WorkflowExecutionContinuedAsNew
    assert closed.attributes["initiator"] == "CronSchedule"
    assert closed.attributes["last_completion_result"] == "1"
    assert closed.attributes["backoff_start_interval_seconds"] == 299  # 12:05:01 -> 12:10


def test_a_workflow_retry_backs_off_until_the_policy_runs_out() -> None:
    policy = {"initial_interval_in_seconds": 3, "backoff_coefficient": 2.0,
              "maximum_attempts": 2}
    state = begin(retry_policy=policy).state
    fail = Decision(DecisionType.FailWorkflowExecution, {"reason": "Boom", "details": None})
    first = decide(state, fail).events[-1]
    assert first.event_type is EventType.WorkflowExecutionContinuedAsNew
    assert (first.attributes["initiator"], first.attributes["attempt"],
            first.attributes["backoff_start_interval_seconds"]) == ("RetryPolicy", 1, 3)
    last = begin(retry_policy=policy, attempt=1, delay_start_seconds=3)
    woke = apply(last.state, FireTimer(timer_id="", started_event_id=1,
                                       timer_kind=TimerKind.WORKFLOW_BACKOFF),
                 now=T0 + timedelta(seconds=3))
    assert decide(woke.state, fail, at=T0 + timedelta(seconds=4)).events[-1].event_type is (
        EventType.WorkflowExecutionFailed)


def test_a_delayed_start_times_out_after_its_delay_never_before() -> None:
    begun = begin(delay_start_seconds=30)
    timeout = next(t for t in begun.tasks
                   if isinstance(t, TimerTask) and t.timer_kind is TimerKind.WORKFLOW_TIMEOUT)
    assert timeout.fire_at == begun.state.start_time + 90_000


def test_a_bad_cron_expression_is_refused_at_start() -> None:
    with pytest.raises(BadRequestError, match="cron_schedule"):
        begin(cron_schedule="61 * * * *")


def test_reset_copies_the_prefix_fails_the_task_and_reapplies_signals() -> None:
    begun = begin()
    made = decide(begun.state, Decision(DecisionType.StartTimer, {
        "timer_id": "t", "start_to_fire_timeout_seconds": 5}))
    prefix = [*begun.events, *made.events]
    started_id = next(e.event_id for e in made.events
                      if e.event_type is EventType.DecisionTaskStarted)
    signal = apply(made.state, SignalWorkflow(signal_name="late"), now=T0).events[0]
    new = runs.reset(begun.state, [e for e in prefix if e.event_id <= started_id], [signal],
                     new_run_id="run-2", reason="redo", identity="me", request_id="rq",
                     now=T0 + timedelta(minutes=1))
    kinds = [e.event_type for e in new.events]
    assert kinds == [EventType.WorkflowExecutionStarted, EventType.DecisionTaskScheduled,
                     EventType.DecisionTaskStarted, EventType.DecisionTaskFailed,
                     EventType.WorkflowExecutionSignaled, EventType.DecisionTaskScheduled]
    assert [e.event_id for e in new.events] == list(range(1, 7))
    assert new.events[3].attributes["cause"] == "RESET_WORKFLOW"
    assert new.state.run_id == "run-2" and new.state.version == 1
    assert new.state.start_request_id == "rq"
    assert new.state.decision is not None and new.state.decision.scheduled_event_id == 6
