"""The workflow API beyond activities and timers, on the real engine in virtual time.

Children and their close policies, signals and cancel requests to other runs, continue-as-new,
cron, workflow retries, delayed starts, reuse policies, search attributes, reset; and the
crash and duplicate cases of every effect one run has on another.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cadenza import WorkflowExecution
from cadenza.core import EffectTask, HistoryEvent
from cadenza.core.records import StoredBatch
from cadenza.error import (
    BadRequestError,
    WorkflowExecutionAlreadyStartedError,
    WorkflowExecutionCanceledError,
    WorkflowExecutionFailedError,
)
from cadenza.testing import TestWorkflowEnvironment

from ..e2e.api_workflows import api

T0 = datetime(2030, 1, 1, 12, 0, 30, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
START = {"execution_start_to_close_timeout": timedelta(minutes=10)}


def env_of(**options: Any) -> TestWorkflowEnvironment:
    return TestWorkflowEnvironment(api, start_time=T0, **options)


async def start(env: TestWorkflowEnvironment, workflow: str, *args: Any,
                **options: Any) -> WorkflowExecution:
    return await env.client.start_workflow(workflow, *args, task_list=env.task_list,
                                           **{**START, **options})


async def history(env: TestWorkflowEnvironment, workflow_id: str,
                  run_id: str = "") -> list[HistoryEvent]:
    return await env.client.get_workflow_history(workflow_id, run_id)


def types(events: list[HistoryEvent]) -> list[str]:
    return [str(e.event_type) for e in events]


def of(events: list[HistoryEvent], event_type: str) -> list[HistoryEvent]:
    return [e for e in events if e.event_type == event_type]


def dense(events: list[HistoryEvent]) -> bool:
    return [e.event_id for e in events] == list(range(1, len(events) + 1))


# -- children ------------------------------------------------------------------------------------


async def test_a_child_runs_and_its_result_returns_to_the_parent() -> None:
    async with env_of() as env:
        run = await start(env, "Parent", 21, "kid")
        assert await env.client.get_workflow_result(run.workflow_id) == 42
        parent = await history(env, run.workflow_id)
        child = await history(env, "kid")
        described = await env.client.describe_workflow("kid")
    assert dense(parent) and dense(child)
    (initiated,) = of(parent, "StartChildWorkflowExecutionInitiated")
    (started,) = of(parent, "ChildWorkflowExecutionStarted")
    (completed,) = of(parent, "ChildWorkflowExecutionCompleted")
    assert initiated.attributes["workflow_id"] == "kid"
    assert initiated.attributes["parent_close_policy"] == "TERMINATE"
    assert started.attributes["initiated_event_id"] == initiated.event_id
    assert completed.attributes["initiated_event_id"] == initiated.event_id
    assert started.attributes["workflow_execution"]["run_id"] == child[0].attributes[
        "original_execution_run_id"]
    assert child[0].attributes["parent_workflow_execution"] == {
        "workflow_id": run.workflow_id, "run_id": run.run_id}
    assert child[0].attributes["parent_initiated_event_id"] == initiated.event_id
    assert described.raw["parent"]["run_id"] == run.run_id


async def test_a_failed_child_raises_in_the_parent_with_its_reason() -> None:
    async with env_of() as env:
        run = await start(env, "Parent", -1, "bad-kid")
        assert await env.client.get_workflow_result(run.workflow_id) == "child failed: ValueError"
        parent = await history(env, run.workflow_id)
    (failed,) = of(parent, "ChildWorkflowExecutionFailed")
    assert failed.attributes["reason"] == "ValueError"


async def test_a_child_id_that_is_taken_fails_the_start_in_the_parent() -> None:
    async with env_of() as env:
        await start(env, "Child", 1, True, workflow_id="taken")
        run = await start(env, "Parent", 3, "taken")
        answer = await env.client.get_workflow_result(run.workflow_id)
        parent = await history(env, run.workflow_id)
        assert not env.is_workflow_completed("taken")  # the other run was not touched
    assert answer == "WorkflowExecutionAlreadyStartedError"
    (failed,) = of(parent, "StartChildWorkflowExecutionFailed")
    assert failed.attributes["cause"] == "WORKFLOW_ALREADY_RUNNING"
    assert "ChildWorkflowExecutionStarted" not in types(parent)


@pytest.mark.parametrize(("policy", "closed_as"), [
    ("TERMINATE", "WorkflowExecutionTerminated"),
    ("REQUEST_CANCEL", "WorkflowExecutionCancelRequested"),
    ("PARENT_CLOSE_POLICY_ABANDON", None),
])
async def test_each_parent_close_policy_is_applied_when_the_parent_closes(
        policy: str, closed_as: str | None) -> None:
    async with env_of() as env:
        run = await start(env, "ParentThatLeaves", f"left-{policy}", policy)
        child_run = await env.client.get_workflow_result(run.workflow_id)
        await env.sleep(timedelta(seconds=1))
        child = await history(env, f"left-{policy}", child_run)
    if closed_as is None:
        assert types(child)[-1] == "DecisionTaskCompleted"  # still waiting, untouched
    else:
        assert closed_as in types(child)
        if policy == "TERMINATE":
            assert types(child)[-1] == "WorkflowExecutionTerminated"


async def test_a_parent_signals_its_child_through_the_future() -> None:
    async with env_of() as env:
        run = await start(env, "ParentThatSignals", "pinged")
        assert await env.client.get_workflow_result(run.workflow_id) == 10
        parent = await history(env, run.workflow_id)
        child = await history(env, "pinged")
    (initiated,) = of(parent, "SignalExternalWorkflowExecutionInitiated")
    (signaled,) = of(parent, "ExternalWorkflowExecutionSignaled")
    assert initiated.attributes["child_workflow_only"] is True
    assert signaled.attributes["initiated_event_id"] == initiated.event_id
    (received,) = of(child, "WorkflowExecutionSignaled")
    assert received.attributes["signal_name"] == "ping"


async def test_a_child_of_an_unknown_type_starts_and_its_decision_tasks_fail_visibly() -> None:
    async with env_of() as env:
        run = await start(env, "ParentOfStranger", "stranger")
        child_run = await env.client.get_workflow_result(run.workflow_id)
        await env.sleep(timedelta(seconds=1))
        child = await history(env, "stranger", child_run)
        assert not env.is_workflow_completed("stranger")
    failed = of(child, "DecisionTaskFailed")
    assert failed and "NoSuchWorkflow" in failed[0].attributes["details"]


# -- signals and cancels to other runs -----------------------------------------------------------


async def test_signal_external_reaches_the_target_once() -> None:
    async with env_of() as env:
        await start(env, "Child", 1, True, workflow_id="target")
        run = await start(env, "Signaller", "target", "done")
        assert await env.client.get_workflow_result(run.workflow_id) == "sent"
        assert await env.client.get_workflow_result("target") == 2
        assert await env.client.query_workflow("target", "", "pings") == ["done"]


async def test_signal_to_an_unknown_or_closed_run_fails_in_the_sender() -> None:
    async with env_of() as env:
        run = await start(env, "Signaller", "nobody", "hello")
        assert await env.client.get_workflow_result(run.workflow_id) == (
            "failed: UNKNOWN_EXTERNAL_WORKFLOW_EXECUTION")
        await start(env, "Child", 1, workflow_id="finished")
        assert await env.client.get_workflow_result("finished") == 2
        late = await start(env, "Signaller", "finished", "hello", workflow_id="late")
        assert await env.client.get_workflow_result(late.workflow_id) == (
            "failed: UNKNOWN_EXTERNAL_WORKFLOW_EXECUTION")
        events = await history(env, run.workflow_id)
    (failed,) = of(events, "SignalExternalWorkflowExecutionFailed")
    assert failed.attributes["initiated_event_id"] == of(
        events, "SignalExternalWorkflowExecutionInitiated")[0].event_id


async def test_cancel_external_reaches_the_target_or_fails_in_the_sender() -> None:
    async with env_of() as env:
        await start(env, "Child", 1, True, workflow_id="cancel-me")
        run = await start(env, "Canceller", "cancel-me")
        lost = await start(env, "Canceller", "nobody-here")
        assert await env.client.get_workflow_result(run.workflow_id) == "requested"
        assert await env.client.get_workflow_result(lost.workflow_id) == (
            "failed: UNKNOWN_EXTERNAL_WORKFLOW_EXECUTION")
        with pytest.raises(WorkflowExecutionCanceledError):
            await env.client.get_workflow_result("cancel-me")
        target = await history(env, "cancel-me")
        sender = await history(env, run.workflow_id)
    (requested,) = of(target, "WorkflowExecutionCancelRequested")
    initiated = of(sender, "RequestCancelExternalWorkflowExecutionInitiated")[0]
    assert requested.attributes["request_id"] == f"{run.run_id}:{initiated.event_id}"
    (done,) = of(sender, "ExternalWorkflowExecutionCancelRequested")
    assert done.attributes["initiated_event_id"] == initiated.event_id


# -- chains: continue-as-new, retries, cron, delayed starts --------------------------------------


async def test_continue_as_new_chains_runs_and_the_result_follows_the_chain() -> None:
    async with env_of() as env:
        run = await start(env, "Counter", 0, 3, workflow_id="counter")
        assert await env.client.get_workflow_result("counter") == 3
        assert await env.client.get_workflow_result("counter", run.run_id) == 3
        first = await history(env, "counter", run.run_id)
        runs = await env.client.list_workflows("WorkflowID = 'counter'")
    assert types(first)[-1] == "WorkflowExecutionContinuedAsNew"
    assert first[-1].attributes["initiator"] == "Decider"
    assert len(runs) == 4
    assert sorted(r.status for r in runs) == ["COMPLETED"] + ["CONTINUED_AS_NEW"] * 3


async def test_a_failed_run_is_retried_with_backoff_as_a_new_attempt() -> None:
    policy = {"initial_interval": timedelta(seconds=10), "backoff_coefficient": 2.0,
              "maximum_attempts": 5}
    async with env_of() as env:
        run = await start(env, "Flaky", 2, workflow_id="flaky", retry_policy=policy)
        assert await env.client.get_workflow_result("flaky") == 2
        first = await history(env, "flaky", run.run_id)
        final = await history(env, "flaky")
    closed = first[-1]
    assert closed.event_type == "WorkflowExecutionContinuedAsNew"
    assert closed.attributes["initiator"] == "RetryPolicy"
    assert closed.attributes["failure_reason"] == "RuntimeError"
    assert closed.attributes["backoff_start_interval_seconds"] == 10
    assert final[0].attributes["attempt"] == 2
    # Two backoffs, 10 s and 20 s, before the third attempt's first decision task.
    scheduled = of(final, "DecisionTaskScheduled")[0]
    assert scheduled.timestamp - T0 >= timedelta(seconds=30)


async def test_a_retry_policy_that_runs_out_fails_the_run() -> None:
    policy = {"initial_interval": timedelta(seconds=1), "maximum_attempts": 2}
    async with env_of() as env:
        await start(env, "Flaky", 5, workflow_id="doomed", retry_policy=policy)
        with pytest.raises(WorkflowExecutionFailedError):
            await env.client.get_workflow_result("doomed")
        final = await history(env, "doomed")
    assert final[0].attributes["attempt"] == 1
    assert types(final)[-1] == "WorkflowExecutionFailed"


async def test_a_cron_workflow_runs_once_per_period_until_terminated() -> None:
    async with env_of() as env:
        run = await start(env, "Ticker", workflow_id="ticker", cron_schedule="*/2 * * * *")
        first = await history(env, "ticker", run.run_id)
        assert types(first) == ["WorkflowExecutionStarted"]  # waits for 12:02
        await env.sleep(timedelta(minutes=7))  # 12:07:30: runs at 12:02, 12:04, 12:06
        runs = await env.client.list_workflows("WorkflowID = 'ticker'")
        closed = [r for r in runs if r.status != "OPEN"]
        results = []
        for item in sorted(closed, key=lambda r: r.start_time):
            events = await history(env, "ticker", item.run_id)
            results.append(events[-1].attributes["last_completion_result"])
        await env.client.terminate_workflow("ticker", reason="enough")
        await env.sleep(timedelta(minutes=5))
        after = await env.client.list_workflows("WorkflowID = 'ticker'")
    assert results == ['"12:02"', '"12:04"', '"12:06"']
    assert len(after) == len(runs)  # terminated: no further runs
    assert first[0].attributes["first_decision_task_backoff_seconds"] == 90


async def test_delay_start_holds_the_first_decision_task_but_records_signals() -> None:
    async with env_of() as env:
        run = await start(env, "Child", 4, workflow_id="later", delay_start=timedelta(minutes=5))
        await env.client.signal_workflow("later", "", "ping", "early")
        await env.sleep(timedelta(minutes=5) - timedelta(milliseconds=1))
        waiting = await history(env, "later")
        await env.sleep(timedelta(milliseconds=1))
        assert await env.client.get_workflow_result("later") == 8
        events = await history(env, "later", run.run_id)
    assert types(waiting) == ["WorkflowExecutionStarted", "WorkflowExecutionSignaled"]
    assert waiting[0].attributes["first_decision_task_backoff_seconds"] == 300
    assert of(events, "DecisionTaskScheduled")[0].timestamp == T0 + timedelta(minutes=5)


async def test_a_bad_cron_expression_is_refused_naming_it() -> None:
    async with env_of() as env:
        with pytest.raises(BadRequestError, match="cron_schedule"):
            await start(env, "Ticker", cron_schedule="61 * * * *")


# -- reuse policies ------------------------------------------------------------------------------


async def test_workflow_id_reuse_policies() -> None:
    async with env_of() as env:
        await start(env, "Child", 1, workflow_id="reuse")
        await env.client.get_workflow_result("reuse")
        with pytest.raises(WorkflowExecutionAlreadyStartedError):  # default: failed runs only
            await start(env, "Child", 1, workflow_id="reuse")
        again = await start(env, "Child", 1, True, workflow_id="reuse",
                            workflow_id_reuse_policy="AllowDuplicate")
        with pytest.raises(WorkflowExecutionAlreadyStartedError):
            await start(env, "Child", 1, workflow_id="reuse",
                        workflow_id_reuse_policy="AllowDuplicate")
        third = await start(env, "Child", 2, workflow_id="reuse",
                            workflow_id_reuse_policy="TerminateIfRunning")
        assert await env.client.get_workflow_result("reuse") == 4
        replaced = await history(env, "reuse", again.run_id)
        with pytest.raises(WorkflowExecutionAlreadyStartedError):
            await start(env, "Child", 1, workflow_id="reuse",
                        workflow_id_reuse_policy="RejectDuplicate")
    assert types(replaced)[-1] == "WorkflowExecutionTerminated"
    assert third.run_id != again.run_id


# -- search attributes ---------------------------------------------------------------------------


async def test_search_attributes_at_start_and_upserted_are_in_describe_and_listing() -> None:
    async with env_of() as env:
        run = await start(env, "Tagger", "blue", workflow_id="tagged",
                          search_attributes={"CustomStringField": "given"})
        await env.sleep(timedelta(seconds=1))
        described = await env.client.describe_workflow("tagged")
        found = await env.client.list_workflows("CustomKeywordField = 'blue'")
        events = await history(env, "tagged", run.run_id)
    assert described.raw["search_attributes"] == {"CustomStringField": "given",
                                           "CustomKeywordField": "blue"}
    assert [r.workflow_id for r in found] == ["tagged"]
    (upsert,) = of(events, "UpsertWorkflowSearchAttributes")
    assert upsert.attributes["search_attributes"] == {"CustomKeywordField": "blue"}


# -- effects: crash and duplicate cases ----------------------------------------------------------


async def test_a_crash_between_the_commit_and_the_child_start_loses_nothing() -> None:
    """The parent's commit lands and the process dies before it starts the child: no child
    yet. The history stream's redrive of that commit starts it; a second redrive changes
    nothing (one child, one ChildWorkflowExecutionStarted)."""
    async with env_of() as env:
        service, store = env._service, env._store
        stream = store._on_commit
        lagging: list[StoredBatch] = []
        store._on_commit = lagging.append

        def crash_at_the_child(batch: StoredBatch) -> None:
            if any(isinstance(t, EffectTask) and t.effect == "start_child" for t in batch.tasks):
                raise RuntimeError("the process died after the commit")

        service.after_commit = crash_at_the_child
        run = await start(env, "Parent", 4, "once")
        for _ in range(20):
            await env.sleep(timedelta(0))
        assert env._store.latest(env.domain, "once") is None
        parent = await history(env, run.workflow_id)
        assert types(parent)[-1] == "StartChildWorkflowExecutionInitiated"
        service.after_commit = None
        store._on_commit = stream
        assert stream is not None
        for batch in lagging:
            stream(batch)
        assert await env.client.get_workflow_result(run.workflow_id) == 8
        for batch in lagging:  # a second redrive of the same commits
            stream(batch)
        await env.sleep(timedelta(seconds=1))
        child_runs = await env.client.list_workflows("WorkflowID = 'once'")
        parent = await history(env, run.workflow_id)
    assert len(child_runs) == 1
    assert len(of(parent, "ChildWorkflowExecutionStarted")) == 1
    assert len(of(parent, "ChildWorkflowExecutionCompleted")) == 1
    assert dense(parent)


async def test_every_effect_repeated_changes_nothing() -> None:
    async with env_of() as env:
        service = env._service
        effects: list[EffectTask] = []
        original = service.perform

        def recording(effect: EffectTask) -> None:
            effects.append(effect)
            original(effect)

        service.perform = recording  # type: ignore[method-assign]
        await start(env, "Child", 1, True, workflow_id="sig-target")
        runs = [await start(env, "Parent", 2, "dup-kid"),
                await start(env, "Signaller", "sig-target", "done"),
                await start(env, "Counter", 0, 2, workflow_id="dup-counter"),
                await start(env, "ParentThatLeaves", "dup-left", "TERMINATE")]
        for run in runs:
            await env.client.get_workflow_result(run.workflow_id)
        await env.sleep(timedelta(seconds=1))
        before = {wid: await history(env, wid) for wid in
                  ("sig-target", "dup-kid", "dup-counter", "dup-left", *(r.workflow_id
                                                                        for r in runs))}
        listed = len(await env.client.list_workflows(""))
        service.perform = original  # type: ignore[method-assign]
        for effect in effects:
            original(effect)
        await env.sleep(timedelta(seconds=1))
        after = {wid: await history(env, wid) for wid in before}
        assert len(await env.client.list_workflows("")) == listed
    assert {e.effect for e in effects} >= {"start_child", "report_child_started",
                                          "report_child_closed", "signal_external",
                                          "start_next_run", "parent_close_policy"}
    assert after == before


# -- reset ---------------------------------------------------------------------------------------


async def test_reset_replays_the_prefix_decides_again_and_reapplies_later_signals() -> None:
    async with env_of() as env:
        run = await start(env, "Napper", workflow_id="napper")
        await env.sleep(timedelta(seconds=15))  # timer 1 fired, timer 2 running
        await env.client.signal_workflow("napper", "", "note", "after")
        assert await env.client.get_workflow_result("napper") == ["after"]
        old = await history(env, "napper", run.run_id)
        second_decision = of(old, "DecisionTaskCompleted")[1]
        reset_at = env.now()
        new_run = await env.client.reset_workflow(
            "napper", run.run_id, decision_finish_event_id=second_decision.event_id,
            reason="try again")
        assert new_run != run.run_id
        assert await env.client.get_workflow_result("napper") == ["after"]
        new = await history(env, "napper", new_run)
        with pytest.raises(BadRequestError, match="DecisionTaskCompleted"):
            await env.client.reset_workflow("napper", run.run_id, decision_finish_event_id=1)
    started_id = second_decision.attributes["started_event_id"]
    assert [e.to_dict() for e in new[:started_id]] == [e.to_dict() for e in old[:started_id]]
    failed = new[started_id]
    assert failed.event_type == "DecisionTaskFailed"
    assert failed.attributes["cause"] == "RESET_WORKFLOW"
    assert failed.attributes["reason"] == "try again"
    assert failed.attributes["base_run_id"] == run.run_id
    assert new[started_id + 1].event_type == "WorkflowExecutionSignaled"
    assert dense(new)
    # The code decided again: a new second timer, started at the reset and fired 10 s later.
    timer = of(new, "TimerStarted")[-1]
    assert timer.timestamp == reset_at
    assert of(new, "TimerFired")[-1].timestamp == reset_at + timedelta(seconds=10)


async def test_reset_of_an_open_run_terminates_it() -> None:
    async with env_of() as env:
        run = await start(env, "Napper", workflow_id="open-napper")
        await env.sleep(timedelta(seconds=1))
        first = of(await history(env, "open-napper"), "DecisionTaskCompleted")[0]
        new_run = await env.client.reset_workflow(
            "open-napper", decision_finish_event_id=first.event_id, reason="redo")
        old = await history(env, "open-napper", run.run_id)
        assert (await env.client.describe_workflow("open-napper")).run_id == new_run
        assert await env.client.get_workflow_result("open-napper") == []
    assert old[-1].event_type == "WorkflowExecutionTerminated"
    assert "redo" in old[-1].attributes["reason"]


async def test_a_request_for_the_current_run_mid_chain_reaches_the_next_run() -> None:
    """Between a run's continue-as-new and the next run's creation (its effect has not run
    yet), a signal or termination of the workflow id goes to the next run."""
    async with env_of() as env:
        service, store = env._service, env._store
        stream = store._on_commit
        store._on_commit = None
        def crash_before_the_next_run(batch: StoredBatch) -> None:
            if any(isinstance(t, EffectTask) and t.effect == "start_next_run"
                   for t in batch.tasks):
                raise RuntimeError("the process died after the commit")

        service.after_commit = crash_before_the_next_run
        await start(env, "Counter", 0, 1, workflow_id="mid-chain")
        for _ in range(10):
            await env.sleep(timedelta(0))
        latest = store.latest(env.domain, "mid-chain")
        assert latest is not None and latest.state.status == "CONTINUED_AS_NEW"
        service.after_commit = None
        store._on_commit = stream
        await env.client.terminate_workflow("mid-chain", reason="stop the chain")
        now = store.latest(env.domain, "mid-chain")
    assert now is not None and now.state.status == "TERMINATED"
    assert now.state.run_id == latest.state.close_attributes["new_execution_run_id"]
