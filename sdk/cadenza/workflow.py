"""Public API for workflow code (the names of the Cadence Python client's ``cadence.workflow``).

Define::

    @workflow.defn                       # or @workflow.defn(name=...), or @registry.workflow
    class Greeting:
        @workflow.run
        async def run(self, name: str) -> str:
            return await workflow.execute_activity(
                "greet", str, name, start_to_close_timeout=timedelta(seconds=10)
            )

Workflow code must be deterministic: time comes from :func:`now`, waiting from :func:`sleep`
and :func:`wait_condition`, non-deterministic values from :func:`side_effect`. Plain asyncio
composition (``asyncio.gather``, ``asyncio.create_task``, ``task.cancel()``) works.
"""

from __future__ import annotations

from cadenza._workflow_context import (
    DEFAULT_VERSION,
    ActivityOptions,
    ChildWorkflowFuture,
    ChildWorkflowOptions,
    LocalActivityOptions,
    WorkflowInfo,
    continue_as_new,
    execute_activity,
    execute_child_workflow,
    execute_local_activity,
    get_version,
    in_workflow,
    info,
    is_cancel_requested,
    is_replaying,
    mutable_side_effect,
    now,
    request_cancel_external_workflow,
    side_effect,
    signal_external_workflow,
    sleep,
    start_child_workflow,
    upsert_search_attributes,
    wait_condition,
)
from cadenza._workflow_definition import (
    QueryDefinition,
    SignalDefinition,
    WorkflowDefinition,
    defn,
    query,
    run,
    signal,
)
from cadenza.core.retry import RetryPolicy

__all__ = [
    "DEFAULT_VERSION",
    "ActivityOptions",
    "ChildWorkflowFuture",
    "ChildWorkflowOptions",
    "LocalActivityOptions",
    "QueryDefinition",
    "RetryPolicy",
    "SignalDefinition",
    "WorkflowDefinition",
    "WorkflowInfo",
    "continue_as_new",
    "defn",
    "execute_activity",
    "execute_child_workflow",
    "execute_local_activity",
    "get_version",
    "in_workflow",
    "info",
    "is_cancel_requested",
    "is_replaying",
    "mutable_side_effect",
    "now",
    "query",
    "request_cancel_external_workflow",
    "run",
    "side_effect",
    "signal",
    "signal_external_workflow",
    "sleep",
    "start_child_workflow",
    "upsert_search_attributes",
    "wait_condition",
]
