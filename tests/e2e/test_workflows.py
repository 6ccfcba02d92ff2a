"""End to end on the local stack: client -> HTTP API -> DynamoDB/SQS on moto -> worker."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from cadenza import Client, Registry, Worker
from cadenza.error import (
    BadRequestError,
    EntityNotExistsError,
    PayloadTooLargeError,
    WorkflowExecutionAlreadyStartedError,
    WorkflowExecutionFailedError,
    WorkflowExecutionTerminatedError,
)
from cadenza.local import LocalStack

from .workflows import MultipleActivities, reg

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


async def test_sequential_activities(client: Client, task_list: str) -> None:
    async with Worker(client, task_list, reg):
        execution = await client.start_workflow(MultipleActivities, "hello", task_list=task_list,
                                                **START)
        assert await client.get_workflow_result(execution.workflow_id, timeout=WAIT) == "hello"
    events = await client.get_workflow_history(execution.workflow_id)
    scheduled = [e for e in events if e.event_type == "ActivityTaskScheduled"]
    assert [e.attributes["input"] for e in scheduled] == ['"first"', '"hello"', '"third"']


async def test_parallel_sync_and_async_activities(client: Client, task_list: str) -> None:
    async with Worker(client, task_list, reg):
        execution = await client.start_workflow("ParallelActivities", "quiet", task_list=task_list,
                                                **START)
        result = await client.get_workflow_result(execution.workflow_id, result_type=list[str],
                                                  timeout=WAIT)
    assert result == ["first", "QUIET"]
    events = await client.get_workflow_history(execution.workflow_id)
    # Both activities were scheduled by the first decision, before either completed.
    types = [e.event_type for e in events]
    first_completion = types.index("ActivityTaskCompleted")
    assert types[:first_completion].count("ActivityTaskScheduled") == 2


async def test_activity_by_name(client: Client, task_list: str) -> None:
    async with Worker(client, task_list, reg):
        execution = await client.start_workflow("ByName", "abc", task_list=task_list, **START)
        assert await client.get_workflow_result(execution.workflow_id, timeout=WAIT) == "ABC"


async def test_failing_workflow_surfaces_as_typed_error(client: Client, task_list: str) -> None:
    async with Worker(client, task_list, reg):
        execution = await client.start_workflow("FailingWorkflow", 100, task_list=task_list,
                                                **START)
        with pytest.raises(WorkflowExecutionFailedError) as caught:
            await client.get_workflow_result(execution.workflow_id, timeout=WAIT)
        caught_run = await client.start_workflow("CatchingWorkflow", 5, task_list=task_list,
                                                 **START)
        caught_result = await client.get_workflow_result(caught_run.workflow_id, timeout=WAIT)
    assert "InsufficientFundsError" in str(caught.value)
    assert caught_result == "caught InsufficientFundsError"
    events = await client.get_workflow_history(execution.workflow_id)
    failed = next(e for e in events if e.event_type == "ActivityTaskFailed")
    assert failed.attributes["reason"] == "InsufficientFundsError"
    assert "cannot withdraw 100" in failed.attributes["details"]
    assert events[-1].event_type == "WorkflowExecutionFailed"


async def test_duplicate_workflow_id_is_rejected(client: Client, task_list: str) -> None:
    workflow_id = f"dup-{uuid.uuid4().hex[:6]}"
    first = await client.start_workflow("WaitsForever", task_list=task_list,
                                        workflow_id=workflow_id, **START)
    with pytest.raises(WorkflowExecutionAlreadyStartedError) as caught:
        await client.start_workflow("WaitsForever", task_list=task_list,
                                    workflow_id=workflow_id, **START)
    assert caught.value.run_id == first.run_id
    await client.terminate_workflow(workflow_id, reason="cleanup")


async def test_terminate(client: Client, task_list: str) -> None:
    async with Worker(client, task_list, reg):
        execution = await client.start_workflow("WaitsForever", task_list=task_list, **START)
        await client.terminate_workflow(execution.workflow_id, reason="operator said so")
    with pytest.raises(WorkflowExecutionTerminatedError) as caught:
        await client.get_workflow_result(execution.workflow_id, timeout=WAIT)
    assert caught.value.reason == "operator said so"
    info = await client.describe_workflow(execution.workflow_id)
    assert info.status == "TERMINATED"
    events = await client.get_workflow_history(execution.workflow_id)
    assert events[-1].event_type == "WorkflowExecutionTerminated"
    assert [e.event_id for e in events] == list(range(1, len(events) + 1))


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


async def test_unknown_workflow_type_fails_decision_then_proceeds(
    client: Client, task_list: str,
) -> None:
    execution = await client.start_workflow("SingleActivity", "late", task_list=task_list,
                                            **START)
    async with Worker(client, task_list, Registry()):
        for _ in range(100):
            events = await client.get_workflow_history(execution.workflow_id)
            if any(e.event_type == "DecisionTaskFailed" for e in events):
                break
            await asyncio.sleep(0.1)
    failed = next(e for e in events if e.event_type == "DecisionTaskFailed")
    assert "SingleActivity" in failed.attributes["details"]
    assert (await client.describe_workflow(execution.workflow_id)).status == "OPEN"
    async with Worker(client, task_list, reg):
        result = await client.get_workflow_result(execution.workflow_id, timeout=WAIT)
    assert result == "late"


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
