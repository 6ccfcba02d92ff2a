"""An activity completed later, by task token, through the client."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from cadenza import Client, Worker

from .workflows import PARKED_TOKENS, reg

WAIT = timedelta(seconds=30)
START = {"execution_start_to_close_timeout": timedelta(seconds=60)}


async def parked_token(count: int) -> str:
    for _ in range(150):
        if len(PARKED_TOKENS) >= count:
            return PARKED_TOKENS[count - 1]
        await asyncio.sleep(0.1)
    raise AssertionError("the activity never ran")


async def test_complete_and_fail_an_activity_by_its_task_token(
    client: Client, task_list: str,
) -> None:
    seen = len(PARKED_TOKENS)
    async with Worker(client, task_list, reg):
        approved = await client.start_workflow("WaitsForHuman", "o-1", task_list=task_list,
                                               **START)
        await client.complete_activity(await parked_token(seen + 1), "approved by ann")
        assert await client.get_workflow_result(approved.workflow_id, timeout=WAIT) == (
            "approved by ann")
        rejected = await client.start_workflow("WaitsForHuman", "o-2", task_list=task_list,
                                               **START)
        await client.fail_activity(await parked_token(seen + 2), ValueError("out of stock"))
        assert await client.get_workflow_result(rejected.workflow_id, timeout=WAIT) == (
            "rejected: ValueError")
    events = await client.get_workflow_history(approved.workflow_id)
    completed = next(e for e in events if e.event_type == "ActivityTaskCompleted")
    assert completed.attributes["result"] == '"approved by ann"'
