"""Durable timers end to end: the TimerFunction fires them through the timer queue, the
Scheduler runs the long ones. Timer semantics run in virtual time: tests/testing/test_semantics.py.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from cadenza import Client, Worker
from cadenza.local import LocalStack

from .workflows import reg

WAIT = timedelta(seconds=30)
START = {"execution_start_to_close_timeout": timedelta(seconds=60)}


async def test_a_short_timer_fires_through_the_timer_queue(client: Client, task_list: str) -> None:
    # Wiring: the TimerFunction fires a short timer from the SQS timer queue, never early.
    # Exact timings, deadlines and cancelled timers: tests/testing/test_semantics.py.
    async with Worker(client, task_list, reg):
        execution = await client.start_workflow("Sleeper", 1, task_list=task_list, **START)
        slept = await client.get_workflow_result(execution.workflow_id, timeout=WAIT)
    assert slept >= 1
    events = await client.get_workflow_history(execution.workflow_id)
    started = next(e for e in events if e.event_type == "TimerStarted")
    fired = next(e for e in events if e.event_type == "TimerFired")
    assert started.attributes["start_to_fire_timeout_seconds"] == 1
    assert fired.attributes["started_event_id"] == started.event_id
    assert fired.timestamp - started.timestamp >= timedelta(seconds=1)
    assert [e.event_type for e in events].count("TimerFired") == 1


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
