"""End to end on the local stack: client -> HTTP API -> DynamoDB/SQS on moto -> worker.

The wiring: a round trip, refusals over HTTP, visibility written from the stream, the Worker's
options, one fan-out. Workflow semantics (activities in sequence and in parallel, failures,
termination, duplicate ids, unknown types): tests/testing/test_semantics.py.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from cadenza import Client, Worker
from cadenza.error import (
    BadRequestError,
    EntityNotExistsError,
    PayloadTooLargeError,
)
from cadenza.local import LocalStack

from .workflows import reg

START = {"execution_start_to_close_timeout": timedelta(seconds=30)}
WAIT = timedelta(seconds=30)


async def test_single_activity(client: Client, task_list: str) -> None:
    async with Worker(client, task_list, reg) as worker:
        execution = await worker.client.start_workflow(
            "SingleActivity", "hello world", task_list=worker.task_list, **START)
        result = await client.get_workflow_result(execution.workflow_id, execution.run_id,
                                                  result_type=str, timeout=WAIT)
    assert result == "hello world"
    events = await client.get_workflow_history(execution.workflow_id, execution.run_id)
    assert events[-1].event_type == "WorkflowExecutionCompleted"
    assert events[-1].attributes["result"] == '"hello world"'
    assert [e.event_id for e in events] == list(range(1, len(events) + 1))
    assert [e.event_type for e in events] == [
        "WorkflowExecutionStarted", "DecisionTaskScheduled", "DecisionTaskStarted",
        "DecisionTaskCompleted", "ActivityTaskScheduled", "ActivityTaskStarted",
        "ActivityTaskCompleted", "DecisionTaskScheduled", "DecisionTaskStarted",
        "DecisionTaskCompleted", "WorkflowExecutionCompleted"]
    assert all(e.timestamp.tzinfo is not None for e in events)


async def test_unknown_workflow_id_is_entity_not_exists(client: Client) -> None:
    with pytest.raises(EntityNotExistsError):
        await client.describe_workflow("no-such-workflow")
    with pytest.raises(EntityNotExistsError):
        await client.get_workflow_history("no-such-workflow")


async def test_missing_options_and_big_payloads_are_refused(client: Client) -> None:
    with pytest.raises(BadRequestError) as caught:
        await client.start_workflow("SingleActivity", "x", **START)
    assert caught.value.field == "task_list"
    with pytest.raises(BadRequestError) as caught:
        await client.start_workflow("SingleActivity", "x", task_list="t")
    assert caught.value.field == "execution_start_to_close_timeout"
    workflow_id = f"big-{uuid.uuid4().hex[:6]}"
    with pytest.raises(PayloadTooLargeError) as too_big:
        await client.start_workflow("SingleActivity", "x" * 300_000, task_list="t",
                                    workflow_id=workflow_id, **START)
    assert "131072" in str(too_big.value)
    with pytest.raises(EntityNotExistsError):
        await client.describe_workflow(workflow_id)


async def test_list_open_and_closed(client: Client, task_list: str) -> None:
    async with Worker(client, task_list, reg):
        done = await client.start_workflow("SingleActivity", "x", task_list=task_list, **START)
        await client.get_workflow_result(done.workflow_id, timeout=WAIT)
    running = await client.start_workflow("WaitsForever", task_list=task_list, **START)
    for _ in range(50):  # visibility is eventually consistent (written from the stream)
        closed = await client.list_workflows(f"WorkflowID = '{done.workflow_id}'",
                                             status="closed")
        opened = await client.list_workflows(f"WorkflowID = '{running.workflow_id}'",
                                             status="open")
        if closed and opened:
            break
        await asyncio.sleep(0.1)
    assert [(r.workflow_id, r.status) for r in closed] == [(done.workflow_id, "COMPLETED")]
    assert [r.run_id for r in opened] == [running.run_id]
    await client.terminate_workflow(running.workflow_id)


async def test_worker_options_identity_and_pollers(local_stack: LocalStack, task_list: str) -> None:
    # A Cadence-style "host:port" target works as well as a URL.
    target = local_stack.api_url.removeprefix("http://")
    async with Client(domain="default", target=target) as client, Worker(
        client, task_list, reg, identity="worker-7", activity_task_pollers=2,
        decision_task_pollers=2, max_concurrent_activity_execution_size=1,
    ):
        execution = await client.start_workflow("ParallelActivities", "x", task_list=task_list,
                                                **START)
        assert await client.get_workflow_result(execution.workflow_id, timeout=WAIT) == [
            "first", "X"]
        events = await client.get_workflow_history(execution.workflow_id)
    started = [e for e in events if e.event_type.endswith("TaskStarted")]
    assert started and {e.attributes["identity"] for e in started} == {"worker-7"}


async def test_fan_out_of_parallel_activities(client: Client, task_list: str) -> None:
    async with Worker(client, task_list, reg):
        execution = await client.start_workflow("FanOut", 13, task_list=task_list,
                                                execution_start_to_close_timeout=WAIT)
        result = await client.get_workflow_result(execution.workflow_id, timeout=WAIT)
    assert result == sum(value * 2 for value in range(13))
    events = await client.get_workflow_history(execution.workflow_id)
    types = [e.event_type for e in events]
    assert types.count("ActivityTaskCompleted") == 14
    assert "DecisionTaskFailed" not in types and "DecisionTaskTimedOut" not in types
    assert [e.event_id for e in events] == list(range(1, len(events) + 1))
