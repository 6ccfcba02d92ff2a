"""Invariants end to end on the local stack, through the real handlers: a crash between a commit
and its dispatch. Code that diverges from history: tests/testing/test_semantics.py."""

from __future__ import annotations

import uuid
from datetime import timedelta

from cadenza import Client, Worker
from cadenza.core.records import StoredBatch
from cadenza.local import LocalStack
from cadenza.service import StartWorkflowRequest, service_from_environment

from .workflows import reg

WAIT = timedelta(seconds=30)


class Crash(Exception):
    """Stands for the process dying between its commit and its dispatch."""


async def test_crash_after_commit_the_stream_function_delivers_the_task(
    local_stack: LocalStack, client: Client, task_list: str,
) -> None:
    def crash(_: StoredBatch) -> None:
        raise Crash

    service = service_from_environment(local_stack.environment)
    service.after_commit = crash
    workflow_id = f"crash-{uuid.uuid4().hex[:6]}"
    try:
        service.start_workflow(StartWorkflowRequest.from_dict("default", {
            "workflow_id": workflow_id, "workflow_type": "SingleActivity",
            "task_list": task_list, "input": '"survived"',
            "execution_start_to_close_timeout_seconds": 30,
        }))
    except Crash:
        pass
    else:
        raise AssertionError("the crash hook did not run")
    # Nothing was sent by the crashed process; the StreamFunction (fed by the local runtime
    # from the table's stream) sends the committed decision task.
    async with Worker(client, task_list, reg):
        result = await client.get_workflow_result(workflow_id, timeout=WAIT)
    assert result == "survived"
