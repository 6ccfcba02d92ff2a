"""The pure engine: history events, decisions, a run's state and the transition function.

Nothing here performs I/O, reads a clock or draws random numbers; callers pass ``now`` in.
"""

from __future__ import annotations

from .commands import (
    Command,
    CompleteActivityTask,
    CompleteDecisionTask,
    FailActivityTask,
    FailDecisionTask,
    FireTimer,
    RequestCancelWorkflow,
    SignalWorkflow,
    StartWorkflow,
    TerminateWorkflow,
)
from .decisions import Decision, DecisionType
from .events import CLOSE_EVENTS, EventType, HistoryEvent, from_millis, to_millis
from .limits import MAX_PAYLOAD_BYTES
from .state import PendingActivity, PendingDecision, PendingTimer, RunState, RunStatus
from .tasks import (
    ActivityTask,
    DecisionTask,
    QueryTask,
    Task,
    TaskKind,
    TimerTask,
    task_from_dict,
    task_to_dict,
    tasks_of,
)
from .transitions import HISTORY_CHANGED, Transition, apply, start

__all__ = [
    "CLOSE_EVENTS",
    "HISTORY_CHANGED",
    "MAX_PAYLOAD_BYTES",
    "ActivityTask",
    "Command",
    "CompleteActivityTask",
    "CompleteDecisionTask",
    "Decision",
    "DecisionTask",
    "DecisionType",
    "EventType",
    "FailActivityTask",
    "FailDecisionTask",
    "FireTimer",
    "HistoryEvent",
    "PendingActivity",
    "PendingDecision",
    "PendingTimer",
    "QueryTask",
    "RequestCancelWorkflow",
    "RunState",
    "RunStatus",
    "SignalWorkflow",
    "StartWorkflow",
    "Task",
    "TaskKind",
    "TerminateWorkflow",
    "TimerTask",
    "Transition",
    "apply",
    "from_millis",
    "start",
    "task_from_dict",
    "task_to_dict",
    "tasks_of",
    "to_millis",
]
