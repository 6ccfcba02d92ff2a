"""How replay routes events to the code waiting on them, with hand-written histories.

Outcome events of children, external signals and external cancellation requests name the
event that initiated them (``initiated_event_id``); activity events name their scheduled event.
Several of a kind in flight at once must each get their own outcome. Also: the workflow's info
from WorkflowExecutionStarted, continue-as-new, markers left out of the determinism check, and
signals whose arguments do not fit their handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import timedelta
from typing import Any

import pytest
from history_builder import RUN_ID, HistoryBuilder

from cadenza import workflow
from cadenza.core.decisions import Decision, DecisionType
from cadenza.core.events import EventType, HistoryEvent
from cadenza.error import (
    NonDeterministicError,
    WorkflowExecutionAlreadyStartedError,
    WorkflowFailure,
)
from cadenza.replay.decisions import RECORDED_BY
from cadenza.replay.history import DECISION_EVENT_TYPES
from cadenza.workflow import WorkflowDefinition

T = timedelta(minutes=5)


def types(decisions: list[Decision] | tuple[Decision, ...]) -> list[DecisionType]:
    return [d.decision_type for d in decisions]


def initiated(builder: HistoryBuilder, kind: EventType, workflow_id: str) -> int:
    for event in builder.events:
        if event.event_type is kind and event.get("workflow_id") == workflow_id:
            return event.event_id
    raise AssertionError(f"no {kind} for {workflow_id!r}")


def outcome(result: Any) -> str:
    if isinstance(result, WorkflowExecutionAlreadyStartedError):
        return "already started"
    if isinstance(result, WorkflowFailure):
        return f"{result.close_status}:{result.reason}:{result.details}"
    return str(result)


def test_routing_tables_are_event_types() -> None:
    assert all(isinstance(kind, EventType) for kind in DECISION_EVENT_TYPES)
    for kinds in RECORDED_BY.values():
        assert all(isinstance(kind, EventType) for kind in kinds)
    assert set(RECORDED_BY) == set(DecisionType)


# --- child workflows ---------------------------------------------------------------------------


@workflow.defn(name="Parent")
class Parent:
    @workflow.run
    async def run(self, ids: list[str]) -> list[str]:
        async def one(child_id: str) -> str:
            try:
                child = await workflow.start_child_workflow(
                    "Child", str, child_id, workflow_id=child_id,
                    execution_start_to_close_timeout=T,
                )
                result = await child
                return f"{child.workflow_id}/{child.run_id}={result}"
            except (WorkflowFailure, WorkflowExecutionAlreadyStartedError) as error:
                return outcome(error)

        return list(await asyncio.gather(*(one(child_id) for child_id in ids)))


def test_child_outcomes_reach_the_child_that_initiated_them() -> None:
    ids = ["done", "failed", "timed-out", "canceled", "terminated", "taken"]
    definition = WorkflowDefinition.of(Parent)
    builder = HistoryBuilder(input='["done","failed","timed-out","canceled","terminated","taken"]')
    assert types(builder.decide(definition)) == [DecisionType.StartChildWorkflowExecution] * 6
    by_id = {
        child_id: initiated(builder, EventType.StartChildWorkflowExecutionInitiated, child_id)
        for child_id in ids
    }
    # Outcomes arrive in an order unrelated to the initiation order.
    builder.add(
        "StartChildWorkflowExecutionFailed", initiated_event_id=by_id["taken"],
        workflow_id="taken", workflow_type="Child", cause="WORKFLOW_ALREADY_RUNNING",
    )
    for child_id in reversed(ids[:-1]):
        builder.add(
            "ChildWorkflowExecutionStarted", initiated_event_id=by_id[child_id],
            workflow_execution={"workflow_id": child_id, "run_id": f"run-{child_id}"},
            workflow_type="Child",
        )
    builder.schedule_decision()
    assert builder.decide(definition) == []
    execution = {"workflow_id": "x", "run_id": "y"}
    builder.add("ChildWorkflowExecutionTerminated", initiated_event_id=by_id["terminated"],
                workflow_execution=execution)
    builder.add("ChildWorkflowExecutionTimedOut", initiated_event_id=by_id["timed-out"],
                workflow_execution=execution, timeout_type="START_TO_CLOSE")
    builder.add("ChildWorkflowExecutionCompleted", initiated_event_id=by_id["done"],
                workflow_execution=execution, result='"ok"')
    builder.add("ChildWorkflowExecutionCanceled", initiated_event_id=by_id["canceled"],
                workflow_execution=execution, details='"bye"')
    builder.add("ChildWorkflowExecutionFailed", initiated_event_id=by_id["failed"],
                workflow_execution=execution, reason="Boom", details='"trace"')
    builder.schedule_decision()

    [final] = builder.decide(definition)
    assert final.decision_type is DecisionType.CompleteWorkflowExecution
    assert json.loads(final.get("result")) == [
        "done/run-done=ok",
        'FAILED:Boom:"trace"',
        "TIMED_OUT:START_TO_CLOSE:None",
        'CANCELED:CANCELED:"bye"',
        "TERMINATED:TERMINATED:None",
        "already started",
    ]
    assert builder.run(definition).decisions == ()


def test_a_child_outcome_for_an_unknown_initiated_event_is_non_deterministic() -> None:
    definition = WorkflowDefinition.of(Parent)
    builder = HistoryBuilder(input='["a"]')
    builder.decide(definition)
    builder.add("ChildWorkflowExecutionStarted", initiated_event_id=999,
                workflow_execution={"workflow_id": "a", "run_id": "r"})
    builder.schedule_decision()
    with pytest.raises(NonDeterministicError, match="initiated event 999"):
        builder.run(definition)


def test_a_child_future_has_its_ids_and_signals_only_that_child() -> None:
    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> str:
            child = await workflow.start_child_workflow(
                "Child", None, workflow_id="kid", execution_start_to_close_timeout=T
            )
            await child.signal("nudge", 1, "two")
            return f"{child.workflow_id}/{child.run_id}"

    definition = WorkflowDefinition.of(Wf)
    builder = HistoryBuilder()
    builder.decide(definition)
    builder.add("ChildWorkflowExecutionStarted",
                initiated_event_id=initiated(
                    builder, EventType.StartChildWorkflowExecutionInitiated, "kid"),
                workflow_execution={"workflow_id": "kid", "run_id": "kid-run"})
    builder.schedule_decision()
    assert builder.decide(definition) == [
        Decision(
            DecisionType.SignalExternalWorkflowExecution,
            {
                "domain": "default",
                "workflow_id": "kid",
                "run_id": "kid-run",
                "signal_name": "nudge",
                "input": '1 "two"',
                "control": "0",
                "child_workflow_only": True,
            },
        )
    ]
    signal_initiated = builder.events[-1].event_id
    builder.add("ExternalWorkflowExecutionSignaled", initiated_event_id=signal_initiated,
                workflow_execution={"workflow_id": "kid", "run_id": "kid-run"}, control="0")
    builder.schedule_decision()
    assert builder.decide(definition)[0].get("result") == '"kid/kid-run"'


def test_cancelling_a_child_requests_its_cancellation_and_routes_the_outcome() -> None:
    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> str:
            child = await workflow.start_child_workflow(
                "Child", None, workflow_id="kid", execution_start_to_close_timeout=T
            )
            child.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await child
            await workflow.sleep(timedelta(seconds=5))
            return "after"

    definition = WorkflowDefinition.of(Wf)
    builder = HistoryBuilder()
    builder.decide(definition)
    child_initiated = initiated(builder, EventType.StartChildWorkflowExecutionInitiated, "kid")
    builder.add("ChildWorkflowExecutionStarted", initiated_event_id=child_initiated,
                workflow_execution={"workflow_id": "kid", "run_id": "kid-run"})
    builder.schedule_decision()
    decisions = builder.decide(definition)
    assert sorted(types(decisions)) == [
        DecisionType.RequestCancelExternalWorkflowExecution, DecisionType.StartTimer
    ]
    [cancel] = [d for d in decisions if d.decision_type is not DecisionType.StartTimer]
    assert cancel == Decision(
        DecisionType.RequestCancelExternalWorkflowExecution,
        {
            "domain": "default",
            "workflow_id": "kid",
            "run_id": "",
            "control": "0",
            "child_workflow_only": True,
        },
    )
    cancel_initiated = initiated(
        builder, EventType.RequestCancelExternalWorkflowExecutionInitiated, "kid"
    )
    builder.add("ExternalWorkflowExecutionCancelRequested", initiated_event_id=cancel_initiated,
                workflow_execution={"workflow_id": "kid", "run_id": ""})
    builder.add("ChildWorkflowExecutionCanceled", initiated_event_id=child_initiated,
                workflow_execution={"workflow_id": "kid", "run_id": "kid-run"})
    builder.schedule_decision()
    assert builder.decide(definition) == []
    builder.fire_timer("0")
    assert builder.decide(definition)[0].get("result") == '"after"'


# --- signals to other runs ---------------------------------------------------------------------


def test_external_signal_outcomes_reach_the_signal_that_initiated_them() -> None:
    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> list[str]:
            async def send(target: str) -> str:
                try:
                    await workflow.signal_external_workflow(target, "ping")
                    return f"{target}: delivered"
                except WorkflowFailure as failure:
                    return f"{target}: {failure.reason}"

            return list(await asyncio.gather(send("a"), send("b")))

    definition = WorkflowDefinition.of(Wf)
    builder = HistoryBuilder()
    builder.decide(definition)
    first = initiated(builder, EventType.SignalExternalWorkflowExecutionInitiated, "a")
    second = initiated(builder, EventType.SignalExternalWorkflowExecutionInitiated, "b")
    builder.add("ExternalWorkflowExecutionSignaled", initiated_event_id=second,
                workflow_execution={"workflow_id": "b", "run_id": ""}, control="1")
    builder.add("SignalExternalWorkflowExecutionFailed", initiated_event_id=first,
                workflow_id="a", cause="UNKNOWN_EXTERNAL_WORKFLOW_EXECUTION", control="0")
    builder.schedule_decision()
    assert builder.decide(definition)[0].get("result") == (
        '["a: UNKNOWN_EXTERNAL_WORKFLOW_EXECUTION","b: delivered"]'
    )


# --- cancellation requests to other runs -------------------------------------------------------


@workflow.defn(name="Canceller")
class Canceller:
    @workflow.run
    async def run(self) -> list[str]:
        async def cancel(target: str, run_id: str) -> str:
            try:
                await workflow.request_cancel_external_workflow(target, run_id)
                return f"{target}: requested"
            except WorkflowFailure as failure:
                return f"{target}: {failure.reason}"

        return list(await asyncio.gather(cancel("a", "ra"), cancel("b", "")))


def test_request_cancel_external_workflow_decision_and_outcomes() -> None:
    definition = WorkflowDefinition.of(Canceller)
    builder = HistoryBuilder()
    assert builder.decide(definition) == [
        Decision(
            DecisionType.RequestCancelExternalWorkflowExecution,
            {
                "domain": "default",
                "workflow_id": workflow_id,
                "run_id": run_id,
                "control": control,
                "child_workflow_only": False,
            },
        )
        for workflow_id, run_id, control in (("a", "ra", "0"), ("b", "", "1"))
    ]
    first = initiated(builder, EventType.RequestCancelExternalWorkflowExecutionInitiated, "a")
    second = initiated(builder, EventType.RequestCancelExternalWorkflowExecutionInitiated, "b")
    builder.add("RequestCancelExternalWorkflowExecutionFailed", initiated_event_id=second,
                workflow_execution={"workflow_id": "b", "run_id": ""}, control="1",
                cause="UNKNOWN_EXTERNAL_WORKFLOW_EXECUTION")
    builder.schedule_decision()
    assert builder.decide(definition) == []  # "a" still waits
    builder.add("ExternalWorkflowExecutionCancelRequested", initiated_event_id=first,
                workflow_execution={"workflow_id": "a", "run_id": "ra"})
    builder.schedule_decision()
    assert builder.decide(definition)[0].get("result") == (
        '["a: requested","b: UNKNOWN_EXTERNAL_WORKFLOW_EXECUTION"]'
    )
    assert builder.run(definition).decisions == ()


def test_a_cancel_request_cancelled_before_it_was_sent_is_dropped() -> None:
    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> str:
            task = asyncio.ensure_future(workflow.request_cancel_external_workflow("a"))
            await asyncio.sleep(0)
            task.cancel()
            return "changed my mind"

    assert types(HistoryBuilder().decide(WorkflowDefinition.of(Wf))) == [
        DecisionType.CompleteWorkflowExecution
    ]


def test_a_cancel_outcome_for_an_unknown_initiated_event_is_non_deterministic() -> None:
    definition = WorkflowDefinition.of(Canceller)
    builder = HistoryBuilder()
    builder.decide(definition)
    builder.add("ExternalWorkflowExecutionCancelRequested", initiated_event_id=2)
    builder.schedule_decision()
    with pytest.raises(NonDeterministicError, match="not a cancellation request"):
        builder.run(definition)


def test_request_cancel_external_workflow_needs_a_workflow_id() -> None:
    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> None:
            await workflow.request_cancel_external_workflow("")

    [failed] = HistoryBuilder().decide(WorkflowDefinition.of(Wf))
    assert failed.decision_type is DecisionType.FailWorkflowExecution
    assert failed.get("reason") == "ValueError"


# --- continue-as-new and info ------------------------------------------------------------------


def test_continue_as_new_with_every_option() -> None:
    @workflow.defn(name="Looper")
    class Looper:
        @workflow.run
        async def run(self, count: int) -> None:
            workflow.continue_as_new(
                count + 1, "more",
                workflow_type="Looper2", task_list="other",
                execution_start_to_close_timeout=timedelta(minutes=2),
                task_start_to_close_timeout=timedelta(seconds=7),
            )

    decisions = HistoryBuilder(workflow_type="Looper", input="1").decide(
        WorkflowDefinition.of(Looper)
    )
    assert decisions == [
        Decision(
            DecisionType.ContinueAsNewWorkflowExecution,
            {
                "workflow_type": "Looper2",
                "task_list": "other",
                "input": '2 "more"',
                "execution_start_to_close_timeout_seconds": 120,
                "task_start_to_close_timeout_seconds": 7,
            },
        )
    ]


@workflow.defn(name="Reporter")
class Reporter:
    @workflow.run
    async def run(self) -> dict[str, Any]:
        info = workflow.info()
        return {
            "attempt": info.attempt,
            "cron_schedule": info.cron_schedule,
            "continued_execution_run_id": info.continued_execution_run_id,
            "parent": [info.parent_workflow_id, info.parent_run_id, info.parent_domain],
            "memo": dict(info.memo),
            "search_attributes": dict(info.search_attributes),
            "first_execution_run_id": info.first_execution_run_id,
        }


def report(**started: Any) -> dict[str, Any]:
    [done] = HistoryBuilder(workflow_type="Reporter", **started).decide(
        WorkflowDefinition.of(Reporter)
    )
    return json.loads(done.get("result"))  # type: ignore[no-any-return]


def test_info_from_the_started_event() -> None:
    assert report(
        attempt=2,
        cron_schedule="*/5 * * * *",
        continued_execution_run_id="previous-run",
        parent_workflow_domain="parents",
        parent_workflow_execution={"workflow_id": "mom", "run_id": "mom-run"},
        memo={"owner": "ann"},
        search_attributes={"CustomKeywordField": "k"},
        first_execution_run_id="first-run",
    ) == {
        "attempt": 2,
        "cron_schedule": "*/5 * * * *",
        "continued_execution_run_id": "previous-run",
        "parent": ["mom", "mom-run", "parents"],
        "memo": {"owner": "ann"},
        "search_attributes": {"CustomKeywordField": "k"},
        "first_execution_run_id": "first-run",
    }
    # Flat parent attributes; a first run without first_execution_run_id is its own.
    flat = report(parent_workflow_id="dad", parent_run_id="dad-run", memo=None)
    assert flat["parent"] == ["dad", "dad-run", None]
    assert flat["attempt"] == 0 and flat["cron_schedule"] is None
    assert flat["continued_execution_run_id"] is None
    assert flat["memo"] == {} and flat["search_attributes"] == {}
    assert flat["first_execution_run_id"] == RUN_ID
    assert report(continued_execution_run_id="prev")["first_execution_run_id"] is None


# --- markers left out of the determinism check -------------------------------------------------


def test_a_get_version_call_removed_once_old_runs_are_gone_still_replays() -> None:
    @workflow.defn(name="Wf")
    class WithVersion:
        @workflow.run
        async def run(self) -> str:
            version = workflow.get_version("change", workflow.DEFAULT_VERSION, 1)
            await workflow.execute_activity("step", None, start_to_close_timeout=T)
            return f"v{version}"

    @workflow.defn(name="Wf")
    class WithoutVersion:
        @workflow.run
        async def run(self) -> str:
            await workflow.execute_activity("step", None, start_to_close_timeout=T)
            return "v1"

    builder = HistoryBuilder()
    assert types(builder.decide(WorkflowDefinition.of(WithVersion))) == [
        DecisionType.RecordMarker, DecisionType.ScheduleActivityTask
    ]
    builder.complete_activity("0", None)
    assert builder.decide(WorkflowDefinition.of(WithoutVersion))[0].get("result") == '"v1"'
    assert builder.run(WorkflowDefinition.of(WithVersion)).decisions == ()


def test_a_side_effect_marker_is_still_checked() -> None:
    @workflow.defn(name="Wf")
    class With:
        @workflow.run
        async def run(self) -> None:
            workflow.side_effect(lambda: 1, int)
            await workflow.execute_activity("step", None, start_to_close_timeout=T)

    @workflow.defn(name="Wf")
    class Without:
        @workflow.run
        async def run(self) -> None:
            await workflow.execute_activity("step", None, start_to_close_timeout=T)

    builder = HistoryBuilder()
    builder.decide(WorkflowDefinition.of(With))
    builder.complete_activity("0", None)
    with pytest.raises(NonDeterministicError, match="MarkerRecorded"):
        builder.run(WorkflowDefinition.of(Without))


# --- signals whose arguments do not fit --------------------------------------------------------


@workflow.defn(name="Greeter")
class Greeter:
    def __init__(self) -> None:
        self.names: list[str] = []

    @workflow.signal(name="greet")
    def greet(self, name: str) -> None:
        self.names.append(name)

    @workflow.run
    async def run(self) -> list[str]:
        await workflow.wait_condition(lambda: len(self.names) >= 1)
        return self.names


def dropped(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]


def test_a_signal_that_does_not_fit_is_dropped_once_and_on_every_replay(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="cadenza")
    definition = WorkflowDefinition.of(Greeter)
    builder = HistoryBuilder()
    builder.decide(definition)
    builder.signal("greet", "1 2 3")
    builder.signal("greet", "42", schedule=False)
    builder.signal("greet", "[1,")  # not even JSON
    assert builder.decide(definition) == []
    messages = dropped(caplog)
    assert len(messages) == 3
    assert "wf-1 (Greeter): signal 'greet'" in messages[0] and "holds 3" in messages[0]
    assert "ValidationError" in messages[1] and "JSONDecodeError" in messages[2]

    caplog.clear()
    builder.signal("greet", '"ann"')
    assert builder.decide(definition)[0].get("result") == '["ann"]'
    assert builder.run(definition).decisions == ()
    assert dropped(caplog) == []  # replays drop them silently


def test_history_event_types_as_plain_strings_route_the_same() -> None:
    definition = WorkflowDefinition.of(Greeter)
    builder = HistoryBuilder()
    builder.decide(definition)
    builder.signal("greet", '"bo"')
    plain = [
        HistoryEvent(e.event_id, str(e.event_type), e.timestamp, e.attributes)  # type: ignore[arg-type]
        for e in builder.events
    ]
    builder.events = plain
    assert builder.decide(definition)[0].get("result") == '["bo"]'
