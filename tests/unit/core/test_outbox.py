"""core.outbox.still_needed: which committed tasks a later state of the run still needs sent.

Each case builds the stored states of a run with the pure transitions, takes a task from one
commit and asks about it against that commit's own state (needed: it may not have been sent)
and against a later one that consumed it or made it moot (not needed: the redrive skips it).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cadenza.core import (
    CompleteActivityTask,
    Decision,
    DecisionType,
    FailActivityTask,
    FireTimer,
    SignalWorkflow,
    StartActivityTask,
    StartWorkflow,
    TerminateWorkflow,
    Transition,
    apply,
    start,
)
from cadenza.core.commands import RecordChildStarted, RecordExternalOutcome
from cadenza.core.outbox import still_needed
from cadenza.core.tasks import (
    ActivityTask,
    DecisionTask,
    EffectKind,
    EffectTask,
    Task,
    TimerKind,
    TimerTask,
    moot_timer_prefixes,
)

from .test_runs import T0, decide


def begin(**overrides: Any) -> Transition:
    command: dict[str, Any] = dict(
        domain="default", workflow_id="order-1", run_id="run-1", workflow_type="Order",
        task_list="orders", input='"x"', execution_start_to_close_timeout_seconds=600,
        task_start_to_close_timeout_seconds=10)
    command.update(overrides)
    return start(StartWorkflow(**command), now=T0)


def one(transition: Transition, kind: type, **match: Any) -> Any:
    (task,) = [t for t in transition.tasks if isinstance(t, kind)
               and all(getattr(t, k) == v for k, v in match.items())]
    return task


def schedule(activity_id: str = "a1", **extra: Any) -> Decision:
    return Decision(DecisionType.ScheduleActivityTask, {
        "activity_id": activity_id, "activity_type": "reserve", "input": '"a"',
        "schedule_to_close_timeout_seconds": 300, "start_to_close_timeout_seconds": 60,
        **extra})


def test_a_decision_task_is_needed_until_its_decision_is_completed() -> None:
    started = begin()
    task: DecisionTask = one(started, DecisionTask)
    assert still_needed(task, started.state)
    decided = decide(started.state, schedule())
    assert not still_needed(task, decided.state)


def test_a_decision_task_of_a_closed_run_is_not_needed() -> None:
    started = begin()
    task: DecisionTask = one(started, DecisionTask)
    closed = apply(started.state, TerminateWorkflow(reason="stop"), now=T0)
    assert not still_needed(task, closed.state)


def test_an_activity_task_is_needed_until_a_worker_starts_its_attempt() -> None:
    decided = decide(begin().state, schedule())
    task: ActivityTask = one(decided, ActivityTask)
    assert still_needed(task, decided.state)
    taken = apply(decided.state, StartActivityTask(
        scheduled_event_id=task.scheduled_event_id, attempt=0), now=T0)
    assert not still_needed(task, taken.state)
    done = apply(taken.state, CompleteActivityTask(
        scheduled_event_id=task.scheduled_event_id, attempt=0, result='"ok"'), now=T0)
    assert not still_needed(task, done.state)


def test_an_attempt_that_failed_into_a_retry_is_not_needed_but_the_retry_is() -> None:
    decided = decide(begin().state, schedule(retry_policy={
        "initial_interval_in_seconds": 1, "maximum_attempts": 3}))
    task: ActivityTask = one(decided, ActivityTask)
    taken = apply(decided.state, StartActivityTask(
        scheduled_event_id=task.scheduled_event_id, attempt=0), now=T0)
    failed = apply(taken.state, FailActivityTask(
        scheduled_event_id=task.scheduled_event_id, attempt=0, reason="boom", details=None),
        now=T0)
    assert not still_needed(task, failed.state)
    retry: TimerTask = one(failed, TimerTask, timer_kind=TimerKind.ACTIVITY_RETRY)
    assert still_needed(retry, failed.state)
    second = apply(failed.state, StartActivityTask(
        scheduled_event_id=task.scheduled_event_id, attempt=1), now=T0 + timedelta(seconds=2))
    assert not still_needed(retry, second.state)  # the attempt it hands out has started


def test_a_user_timer_is_needed_until_it_fires_or_is_cancelled() -> None:
    armed = decide(begin().state, Decision(DecisionType.StartTimer, {
        "timer_id": "t", "start_to_fire_timeout_seconds": 5}))
    timer: TimerTask = one(armed, TimerTask, timer_kind=TimerKind.USER)
    assert still_needed(timer, armed.state)
    fired = apply(armed.state, FireTimer(timer_id="t", started_event_id=timer.started_event_id),
                  now=T0 + timedelta(seconds=5))
    assert not still_needed(timer, fired.state)
    signalled = apply(armed.state, SignalWorkflow(signal_name="stop", input=None), now=T0)
    assert still_needed(timer, signalled.state)
    cancelled = decide(signalled.state, Decision(DecisionType.CancelTimer, {"timer_id": "t"}))
    assert not still_needed(timer, cancelled.state)


def test_the_execution_timeout_is_needed_while_the_run_is_open() -> None:
    started = begin()
    timeout: TimerTask = one(started, TimerTask, timer_kind=TimerKind.WORKFLOW_TIMEOUT)
    assert still_needed(timeout, started.state)
    decided = decide(started.state, schedule())
    assert still_needed(timeout, decided.state)
    closed = apply(decided.state, TerminateWorkflow(reason="stop"), now=T0)
    assert not still_needed(timeout, closed.state)


def test_an_activity_deadline_is_needed_for_its_chain_only() -> None:
    decided = decide(begin().state, schedule())
    first: TimerTask = one(decided, TimerTask, timer_kind=TimerKind.ACTIVITY_TIMEOUT)
    assert still_needed(first, decided.state)
    # The start's 60 s start-to-close comes before the 300 s schedule-to-close: a new chain.
    taken = apply(decided.state, StartActivityTask(
        scheduled_event_id=first.started_event_id, attempt=0), now=T0)
    second: TimerTask = one(taken, TimerTask, timer_kind=TimerKind.ACTIVITY_TIMEOUT)
    assert second.seq == first.seq + 1
    assert not still_needed(first, taken.state)
    assert still_needed(second, taken.state)
    done = apply(taken.state, CompleteActivityTask(
        scheduled_event_id=first.started_event_id, attempt=0, result=None), now=T0)
    assert not still_needed(second, done.state)


def test_a_start_backoff_timer_is_needed_until_the_first_decision_task() -> None:
    delayed = begin(delay_start_seconds=30)
    backoff: TimerTask = one(delayed, TimerTask, timer_kind=TimerKind.WORKFLOW_BACKOFF)
    assert still_needed(backoff, delayed.state)
    over = apply(delayed.state, FireTimer(timer_id="", started_event_id=1,
                                          timer_kind=TimerKind.WORKFLOW_BACKOFF),
                 now=T0 + timedelta(seconds=30))
    assert not still_needed(backoff, over.state)


def test_a_child_start_is_needed_until_the_child_is_reported_started() -> None:
    made = decide(begin().state, Decision(DecisionType.StartChildWorkflowExecution, {
        "workflow_id": "kid", "workflow_type": "Kid"}))
    effect: EffectTask = one(made, EffectTask, effect=EffectKind.START_CHILD)
    assert still_needed(effect, made.state)
    reported = apply(made.state, RecordChildStarted(initiated_event_id=effect.event_id,
                                                    run_id="kid-run"), now=T0)
    assert not still_needed(effect, reported.state)


def test_an_external_signal_is_needed_until_its_outcome_is_recorded() -> None:
    made = decide(begin().state, Decision(DecisionType.SignalExternalWorkflowExecution, {
        "workflow_id": "other", "signal_name": "go"}))
    effect: EffectTask = one(made, EffectTask, effect=EffectKind.SIGNAL_EXTERNAL)
    assert still_needed(effect, made.state)
    recorded = apply(made.state, RecordExternalOutcome(initiated_event_id=effect.event_id),
                     now=T0)
    assert not still_needed(effect, recorded.state)


def test_effects_on_other_runs_and_tasks_of_other_runs_are_always_needed() -> None:
    started = begin(parent=None)
    closed = apply(started.state, TerminateWorkflow(reason="stop"), now=T0)
    report = EffectTask(domain="default", workflow_id="order-1", run_id="run-1",
                        workflow_type="Order", effect=EffectKind.REPORT_CHILD_CLOSED,
                        event_id=3, target_domain="default", target_workflow_id="parent")
    assert still_needed(report, closed.state)
    other: Task = one(begin(run_id="run-2"), DecisionTask)
    assert still_needed(other, closed.state)  # another run: this state says nothing of it


def test_a_commit_names_the_timers_it_makes_moot_by_key_prefix() -> None:
    decided = decide(begin().state, schedule())
    deadline: TimerTask = one(decided, TimerTask, timer_kind=TimerKind.ACTIVITY_TIMEOUT)
    timeout: TimerTask = one(begin(), TimerTask, timer_kind=TimerKind.WORKFLOW_TIMEOUT)
    assert moot_timer_prefixes(decided.state, decided.events) == ()
    taken = apply(decided.state, StartActivityTask(
        scheduled_event_id=deadline.started_event_id, attempt=0), now=T0)
    done = apply(taken.state, CompleteActivityTask(
        scheduled_event_id=deadline.started_event_id, attempt=0, result=None), now=T0)
    prefixes = moot_timer_prefixes(done.state, done.events)
    assert any(deadline.key.startswith(p) for p in prefixes)
    assert not any(timeout.key.startswith(p) for p in prefixes)  # the run is still open
    closed = apply(done.state, TerminateWorkflow(reason="stop"), now=T0)
    (everything,) = moot_timer_prefixes(closed.state, closed.events)
    assert timeout.key.startswith(everything) and deadline.key.startswith(everything)
    other = one(begin(run_id="run-10"), TimerTask, timer_kind=TimerKind.WORKFLOW_TIMEOUT)
    assert not other.key.startswith(everything)  # run-1's prefix is not run-10's
