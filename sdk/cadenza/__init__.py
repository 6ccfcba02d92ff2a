"""Cadenza: Cadence-style durable workflows in Python, run serverless on AWS.

The authoring API follows the Cadence Python client's names (``cadence`` -> ``cadenza``).
"""

from __future__ import annotations

from . import activity, workflow
from .client import Client, WorkflowExecution
from .core.retry import RetryPolicy
from .registry import Registry
from .worker import Worker

__all__ = [
    "Client",
    "Registry",
    "RetryPolicy",
    "Worker",
    "WorkflowExecution",
    "activity",
    "workflow",
]
