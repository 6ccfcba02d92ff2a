"""Queries end to end: a worker replays the run and answers through the API. Query semantics
(signals seen, nothing committed, no worker): tests/testing/test_semantics.py."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cadenza import Client, Worker
from cadenza.error import QueryFailedError

from .workflows import reg

WAIT = timedelta(seconds=30)
START = {"execution_start_to_close_timeout": timedelta(seconds=60)}


async def test_a_signal_and_a_query_reach_the_worker_through_the_api(
    client: Client, task_list: str,
) -> None:
    # Wiring: the query task rides the task list's queue to a polling worker and its answer (or
    # refusal) comes back through the API. What a query sees and that it commits nothing:
    # tests/testing/test_semantics.py.
    async with Worker(client, task_list, reg):
        execution = await client.start_workflow("Approval", 2, task_list=task_list, **START)
        await client.signal_workflow(execution.workflow_id, "", "approve", "ann")
        answer = await client.query_workflow(execution.workflow_id, "", "approvers", "by ",
                                             result_type=list[str])
        assert answer == ["by ann"]
        with pytest.raises(QueryFailedError) as caught:
            await client.query_workflow(execution.workflow_id, execution.run_id,
                                        "no_such_query")
        assert "no_such_query" in str(caught.value)
        await client.signal_workflow(execution.workflow_id, "", "approve", "bob")
        assert await client.get_workflow_result(execution.workflow_id, timeout=WAIT) == "ann,bob"
