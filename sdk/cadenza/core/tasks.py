"""Tasks a commit creates: messages to a task list (decision or activity).

A commit records its tasks in the same write as its events (the outbox), so a task survives a
crash between the commit and the send; ``key`` is the same for every copy of one task, which is
how queues drop the duplicates a redrive sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class TaskKind(StrEnum):
    DECISION = "decision"
    ACTIVITY = "activity"


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


Task = DecisionTask | ActivityTask


def task_to_dict(task: Task) -> dict[str, Any]:
    return {"kind": str(task.kind), **asdict(task)}


def task_from_dict(data: Mapping[str, Any]) -> Task:
    values = dict(data)
    kind = TaskKind(values.pop("kind"))
    if kind is TaskKind.DECISION:
        return DecisionTask(**values)
    return ActivityTask(**values)
