"""Whether a committed task still has to be delivered, given a later state of its run.

The history stream's redrive sends a commit's tasks again in case the process that committed
died before sending them. A task that a later commit of the same run shows as consumed or no
longer needed (the decision task completed, the activity attempt started or closed, the timer
fired or cancelled, the effect done, the run closed) cannot have been lost in a way that
matters, and sending it again would only be billed. The rule for each kind is the very check a
worker, the timer function or an effect applies when such a task arrives stale, so "not needed
here" and "dropped as stale there" never disagree.

Pure: ``state`` is the newest state of the task's run the caller knows (often the state of the
task's own commit, which is enough to tell that an activity was started eagerly in it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..error import (
    ActivityTaskAlreadyStartedError,
    StaleTaskError,
    TimerNotDueError,
    WorkflowExecutionAlreadyCompletedError,
)
from .commands import FireTimer
from .events import from_millis
from .state import RunState
from .tasks import (
    ActivityTask,
    DecisionTask,
    EffectKind,
    EffectTask,
    QueryTask,
    Task,
    TimerKind,
    TimerTask,
)
from .transitions import (
    _pending_decision,
    apply,
    current_deadline,
    due_retry,
    startable_activity,
)

#: What a stale task meets where it arrives: the same errors mean "not needed" here.
_STALE = (StaleTaskError, ActivityTaskAlreadyStartedError, WorkflowExecutionAlreadyCompletedError)


def still_needed(task: Task, state: RunState) -> bool:
    """Whether ``task`` (of ``state``'s run) may still have to be delivered.

    False only when ``state`` shows the task consumed or moot; a task of another run, or one
    this module has no rule for, is needed (sending too much is safe, too little is not).
    """
    if (task.domain, task.workflow_id, task.run_id) != (
            state.domain, state.workflow_id, state.run_id):
        return True
    return _RULES[type(task)](task, state)


def _decision_needed(task: Any, state: RunState) -> bool:
    # The check a decision completion meets: the same task (event and attempt) still pending.
    if not state.is_open:
        return False
    try:
        _pending_decision(state, task.scheduled_event_id, task.attempt)
    except StaleTaskError:
        return False
    return True


def _activity_needed(task: Any, state: RunState) -> bool:
    # The check a worker's start of the attempt meets: the run open, the attempt pending, not
    # started (checked without applying the start: a fan-out's commit holds a hundred).
    if not state.is_open:
        return False
    return _passes(lambda: startable_activity(state, task.scheduled_event_id, task.attempt))


def _timer_needed(task: Any, state: RunState) -> bool:
    # The check the timer function applies when the timer surfaces at its due time: a stale
    # timer is dropped there, a due or not-yet-due one acts or is sent again.
    timer: TimerTask = task
    at = from_millis(timer.fire_at)
    if timer.timer_kind is TimerKind.ACTIVITY_RETRY:
        return _passes(lambda: due_retry(state, timer, at))
    if timer.timer_kind is TimerKind.ACTIVITY_TIMEOUT:
        # Past this check a deadline either acts or is sent on again: needed either way
        # (checked without computing the timeout: a fan-out's commit arms a hundred).
        if not state.is_open:
            return False
        return _passes(lambda: current_deadline(state, timer.started_event_id, timer.attempt,
                                                timer.seq))
    command = FireTimer(timer_id=timer.timer_id, started_event_id=timer.started_event_id,
                        timer_kind=timer.timer_kind, attempt=timer.attempt, seq=timer.seq)
    return _passes(lambda: apply(state, command, now=at))


def _effect_needed(task: Any, state: RunState) -> bool:
    # The checks the engine's effects make on their source run before acting (a child
    # already started, an external request whose outcome is recorded: nothing to do). Effects
    # that change another run are judged there, not by this run's state.
    effect: EffectTask = task
    if effect.effect is EffectKind.START_CHILD:
        child = state.child(effect.event_id)
        return child is not None and not child.started
    if effect.effect in (EffectKind.SIGNAL_EXTERNAL, EffectKind.CANCEL_EXTERNAL):
        return state.external(effect.event_id) is not None
    return True


def _passes(check: Callable[[], object]) -> bool:
    try:
        check()
    except TimerNotDueError:
        return True
    except _STALE:
        return False
    return True


_RULES: dict[type, Callable[[Any, RunState], bool]] = {
    DecisionTask: _decision_needed,
    ActivityTask: _activity_needed,
    TimerTask: _timer_needed,
    EffectTask: _effect_needed,
    QueryTask: lambda task, state: True,
}

__all__ = ["still_needed"]
