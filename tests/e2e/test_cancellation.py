"""Cancelling a workflow end to end: the default outcome, and workflow code that cleans up."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from cadenza import Client, Worker
from cadenza.error import CancellationAlreadyRequestedError, WorkflowExecutionCanceledError

from .workflows import reg

WAIT = timedelta(seconds=30)
START = {"execution_start_to_close_timeout": timedelta(seconds=60)}


async def scheduled(client: Client, workflow_id: str) -> None:
    for _ in range(150):
        events = await client.get_workflow_history(workflow_id)
        if any(e.event_type == "ActivityTaskScheduled" for e in events):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the activity was never scheduled")


async def test_cancelled_workflow_closes_as_canceled(client: Client, task_list: str) -> None:
    async with Worker(client, task_list, reg):
        execution = await client.start_workflow("Cancellable", f"{task_list}-idle",
                                                task_list=task_list, **START)
        await scheduled(client, execution.workflow_id)
        await client.cancel_workflow(execution.workflow_id, cause="no longer needed")
        with pytest.raises(WorkflowExecutionCanceledError):
            await client.get_workflow_result(execution.workflow_id, timeout=WAIT)
    events = await client.get_workflow_history(execution.workflow_id)
    types = [e.event_type for e in events]
    assert "WorkflowExecutionCancelRequested" in types
    assert "ActivityTaskCancelRequested" in types
    assert types[-1] == "WorkflowExecutionCanceled"
    assert [e.event_id for e in events] == list(range(1, len(events) + 1))
    assert (await client.describe_workflow(execution.workflow_id)).status == "CANCELED"


async def test_workflow_code_can_clean_up_after_a_cancel(client: Client, task_list: str) -> None:
    async with Worker(client, task_list, reg):
        execution = await client.start_workflow("CleansUpOnCancel", f"{task_list}-idle",
                                                task_list=task_list, **START)
        await scheduled(client, execution.workflow_id)
        await client.cancel_workflow(execution.workflow_id)
        with pytest.raises(CancellationAlreadyRequestedError):
            await client.cancel_workflow(execution.workflow_id)
        result = await client.get_workflow_result(execution.workflow_id, timeout=WAIT)
    assert result == "cleaned up"
    events = await client.get_workflow_history(execution.workflow_id)
    types = [e.event_type for e in events]
    assert types.index("ActivityTaskCancelRequested") < types.index("ActivityTaskCanceled")
    assert types[-1] == "WorkflowExecutionCompleted"
