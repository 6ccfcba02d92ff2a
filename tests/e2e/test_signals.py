"""Signals end to end: a signal reaches the running workflow through the API. Ordering and
signal-with-start: tests/testing/test_semantics.py."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from cadenza import Client, Worker
from cadenza.error import EntityNotExistsError, WorkflowExecutionAlreadyCompletedError

from .workflows import reg

WAIT = timedelta(seconds=30)
START = {"execution_start_to_close_timeout": timedelta(seconds=30)}


async def test_signals_reach_the_running_workflow(client: Client, task_list: str) -> None:
    async with Worker(client, task_list, reg):
        execution = await client.start_workflow("Approval", 2, task_list=task_list, **START)
        await client.signal_workflow(execution.workflow_id, "", "approve", "ann")
        await client.signal_workflow(execution.workflow_id, execution.run_id, "approve", "bob")
        result = await client.get_workflow_result(execution.workflow_id, timeout=WAIT)
    assert result == "ann,bob"
    events = await client.get_workflow_history(execution.workflow_id)
    signals = [e for e in events if e.event_type == "WorkflowExecutionSignaled"]
    assert [(e.attributes["signal_name"], e.attributes["input"]) for e in signals] == [
        ("approve", '"ann"'), ("approve", '"bob"')]
    assert [e.event_id for e in events] == list(range(1, len(events) + 1))
    with pytest.raises(WorkflowExecutionAlreadyCompletedError):
        await client.signal_workflow(execution.workflow_id, "", "approve", "late")
    with pytest.raises(EntityNotExistsError):
        await client.signal_workflow(f"nope-{uuid.uuid4().hex}", "", "approve", "x")
