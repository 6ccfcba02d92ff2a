"""The engine's operations (start, complete a task, terminate, ...) over ports to AWS."""

from __future__ import annotations

from .engine import RunResult, WorkflowService, describe
from .factory import service_from_environment, service_from_settings
from .requests import ReusePolicy, StartWorkflowRequest, parse_decisions
from .tokens import TaskToken, TaskTokens

__all__ = [
    "ReusePolicy",
    "RunResult",
    "StartWorkflowRequest",
    "TaskToken",
    "TaskTokens",
    "WorkflowService",
    "describe",
    "parse_decisions",
    "service_from_environment",
    "service_from_settings",
]
