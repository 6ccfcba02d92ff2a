"""The workflow API on the local stack: children, close policies, external signals, chains,
markers, reuse policies, delayed and cron starts, listing queries, reset, and a crash between a
commit and the effect it has on another run. Semantics in detail: tests/testing."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cadenza import Client, Worker
from cadenza.core import Decision, DecisionTask, DecisionType, EffectTask, HistoryEvent
from cadenza.core.records import StoredBatch
from cadenza.error import WorkflowExecutionAlreadyStartedError
from cadenza.local import LocalStack
from cadenza.service import StartWorkflowRequest, service_from_environment

from .api_workflows import api

WAIT = timedelta(seconds=30)
START = {"execution_start_to_close_timeout": timedelta(seconds=90)}


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def of(events: list[HistoryEvent], event_type: str) -> list[HistoryEvent]:
    return [e for e in events if e.event_type == event_type]


async def start(client: Client, task_list: str, workflow: str, *args: Any,
                **options: Any) -> Any:
    return await client.start_workflow(workflow, *args, task_list=task_list,
                                       **{**START, **options})


async def test_a_parent_gets_its_childs_result_and_its_failure(
        client: Client, task_list: str) -> None:
    kid, bad = uid("kid"), uid("bad")
    async with Worker(client, task_list, api):
        good_run = await start(client, task_list, "Parent", 21, kid)
        bad_run = await start(client, task_list, "Parent", -1, bad)
        assert await client.get_workflow_result(good_run.workflow_id, timeout=WAIT) == 42
        assert await client.get_workflow_result(bad_run.workflow_id, timeout=WAIT) == (
            "child failed: ValueError")
    parent = await client.get_workflow_history(good_run.workflow_id)
    child = await client.get_workflow_history(kid)
    assert [e.event_type for e in of(parent, "ChildWorkflowExecutionStarted")] == [
        "ChildWorkflowExecutionStarted"]
    assert of(parent, "ChildWorkflowExecutionCompleted")[0].attributes["result"] == "42"
    assert child[0].attributes["parent_workflow_execution"]["run_id"] == good_run.run_id
    failed = await client.get_workflow_history(bad_run.workflow_id)
    assert of(failed, "ChildWorkflowExecutionFailed")[0].attributes["reason"] == "ValueError"


async def test_each_parent_close_policy(client: Client, task_list: str) -> None:
    children = {policy: uid(policy.lower()) for policy in
                ("TERMINATE", "REQUEST_CANCEL", "ABANDON")}
    async with Worker(client, task_list, api):
        runs = {policy: await start(client, task_list, "ParentThatLeaves", child, policy)
                for policy, child in children.items()}
        for run in runs.values():
            await client.get_workflow_result(run.workflow_id, timeout=WAIT)
        # Terminated at once; the other gets a cancel request (and cancels itself).
        for _ in range(100):
            terminated = await client.get_workflow_history(children["TERMINATE"])
            cancelled = await client.get_workflow_history(children["REQUEST_CANCEL"])
            if terminated[-1].event_type == "WorkflowExecutionTerminated" and of(
                    cancelled, "WorkflowExecutionCancelRequested"):
                break
            await asyncio.sleep(0.1)
        abandoned = await client.describe_workflow(children["ABANDON"])
    assert terminated[-1].event_type == "WorkflowExecutionTerminated"
    assert of(cancelled, "WorkflowExecutionCancelRequested")
    assert abandoned.status == "OPEN"
    await client.terminate_workflow(children["ABANDON"], reason="test over")


async def test_signal_external_and_its_failure(client: Client, task_list: str) -> None:
    target = uid("target")
    async with Worker(client, task_list, api):
        await start(client, task_list, "Child", 1, True, workflow_id=target)
        sender = await start(client, task_list, "Signaller", target, "done")
        lost = await start(client, task_list, "Signaller", uid("nobody"), "x")
        assert await client.get_workflow_result(sender.workflow_id, timeout=WAIT) == "sent"
        assert await client.get_workflow_result(target, timeout=WAIT) == 2
        assert await client.get_workflow_result(lost.workflow_id, timeout=WAIT) == (
            "failed: UNKNOWN_EXTERNAL_WORKFLOW_EXECUTION")


async def test_a_continue_as_new_chain_and_its_listing(client: Client, task_list: str) -> None:
    workflow_id = uid("counter")
    async with Worker(client, task_list, api):
        first = await start(client, task_list, "Counter", 0, 2, workflow_id=workflow_id)
        assert await client.get_workflow_result(workflow_id, timeout=WAIT) == 2
        assert await client.get_workflow_result(workflow_id, first.run_id, timeout=WAIT) == 2
    for _ in range(50):  # visibility is written from the stream: eventually consistent
        runs = await client.list_workflows(f"WorkflowID = '{workflow_id}'")
        if len(runs) == 3 and all(not r.is_open for r in runs):
            break
        await asyncio.sleep(0.1)
    assert sorted(r.status for r in runs) == ["COMPLETED", "CONTINUED_AS_NEW",
                                              "CONTINUED_AS_NEW"]
    closed = await client.list_workflows(
        f"WorkflowType = 'Counter' AND CloseStatus = 'CONTINUED_AS_NEW' "
        f"AND WorkflowID = '{workflow_id}'")
    assert len(closed) == 2


async def test_markers_are_recorded_once_and_honoured(client: Client, task_list: str) -> None:
    async with Worker(client, task_list, api):
        run = await start(client, task_list, "Marked")
        await asyncio.sleep(0.5)
        await client.signal_workflow(run.workflow_id, "", "go")
        result = await client.get_workflow_result(run.workflow_id, timeout=WAIT)
    events = await client.get_workflow_history(run.workflow_id)
    assert result == ["drawn-once", 2, 1, 1]
    names = [e.attributes["marker_name"] for e in of(events, "MarkerRecorded")]
    assert sorted(names) == ["MutableSideEffect", "SideEffect", "Version"]  # unchanged: once


async def test_reuse_policies_and_a_delayed_start(client: Client, task_list: str) -> None:
    workflow_id = uid("reuse")
    async with Worker(client, task_list, api):
        await start(client, task_list, "Child", 1, workflow_id=workflow_id)
        await client.get_workflow_result(workflow_id, timeout=WAIT)
        with pytest.raises(WorkflowExecutionAlreadyStartedError):
            await start(client, task_list, "Child", 1, workflow_id=workflow_id)
        waiting = await start(client, task_list, "Child", 2, True, workflow_id=workflow_id,
                              workflow_id_reuse_policy="AllowDuplicate")
        replacing = await start(client, task_list, "Child", 3, workflow_id=workflow_id,
                                workflow_id_reuse_policy="TerminateIfRunning",
                                delay_start=timedelta(seconds=2))
        assert await client.get_workflow_result(workflow_id, timeout=WAIT) == 6
    old = await client.get_workflow_history(workflow_id, waiting.run_id)
    new = await client.get_workflow_history(workflow_id, replacing.run_id)
    assert old[-1].event_type == "WorkflowExecutionTerminated"
    assert new[0].attributes["first_decision_task_backoff_seconds"] == 2
    assert of(new, "DecisionTaskScheduled")[0].timestamp - new[0].timestamp >= timedelta(
        seconds=2)


async def test_one_cron_period(client: Client, task_list: str) -> None:
    """The first run waits for the next whole minute (up to 60 s of this test's time)."""
    workflow_id = uid("cron")
    async with Worker(client, task_list, api):
        first = await start(client, task_list, "Ticker", workflow_id=workflow_id,
                            cron_schedule="* * * * *")
        for _ in range(700):
            events = await client.get_workflow_history(workflow_id, first.run_id)
            if events[-1].event_type == "WorkflowExecutionContinuedAsNew":
                break
            await asyncio.sleep(0.1)
        await client.terminate_workflow(workflow_id, reason="one period is enough")
    closed = events[-1]
    assert closed.event_type == "WorkflowExecutionContinuedAsNew"
    assert closed.attributes["initiator"] == "CronSchedule"
    ran_at = of(events, "DecisionTaskScheduled")[0].timestamp
    # The first whole minute after the start; never early, late by at most the local timer
    # queue's precision.
    due = events[0].timestamp.replace(second=0, microsecond=0) + timedelta(minutes=1)
    assert due <= ran_at < due + timedelta(seconds=3)
    assert closed.attributes["last_completion_result"] == f'"{ran_at:%H:%M}"'


async def test_list_queries_by_type_and_status_and_by_search_attribute(
        client: Client, task_list: str) -> None:
    tag = uid("tag")
    async with Worker(client, task_list, api):
        tagged = await start(client, task_list, "Tagger", tag,
                             search_attributes={"CustomStringField": tag})
        for _ in range(100):
            found = await client.list_workflows(f"CustomKeywordField = '{tag}'")
            if found:
                break
            await asyncio.sleep(0.1)
        by_start = await client.list_workflows(
            f"CustomStringField = '{tag}' AND ExecutionStatus = 'Open'")
        await client.signal_workflow(tagged.workflow_id, "", "done")
        await client.get_workflow_result(tagged.workflow_id, timeout=WAIT)
    for _ in range(100):
        completed = await client.list_workflows(
            f"WorkflowType = 'Tagger' AND CloseStatus = 'COMPLETED' "
            f"AND CustomKeywordField = '{tag}'")
        if completed:
            break
        await asyncio.sleep(0.1)
    assert [r.workflow_id for r in found] == [tagged.workflow_id]
    assert [r.workflow_id for r in by_start] == [tagged.workflow_id]
    assert [r.run_id for r in completed] == [tagged.run_id]


async def test_reset_decides_again_from_the_reset_point(client: Client, task_list: str) -> None:
    async with Worker(client, task_list, api):
        run = await start(client, task_list, "Napper")
        for _ in range(100):
            events = await client.get_workflow_history(run.workflow_id)
            if of(events, "DecisionTaskCompleted"):
                break
            await asyncio.sleep(0.05)
        await client.signal_workflow(run.workflow_id, "", "note", "kept")
        first = of(events, "DecisionTaskCompleted")[0]
        new_run = await client.reset_workflow(run.workflow_id, run.run_id,
                                              decision_finish_event_id=first.event_id,
                                              reason="e2e")
        old = await client.get_workflow_history(run.workflow_id, run.run_id)
        result = await client.get_workflow_result(run.workflow_id, timeout=WAIT)
    new = await client.get_workflow_history(run.workflow_id, new_run)
    assert old[-1].event_type == "WorkflowExecutionTerminated"
    assert result == ["kept"]
    failed = of(new, "DecisionTaskFailed")[0]
    assert failed.attributes["cause"] == "RESET_WORKFLOW"
    assert [e.event_id for e in new] == list(range(1, len(new) + 1))


class Crash(Exception):
    """Stands for the process dying between its commit and the effect on another run."""


async def test_a_crash_between_the_commit_and_the_child_start(
        local_stack: LocalStack, client: Client, task_list: str) -> None:
    """The parent's decision (start a child) is committed by a process that dies before it
    starts the child: the stream function starts it, exactly once."""
    service = service_from_environment(local_stack.environment)
    parent_id, child_id = uid("crash-parent"), uid("crash-child")

    def crash(batch: StoredBatch) -> None:
        if any(isinstance(t, EffectTask) for t in batch.tasks):
            raise Crash

    service.start_workflow(StartWorkflowRequest.from_dict("default", {
        "workflow_id": parent_id, "workflow_type": "Parent", "task_list": task_list,
        "input": f'4 "{child_id}"', "execution_start_to_close_timeout_seconds": 90,
    }))
    state = service.latest("default", parent_id).state
    assert state.decision is not None
    token = service.tokens.issue(DecisionTask(
        domain="default", workflow_id=parent_id, run_id=state.run_id, workflow_type="Parent",
        task_list=task_list, scheduled_event_id=state.decision.scheduled_event_id, attempt=0))
    service.after_commit = crash
    with pytest.raises(Crash):
        service.complete_decision_task(token, decisions=[Decision(
            DecisionType.StartChildWorkflowExecution,
            {"workflow_id": child_id, "workflow_type": "Child", "task_list": task_list,
             "input": "4", "execution_start_to_close_timeout_seconds": 60,
             "task_start_to_close_timeout_seconds": 10})],
            history_length=state.next_event_id, started_at=datetime.now(UTC))
    async with Worker(client, task_list, api):
        assert await client.get_workflow_result(parent_id, timeout=WAIT) == 8
    parent = await client.get_workflow_history(parent_id)
    assert len(of(parent, "ChildWorkflowExecutionStarted")) == 1
    assert len(of(parent, "StartChildWorkflowExecutionInitiated")) == 1
    child_runs = await client.list_workflows(f"WorkflowID = '{child_id}'")
    assert len(child_runs) == 1
