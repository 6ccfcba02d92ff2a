"""Invariants end to end on the local stack, through the real handlers."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from cadenza import Client, Registry, Worker, workflow
from cadenza.core import HistoryEvent
from cadenza.core.records import StoredBatch
from cadenza.local import LocalStack
from cadenza.service import StartWorkflowRequest, service_from_environment

from .workflows import echo, reg, shout

WAIT = timedelta(seconds=30)


class Crash(Exception):
    """Stands for the process dying between its commit and its dispatch."""


async def wait_for(client: Client, workflow_id: str, event_type: str) -> list[HistoryEvent]:
    for _ in range(150):
        events = await client.get_workflow_history(workflow_id)
        if any(e.event_type == event_type for e in events):
            return events
        await asyncio.sleep(0.1)
    raise AssertionError(f"{event_type} never appeared in {workflow_id}")


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


def drifting_registry(first_activity: object) -> Registry:
    registry = Registry()
    registry.register_activity(echo)
    registry.register_activity(shout)

    @registry.workflow(name="Drifting")
    class Drifting:
        @workflow.run
        async def run(self, activity_task_list: str) -> str:
            options = {"start_to_close_timeout": timedelta(seconds=10),
                       "task_list": activity_task_list}
            first = await first_activity.with_options(**options).execute("a")  # type: ignore[attr-defined]
            second = await echo.with_options(**options).execute("b")
            return f"{first}{second}"

    return registry


async def test_code_that_diverges_from_history_fails_the_decision_not_the_history(
    client: Client, task_list: str,
) -> None:
    activities = f"{task_list}-activities"
    execution = await client.start_workflow(
        "Drifting", activities, task_list=task_list,
        execution_start_to_close_timeout=timedelta(seconds=60))
    async with Worker(client, task_list, drifting_registry(echo)):
        await wait_for(client, execution.workflow_id, "ActivityTaskScheduled")
    before = await client.get_workflow_history(execution.workflow_id)
    # The code changes: the first activity is now "shout", but history says "echo".
    async with Worker(client, task_list, drifting_registry(shout)), \
            Worker(client, activities, reg):
        events = await wait_for(client, execution.workflow_id, "DecisionTaskFailed")
    failed = next(e for e in events if e.event_type == "DecisionTaskFailed")
    assert "NonDeterministicError" in failed.attributes["details"]
    assert "echo" in failed.attributes["details"] and "shout" in failed.attributes["details"]
    assert events[: len(before)] == before  # nothing already written changed
    assert [e.event_id for e in events] == list(range(1, len(events) + 1))
    assert (await client.describe_workflow(execution.workflow_id)).status == "OPEN"
    # The fixed code (matching history) takes over and finishes the run.
    async with Worker(client, task_list, drifting_registry(echo)), \
            Worker(client, activities, reg):
        result = await client.get_workflow_result(execution.workflow_id, timeout=WAIT)
    assert result == "ab"
