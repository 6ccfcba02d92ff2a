"""Cancelling a workflow end to end: the default outcome. Workflow code that cleans up after a
cancel: tests/testing/test_semantics.py."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from cadenza import Client, Worker
from cadenza.error import WorkflowExecutionCanceledError

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
