"""Durable timers end to end: the TimerFunction fires them through the timer queue."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from cadenza import Client, Worker
from cadenza.error import WorkflowExecutionTimedOutError
from cadenza.local import LocalStack

from .workflows import reg

WAIT = timedelta(seconds=30)
START = {"execution_start_to_close_timeout": timedelta(seconds=60)}


async def test_sleep_fires_never_early(client: Client, task_list: str) -> None:
    async with Worker(client, task_list, reg):
        execution = await client.start_workflow("Sleeper", 2, task_list=task_list, **START)
        slept = await client.get_workflow_result(execution.workflow_id, timeout=WAIT)
    assert slept >= 2
    events = await client.get_workflow_history(execution.workflow_id)
    started = next(e for e in events if e.event_type == "TimerStarted")
    fired = next(e for e in events if e.event_type == "TimerFired")
    assert started.attributes["start_to_fire_timeout_seconds"] == 2
    assert fired.attributes["started_event_id"] == started.event_id
    assert fired.timestamp - started.timestamp >= timedelta(seconds=2)
    assert [e.event_type for e in events].count("TimerFired") == 1


async def test_timer_expires_or_is_cancelled_by_a_signal(client: Client, task_list: str) -> None:
    async with Worker(client, task_list, reg):
        expiring = await client.start_workflow("ApprovalWithDeadline", 1, task_list=task_list,
                                               **START)
        approved = await client.start_workflow("ApprovalWithDeadline", 30,
                                               task_list=task_list, **START)
        for _ in range(100):
            events = await client.get_workflow_history(approved.workflow_id)
            if any(e.event_type == "TimerStarted" for e in events):
                break
            await asyncio.sleep(0.1)
        await client.signal_workflow(approved.workflow_id, "", "approve")
        assert await client.get_workflow_result(expiring.workflow_id, timeout=WAIT) == "expired"
        assert await client.get_workflow_result(approved.workflow_id, timeout=WAIT) == "approved"
    types = [e.event_type for e in await client.get_workflow_history(approved.workflow_id)]
    assert "TimerCanceled" in types and "TimerFired" not in types


async def test_a_run_times_out_at_its_execution_timeout(client: Client, task_list: str) -> None:
    async with Worker(client, task_list, reg):
        execution = await client.start_workflow(
            "WaitsForever", task_list=task_list,
            execution_start_to_close_timeout=timedelta(seconds=2))
        with pytest.raises(WorkflowExecutionTimedOutError):
            await client.get_workflow_result(execution.workflow_id, timeout=WAIT)
    events = await client.get_workflow_history(execution.workflow_id)
    assert events[-1].event_type == "WorkflowExecutionTimedOut"
    assert events[-1].attributes["timeout_type"] == "START_TO_CLOSE"
    assert events[-1].timestamp - events[0].timestamp >= timedelta(seconds=2)
    assert (await client.describe_workflow(execution.workflow_id)).status == "TIMED_OUT"


async def test_a_long_sleep_is_a_schedule_and_the_stack_runs_due_schedules(
    local_stack: LocalStack, client: Client, task_list: str,
) -> None:
    scheduler = local_stack.client("scheduler")
    sqs = local_stack.client("sqs")
    group = local_stack.description.schedule_groups[0].name
    async with Worker(client, task_list, reg):
        execution = await client.start_workflow("Sleeper", 3600, task_list=task_list, **START)
        for _ in range(100):
            names = [s["Name"] for s in scheduler.list_schedules(GroupName=group)["Schedules"]
                     if execution.run_id in s["Name"]]
            if names:
                break
            await asyncio.sleep(0.1)
    assert len(names) == 1  # one schedule for the hour-long timer
    await client.terminate_workflow(execution.workflow_id)

    # A due one-time schedule puts its input on its SQS target and deletes itself.
    probe = sqs.create_queue(QueueName=f"{local_stack.description.stack_name}-probe-{task_list}")
    probe_arn = sqs.get_queue_attributes(QueueUrl=probe["QueueUrl"],
                                         AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    past = (datetime.now(UTC) - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")
    scheduler.create_schedule(
        Name=f"probe-{task_list}", GroupName=group, ScheduleExpression=f"at({past})",
        FlexibleTimeWindow={"Mode": "OFF"}, ActionAfterCompletion="DELETE",
        Target={"Arn": probe_arn, "RoleArn": "arn:aws:iam::123456789012:role/r",
                "Input": "hello"},
    )
    received = sqs.receive_message(QueueUrl=probe["QueueUrl"], WaitTimeSeconds=10)
    assert [m["Body"] for m in received.get("Messages", [])] == ["hello"]
    for _ in range(50):  # deleted right after the send
        names = [s["Name"] for s in scheduler.list_schedules(GroupName=group)["Schedules"]]
        if f"probe-{task_list}" not in names:
            break
        await asyncio.sleep(0.1)
    assert f"probe-{task_list}" not in names
    sqs.delete_queue(QueueUrl=probe["QueueUrl"])
