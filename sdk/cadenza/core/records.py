"""Records that cross between the service and its adapters: what a commit stored, what is
sent to a task list, what a listing returns. Plain data, so neither side imports the other.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .events import HistoryEvent
from .state import RunState
from .tasks import Task, TaskKind, task_from_dict, task_to_dict


@dataclass(frozen=True, slots=True)
class StoredBatch:
    """One committed batch: its events, the run's state after it, and the tasks it created."""

    run_id: str
    events: tuple[HistoryEvent, ...]
    state: RunState
    tasks: tuple[Task, ...]
    committed_at: int


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    task: Task
    body: str


@dataclass(frozen=True, slots=True)
class VisibilityRecord:
    domain: str
    workflow_id: str
    run_id: str
    workflow_type: str
    task_list: str
    status: str
    start_time: int
    close_time: int | None
    history_length: int | None
    #: The close status (COMPLETED, FAILED, ...) of a closed run; None while it is open.
    close_status: str | None = None
    search_attributes: Mapping[str, Any] | None = None
    memo: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class QueryAnswer:
    """What a worker answered to a query: the encoded result, or why it failed."""

    answer: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class TaskMessage:
    """A task as it travels on a queue: the task and the token its answers must carry.

    Parsed once where a message enters (an SQS receive, a Lambda record); everything after
    works on the typed task.
    """

    task: Task
    task_token: str

    def encode(self) -> str:
        return json.dumps({"task": task_to_dict(self.task), "task_token": self.task_token},
                          separators=(",", ":"))

    @classmethod
    def parse(cls, body: str) -> TaskMessage | None:
        """The message a body carries; None for a body that is not a Cadenza task."""
        try:
            data: Any = json.loads(body)
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("task_token"), str):
            return None
        task = data.get("task")
        if not isinstance(task, dict) or task.get("kind") not in set(TaskKind):
            return None
        try:
            return cls(task_from_dict(task), data["task_token"])
        except (TypeError, ValueError, KeyError):
            return None


@dataclass(frozen=True, slots=True)
class ActivityStart:
    """What a worker learns when the engine records that it took an activity attempt."""

    attempt: int
    #: Details of the last heartbeat of a previous attempt: where a retry resumes.
    heartbeat_details: str | None
    started_time: int  # epoch milliseconds


@dataclass(frozen=True, slots=True)
class HistorySince:
    """A worker's read of a run's history from a commit on (sticky execution)."""

    events: tuple[HistoryEvent, ...]
    #: The version of the last commit read: the next read starts after it.
    version: int


@dataclass(frozen=True, slots=True)
class EagerActivity:
    """An activity task the engine recorded started for the worker that completed the
    decision scheduling it (eager execution): run it now, answer by its token as usual."""

    message: TaskMessage
    start: ActivityStart


@dataclass(frozen=True, slots=True)
class DecisionCompletion:
    """The answer to a decision task's completion: the activities started eagerly for the
    worker that completed it (none unless it asked), and the events of the commit with its
    version (none for a retried completion), so a worker holding the run's history stays
    current without reading it."""

    activities: tuple[EagerActivity, ...] = ()
    events: tuple[HistoryEvent, ...] = ()
    version: int = 0


@dataclass(frozen=True, slots=True)
class HandedDecision:
    """A decision task handed to the worker whose activity result scheduled it (decision
    hand-back), with the events of that commit and its version: a worker that holds the run
    up to the events before them decides without reading anything."""

    message: TaskMessage
    events: tuple[HistoryEvent, ...]
    version: int


@dataclass(frozen=True, slots=True)
class ActivityCompletion:
    """The answer to an activity's completion by its worker."""

    decision: HandedDecision | None = None
