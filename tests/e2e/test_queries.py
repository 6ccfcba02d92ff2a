"""Queries end to end: a worker replays the run and answers; nothing is committed."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from cadenza import Client, Worker
from cadenza.error import QueryFailedError, QueryTimeoutError

from .workflows import reg

WAIT = timedelta(seconds=30)
START = {"execution_start_to_close_timeout": timedelta(seconds=60)}


async def test_query_sees_signals_and_commits_nothing(client: Client, task_list: str) -> None:
    async with Worker(client, task_list, reg):
        execution = await client.start_workflow("Approval", 2, task_list=task_list, **START)
        await client.signal_workflow(execution.workflow_id, "", "approve", "ann")
        answer = await client.query_workflow(execution.workflow_id, "", "approvers", "by ",
                                             result_type=list[str])
        assert answer == ["by ann"]
        before = await client.get_workflow_history(execution.workflow_id)
        assert await client.query_workflow(execution.workflow_id, execution.run_id,
                                           "approvers") == ["ann"]
        assert await client.get_workflow_history(execution.workflow_id) == before
        with pytest.raises(QueryFailedError) as caught:
            await client.query_workflow(execution.workflow_id, "", "no_such_query")
        assert "no_such_query" in str(caught.value)
        await client.signal_workflow(execution.workflow_id, "", "approve", "bob")
        assert await client.get_workflow_result(execution.workflow_id, timeout=WAIT) == "ann,bob"
        # A closed run is replayed to the end and can still be queried.
        assert await client.query_workflow(execution.workflow_id, "", "approvers") == [
            "ann", "bob"]


async def test_query_without_a_worker_times_out_clearly(client: Client, task_list: str) -> None:
    execution = await client.start_workflow("Approval", 1, task_list=task_list, **START)
    with pytest.raises(QueryTimeoutError) as caught:
        await client.query_workflow(execution.workflow_id, "", "approvers",
                                    timeout=timedelta(seconds=1))
    assert task_list in str(caught.value)
    await asyncio.sleep(1.2)  # the query task has expired by now: a late worker drops it
    async with Worker(client, task_list, reg):
        await client.signal_workflow(execution.workflow_id, "", "approve", "cy")
        assert await client.get_workflow_result(execution.workflow_id, timeout=WAIT) == "cy"
