"""The pure engine: history events, decisions, a run's state and the transition function.

Nothing here performs I/O, reads a clock or draws random numbers; callers pass ``now`` in.
"""

from __future__ import annotations

from . import runs
from .commands import (
    CancelActivityTask,
    Command,
    CompleteActivityTask,
    CompleteDecisionTask,
    FailActivityTask,
    FailDecisionTask,
    FireTimer,
    RecordActivityHeartbeat,
    RequestCancelWorkflow,
    SignalWorkflow,
    StartActivityTask,
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
    EffectKind,
    EffectTask,
    QueryTask,
    Task,
    TaskKind,
    TimerKind,
    TimerTask,
    activity_task,
    moot_timer_prefixes,
    task_from_dict,
    task_to_dict,
    tasks_of,
)
from .transitions import Transition, apply, apply_all, due_retry, start

__all__ = [
    "CLOSE_EVENTS",
    "MAX_PAYLOAD_BYTES",
    "ActivityTask",
    "CancelActivityTask",
    "Command",
    "CompleteActivityTask",
    "CompleteDecisionTask",
    "Decision",
    "DecisionTask",
    "DecisionType",
    "EffectKind",
    "EffectTask",
    "EventType",
    "FailActivityTask",
    "FailDecisionTask",
    "FireTimer",
    "HistoryEvent",
    "PendingActivity",
    "PendingDecision",
    "PendingTimer",
    "QueryTask",
    "RecordActivityHeartbeat",
    "RequestCancelWorkflow",
    "RunState",
    "RunStatus",
    "SignalWorkflow",
    "StartActivityTask",
    "StartWorkflow",
    "Task",
    "TaskKind",
    "TerminateWorkflow",
    "TimerKind",
    "TimerTask",
    "Transition",
    "activity_task",
    "apply",
    "apply_all",
    "due_retry",
    "from_millis",
    "moot_timer_prefixes",
    "runs",
    "start",
    "task_from_dict",
    "task_to_dict",
    "tasks_of",
    "to_millis",
]
