"""Records that cross between the service and its adapters: what a commit stored, what is
sent to a task list, what a listing returns. Plain data, so neither side imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from .events import HistoryEvent
from .state import RunState
from .tasks import Task


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


@dataclass(frozen=True, slots=True)
class QueryAnswer:
    """What a worker answered to a query: the encoded result, or why it failed."""

    answer: str | None
    error: str | None
