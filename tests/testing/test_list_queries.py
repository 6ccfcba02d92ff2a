"""list_workflows with visibility queries, through the client, in the in-memory environment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cadenza.client import WorkflowExecutionInfo
from cadenza.error import BadRequestError
from cadenza.testing import TestWorkflowEnvironment

from .workflows import Approval, Sleeper, registry

T0 = datetime(2030, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def ids(runs: list[WorkflowExecutionInfo]) -> list[str]:
    return [r.workflow_id for r in runs]


async def start(env: TestWorkflowEnvironment, workflow: object, *args: object,
                workflow_id: str, **options: object) -> None:
    await env.client.start_workflow(workflow, *args, task_list=env.task_list,
                                    execution_start_to_close_timeout=DAY * 10,
                                    workflow_id=workflow_id, **options)


async def four_runs(env: TestWorkflowEnvironment) -> None:
    """s-long (Sleeper, open), s-short (Sleeper, completed), a-1 (Approval, completed),
    a-2 (Approval, open), started a minute apart in that order."""
    await start(env, Sleeper, DAY.total_seconds(), workflow_id="s-long",
                search_attributes={"CustomKeywordField": "east"}, memo={"owner": "ann"})
    await env.sleep(timedelta(minutes=1))
    await start(env, Sleeper, 1, workflow_id="s-short",
                search_attributes={"CustomKeywordField": ["east", "vip"], "CustomIntField": 3})
    await env.client.get_workflow_result("s-short")
    await env.sleep(timedelta(minutes=1))
    await start(env, Approval, workflow_id="a-1", search_attributes={"CustomIntField": 3})
    await env.client.signal_workflow("a-1", "", "approve", "bo")
    assert await env.client.get_workflow_result("a-1") == "BO"
    await env.sleep(timedelta(minutes=1))
    await start(env, Approval, workflow_id="a-2")


async def test_listing_by_type_and_status() -> None:
    async with TestWorkflowEnvironment(registry, start_time=T0) as env:
        await four_runs(env)
        client = env.client
        assert ids(await client.list_workflows(
            "WorkflowType = 'Sleeper' AND ExecutionStatus = 'Open'")) == ["s-long"]
        closed = await client.list_workflows(
            "WorkflowType = 'Sleeper' AND CloseStatus = 'COMPLETED'")
        assert ids(closed) == ["s-short"]
        assert closed[0].close_status == "COMPLETED" and closed[0].close_time is not None
        assert ids(await client.list_workflows("WorkflowType = 'Approval'")) == ["a-2", "a-1"]
        assert ids(await client.list_workflows(
            "workflowtype = 'Approval' and closetime = missing order by StartTime desc")) == [
                "a-2"]
        # The older keyword arguments are conditions added to the query.
        assert ids(await client.list_workflows(status="open", workflow_type="Approval")) == [
            "a-2"]
        assert ids(await client.list_workflows("CustomIntField = 3", status="closed")) == [
            "a-1", "s-short"]
        assert ids(await client.list_workflows(
            "StartTime >= '2030-01-01T00:01:00Z'", workflow_type="Sleeper")) == ["s-short"]
        assert ids(await client.list_workflows()) == ["a-2", "a-1", "s-short", "s-long"]


async def test_listing_by_a_search_attribute_given_at_start() -> None:
    async with TestWorkflowEnvironment(registry, start_time=T0) as env:
        await four_runs(env)
        client = env.client
        east = await client.list_workflows("CustomKeywordField = 'east'")
        assert ids(east) == ["s-short", "s-long"]
        assert east[1].search_attributes == {"CustomKeywordField": "east"}
        assert east[1].memo == {"owner": "ann"} and east[1].close_status is None
        assert ids(await client.list_workflows(
            "CustomKeywordField = 'vip' AND CustomIntField = 3")) == ["s-short"]
        assert ids(await client.list_workflows(
            "CustomIntField = 3 AND ExecutionStatus = 'Closed'")) == ["a-1", "s-short"]
        assert await client.list_workflows("CustomKeywordField = 'west'") == []


async def test_pages_and_their_tokens() -> None:
    async with TestWorkflowEnvironment(registry, start_time=T0) as env:
        await four_runs(env)
        client = env.client
        seen: list[str] = []
        token: str | None = None
        while True:
            page, token = await client.list_workflows_page("", page_size=1,
                                                           next_page_token=token)
            seen.extend(ids(page))
            if token is None:
                break
        assert seen == ["a-2", "a-1", "s-short", "s-long"]
        assert ids(await client.list_workflows(page_size=3)) == ["a-2", "a-1", "s-short"]
        assert len(await client.list_workflows(page_size=None)) == 4
        _, token = await client.list_workflows_page("WorkflowType = 'Sleeper'", 1)
        assert token
        with pytest.raises(BadRequestError) as raised:
            await client.list_workflows_page("WorkflowType = 'Approval'", 1, token)
        assert raised.value.field == "next_page_token"


@pytest.mark.parametrize("query", [
    "RunID = 'x'", "WorkflowType = 'a' OR WorkflowType = 'b'", "(WorkflowID = 'a')",
    "WorkflowID != 'a'", "HistoryLength > 3", "CustomIntField > 3",
])
async def test_refused_queries_name_what_is_wrong(query: str) -> None:
    async with TestWorkflowEnvironment(registry, start_time=T0) as env:
        with pytest.raises(BadRequestError) as raised:
            await env.client.list_workflows(query)
        assert raised.value.field == "query"
