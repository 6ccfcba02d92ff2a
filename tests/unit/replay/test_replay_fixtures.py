"""Replay of stored histories (JSON, in the engine's event format) and non-determinism."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from history_builder import RUN_ID, WORKFLOW_ID, HistoryBuilder, load_fixture

from cadenza import workflow
from cadenza.core.decisions import DecisionType
from cadenza.core.events import EventType, HistoryEvent
from cadenza.error import ActivityFailure, NonDeterministicError
from cadenza.replay import DecisionTaskResult, run_decision_task
from cadenza.workflow import WorkflowDefinition

T = timedelta(seconds=30)
LATER = datetime(2024, 1, 1, 13, 0, 0, tzinfo=UTC)


@workflow.defn(name="GreetingWorkflow")
class Greeting:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(
            "compose_greeting", str, "Hello", name, start_to_close_timeout=T
        )


@workflow.defn(name="GreetingWorkflow")
class GreetingWithOtherActivity:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(
            "say_hello", str, "Hello", name, start_to_close_timeout=T
        )


@workflow.defn(name="GreetingWorkflow")
class GreetingWithTwoActivities:
    @workflow.run
    async def run(self, name: str) -> str:
        first = await workflow.execute_activity(
            "compose_greeting", str, "Hello", name, start_to_close_timeout=T
        )
        await workflow.execute_activity("audit", None, first, start_to_close_timeout=T)
        return first


@workflow.defn(name="GreetingWorkflow")
class GreetingWithoutActivity:
    @workflow.run
    async def run(self, name: str) -> str:
        return f"Hello, {name}!"


@workflow.defn(name="FanOutWorkflow")
class FanOut:
    @workflow.run
    async def run(self, items: list[int]) -> int:
        results = await asyncio.gather(
            *(
                workflow.execute_activity("square", int, item, start_to_close_timeout=T)
                for item in items
            )
        )
        return sum(results)


@workflow.defn(name="ChargeWorkflow")
class Charge:
    @workflow.run
    async def run(self, amount: int) -> str:
        return await workflow.execute_activity("charge", str, amount, schedule_to_close_timeout=T)


@workflow.defn(name="ChargeWorkflow")
class ChargeCatching:
    def __init__(self) -> None:
        self.times: list[str] = []

    @workflow.run
    async def run(self, amount: int) -> str:
        self.times.append(workflow.now().isoformat())
        try:
            return await workflow.execute_activity(
                "charge", str, amount, schedule_to_close_timeout=T
            )
        except ActivityFailure as failure:
            self.times.append(workflow.now().isoformat())
            return f"{failure.reason}|{failure.failure_details}|{'/'.join(self.times)}"


def decide(definition: type, history: list[HistoryEvent], **kwargs: object) -> DecisionTaskResult:
    return run_decision_task(
        WorkflowDefinition.of(definition),
        history,
        started_at=kwargs.pop("started_at", LATER),  # type: ignore[arg-type]
        workflow_id=WORKFLOW_ID,
        run_id=RUN_ID,
    )


def test_complete_history_replays_without_new_decisions() -> None:
    history = load_fixture("single_activity_completed.json")
    assert history[-1].event_type is EventType.WorkflowExecutionCompleted

    assert decide(Greeting, history).decisions == ()


def test_history_up_to_the_activity_result_completes_the_workflow() -> None:
    history = load_fixture("single_activity_completed.json")
    # Cut right after the DecisionTaskScheduled that follows ActivityTaskCompleted.
    last_scheduled = max(
        e.event_id for e in history if e.event_type is EventType.DecisionTaskScheduled
    )
    pending = history[:last_scheduled]

    result = decide(Greeting, pending)

    assert [d.decision_type for d in result.decisions] == [DecisionType.CompleteWorkflowExecution]
    assert result.decisions[0].attributes == {"result": '"Hello, World!"'}


def test_first_decision_task_schedules_the_activity() -> None:
    history = load_fixture("single_activity_completed.json")[:2]

    result = decide(Greeting, history)

    assert len(result.decisions) == 1
    decision = result.decisions[0]
    assert decision.decision_type is DecisionType.ScheduleActivityTask
    assert decision.get("activity_id") == "0"
    assert decision.get("activity_type") == "compose_greeting"
    assert decision.get("input") == '"Hello" "World"'
    assert decision.get("task_list") == "tl"


def test_different_activity_type_is_non_deterministic_and_names_the_event() -> None:
    history = load_fixture("single_activity_completed.json")
    scheduled = next(e for e in history if e.event_type is EventType.ActivityTaskScheduled)

    with pytest.raises(NonDeterministicError) as raised:
        decide(GreetingWithOtherActivity, history)

    message = str(raised.value)
    assert f"event {scheduled.event_id}" in message
    assert "compose_greeting" in message
    assert "say_hello" in message


def test_extra_decision_in_replayed_task_is_non_deterministic() -> None:
    history = load_fixture("single_activity_completed.json")

    with pytest.raises(NonDeterministicError) as raised:
        decide(GreetingWithTwoActivities, history)

    # The second task recorded the completion; the code scheduled "audit" instead.
    completed = next(e for e in history if e.event_type is EventType.WorkflowExecutionCompleted)
    assert f"event {completed.event_id}" in str(raised.value)


def test_recorded_decision_without_matching_code_is_non_deterministic() -> None:
    history = load_fixture("single_activity_completed.json")
    scheduled = next(e for e in history if e.event_type is EventType.ActivityTaskScheduled)

    with pytest.raises(NonDeterministicError) as raised:
        decide(GreetingWithoutActivity, history)

    # The code completes at once, history scheduled an activity first.
    assert f"event {scheduled.event_id}" in str(raised.value)


def test_pending_fan_out_waits_for_the_last_activity() -> None:
    history = load_fixture("fan_out_two_of_three_done.json")

    assert decide(FanOut, history).decisions == ()


def test_fan_out_completes_when_the_last_result_arrives() -> None:
    builder = HistoryBuilder()
    builder.events = load_fixture("fan_out_two_of_three_done.json")
    builder.now = builder.events[-1].timestamp + timedelta(seconds=1)
    builder.complete_activity("1", "9")

    result = builder.run(WorkflowDefinition.of(FanOut))

    assert [d.decision_type for d in result.decisions] == [DecisionType.CompleteWorkflowExecution]
    assert result.decisions[0].get("result") == "29"


def test_failed_decision_task_is_ignored_and_uncaught_failure_fails_the_run() -> None:
    history = load_fixture("failed_decision_then_activity_failed.json")
    assert any(e.event_type is EventType.DecisionTaskFailed for e in history)

    result = decide(Charge, history)

    assert [d.decision_type for d in result.decisions] == [DecisionType.FailWorkflowExecution]
    failure = result.decisions[0]
    assert failure.get("reason") == "ActivityFailure"
    assert "CardDeclined" in failure.get("details")
    assert "Traceback" in failure.get("details")


def test_caught_activity_failure_and_now_comes_from_decision_task_started() -> None:
    history = load_fixture("failed_decision_then_activity_failed.json")
    started = [e for e in history if e.event_type is EventType.DecisionTaskStarted]
    # Event 3 started the failed attempt; event 6 the task that scheduled the activity.
    assert [e.event_id for e in started] == [3, 6]

    result = decide(ChargeCatching, history, started_at=LATER)

    assert result.decisions[0].decision_type is DecisionType.CompleteWorkflowExecution
    answer = result.decisions[0].get("result").strip('"')
    reason, details, times = answer.split("|")
    assert reason == "CardDeclined"
    assert details.startswith("card declined: insufficient funds")
    assert times.split("/") == [started[1].timestamp.isoformat(), LATER.isoformat()]


def test_history_must_start_with_workflow_execution_started() -> None:
    history = load_fixture("single_activity_completed.json")[1:]

    with pytest.raises(ValueError, match="WorkflowExecutionStarted"):
        decide(Greeting, history)


def test_decision_task_timed_out_is_ignored_like_a_failed_one() -> None:
    builder = HistoryBuilder(workflow_type="GreetingWorkflow", input='"Ada"')
    scheduled = builder.last_scheduled_decision()
    started = builder.add("DecisionTaskStarted", scheduled_event_id=scheduled, identity="w")
    builder.add(
        "DecisionTaskTimedOut",
        scheduled_event_id=scheduled,
        started_event_id=started,
        timeout_type="START_TO_CLOSE",
    )
    builder.schedule_decision()
    definition = WorkflowDefinition.of(Greeting)
    builder.decide(definition)
    builder.complete_activity("0", '"Hello, Ada!"')

    result = builder.run(definition)

    assert [d.get("result") for d in result.decisions] == ['"Hello, Ada!"']
