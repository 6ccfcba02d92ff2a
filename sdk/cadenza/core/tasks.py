"""Tasks a commit creates: messages to a task list (decision or activity).

A commit's tasks are derived from its events (each DecisionTaskScheduled and
ActivityTaskScheduled is a task to send), so the committed batch is its own outbox: a task
survives a crash between the commit and the send, and nothing is stored twice. ``key`` is the
same for every copy of one task, which is how queues drop the duplicates a redrive sends.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from .events import CLOSE_EVENTS, EventType, HistoryEvent, to_millis

if TYPE_CHECKING:
    from .state import RunState


class TaskKind(StrEnum):
    DECISION = "decision"
    ACTIVITY = "activity"
    #: A query rides on the decision queue of the workflow's task list: decision workers answer.
    QUERY = "query"
    #: A durable timer: a delayed message on the stack's timer queue, checked when it fires.
    TIMER = "timer"
    #: A change to another run (start a child, signal, cancel, report to a parent ...): the
    #: engine performs it right after the commit and again from the history stream, so it
    #: survives a crash like a task; every effect is idempotent.
    EFFECT = "effect"


@dataclass(frozen=True, slots=True)
class DecisionTask:
    domain: str
    workflow_id: str
    run_id: str
    workflow_type: str
    task_list: str
    scheduled_event_id: int
    attempt: int
    #: The decision task timeout: a worker holds the message at most this long, so a dead or
    #: hung worker's task goes to another worker when it passes.
    start_to_close_timeout_seconds: int = 10

    kind = TaskKind.DECISION

    @property
    def key(self) -> str:
        return f"{self.run_id}-d-{self.scheduled_event_id}-{self.attempt}"


@dataclass(frozen=True, slots=True)
class ActivityTask:
    domain: str
    workflow_id: str
    run_id: str
    workflow_type: str
    task_list: str
    scheduled_event_id: int
    attempt: int
    activity_id: str
    activity_type: str
    input: str | None
    scheduled_time: int  # epoch milliseconds
    schedule_to_close_timeout_seconds: int | None = None
    schedule_to_start_timeout_seconds: int | None = None
    start_to_close_timeout_seconds: int | None = None
    heartbeat_timeout_seconds: int | None = None

    kind = TaskKind.ACTIVITY

    @property
    def key(self) -> str:
        return f"{self.run_id}-a-{self.scheduled_event_id}-{self.attempt}"


@dataclass(frozen=True, slots=True)
class QueryTask:
    """Replay the run and answer a query; nothing is committed, so nothing is in history."""

    domain: str
    workflow_id: str
    run_id: str
    workflow_type: str
    task_list: str
    query_id: str
    query_type: str
    query_args: str | None
    #: Epoch milliseconds after which nobody waits for the answer: a worker drops the task.
    expires_at: int

    kind = TaskKind.QUERY
    scheduled_event_id = 0
    attempt = 0

    @property
    def key(self) -> str:
        return f"{self.run_id}-q-{self.query_id}"


class TimerKind(StrEnum):
    """What a durable timer is for; routes a fired timer to its rule in the core."""

    #: A workflow's own timer (StartTimer -> TimerStarted).
    USER = "user"
    #: The run's execution_start_to_close_timeout.
    WORKFLOW_TIMEOUT = "workflow_timeout"
    #: The earliest of an activity attempt's timeouts (schedule-to-start, start-to-close,
    #: heartbeat, schedule-to-close); re-armed while the attempt is healthy.
    ACTIVITY_TIMEOUT = "activity_timeout"
    #: The end of a retry backoff: the next attempt goes to its task list.
    ACTIVITY_RETRY = "activity_retry"
    #: The end of a run's start backoff (delay_start, cron, workflow retry): its first
    #: decision task is scheduled.
    WORKFLOW_BACKOFF = "workflow_backoff"


_TIMER_CODES = {
    TimerKind.USER: "u",
    TimerKind.WORKFLOW_TIMEOUT: "w",
    TimerKind.ACTIVITY_TIMEOUT: "a",
    TimerKind.ACTIVITY_RETRY: "r",
    TimerKind.WORKFLOW_BACKOFF: "b",
}
_RUN_TIMERS = frozenset({TimerKind.USER, TimerKind.WORKFLOW_TIMEOUT, TimerKind.WORKFLOW_BACKOFF})


@dataclass(frozen=True, slots=True)
class TimerTask:
    """A durable timer, checked against the run's state when it fires (never early).

    ``started_event_id`` is the TimerStarted event of a user timer, the
    WorkflowExecutionStarted event of the execution timeout, and the ActivityTaskScheduled
    event of an activity's timers; ``attempt`` and ``seq`` say which activity attempt and
    which deadline chain an activity timer belongs to.
    """

    domain: str
    workflow_id: str
    run_id: str
    workflow_type: str
    timer_id: str
    started_event_id: int
    fire_at: int  # epoch milliseconds
    timer_kind: TimerKind = TimerKind.USER
    attempt: int = 0
    seq: int = 0

    kind = TaskKind.TIMER
    task_list = ""

    @property
    def scheduled_event_id(self) -> int:
        return self.started_event_id

    @property
    def key(self) -> str:
        code = _TIMER_CODES[self.timer_kind]
        if self.timer_kind in _RUN_TIMERS:
            return f"{self.run_id}-t{code}-{self.started_event_id}"
        return (f"{self.run_id}-t{code}-{self.started_event_id}.{self.attempt}.{self.seq}."
                f"{self.fire_at}")

    def refire_at(self, fire_at: int) -> TimerTask:
        """The same timer, due later (it surfaced early, or its deadline moved)."""
        return replace(self, fire_at=fire_at)


class EffectKind(StrEnum):
    """What an effect does to the run it targets."""

    #: StartChildWorkflowExecutionInitiated: start the child run.
    START_CHILD = "start_child"
    #: A child's first WorkflowExecutionStarted: ChildWorkflowExecutionStarted in the parent.
    REPORT_CHILD_STARTED = "report_child_started"
    #: A child's close (not a continue-as-new): ChildWorkflowExecution<Closed> in the parent.
    REPORT_CHILD_CLOSED = "report_child_closed"
    SIGNAL_EXTERNAL = "signal_external"
    CANCEL_EXTERNAL = "cancel_external"
    #: The parent closed: terminate or cancel one of its open children.
    PARENT_CLOSE_POLICY = "parent_close_policy"
    #: WorkflowExecutionContinuedAsNew (continue-as-new, cron, workflow retry): the next run.
    START_NEXT_RUN = "start_next_run"


_EFFECT_CODES = {
    EffectKind.START_CHILD: "c",
    EffectKind.REPORT_CHILD_STARTED: "s",
    EffectKind.REPORT_CHILD_CLOSED: "x",
    EffectKind.SIGNAL_EXTERNAL: "g",
    EffectKind.CANCEL_EXTERNAL: "k",
    EffectKind.PARENT_CLOSE_POLICY: "p",
    EffectKind.START_NEXT_RUN: "n",
}


@dataclass(frozen=True, slots=True)
class EffectTask:
    """A change to another run that the commit of ``event_id`` implies.

    The source is the run that committed the event; the target is the run the effect changes
    (``target_run_id`` empty: the workflow id's current run). ``attributes`` are the
    implying event's attributes (and, for reports, the close attributes).
    """

    domain: str
    workflow_id: str
    run_id: str
    workflow_type: str
    effect: EffectKind
    event_id: int
    target_domain: str
    target_workflow_id: str
    target_run_id: str = ""
    attributes: Mapping[str, Any] = field(default_factory=dict)

    kind = TaskKind.EFFECT
    task_list = ""
    attempt = 0

    @property
    def scheduled_event_id(self) -> int:
        return self.event_id

    @property
    def key(self) -> str:
        code = _EFFECT_CODES[self.effect]
        return f"{self.run_id}-e{code}-{self.event_id}-{self.target_workflow_id}"


Task = DecisionTask | ActivityTask | QueryTask | TimerTask | EffectTask


def task_to_dict(task: Task) -> dict[str, Any]:
    # Tasks are flat records: a shallow copy of their fields is their JSON form (asdict's deep
    # copy was the most expensive step of sending a task).
    data: dict[str, Any] = {"kind": str(task.kind)}
    for name in _FIELDS[type(task)]:
        data[name] = getattr(task, name)
    if isinstance(task, TimerTask):
        data["timer_kind"] = str(task.timer_kind)
    elif isinstance(task, EffectTask):
        data["effect"] = str(task.effect)
        data["attributes"] = dict(task.attributes)
    return data


_FIELDS: dict[type, tuple[str, ...]] = {
    cls: tuple(f.name for f in fields(cls))
    for cls in (DecisionTask, ActivityTask, QueryTask, TimerTask, EffectTask)
}


def task_from_dict(data: Mapping[str, Any]) -> Task:
    values = dict(data)
    kind = TaskKind(values.pop("kind"))
    if kind is TaskKind.DECISION:
        return DecisionTask(**values)
    if kind is TaskKind.QUERY:
        return QueryTask(**values)
    if kind is TaskKind.TIMER:
        values["timer_kind"] = TimerKind(values.get("timer_kind") or TimerKind.USER)
        return TimerTask(**values)
    if kind is TaskKind.EFFECT:
        values["effect"] = EffectKind(values["effect"])
        return EffectTask(**values)
    return ActivityTask(**values)


def tasks_of(state: RunState, events: Iterable[HistoryEvent]) -> tuple[Task, ...]:
    """The tasks a batch of events creates for the run whose state follows them."""
    tasks: list[Task] = []
    for event in events:
        kind = event.event_type
        if kind is EventType.WorkflowExecutionStarted:
            tasks += _started_tasks(state, event)
        elif kind is EventType.DecisionTaskScheduled:
            tasks.append(DecisionTask(
                domain=state.domain,
                workflow_id=state.workflow_id,
                run_id=state.run_id,
                workflow_type=state.workflow_type,
                task_list=str(event.attributes["task_list"]),
                scheduled_event_id=event.event_id,
                attempt=int(event.attributes.get("attempt") or 0),
                start_to_close_timeout_seconds=int(
                    event.attributes.get("start_to_close_timeout_seconds") or 10),
            ))
        elif kind is EventType.ActivityTaskScheduled:
            pending = state.activity(event.event_id) if state.is_open else None
            if pending is not None and pending.started:
                continue  # started eagerly by the worker that scheduled it: no queue
            tasks.append(activity_task(state, event, attempt=0,
                                       scheduled_time=to_millis(event.timestamp)))
        elif kind is EventType.TimerStarted:
            tasks.append(_timer(state, event, TimerKind.USER, str(event.attributes["timer_id"]),
                                to_millis(event.timestamp)
                                + 1000 * int(event.attributes["start_to_fire_timeout_seconds"])))
        elif kind in _EFFECT_OF_INITIATED:
            tasks.append(_effect(state, event, _EFFECT_OF_INITIATED[kind],
                                 str(event.attributes.get("domain") or state.domain),
                                 str(event.attributes["workflow_id"]),
                                 str(event.attributes.get("run_id") or "")))
        elif kind in CLOSE_EVENTS:
            tasks += _closed_tasks(state, event)
    return tuple(tasks)


_EFFECT_OF_INITIATED = {
    EventType.StartChildWorkflowExecutionInitiated: EffectKind.START_CHILD,
    EventType.SignalExternalWorkflowExecutionInitiated: EffectKind.SIGNAL_EXTERNAL,
    EventType.RequestCancelExternalWorkflowExecutionInitiated: EffectKind.CANCEL_EXTERNAL,
}


def _timer(state: RunState, event: HistoryEvent, kind: TimerKind, timer_id: str,
           fire_at: int) -> TimerTask:
    return TimerTask(
        domain=state.domain, workflow_id=state.workflow_id, run_id=state.run_id,
        workflow_type=state.workflow_type, timer_id=timer_id, started_event_id=event.event_id,
        timer_kind=kind, fire_at=fire_at,
    )


def _effect(state: RunState, event: HistoryEvent, effect: EffectKind, domain: str,
            workflow_id: str, run_id: str, **attributes: Any) -> EffectTask:
    return EffectTask(
        domain=state.domain, workflow_id=state.workflow_id, run_id=state.run_id,
        workflow_type=state.workflow_type, effect=effect, event_id=event.event_id,
        target_domain=domain, target_workflow_id=workflow_id, target_run_id=run_id,
        attributes={**event.attributes, **attributes},
    )


def _started_tasks(state: RunState, event: HistoryEvent) -> list[Task]:
    started = to_millis(event.timestamp)
    backoff = int(event.attributes.get("first_decision_task_backoff_seconds") or 0)
    timeout = int(event.attributes["execution_start_to_close_timeout_seconds"])
    tasks: list[Task] = [
        _timer(state, event, TimerKind.WORKFLOW_TIMEOUT, "", started + 1000 * (backoff + timeout))
    ]
    if backoff:
        tasks.append(_timer(state, event, TimerKind.WORKFLOW_BACKOFF, "",
                            started + 1000 * backoff))
    parent = state.parent
    if parent is not None and not event.attributes.get("continued_execution_run_id"):
        tasks.append(_effect(state, event, EffectKind.REPORT_CHILD_STARTED, parent.domain,
                             parent.workflow_id, parent.run_id,
                             initiated_event_id=parent.initiated_event_id))
    return tasks


def _closed_tasks(state: RunState, event: HistoryEvent) -> list[Task]:
    tasks: list[Task] = []
    if event.event_type is EventType.WorkflowExecutionContinuedAsNew:
        tasks.append(_effect(state, event, EffectKind.START_NEXT_RUN, state.domain,
                             state.workflow_id, str(event.attributes["new_execution_run_id"])))
    elif state.parent is not None:
        tasks.append(_effect(state, event, EffectKind.REPORT_CHILD_CLOSED, state.parent.domain,
                             state.parent.workflow_id, state.parent.run_id,
                             close_status=str(state.status),
                             initiated_event_id=state.parent.initiated_event_id))
    for child in state.children:
        if child.parent_close_policy != "ABANDON":
            tasks.append(_effect(state, event, EffectKind.PARENT_CLOSE_POLICY, child.domain,
                                 child.workflow_id, "",
                                 parent_close_policy=child.parent_close_policy,
                                 initiated_event_id=child.initiated_event_id))
    return tasks


#: The events after which an activity's timers (its deadlines, a pending retry) are moot.
_ACTIVITY_CLOSED = frozenset({
    EventType.ActivityTaskCompleted,
    EventType.ActivityTaskFailed,
    EventType.ActivityTaskTimedOut,
    EventType.ActivityTaskCanceled,
})


def moot_timer_prefixes(state: RunState, events: Iterable[HistoryEvent]) -> tuple[str, ...]:
    """Key prefixes of the timers a batch makes moot: every timer of a run that closes, an
    activity's deadlines and retry when it closes. A timer that lives outside the queue (an
    EventBridge Scheduler schedule, named after its key) is deleted by these; one that
    fires anyway is stale and dropped, so a lost deletion costs a stale firing, nothing more.
    """
    prefixes: list[str] = []
    for event in events:
        if event.event_type in CLOSE_EVENTS:
            return (f"{state.run_id}-t",)
        if event.event_type in _ACTIVITY_CLOSED:
            scheduled = int(event.attributes["scheduled_event_id"])
            for kind in (TimerKind.ACTIVITY_TIMEOUT, TimerKind.ACTIVITY_RETRY):
                prefixes.append(f"{state.run_id}-t{_TIMER_CODES[kind]}-{scheduled}.")
    return tuple(prefixes)


def activity_task(
    state: RunState, scheduled: HistoryEvent, *, attempt: int, scheduled_time: int
) -> ActivityTask:
    """The task of one attempt of the activity its ActivityTaskScheduled event describes."""
    attributes = scheduled.attributes
    return ActivityTask(
        domain=state.domain,
        workflow_id=state.workflow_id,
        run_id=state.run_id,
        workflow_type=state.workflow_type,
        task_list=str(attributes["task_list"]),
        scheduled_event_id=scheduled.event_id,
        attempt=attempt,
        activity_id=str(attributes["activity_id"]),
        activity_type=str(attributes["activity_type"]),
        input=attributes.get("input"),
        scheduled_time=scheduled_time,
        schedule_to_close_timeout_seconds=attributes.get("schedule_to_close_timeout_seconds"),
        schedule_to_start_timeout_seconds=attributes.get("schedule_to_start_timeout_seconds"),
        start_to_close_timeout_seconds=attributes.get("start_to_close_timeout_seconds"),
        heartbeat_timeout_seconds=attributes.get("heartbeat_timeout_seconds"),
    )
