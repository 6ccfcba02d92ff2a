"""Eager activities in the pure core: started in the decision's commit, sent to no queue."""

from __future__ import annotations

import pytest

from cadenza.core import (
    CompleteActivityTask,
    CompleteDecisionTask,
    Decision,
    DecisionType,
    RunState,
    StartActivityTask,
    TimerKind,
    TimerTask,
    Transition,
    apply,
    to_millis,
)
from cadenza.core.state import request_digest
from cadenza.core.tasks import ActivityTask
from cadenza.error import ActivityTaskAlreadyStartedError

from .test_activity_rules import T0, started


def schedule(activity_id: str, task_list: str = "orders") -> Decision:
    return Decision(DecisionType.ScheduleActivityTask, {
        "activity_id": activity_id, "activity_type": "reserve", "task_list": task_list,
        "schedule_to_close_timeout_seconds": 600, "start_to_close_timeout_seconds": 30})


def decide(state: RunState, *decisions: Decision, eager: int, request_id: str = "r1",
           task_list: str = "orders") -> Transition:
    assert state.decision is not None
    return apply(state, CompleteDecisionTask(
        scheduled_event_id=state.decision.scheduled_event_id, attempt=0,
        history_length=state.next_event_id, started_at=T0, decisions=decisions,
        identity="worker-1", request_id=request_id, eager_activities=eager,
        eager_task_list=task_list), now=T0)


def deadlines(transition: Transition) -> list[TimerTask]:
    return [t for t in transition.tasks
            if isinstance(t, TimerTask) and t.timer_kind is TimerKind.ACTIVITY_TIMEOUT]


def test_eager_activities_start_in_the_commit_with_one_deadline_each_and_no_task() -> None:
    transition = decide(started(), schedule("a"), schedule("b"), schedule("c", "other"),
                        eager=5)
    by_id = {p.activity_id: p for p in transition.state.activities}
    assert by_id["a"].started_time == by_id["b"].started_time == to_millis(T0)
    assert by_id["a"].started_identity == "worker-1"
    assert by_id["a"].eager_request == request_digest("r1")
    assert not by_id["c"].started  # another task list: this worker does not serve it
    queued = [t for t in transition.tasks if isinstance(t, ActivityTask)]
    assert [t.activity_id for t in queued] == ["c"]
    # One deadline per activity: the started attempt's (start-to-close, 30 s) for the eager
    # ones, in place of the one their schedule armed; schedule-to-close for the queued one.
    fire = {t.started_event_id: t.fire_at for t in deadlines(transition)}
    assert len(deadlines(transition)) == 3
    assert fire[by_id["a"].scheduled_event_id] == to_millis(T0) + 30_000
    assert fire[by_id["c"].scheduled_event_id] == to_millis(T0) + 600_000
    # A redelivered start of an eager attempt is a copy of a running one.
    with pytest.raises(ActivityTaskAlreadyStartedError):
        apply(transition.state, StartActivityTask(
            scheduled_event_id=by_id["a"].scheduled_event_id, attempt=0, identity="w2"), now=T0)


def test_eager_takes_no_more_than_asked_in_decision_order() -> None:
    transition = decide(started(), schedule("a"), schedule("b"), schedule("c"), eager=2)
    assert [p.activity_id for p in transition.state.activities if p.started] == ["a", "b"]
    assert [t.activity_id for t in transition.tasks if isinstance(t, ActivityTask)] == ["c"]


def test_without_eager_every_activity_is_queued() -> None:
    transition = decide(started(), schedule("a"), eager=0)
    assert not any(p.started for p in transition.state.activities)
    assert [t.activity_id for t in transition.tasks if isinstance(t, ActivityTask)] == ["a"]


def test_the_same_completion_again_changes_nothing() -> None:
    first = decide(started(), schedule("a"), eager=1)
    again = apply(first.state, CompleteDecisionTask(
        scheduled_event_id=3, attempt=0, history_length=first.state.next_event_id,
        started_at=T0, decisions=(schedule("a"),), identity="worker-1", request_id="r1",
        eager_activities=1, eager_task_list="orders"), now=T0)
    assert not again.changed


def complete(state: RunState, activity_id: str, request_id: str) -> Transition:
    pending = next(p for p in state.activities if p.activity_id == activity_id)
    return apply(state, CompleteActivityTask(
        scheduled_event_id=pending.scheduled_event_id, attempt=0, result='"ok"',
        identity="worker-1", request_id=request_id, hand_back_task_list="orders"), now=T0)


def test_a_result_hands_back_its_decision_task_unless_other_activities_are_pending() -> None:
    state = decide(started(), schedule("a"), schedule("b"), eager=2).state
    first = complete(state, "a", "c1")  # b still runs: the queue gathers both results
    assert first.state.decision is not None and first.state.decision.handed_to == ""
    # A decision task already pending is not scheduled (nor handed) again.
    second = complete(first.state, "b", "c2")
    assert second.state.decision == first.state.decision
    alone = complete(decide(started(), schedule("a"), eager=1).state, "a", "c3")
    assert alone.state.decision is not None
    assert alone.state.decision.handed_to == request_digest("c3")
