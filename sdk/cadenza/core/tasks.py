"""Tasks a commit creates: messages to a task list (decision or activity).

A commit's tasks are derived from its events (each DecisionTaskScheduled and
ActivityTaskScheduled is a task to send), so the committed batch is its own outbox: a task
survives a crash between the commit and the send, and nothing is stored twice. ``key`` is the
same for every copy of one task, which is how queues drop the duplicates a redrive sends.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from .events import EventType, HistoryEvent, to_millis

if TYPE_CHECKING:
    from .state import RunState


class TaskKind(StrEnum):
    DECISION = "decision"
    ACTIVITY = "activity"
    #: A query rides on the decision queue of the workflow's task list: decision workers answer.
    QUERY = "query"
    #: A durable timer: a delayed message on the stack's timer queue, checked when it fires.
    TIMER = "timer"


@dataclass(frozen=True, slots=True)
class DecisionTask:
    domain: str
    workflow_id: str
    run_id: str
    workflow_type: str
    task_list: str
    scheduled_event_id: int
    attempt: int

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


#: ``TimerTask.timer_id`` of the timer that closes a run at its execution_start_to_close_timeout.
WORKFLOW_TIMEOUT_TIMER = "__cadenza_workflow_timeout__"


@dataclass(frozen=True, slots=True)
class TimerTask:
    """A user timer (TimerStarted) or the run's own execution timeout (WORKFLOW_TIMEOUT_TIMER)."""

    domain: str
    workflow_id: str
    run_id: str
    workflow_type: str
    timer_id: str
    started_event_id: int
    fire_at: int  # epoch milliseconds

    kind = TaskKind.TIMER
    task_list = ""
    attempt = 0

    @property
    def scheduled_event_id(self) -> int:
        return self.started_event_id

    @property
    def key(self) -> str:
        return f"{self.run_id}-t-{self.started_event_id}"


Task = DecisionTask | ActivityTask | QueryTask | TimerTask


def task_to_dict(task: Task) -> dict[str, Any]:
    return {"kind": str(task.kind), **asdict(task)}


def task_from_dict(data: Mapping[str, Any]) -> Task:
    values = dict(data)
    kind = TaskKind(values.pop("kind"))
    if kind is TaskKind.DECISION:
        return DecisionTask(**values)
    if kind is TaskKind.QUERY:
        return QueryTask(**values)
    if kind is TaskKind.TIMER:
        return TimerTask(**values)
    return ActivityTask(**values)


def tasks_of(state: RunState, events: Iterable[HistoryEvent]) -> tuple[Task, ...]:
    """The tasks a batch of events creates for the run whose state follows them."""
    tasks: list[Task] = []
    for event in events:
        if event.event_type is EventType.WorkflowExecutionStarted:
            tasks.append(TimerTask(
                domain=state.domain,
                workflow_id=state.workflow_id,
                run_id=state.run_id,
                workflow_type=state.workflow_type,
                timer_id=WORKFLOW_TIMEOUT_TIMER,
                started_event_id=event.event_id,
                fire_at=to_millis(event.timestamp)
                + 1000 * int(event.attributes["execution_start_to_close_timeout_seconds"]),
            ))
        elif event.event_type is EventType.DecisionTaskScheduled:
            tasks.append(DecisionTask(
                domain=state.domain,
                workflow_id=state.workflow_id,
                run_id=state.run_id,
                workflow_type=state.workflow_type,
                task_list=str(event.attributes["task_list"]),
                scheduled_event_id=event.event_id,
                attempt=int(event.attributes.get("attempt") or 0),
            ))
        elif event.event_type is EventType.ActivityTaskScheduled:
            attributes = event.attributes
            tasks.append(ActivityTask(
                domain=state.domain,
                workflow_id=state.workflow_id,
                run_id=state.run_id,
                workflow_type=state.workflow_type,
                task_list=str(attributes["task_list"]),
                scheduled_event_id=event.event_id,
                attempt=0,
                activity_id=str(attributes["activity_id"]),
                activity_type=str(attributes["activity_type"]),
                input=attributes.get("input"),
                scheduled_time=to_millis(event.timestamp),
                schedule_to_close_timeout_seconds=attributes.get(
                    "schedule_to_close_timeout_seconds"),
                schedule_to_start_timeout_seconds=attributes.get(
                    "schedule_to_start_timeout_seconds"),
                start_to_close_timeout_seconds=attributes.get("start_to_close_timeout_seconds"),
                heartbeat_timeout_seconds=attributes.get("heartbeat_timeout_seconds"),
            ))
        elif event.event_type is EventType.TimerStarted:
            tasks.append(TimerTask(
                domain=state.domain,
                workflow_id=state.workflow_id,
                run_id=state.run_id,
                workflow_type=state.workflow_type,
                timer_id=str(event.attributes["timer_id"]),
                started_event_id=event.event_id,
                fire_at=to_millis(event.timestamp)
                + 1000 * int(event.attributes["start_to_fire_timeout_seconds"]),
            ))
    return tuple(tasks)
