"""The engine's operations (start, complete a task, terminate, ...) over ports to AWS.

The factory that wires the AWS adapters (boto3, pynamodb) is loaded only when asked for, so
in-memory users of the service (``cadenza.testing``) never import them.
"""

from __future__ import annotations

from typing import Any

from .engine import RunResult, WorkflowService, describe
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


def __getattr__(name: str) -> Any:
    if name in ("service_from_environment", "service_from_settings"):
        from . import factory

        return getattr(factory, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
