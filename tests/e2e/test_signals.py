"""Signals end to end: signal a running workflow, and signal-with-start."""

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


async def test_signal_with_start_starts_then_signals(client: Client, task_list: str) -> None:
    workflow_id = f"sws-{uuid.uuid4().hex[:8]}"
    first = await client.signal_with_start_workflow(
        "Approval", "approve", ["ann"], 2, task_list=task_list, workflow_id=workflow_id, **START)
    second = await client.signal_with_start_workflow(
        "Approval", "approve", ["bob"], 2, task_list=task_list, workflow_id=workflow_id, **START)
    assert second.run_id == first.run_id  # the running run was signalled, not restarted
    async with Worker(client, task_list, reg):
        result = await client.get_workflow_result(workflow_id, timeout=WAIT)
    assert result == "ann,bob"
    events = await client.get_workflow_history(workflow_id)
    assert [e.event_type for e in events[:3]] == [
        "WorkflowExecutionStarted", "WorkflowExecutionSignaled", "DecisionTaskScheduled"]
