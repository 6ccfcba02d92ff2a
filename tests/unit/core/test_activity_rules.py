"""Activity timeouts, retries, starts, heartbeats and cancellation, through the pure core.

Every run here schedules activity "0" in its first decision task at T0, so its
ActivityTaskScheduled event is event 5 and all times are offsets from T0 in seconds.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cadenza.core import (
    CancelActivityTask,
    CompleteActivityTask,
    CompleteDecisionTask,
    Decision,
    DecisionType,
    EventType,
    FailActivityTask,
    FailDecisionTask,
    FireTimer,
    PendingActivity,
    RecordActivityHeartbeat,
    RunState,
    RunStatus,
    SignalWorkflow,
    StartActivityTask,
    StartWorkflow,
    TimerKind,
    TimerTask,
    Transition,
    apply,
    due_retry,
    start,
    to_millis,
)
from cadenza.core.limits import MAX_PAYLOAD_BYTES
from cadenza.error import (
    ActivityTaskAlreadyStartedError,
    StaleTaskError,
    TimerNotDueError,
    WorkflowExecutionAlreadyCompletedError,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SCHEDULED = 5  # the ActivityTaskScheduled event of activity "0"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ms(seconds: float) -> int:
    return to_millis(T0) + round(seconds * 1000)


def types(transition: Transition) -> list[EventType]:
    return [e.event_type for e in transition.events]


def started(*, execution_timeout: int = 3600) -> RunState:
    return start(StartWorkflow(
        domain="default", workflow_id="order-1", run_id="run-1", workflow_type="Order",
        task_list="orders", input=None, execution_start_to_close_timeout_seconds=execution_timeout,
        task_start_to_close_timeout_seconds=10,
    ), now=T0).state


def schedule(activity_id: str = "0", **attributes: Any) -> Decision:
    return Decision(DecisionType.ScheduleActivityTask, {
        "activity_id": activity_id, "activity_type": "charge", "input": '"card"', **attributes})


def policy(**attributes: Any) -> dict[str, Any]:
    """A retry policy in its decision (Cadence attribute) form."""
    return {"initial_interval_in_seconds": 1, "backoff_coefficient": 2.0,
            "maximum_interval_in_seconds": 0, "maximum_attempts": 0,
            "non_retryable_error_reasons": [], "expiration_interval_in_seconds": 0,
            **attributes}


def decide(state: RunState, *decisions: Decision, now: datetime = T0) -> Transition:
    assert state.decision is not None
    return apply(state, CompleteDecisionTask(
        scheduled_event_id=state.decision.scheduled_event_id, attempt=state.decision.attempt,
        history_length=state.next_event_id, started_at=now, decisions=decisions,
    ), now=now)


def scheduled(*, execution_timeout: int = 3600, **attributes: Any) -> Transition:
    """The decision that schedules activity "0" at T0 with these attributes."""
    transition = decide(started(execution_timeout=execution_timeout), schedule(**attributes))
    assert types(transition)[2:] == [EventType.ActivityTaskScheduled], transition.events
    return transition


def pending(state: RunState) -> PendingActivity:
    activity = state.activity(SCHEDULED)
    assert activity is not None
    return activity


def timers(transition: Transition, kind: TimerKind) -> list[TimerTask]:
    return [t for t in transition.tasks if isinstance(t, TimerTask) and t.timer_kind is kind]


def deadline_timer(transition: Transition) -> TimerTask:
    (timer,) = timers(transition, TimerKind.ACTIVITY_TIMEOUT)
    return timer


def retry_timer(transition: Transition) -> TimerTask:
    (timer,) = timers(transition, TimerKind.ACTIVITY_RETRY)
    return timer


def fire(state: RunState, timer: TimerTask, seconds: float) -> Transition:
    return apply(state, FireTimer(
        timer_id=timer.timer_id, started_event_id=timer.started_event_id,
        timer_kind=timer.timer_kind, attempt=timer.attempt, seq=timer.seq,
    ), now=at(seconds))


def start_attempt(state: RunState, seconds: float, identity: str = "worker-1") -> Transition:
    return apply(state, StartActivityTask(
        scheduled_event_id=SCHEDULED, attempt=pending(state).attempt, identity=identity,
    ), now=at(seconds))


def heartbeat(state: RunState, seconds: float, details: str | None) -> Transition:
    return apply(state, RecordActivityHeartbeat(
        scheduled_event_id=SCHEDULED, attempt=pending(state).attempt, details=details,
    ), now=at(seconds))


def fail(state: RunState, seconds: float, reason: str = "Boom",
         details: str | None = None) -> Transition:
    return apply(state, FailActivityTask(
        scheduled_event_id=SCHEDULED, attempt=pending(state).attempt, reason=reason,
        details=details, identity="worker-1",
    ), now=at(seconds))


def assert_retried(transition: Transition, before: RunState) -> None:
    """A retry is a state-only commit: no event, the next attempt, its backoff and deadline."""
    assert transition.events == () and transition.commit and transition.changed
    assert transition.state.next_event_id == before.next_event_id
    assert transition.state.version == before.version + 1
    assert pending(transition.state).attempt == pending(before).attempt + 1
    assert [t.timer_kind for t in transition.tasks] == [  # type: ignore[union-attr]
        TimerKind.ACTIVITY_RETRY, TimerKind.ACTIVITY_TIMEOUT]


# --- scheduling ---------------------------------------------------------------------------------


def test_scheduling_arms_one_timer_for_the_earliest_deadline() -> None:
    transition = scheduled(schedule_to_start_timeout_seconds=10,
                           start_to_close_timeout_seconds=30,
                           schedule_to_close_timeout_seconds=100)
    assert [t.kind for t in transition.tasks] == ["activity", "timer"]
    timer = deadline_timer(transition)
    assert (timer.started_event_id, timer.attempt, timer.seq, timer.fire_at) == (
        SCHEDULED, 0, 1, ms(10))  # schedule-to-start comes first
    activity = pending(transition.state)
    assert (activity.scheduled_time, activity.attempt_scheduled_time) == (ms(0), ms(0))
    assert activity.scheduled_version == transition.state.version == 2
    assert activity.timer_seq == 1 and not activity.started
    # Only schedule_to_close: the other two default to it.
    only_total = scheduled(schedule_to_close_timeout_seconds=20)
    attributes = only_total.events[2].attributes
    assert (attributes["schedule_to_start_timeout_seconds"],
            attributes["start_to_close_timeout_seconds"]) == (20, 20)
    assert deadline_timer(only_total).fire_at == ms(20)


def test_activity_timeouts_never_exceed_the_run_timeout() -> None:
    transition = scheduled(execution_timeout=60, schedule_to_close_timeout_seconds=600,
                           start_to_close_timeout_seconds=300)
    attributes = transition.events[2].attributes
    assert attributes["schedule_to_close_timeout_seconds"] == 60
    assert attributes["start_to_close_timeout_seconds"] == 60
    assert deadline_timer(transition).fire_at == ms(60)


# --- each timeout fires only at or after its deadline ----------------------------------------


def test_schedule_to_start_times_out_an_attempt_nobody_started() -> None:
    transition = scheduled(schedule_to_start_timeout_seconds=10,
                           start_to_close_timeout_seconds=30,
                           schedule_to_close_timeout_seconds=100,
                           retry_policy=policy(maximum_attempts=5))
    state, timer = transition.state, deadline_timer(transition)
    with pytest.raises(TimerNotDueError) as early:
        fire(state, timer, 9.999)
    assert early.value.fire_at == ms(10)
    timed_out = fire(state, timer, 10)
    # Final although the policy allows more attempts: another attempt would not find a worker.
    assert types(timed_out) == [EventType.ActivityTaskTimedOut, EventType.DecisionTaskScheduled]
    event = timed_out.events[0]
    assert event.attributes["timeout_type"] == "SCHEDULE_TO_START"
    assert event.attributes["scheduled_event_id"] == SCHEDULED
    assert event.attributes["started_event_id"] == 0  # it never started: no started event
    assert timed_out.state.activities == ()
    with pytest.raises(StaleTaskError):  # the same timer again
        fire(timed_out.state, timer, 11)


def test_start_to_close_counts_from_the_start_and_supersedes_the_armed_timer() -> None:
    transition = scheduled(schedule_to_start_timeout_seconds=10,
                           start_to_close_timeout_seconds=5,
                           schedule_to_close_timeout_seconds=100)
    first_chain = deadline_timer(transition)
    taken = start_attempt(transition.state, 2)
    # A state-only commit that arms a new chain for the earlier deadline (2 + 5 < 10).
    assert taken.events == () and taken.commit
    assert taken.state.version == transition.state.version + 1
    second_chain = deadline_timer(taken)
    assert (second_chain.seq, second_chain.attempt, second_chain.fire_at) == (2, 0, ms(7))
    assert pending(taken.state).started_time == ms(2)
    with pytest.raises(StaleTaskError) as superseded:  # the old chain is dropped, not re-sent
        fire(taken.state, first_chain, 10)
    assert not isinstance(superseded.value, TimerNotDueError)
    with pytest.raises(TimerNotDueError) as early:
        fire(taken.state, second_chain, 6.999)
    assert early.value.fire_at == ms(7)
    timed_out = fire(taken.state, second_chain, 7)
    assert types(timed_out) == [EventType.ActivityTaskStarted, EventType.ActivityTaskTimedOut,
                                EventType.DecisionTaskScheduled]
    started_event, event = timed_out.events[:2]
    assert started_event.timestamp == at(2)  # when the worker took it
    assert started_event.attributes["attempt"] == 0
    assert started_event.attributes["identity"] == "worker-1"
    assert event.attributes["timeout_type"] == "START_TO_CLOSE"
    assert event.attributes["started_event_id"] == started_event.event_id


def test_a_start_later_than_the_armed_deadline_keeps_the_chain_which_refires() -> None:
    transition = scheduled(schedule_to_start_timeout_seconds=10,
                           start_to_close_timeout_seconds=30,
                           schedule_to_close_timeout_seconds=100)
    chain = deadline_timer(transition)
    taken = start_attempt(transition.state, 8)
    assert taken.commit and taken.tasks == ()  # the armed timer surfaces first anyway
    with pytest.raises(TimerNotDueError) as early:
        fire(taken.state, chain, 10)
    assert early.value.fire_at == ms(38)  # sent again for start-to-close
    refired = chain.refire_at(early.value.fire_at)
    assert (refired.seq, refired.attempt) == (chain.seq, chain.attempt)
    assert refired.key != chain.key  # a new message, not a duplicate the queue drops
    timed_out = fire(taken.state, refired, 38)
    assert timed_out.events[1].attributes["timeout_type"] == "START_TO_CLOSE"


def test_heartbeat_timeout_moves_with_every_heartbeat() -> None:
    transition = scheduled(schedule_to_start_timeout_seconds=30,
                           start_to_close_timeout_seconds=60,
                           heartbeat_timeout_seconds=10,
                           schedule_to_close_timeout_seconds=100)
    taken = start_attempt(transition.state, 1)
    chain = deadline_timer(taken)
    assert chain.fire_at == ms(11)  # no heartbeat yet: counts from the start
    beat = heartbeat(taken.state, 8, "row 10")
    assert beat.events == () and beat.commit and beat.tasks == ()  # a heartbeat arms nothing
    assert beat.state.version == taken.state.version + 1
    activity = pending(beat.state)
    assert (activity.last_heartbeat_time, activity.heartbeat_details) == (ms(8), "row 10")
    with pytest.raises(TimerNotDueError) as early:
        fire(beat.state, chain, 11)
    assert early.value.fire_at == ms(18)
    beat = heartbeat(beat.state, 15, "row 20")
    with pytest.raises(TimerNotDueError) as early:
        fire(beat.state, chain.refire_at(ms(18)), 18)
    assert early.value.fire_at == ms(25)  # moved again by the second heartbeat
    with pytest.raises(TimerNotDueError):
        fire(beat.state, chain.refire_at(ms(25)), 24.999)
    timed_out = fire(beat.state, chain.refire_at(ms(25)), 25)
    assert types(timed_out)[:2] == [EventType.ActivityTaskStarted,
                                    EventType.ActivityTaskTimedOut]
    assert timed_out.events[1].attributes["timeout_type"] == "HEARTBEAT"
    assert timed_out.events[1].attributes["details"] == "row 20"  # the last heartbeat's


def test_schedule_to_close_bounds_all_attempts_together() -> None:
    transition = scheduled(start_to_close_timeout_seconds=10,
                           schedule_to_close_timeout_seconds=30,
                           retry_policy=policy(backoff_coefficient=1.0))
    taken = start_attempt(transition.state, 0)
    # Attempt 0 runs too long: retried after 1 s.
    retried = fire(taken.state, deadline_timer(taken), 10)
    assert_retried(retried, taken.state)
    assert retry_timer(retried).fire_at == ms(11)
    assert deadline_timer(retried).fire_at == ms(30)  # attempt 1 waits: schedule-to-close
    taken = start_attempt(retried.state, 11)
    assert deadline_timer(taken).fire_at == ms(21)
    retried_again = fire(taken.state, deadline_timer(taken), 21)
    assert_retried(retried_again, taken.state)
    last = start_attempt(retried_again.state, 22)
    assert last.tasks == ()  # 22 + 10 is past schedule-to-close: the armed chain stays
    chain = deadline_timer(retried_again)
    with pytest.raises(TimerNotDueError) as early:
        fire(last.state, chain, 29.999)
    assert early.value.fire_at == ms(30)
    timed_out = fire(last.state, chain, 30)
    assert types(timed_out) == [EventType.ActivityTaskStarted, EventType.ActivityTaskTimedOut,
                                EventType.DecisionTaskScheduled]
    started_event, event = timed_out.events[:2]
    assert started_event.attributes["attempt"] == 2  # the last attempt
    assert started_event.timestamp == at(22)
    assert started_event.attributes["last_failure_reason"] == (
        "cadenceInternal:Timeout START_TO_CLOSE")
    assert event.attributes["timeout_type"] == "SCHEDULE_TO_CLOSE"
    assert event.attributes["last_failure_reason"] == "cadenceInternal:Timeout START_TO_CLOSE"


def test_start_to_close_timeouts_are_retried_until_the_attempts_run_out() -> None:
    transition = scheduled(start_to_close_timeout_seconds=5,
                           schedule_to_close_timeout_seconds=1000,
                           retry_policy=policy(maximum_attempts=2))
    taken = start_attempt(transition.state, 0)
    retried = fire(taken.state, deadline_timer(taken), 5)
    assert_retried(retried, taken.state)
    taken = start_attempt(retried.state, 6)
    timed_out = fire(taken.state, deadline_timer(taken), 11)
    assert types(timed_out)[:2] == [EventType.ActivityTaskStarted,
                                    EventType.ActivityTaskTimedOut]
    assert timed_out.events[0].attributes["attempt"] == 1
    assert timed_out.events[1].attributes["timeout_type"] == "START_TO_CLOSE"


@pytest.mark.parametrize("attributes,expected", [
    # Start-to-close defaults to schedule-to-close: both end together, and it is final.
    ({"schedule_to_close_timeout_seconds": 30}, "SCHEDULE_TO_CLOSE"),
    ({"schedule_to_close_timeout_seconds": 30, "start_to_close_timeout_seconds": 30,
      "heartbeat_timeout_seconds": 30}, "SCHEDULE_TO_CLOSE"),
], ids=["start-to-close", "heartbeat"])
def test_on_a_tie_with_schedule_to_close_the_final_timeout_is_reported(
    attributes: dict[str, Any], expected: str
) -> None:
    transition = scheduled(retry_policy=policy(maximum_attempts=5), **attributes)
    taken = start_attempt(transition.state, 0)
    timed_out = fire(taken.state, deadline_timer(taken) if taken.tasks else
                     deadline_timer(transition), 30)
    assert types(timed_out)[:2] == [EventType.ActivityTaskStarted,
                                    EventType.ActivityTaskTimedOut]
    assert timed_out.events[1].attributes["timeout_type"] == expected


# --- retries ----------------------------------------------------------------------------------


def delays(transition: Transition, failures: int) -> list[float]:
    """Fail each attempt as soon as it is due; the backoffs (s) of the retries it gets."""
    state, now, backoffs = transition.state, 0.0, []
    for _ in range(failures):
        retried = fail(state, now)
        assert_retried(retried, state)
        due = retry_timer(retried).fire_at
        backoffs.append((due - ms(now)) / 1000)
        assert pending(retried.state).attempt_scheduled_time == due
        state, now = retried.state, (due - ms(0)) / 1000
    return backoffs


@pytest.mark.parametrize("retry_policy,expected", [
    # initial * coefficient ** attempt ...
    (policy(initial_interval_in_seconds=1, backoff_coefficient=2.0), [1, 2, 4, 8, 16, 32]),
    (policy(initial_interval_in_seconds=3, backoff_coefficient=1.0), [3, 3, 3]),
    # ... capped by maximum_interval ...
    (policy(initial_interval_in_seconds=1, backoff_coefficient=2.0,
            maximum_interval_in_seconds=10), [1, 2, 4, 8, 10, 10]),
    # ... or, without one, by 100 times the initial interval.
    (policy(initial_interval_in_seconds=2, backoff_coefficient=10.0), [2, 20, 200, 200]),
], ids=["exponential", "constant", "capped", "default-cap"])
def test_backoff_grows_by_the_coefficient_and_is_capped(
    retry_policy: dict[str, Any], expected: list[float]
) -> None:
    transition = scheduled(execution_timeout=100_000, start_to_close_timeout_seconds=5,
                           schedule_to_close_timeout_seconds=100_000, retry_policy=retry_policy)
    assert delays(transition, len(expected)) == expected


def test_maximum_attempts_counts_the_first_and_the_last_failure_is_written() -> None:
    transition = scheduled(start_to_close_timeout_seconds=5,
                           schedule_to_close_timeout_seconds=1000,
                           retry_policy=policy(maximum_attempts=3))
    state = transition.state
    for attempt, now in [(0, 0.0), (1, 1.0)]:  # backoffs of 1 s, then 2 s
        taken = start_attempt(state, now)
        retried = fail(taken.state, now + 0.5, reason="Boom", details=f"try {attempt}")
        assert_retried(retried, taken.state)
        assert pending(retried.state).last_failure_reason == "Boom"
        assert pending(retried.state).last_failure_details == f"try {attempt}"
        state = retried.state
    taken = start_attempt(state, 4)
    final = fail(taken.state, 4.5, reason="Boom", details="try 2")
    assert types(final) == [EventType.ActivityTaskStarted, EventType.ActivityTaskFailed,
                            EventType.DecisionTaskScheduled]
    started_event, failed = final.events[:2]
    assert started_event.attributes["attempt"] == 2
    assert started_event.attributes["last_failure_reason"] == "Boom"
    assert started_event.timestamp == at(4)
    assert failed.attributes["reason"] == "Boom" and failed.attributes["details"] == "try 2"
    assert failed.attributes["started_event_id"] == started_event.event_id
    assert final.state.activities == ()
    # The whole history of the activity: scheduled, then one started and one failed event.
    assert final.state.next_event_id == transition.state.next_event_id + 3


def test_expiration_interval_ends_the_retries() -> None:
    transition = scheduled(start_to_close_timeout_seconds=5,
                           schedule_to_close_timeout_seconds=1000,
                           retry_policy=policy(initial_interval_in_seconds=5,
                                               backoff_coefficient=1.0,
                                               expiration_interval_in_seconds=12))
    first = fail(transition.state, 0)   # next attempt at 5, within 12
    second = fail(first.state, 5)       # next attempt at 10, within 12
    assert_retried(first, transition.state)
    assert_retried(second, first.state)
    final = fail(second.state, 10)      # next attempt would be at 15: past the expiration
    assert types(final)[:2] == [EventType.ActivityTaskStarted, EventType.ActivityTaskFailed]
    assert final.events[0].attributes["attempt"] == 2


@pytest.mark.parametrize("reason,retried", [("CardDeclined", True), ("CardExpired", False),
                                            ("ValueError", False)])
def test_non_retryable_reasons_fail_at_once(reason: str, retried: bool) -> None:
    # Reason names are exception class names; only an exact match is final.
    transition = scheduled(start_to_close_timeout_seconds=5,
                           schedule_to_close_timeout_seconds=1000,
                           retry_policy=policy(maximum_attempts=5, non_retryable_error_reasons=[
                               "CardExpired", "ValueError"]))
    outcome = fail(transition.state, 0, reason=reason)
    if retried:
        assert_retried(outcome, transition.state)
    else:
        assert types(outcome)[:2] == [EventType.ActivityTaskStarted,
                                      EventType.ActivityTaskFailed]
        assert outcome.events[0].attributes["attempt"] == 0
        assert outcome.events[1].attributes["reason"] == reason


@pytest.mark.parametrize("failed_at,retried", [(21, True), (22, False), (23, False)])
def test_no_retry_would_start_at_or_past_schedule_to_close(failed_at: float,
                                                           retried: bool) -> None:
    # Backoff 8 s, schedule-to-close 30 s: only a retry due before 30 s is made.
    transition = scheduled(start_to_close_timeout_seconds=30,
                           schedule_to_close_timeout_seconds=30,
                           retry_policy=policy(initial_interval_in_seconds=8,
                                               backoff_coefficient=1.0, maximum_attempts=10))
    outcome = fail(transition.state, failed_at)
    if retried:
        assert_retried(outcome, transition.state)
        assert retry_timer(outcome).fire_at == ms(failed_at + 8)
    else:
        assert types(outcome)[:2] == [EventType.ActivityTaskStarted,
                                      EventType.ActivityTaskFailed]


def test_without_a_retry_policy_the_first_failure_is_final() -> None:
    transition = scheduled(start_to_close_timeout_seconds=5,
                           schedule_to_close_timeout_seconds=1000)
    final = fail(transition.state, 1)
    assert types(final) == [EventType.ActivityTaskStarted, EventType.ActivityTaskFailed,
                            EventType.DecisionTaskScheduled]


def test_a_retry_timer_is_due_at_the_end_of_its_backoff_only() -> None:
    transition = scheduled(start_to_close_timeout_seconds=5,
                           schedule_to_close_timeout_seconds=1000,
                           retry_policy=policy(initial_interval_in_seconds=4))
    retried = fail(transition.state, 1)
    timer = retry_timer(retried)
    assert (timer.started_event_id, timer.attempt, timer.fire_at) == (SCHEDULED, 1, ms(5))
    with pytest.raises(TimerNotDueError) as early:
        due_retry(retried.state, timer, at(4.999))
    assert early.value.fire_at == ms(5)
    due = due_retry(retried.state, timer, at(5))
    assert (due.scheduled_event_id, due.attempt, due.scheduled_version) == (SCHEDULED, 1, 2)
    # A retry timer is never committed: the service sends the next attempt's task.
    with pytest.raises(TypeError):
        fire(retried.state, timer, 5)
    taken = start_attempt(retried.state, 5)
    with pytest.raises(StaleTaskError):  # the attempt already went out and started
        due_retry(taken.state, timer, at(6))
    with pytest.raises(StaleTaskError):  # a retry timer of an attempt that is not current
        due_retry(retried.state, replace(timer, attempt=2), at(6))
    closed = apply(retried.state, FireTimer(timer_id="", started_event_id=1,
                                            timer_kind=TimerKind.WORKFLOW_TIMEOUT), now=at(3600))
    assert closed.state.status is RunStatus.TIMED_OUT
    with pytest.raises(WorkflowExecutionAlreadyCompletedError):
        due_retry(closed.state, timer, at(3601))


# --- attempts: starts, stale answers, stale timers ----------------------------------------------


def test_an_attempt_starts_once() -> None:
    transition = scheduled(start_to_close_timeout_seconds=5,
                           schedule_to_close_timeout_seconds=100)
    taken = start_attempt(transition.state, 1, identity="worker-1")
    with pytest.raises(ActivityTaskAlreadyStartedError) as again:
        start_attempt(taken.state, 2, identity="worker-2")
    assert "worker-1" in str(again.value)
    assert isinstance(again.value, StaleTaskError)  # workers drop the copy like a stale task
    with pytest.raises(StaleTaskError) as other:  # an attempt that does not exist
        apply(taken.state, StartActivityTask(scheduled_event_id=SCHEDULED, attempt=1), now=at(2))
    assert not isinstance(other.value, ActivityTaskAlreadyStartedError)


def test_answers_of_an_old_attempt_are_stale() -> None:
    transition = scheduled(start_to_close_timeout_seconds=5,
                           schedule_to_close_timeout_seconds=1000,
                           retry_policy=policy())
    taken = start_attempt(transition.state, 0)
    retried = fail(taken.state, 1)
    assert pending(retried.state).attempt == 1
    old = {"scheduled_event_id": SCHEDULED, "attempt": 0}
    for command in (CompleteActivityTask(**old, result='"late"'),  # type: ignore[arg-type]
                    FailActivityTask(**old, reason="Late"),  # type: ignore[arg-type]
                    RecordActivityHeartbeat(**old, details="late"),  # type: ignore[arg-type]
                    CancelActivityTask(**old, details="late"),  # type: ignore[arg-type]
                    StartActivityTask(**old)):  # type: ignore[arg-type]
        with pytest.raises(StaleTaskError):
            apply(retried.state, command, now=at(3))
    # The current attempt is answered normally.
    done = apply(retried.state, CompleteActivityTask(scheduled_event_id=SCHEDULED, attempt=1,
                                                     result='"ok"'), now=at(3))
    assert types(done)[:2] == [EventType.ActivityTaskStarted, EventType.ActivityTaskCompleted]
    assert done.events[0].attributes["attempt"] == 1


def test_timers_of_an_old_attempt_or_chain_are_stale() -> None:
    transition = scheduled(schedule_to_start_timeout_seconds=10,
                           start_to_close_timeout_seconds=5,
                           schedule_to_close_timeout_seconds=1000,
                           retry_policy=policy())
    first = deadline_timer(transition)  # attempt 0, chain 1
    taken = start_attempt(transition.state, 1)
    second = deadline_timer(taken)  # attempt 0, chain 2
    retried = fire(taken.state, second, 6)  # start-to-close: attempt 1, chain 3
    third = deadline_timer(retried)
    assert [(t.attempt, t.seq) for t in (first, second, third)] == [(0, 1), (0, 2), (1, 3)]
    for stale in (first, second):
        with pytest.raises(StaleTaskError) as caught:
            fire(retried.state, stale, 100)
        assert not isinstance(caught.value, TimerNotDueError)  # dropped, never sent again
    # Right attempt, superseded chain.
    with pytest.raises(StaleTaskError):
        apply(retried.state, FireTimer(timer_id="", started_event_id=SCHEDULED,
                                       timer_kind=TimerKind.ACTIVITY_TIMEOUT, attempt=1, seq=2),
              now=at(100))
    # A timer of an activity that closed.
    done = apply(retried.state, CompleteActivityTask(scheduled_event_id=SCHEDULED, attempt=1),
                 now=at(8))
    with pytest.raises(StaleTaskError):
        fire(done.state, third, 100)


def test_heartbeat_details_survive_into_the_next_attempt() -> None:
    transition = scheduled(start_to_close_timeout_seconds=60, heartbeat_timeout_seconds=10,
                           schedule_to_close_timeout_seconds=1000, retry_policy=policy())
    taken = start_attempt(transition.state, 0)
    beat = heartbeat(taken.state, 3, "page 7")
    retried = fail(beat.state, 4)
    following = pending(retried.state)
    assert following.attempt == 1
    assert following.heartbeat_details == "page 7"  # where the next attempt resumes
    assert (following.started_time, following.last_heartbeat_time) == (None, None)
    assert following.started_identity == ""
    taken = start_attempt(retried.state, 5, identity="worker-2")
    assert pending(taken.state).heartbeat_details == "page 7"
    # The new attempt's heartbeat timeout counts from its own start, not the old heartbeat.
    assert deadline_timer(taken).fire_at == ms(15)


def test_heartbeats_refuse_oversized_details() -> None:
    transition = scheduled(start_to_close_timeout_seconds=60,
                           schedule_to_close_timeout_seconds=100)
    taken = start_attempt(transition.state, 0)
    with pytest.raises(ValueError, match=str(MAX_PAYLOAD_BYTES)):
        heartbeat(taken.state, 1, "x" * (MAX_PAYLOAD_BYTES + 1))


def test_a_heartbeat_that_starts_the_attempt_arms_its_earlier_deadline() -> None:
    transition = scheduled(schedule_to_start_timeout_seconds=60,
                           start_to_close_timeout_seconds=30, heartbeat_timeout_seconds=10,
                           schedule_to_close_timeout_seconds=120)
    beat = heartbeat(transition.state, 1, "first sign of life")
    assert pending(beat.state).started_time == ms(1)
    assert deadline_timer(beat).fire_at == ms(11)


# --- cancellation -------------------------------------------------------------------------------


def with_decision(state: RunState, seconds: float) -> RunState:
    """The run with a decision task pending (a signal asks for one)."""
    signalled = apply(state, SignalWorkflow(signal_name="stop"), now=at(seconds))
    assert signalled.state.decision is not None
    return signalled.state


def request_cancel(state: RunState, seconds: float) -> Transition:
    return decide(with_decision(state, seconds), Decision(
        DecisionType.RequestCancelActivityTask, {"activity_id": "0"}), now=at(seconds))


def test_wait_for_cancellation_keeps_a_started_activity_until_it_acknowledges() -> None:
    transition = scheduled(start_to_close_timeout_seconds=60,
                           schedule_to_close_timeout_seconds=100, wait_for_cancellation=True,
                           retry_policy=policy(maximum_attempts=5))
    assert transition.events[2].attributes["wait_for_cancellation"] is True
    taken = start_attempt(transition.state, 1)
    requested = request_cancel(taken.state, 2)
    assert types(requested)[2:] == [EventType.ActivityTaskCancelRequested]
    activity = pending(requested.state)
    assert activity.cancel_requested and activity.started
    assert requested.state.decision is None  # nothing for the workflow to learn yet
    # Heartbeats go on (the worker learns of the request from the state) ...
    beat = heartbeat(requested.state, 3, "stopping")
    assert pending(beat.state).cancel_requested
    # ... until the activity acknowledges: ActivityTaskCanceled with its details.
    cancelled = apply(beat.state, CancelActivityTask(
        scheduled_event_id=SCHEDULED, attempt=0, details="stopped at row 3", identity="worker-1",
    ), now=at(4))
    assert types(cancelled) == [EventType.ActivityTaskStarted, EventType.ActivityTaskCanceled,
                                EventType.DecisionTaskScheduled]
    started_event, event = cancelled.events[:2]
    assert started_event.timestamp == at(1)
    assert event.attributes["details"] == "stopped at row 3"
    assert event.attributes["started_event_id"] == started_event.event_id
    assert event.attributes["activity_id"] == "0"
    assert cancelled.state.activities == ()


def test_a_failure_after_a_cancel_request_is_not_retried() -> None:
    transition = scheduled(start_to_close_timeout_seconds=60,
                           schedule_to_close_timeout_seconds=100, wait_for_cancellation=True,
                           retry_policy=policy(maximum_attempts=5))
    requested = request_cancel(start_attempt(transition.state, 1).state, 2)
    final = fail(requested.state, 3, reason="Interrupted")
    assert types(final)[:2] == [EventType.ActivityTaskStarted, EventType.ActivityTaskFailed]


def test_without_wait_for_cancellation_a_started_activity_is_canceled_at_once() -> None:
    transition = scheduled(start_to_close_timeout_seconds=60,
                           schedule_to_close_timeout_seconds=100)
    taken = start_attempt(transition.state, 1)
    cancelled = request_cancel(taken.state, 2)
    assert types(cancelled)[2:] == [EventType.ActivityTaskCancelRequested,
                                    EventType.ActivityTaskCanceled]
    assert cancelled.events[-1].attributes["started_event_id"] == 0
    assert cancelled.state.activities == ()
    with pytest.raises(StaleTaskError):  # the worker's late answer
        apply(cancelled.state, CompleteActivityTask(scheduled_event_id=SCHEDULED, attempt=0),
              now=at(3))


def test_with_wait_for_cancellation_an_activity_not_started_is_canceled_at_once() -> None:
    transition = scheduled(start_to_close_timeout_seconds=60,
                           schedule_to_close_timeout_seconds=100, wait_for_cancellation=True)
    cancelled = request_cancel(transition.state, 2)
    assert types(cancelled)[2:4] == [EventType.ActivityTaskCancelRequested,
                                     EventType.ActivityTaskCanceled]
    assert cancelled.state.activities == ()


def test_cancelling_an_activity_that_never_started_asks_for_a_decision() -> None:
    transition = scheduled(start_to_close_timeout_seconds=60,
                           schedule_to_close_timeout_seconds=100, wait_for_cancellation=True)
    cancelled = request_cancel(transition.state, 2)
    assert types(cancelled)[2:] == [EventType.ActivityTaskCancelRequested,
                                    EventType.ActivityTaskCanceled,
                                    EventType.DecisionTaskScheduled]
    assert cancelled.state.decision is not None


# --- markers ------------------------------------------------------------------------------------


def test_record_marker_writes_marker_recorded() -> None:
    transition = decide(started(), Decision(DecisionType.RecordMarker, {
        "marker_name": "SideEffect", "details": '"0" 4', "header": {"k": "v"}}))
    assert types(transition) == [EventType.DecisionTaskStarted, EventType.DecisionTaskCompleted,
                                 EventType.MarkerRecorded]
    marker = transition.events[2]
    assert marker.attributes["marker_name"] == "SideEffect"
    assert marker.attributes["details"] == '"0" 4'
    assert marker.attributes["header"] == {"k": "v"}
    assert marker.attributes["decision_task_completed_event_id"] == 4
    assert transition.tasks == () and transition.state.is_open
    refused = decide(started(), Decision(DecisionType.RecordMarker, {"marker_name": ""}))
    assert types(refused)[1] is EventType.DecisionTaskFailed
    assert refused.events[1].attributes["cause"] == "BAD_RECORD_MARKER_ATTRIBUTES"


# --- bad schedule attributes ------------------------------------------------------------------


@pytest.mark.parametrize("attributes,named", [
    ({}, "schedule_to_close_timeout"),
    ({"start_to_close_timeout_seconds": 5}, "schedule_to_start_timeout_seconds is missing"),
    ({"schedule_to_start_timeout_seconds": 5}, "start_to_close_timeout_seconds is missing"),
    ({"schedule_to_close_timeout_seconds": 0}, "schedule_to_close_timeout_seconds"),
    ({"schedule_to_close_timeout_seconds": -5}, "schedule_to_close_timeout_seconds"),
    ({"schedule_to_close_timeout_seconds": 60, "start_to_close_timeout_seconds": 0},
     "start_to_close_timeout_seconds"),
    ({"schedule_to_close_timeout_seconds": 60, "schedule_to_start_timeout_seconds": -1},
     "schedule_to_start_timeout_seconds"),
    ({"schedule_to_close_timeout_seconds": 60, "heartbeat_timeout_seconds": 0},
     "heartbeat_timeout_seconds"),
    ({"schedule_to_close_timeout_seconds": True}, "schedule_to_close_timeout_seconds"),
    ({"schedule_to_close_timeout_seconds": 60, "start_to_close_timeout_seconds": 10,
      "heartbeat_timeout_seconds": 11}, "heartbeat_timeout_seconds (11) is longer"),
    # start-to-close defaults to schedule-to-close: the heartbeat is checked against that.
    ({"schedule_to_close_timeout_seconds": 20, "heartbeat_timeout_seconds": 30},
     "heartbeat_timeout_seconds (30) is longer"),
    ({"schedule_to_close_timeout_seconds": 60, "retry_policy": {"maximum_attempts": 3}},
     "retry_policy.initial_interval"),
    ({"schedule_to_close_timeout_seconds": 60, "retry_policy": policy(
        initial_interval_in_seconds=0)}, "retry_policy.initial_interval"),
    ({"schedule_to_close_timeout_seconds": 60, "retry_policy": policy(
        initial_interval_in_seconds=-2)}, "retry_policy.initial_interval"),
    ({"schedule_to_close_timeout_seconds": 60, "retry_policy": policy(
        backoff_coefficient=0.5)}, "backoff_coefficient"),
    ({"schedule_to_close_timeout_seconds": 60, "retry_policy": policy(
        initial_interval_in_seconds=10, maximum_interval_in_seconds=5)}, "maximum_interval"),
    ({"schedule_to_close_timeout_seconds": 60, "retry_policy": policy(maximum_attempts=-1)},
     "maximum_attempts"),
    ({"schedule_to_close_timeout_seconds": 60, "retry_policy": "often"}, "retry_policy"),
    ({"schedule_to_close_timeout_seconds": 60, "wait_for_cancellation": "yes"},
     "wait_for_cancellation"),
], ids=lambda value: value if isinstance(value, str) else None)
def test_bad_schedule_attributes_fail_the_decision_task_and_leave_the_run_open(
    attributes: dict[str, Any], named: str
) -> None:
    state = started()
    failed = decide(state, schedule(**attributes))
    assert types(failed) == [EventType.DecisionTaskStarted, EventType.DecisionTaskFailed,
                             EventType.DecisionTaskScheduled]
    assert failed.events[1].attributes["cause"] == "BAD_SCHEDULE_ACTIVITY_ATTRIBUTES"
    assert named in failed.events[1].attributes["details"]
    after = failed.state
    assert after.status is RunStatus.OPEN and after.activities == ()
    assert after.decision is not None and after.decision.attempt == 1
    assert [t.kind for t in failed.tasks] == ["decision"]  # no activity task, no timer
    assert after.version == state.version + 1


def test_a_heartbeat_as_long_as_start_to_close_is_accepted() -> None:
    transition = scheduled(schedule_to_close_timeout_seconds=60,
                           start_to_close_timeout_seconds=10, heartbeat_timeout_seconds=10)
    assert transition.events[2].attributes["heartbeat_timeout_seconds"] == 10


def test_one_bad_activity_refuses_the_whole_decision_task() -> None:
    failed = decide(started(), schedule("0", schedule_to_close_timeout_seconds=60),
                    schedule("1", start_to_close_timeout_seconds=5))
    assert failed.events[1].attributes["cause"] == "BAD_SCHEDULE_ACTIVITY_ATTRIBUTES"
    assert "decision 1" in failed.events[1].attributes["details"]
    assert failed.state.activities == ()


# --- versions -----------------------------------------------------------------------------------


def test_every_commit_adds_one_version_state_only_ones_too() -> None:
    first = start(StartWorkflow(
        domain="default", workflow_id="w", run_id="r", workflow_type="T", task_list="tl",
        input=None, execution_start_to_close_timeout_seconds=3600,
        task_start_to_close_timeout_seconds=10,
    ), now=T0)
    assert first.state.version == 1
    transition = decide(first.state, schedule(start_to_close_timeout_seconds=60,
                                              heartbeat_timeout_seconds=30,
                                              schedule_to_close_timeout_seconds=1000,
                                              retry_policy=policy()))
    steps = [transition]
    steps.append(start_attempt(steps[-1].state, 1))          # state only
    steps.append(heartbeat(steps[-1].state, 2, "half"))       # state only
    steps.append(fail(steps[-1].state, 3))                    # retry: state only
    steps.append(start_attempt(steps[-1].state, 4))          # state only
    steps.append(apply(steps[-1].state, CompleteActivityTask(
        scheduled_event_id=SCHEDULED, attempt=1, result='"ok"'), now=at(5)))  # events
    assert [s.state.version for s in steps] == [2, 3, 4, 5, 6, 7]
    assert [bool(s.events) for s in steps] == [True, False, False, False, False, True]
    assert all(s.commit and s.changed for s in steps)
    # Nothing to commit keeps the version: a second failure of a retried decision task.
    failed = decide(steps[-1].state, schedule("1"))  # no timeouts: refused
    retry_state = failed.state
    assert retry_state.decision is not None and retry_state.decision.attempt == 1
    again = apply(retry_state, FailDecisionTask(
        scheduled_event_id=retry_state.decision.scheduled_event_id, attempt=1, started_at=at(6),
        cause="WORKFLOW_WORKER_UNHANDLED_FAILURE"), now=at(6))
    assert not again.changed and again.state.version == retry_state.version == 8
