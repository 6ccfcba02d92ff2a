"""A hot run on the local stack: a burst of signals at high concurrency is recorded exactly
once each and none is refused (writers of one run share commits; busy answers are retried by
the client with backoff, safely, because every signal carries a request id)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from cadenza import Client, Worker

from .api_workflows import api

SIGNALS = 1000
CONCURRENCY = 50


async def test_a_thousand_signals_at_concurrency_fifty(client: Client, task_list: str) -> None:
    async with Worker(client, task_list, api):
        run = await client.start_workflow("Inbox", SIGNALS, task_list=task_list,
                                          execution_start_to_close_timeout=timedelta(minutes=5))
        gate = asyncio.Semaphore(CONCURRENCY)
        refused: list[BaseException] = []

        async def send(value: int) -> None:
            async with gate:
                try:
                    await client.signal_workflow(run.workflow_id, "", "item", value)
                except Exception as error:  # counted: there must be none
                    refused.append(error)

        await asyncio.gather(*(send(value) for value in range(SIGNALS)))
        result = await client.get_workflow_result(run.workflow_id,
                                                  timeout=timedelta(seconds=120))
    assert refused == []
    assert result == [SIGNALS, SIGNALS]
    events = await client.get_workflow_history(run.workflow_id)
    values = sorted(int(e.attributes["input"]) for e in events
                    if e.event_type == "WorkflowExecutionSignaled")
    assert values == list(range(SIGNALS))
    assert [e.event_id for e in events] == list(range(1, len(events) + 1))


FAN_OUT = 500


async def test_five_hundred_parallel_activities_finish_together(
        client: Client, task_list: str) -> None:
    """Their starts and results reach one run at once; none times out waiting for its turn."""
    async with Worker(client, task_list, api):
        run = await client.start_workflow("FanOut", FAN_OUT, task_list=task_list,
                                          execution_start_to_close_timeout=timedelta(minutes=5))
        result = await client.get_workflow_result(run.workflow_id,
                                                  timeout=timedelta(seconds=240))
    assert result == sum(value * value for value in range(FAN_OUT))
    events = await client.get_workflow_history(run.workflow_id)
    kinds = [e.event_type for e in events]
    assert kinds.count("ActivityTaskCompleted") == FAN_OUT
    assert "ActivityTaskTimedOut" not in kinds
    assert [e.event_id for e in events] == list(range(1, len(events) + 1))
