"""Public API for activities: define them, and ask about the running one.

Define::

    @activity.defn                      # or @activity.defn(name="greet"), or @registry.activity
    async def greet(name: str) -> str:  # sync functions work too (they run in a thread)
        return f"hello {name}"

Inside an activity: :func:`info`, :func:`heartbeat`, :func:`heartbeat_details`,
:func:`is_cancelled`, :func:`wait_for_cancelled`, :func:`raise_if_cancelled`,
:func:`complete_async`, :func:`in_activity`.
"""

from __future__ import annotations

from cadenza._activity_context import (
    ActivityInfo,
    complete_async,
    heartbeat,
    heartbeat_details,
    in_activity,
    info,
    is_cancelled,
    raise_if_cancelled,
    wait_for_cancelled,
)
from cadenza._activity_definition import ActivityDefinition, defn, method
from cadenza._workflow_context import ActivityOptions
from cadenza.core.retry import RetryPolicy

__all__ = [
    "ActivityDefinition",
    "ActivityInfo",
    "ActivityOptions",
    "RetryPolicy",
    "complete_async",
    "defn",
    "heartbeat",
    "heartbeat_details",
    "in_activity",
    "info",
    "is_cancelled",
    "method",
    "raise_if_cancelled",
    "wait_for_cancelled",
]
