"""Timers, signals, conditions, markers, versions, cancellation, children and queries."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from datetime import timedelta

import pytest
from history_builder import RUN_ID, START, WORKFLOW_ID, HistoryBuilder

from cadenza import activity, workflow
from cadenza._activity_executor import ActivityOutcome, run_local_activity
from cadenza.core.decisions import Decision, DecisionType
from cadenza.error import ActivityFailure, NonDeterministicError, QueryFailedError, WorkflowFailure
from cadenza.registry import Registry
from cadenza.replay import LocalActivityRequest, run_query
from cadenza.workflow import WorkflowDefinition

T = timedelta(seconds=30)


def types(decisions: list[Decision] | tuple[Decision, ...]) -> list[DecisionType]:
    return [d.decision_type for d in decisions]


def query(
    builder: HistoryBuilder, definition: WorkflowDefinition, name: str, args: str | None = None
) -> str | None:
    return run_query(definition, builder.events, name, args, workflow_id=WORKFLOW_ID, run_id=RUN_ID)


# --- timers ------------------------------------------------------------------------------------


def test_sleep_starts_a_durable_timer_and_time_advances_with_history() -> None:
    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> list[str]:
            before = workflow.now()
            await workflow.sleep(timedelta(minutes=1, seconds=0.5))
            await workflow.sleep(0)  # no timer for a zero duration
            return [before.isoformat(), workflow.now().isoformat()]

    definition = WorkflowDefinition.of(Wf)
    builder = HistoryBuilder()
    first_task_time = builder.now

    assert builder.decide(definition) == [
        Decision(DecisionType.StartTimer, {"timer_id": "0", "start_to_fire_timeout_seconds": 61})
    ]
    builder.tick(61)
    builder.fire_timer("0")
    second_task_time = builder.now

    final = builder.decide(definition)
    assert final == [
        Decision(
            DecisionType.CompleteWorkflowExecution,
            {"result": f'["{first_task_time.isoformat()}","{second_task_time.isoformat()}"]'},
        )
    ]
    assert builder.run(definition).decisions == ()


def test_cancelled_timer_becomes_a_cancel_timer_decision() -> None:
    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> str:
            timer = asyncio.create_task(workflow.sleep(timedelta(hours=1)))
            await workflow.execute_activity("work", None, start_to_close_timeout=T)
            timer.cancel()
            return "done"

    definition = WorkflowDefinition.of(Wf)
    builder = HistoryBuilder()
    assert types(builder.decide(definition)) == [
        DecisionType.ScheduleActivityTask,
        DecisionType.StartTimer,
    ]
    builder.complete_activity("0", None)

    assert builder.decide(definition) == [
        Decision(DecisionType.CancelTimer, {"timer_id": "0"}),
        Decision(DecisionType.CompleteWorkflowExecution, {"result": '"done"'}),
    ]
    assert builder.run(definition).decisions == ()


def test_asyncio_sleep_with_a_delay_fails_with_a_hint_to_use_workflow_sleep() -> None:
    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> None:
            await asyncio.sleep(1)

    decisions = HistoryBuilder().decide(WorkflowDefinition.of(Wf))

    assert types(decisions) == [DecisionType.FailWorkflowExecution]
    assert decisions[0].get("reason") == "RuntimeError"
    assert "workflow.sleep" in decisions[0].get("details")


@pytest.mark.filterwarnings("ignore:coroutine 'execute_activity' was never awaited")
def test_wait_for_with_timeout_is_refused_too() -> None:
    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> None:
            await asyncio.wait_for(
                workflow.execute_activity("a", None, start_to_close_timeout=T), timeout=5
            )

    decisions = HistoryBuilder().decide(WorkflowDefinition.of(Wf))
    gc.collect()  # the refused coroutine is reported here, under this test's warning filter

    assert decisions[-1].get("reason") == "RuntimeError"
    assert "wait_condition" in decisions[-1].get("details")


# --- signals and conditions --------------------------------------------------------------------


@workflow.defn
class Approval:
    def __init__(self) -> None:
        self.approvals: list[str] = []
        self.rejected = False

    @workflow.signal(name="approve")
    def approve(self, who: str) -> None:
        self.approvals.append(who)

    @workflow.signal
    async def reject(self) -> None:
        await workflow.execute_activity("notify_rejection", None, start_to_close_timeout=T)
        self.rejected = True

    @workflow.query(name="approvals")
    def current(self) -> list[str]:
        return self.approvals

    @workflow.query
    def state(self, prefix: str) -> str:
        return f"{prefix}:{len(self.approvals)}:{self.rejected}"

    @workflow.run
    async def run(self, needed: int) -> list[str]:
        await workflow.wait_condition(lambda: len(self.approvals) >= needed or self.rejected)
        if self.rejected:
            return ["rejected"]
        return self.approvals


def test_signals_and_wait_condition() -> None:
    definition = WorkflowDefinition.of(Approval)
    builder = HistoryBuilder(input="2")
    assert builder.decide(definition) == []

    builder.signal("approve", '"ann"')
    assert builder.decide(definition) == []
    assert query(builder, definition, "approvals") == '["ann"]'

    builder.signal("unknown-signal", '"ignored"', schedule=False)
    builder.signal("approve", '"bob"')
    final = builder.decide(definition)
    assert final == [Decision(DecisionType.CompleteWorkflowExecution, {"result": '["ann","bob"]'})]
    assert builder.run(definition).decisions == ()
    assert query(builder, definition, "state", '"s"') == '"s:2:False"'


def test_async_signal_handler_can_schedule_activities() -> None:
    definition = WorkflowDefinition.of(Approval)
    builder = HistoryBuilder(input="1")
    builder.decide(definition)
    builder.signal("reject")

    decisions = builder.decide(definition)
    assert [(d.decision_type, d.get("activity_type")) for d in decisions] == [
        (DecisionType.ScheduleActivityTask, "notify_rejection")
    ]
    builder.complete_activity("0", None)
    assert builder.decide(definition)[0].get("result") == '["rejected"]'


def test_query_sees_signals_not_yet_processed_and_reports_unknown_queries() -> None:
    definition = WorkflowDefinition.of(Approval)
    builder = HistoryBuilder(input="3")
    builder.decide(definition)
    builder.signal("approve", '"zoe"')  # no decision task has processed it yet

    assert query(builder, definition, "approvals") == '["zoe"]'
    assert query(builder, definition, "__query_types") == '["approvals","state"]'
    with pytest.raises(QueryFailedError, match="no query 'nope'"):
        query(builder, definition, "nope")


def test_failing_signal_handler_fails_the_decision_task() -> None:
    @workflow.defn
    class Wf:
        @workflow.signal
        def poke(self) -> None:
            raise ValueError("bad signal")

        @workflow.run
        async def run(self) -> None:
            await workflow.wait_condition(lambda: False)

    definition = WorkflowDefinition.of(Wf)
    builder = HistoryBuilder()
    builder.decide(definition)
    builder.signal("poke")

    with pytest.raises(RuntimeError, match="signal handler 'poke' raised ValueError"):
        builder.run(definition)


def test_wait_condition_timeout_raises_timeout_error_after_the_timer_fires() -> None:
    @workflow.defn
    class Wf:
        def __init__(self) -> None:
            self.done = False

        @workflow.signal
        def finish(self) -> None:
            self.done = True

        @workflow.run
        async def run(self) -> bool:
            try:
                returned = await workflow.wait_condition(  # type: ignore[func-returns-value]
                    lambda: self.done, timeout=timedelta(hours=1))
            except TimeoutError:
                return False
            assert returned is None  # the API returns nothing when the predicate wins
            return True

    definition = WorkflowDefinition.of(Wf)
    timed_out = HistoryBuilder()
    assert timed_out.decide(definition) == [
        Decision(DecisionType.StartTimer, {"timer_id": "0", "start_to_fire_timeout_seconds": 3600})
    ]
    timed_out.fire_timer("0")
    assert timed_out.decide(definition)[0].get("result") == "false"

    signalled = HistoryBuilder()
    signalled.decide(definition)
    signalled.signal("finish")
    assert signalled.decide(definition) == [
        Decision(DecisionType.CancelTimer, {"timer_id": "0"}),
        Decision(DecisionType.CompleteWorkflowExecution, {"result": "true"}),
    ]
    assert signalled.run(definition).decisions == ()


def test_uncaught_wait_condition_timeout_fails_the_workflow_with_timeout_error() -> None:
    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> None:
            await workflow.wait_condition(lambda: False, timeout=timedelta(minutes=5))

    definition = WorkflowDefinition.of(Wf)
    builder = HistoryBuilder()
    builder.decide(definition)
    builder.fire_timer("0")

    final = builder.decide(definition)
    assert types(final) == [DecisionType.FailWorkflowExecution]
    assert final[0].get("reason") == "TimeoutError"
    assert "wait_condition timed out" in final[0].get("details")


# --- cancellation ------------------------------------------------------------------------------


def test_cancel_request_cancels_the_run_and_its_activity() -> None:
    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> None:
            await workflow.execute_activity("long", None, start_to_close_timeout=T)

    definition = WorkflowDefinition.of(Wf)
    builder = HistoryBuilder()
    builder.decide(definition)
    builder.request_cancel()

    assert builder.decide(definition) == [
        Decision(DecisionType.RequestCancelActivityTask, {"activity_id": "0"}),
        Decision(DecisionType.CancelWorkflowExecution, {"details": None}),
    ]
    assert builder.run(definition).decisions == ()


def test_workflow_can_clean_up_after_a_cancel_request() -> None:
    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> str:
            try:
                await workflow.sleep(timedelta(days=1))
            except asyncio.CancelledError:
                assert workflow.is_cancel_requested()
                await workflow.execute_activity("cleanup", None, start_to_close_timeout=T)
                return "cleaned up"
            return "slept"

    definition = WorkflowDefinition.of(Wf)
    builder = HistoryBuilder()
    builder.decide(definition)
    builder.request_cancel()

    decisions = builder.decide(definition)
    assert [(d.decision_type, d.get("timer_id"), d.get("activity_type")) for d in decisions] == [
        (DecisionType.CancelTimer, "0", None),
        (DecisionType.ScheduleActivityTask, None, "cleanup"),
    ]
    builder.complete_activity("0", None)
    assert builder.decide(definition)[0].get("result") == '"cleaned up"'
    assert builder.run(definition).decisions == ()


# --- markers -------------------------------------------------------------------------------------


def test_side_effect_is_recorded_once_and_replayed_from_history() -> None:
    calls: list[int] = []

    def roll() -> int:
        calls.append(1)
        return 4 if len(calls) == 1 else 6

    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> int:
            value = workflow.side_effect(roll, int)
            await workflow.execute_activity("use", None, value, start_to_close_timeout=T)
            return value

    definition = WorkflowDefinition.of(Wf)
    builder = HistoryBuilder()
    decisions = builder.decide(definition)
    assert decisions[0] == Decision(
        DecisionType.RecordMarker, {"marker_name": "SideEffect", "details": '"0" 4'}
    )
    assert decisions[1].get("input") == "4"
    builder.complete_activity("0", None)

    final = builder.decide(definition)
    assert final[0].get("result") == "4"
    assert len(calls) == 1  # replays read the marker instead of calling again


def test_side_effect_added_to_old_code_path_is_non_deterministic() -> None:
    @workflow.defn(name="Wf")
    class Old:
        @workflow.run
        async def run(self) -> None:
            await workflow.execute_activity("use", None, start_to_close_timeout=T)

    @workflow.defn(name="Wf")
    class New:
        @workflow.run
        async def run(self) -> None:
            workflow.side_effect(lambda: 1, int)
            await workflow.execute_activity("use", None, start_to_close_timeout=T)

    builder = HistoryBuilder()
    builder.decide(WorkflowDefinition.of(Old))
    builder.complete_activity("0", None)

    with pytest.raises(NonDeterministicError, match="side_effect #0"):
        builder.run(WorkflowDefinition.of(New))


def test_get_version_records_new_runs_and_defaults_for_old_histories() -> None:
    @workflow.defn(name="Wf")
    class V1:
        @workflow.run
        async def run(self) -> str:
            await workflow.execute_activity("old_step", None, start_to_close_timeout=T)
            return "v1"

    @workflow.defn(name="Wf")
    class V2:
        @workflow.run
        async def run(self) -> str:
            version = workflow.get_version("new-step", workflow.DEFAULT_VERSION, 1)
            name = "new_step" if version == 1 else "old_step"
            await workflow.execute_activity(name, None, start_to_close_timeout=T)
            again = workflow.get_version("new-step", workflow.DEFAULT_VERSION, 1)
            return f"v{version}/{again}"

    v2 = WorkflowDefinition.of(V2)
    # A run started by the old code continues on the old path with the new code.
    old = HistoryBuilder()
    old.decide(WorkflowDefinition.of(V1))
    old.complete_activity("0", None)
    assert old.run(v2).decisions[0].get("result") == '"v-1/-1"'

    # A new run records the version and follows the new path, also on replay.
    new = HistoryBuilder()
    decisions = new.decide(v2)
    assert decisions[0] == Decision(
        DecisionType.RecordMarker, {"marker_name": "Version", "details": '"new-step" 1'}
    )
    assert decisions[1].get("activity_type") == "new_step"
    new.complete_activity("0", None)
    assert new.decide(v2)[0].get("result") == '"v1/1"'
    assert new.run(v2).decisions == ()


def test_get_version_outside_supported_range_fails_the_decision_task() -> None:
    @workflow.defn(name="Wf")
    class V2:
        @workflow.run
        async def run(self) -> None:
            workflow.get_version("change", workflow.DEFAULT_VERSION, 1)
            await workflow.execute_activity("a", None, start_to_close_timeout=T)

    @workflow.defn(name="Wf")
    class V3:
        @workflow.run
        async def run(self) -> None:
            # Catching the error must not hide the problem.
            with contextlib.suppress(NonDeterministicError):
                workflow.get_version("change", 2, 2)
            await workflow.execute_activity("a", None, start_to_close_timeout=T)

    builder = HistoryBuilder()
    builder.decide(WorkflowDefinition.of(V2))
    builder.complete_activity("0", None)

    with pytest.raises(NonDeterministicError, match=r"version 1 of change 'change'"):
        builder.run(WorkflowDefinition.of(V3))


def test_mutable_side_effect_records_only_changes() -> None:
    values = iter([1, 1, 2])

    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> list[int]:
            seen = []
            for _ in range(3):
                seen.append(workflow.mutable_side_effect("cfg", lambda: next(values), int))
                await workflow.execute_activity("tick", None, start_to_close_timeout=T)
            return seen

    definition = WorkflowDefinition.of(Wf)
    builder = HistoryBuilder()
    markers = []
    for index in range(3):
        decisions = builder.decide(definition)
        markers += [
            d.get("details") for d in decisions if d.decision_type is DecisionType.RecordMarker
        ]
        builder.complete_activity(str(index), None)
    final = builder.decide(definition)

    assert markers == ['"cfg#0" 1', '"cfg#2" 2']
    assert final[0].get("result") == "[1,1,2]"
    assert builder.run(definition).decisions == ()


# --- other decisions -----------------------------------------------------------------------------


def test_continue_as_new_and_info_from_the_started_event() -> None:
    @workflow.defn(name="Counter")
    class Counter:
        @workflow.run
        async def run(self, count: int) -> None:
            info = workflow.info()
            assert (info.workflow_id, info.workflow_run_id) == (WORKFLOW_ID, RUN_ID)
            assert (info.workflow_task_list, info.workflow_domain) == ("counting", "default")
            assert info.workflow_type == "Counter"
            assert info.memo == {"k": "v"}
            assert info.execution_start_to_close_timeout == timedelta(hours=1)
            workflow.continue_as_new(count + 1)

    decisions = HistoryBuilder(
        workflow_type="Counter", task_list="counting", input="41", memo={"k": "v"}
    ).decide(WorkflowDefinition.of(Counter))

    assert decisions == [
        Decision(
            DecisionType.ContinueAsNewWorkflowExecution,
            {
                "workflow_type": "Counter",
                "task_list": "counting",
                "input": "42",
                "execution_start_to_close_timeout_seconds": 3600,
                "task_start_to_close_timeout_seconds": 10,
            },
        )
    ]


def test_upsert_search_attributes() -> None:
    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> str:
            workflow.upsert_search_attributes({"CustomerId": "c-1", "When": START})
            return str(workflow.info().search_attributes["CustomerId"])

    decisions = HistoryBuilder().decide(WorkflowDefinition.of(Wf))

    assert decisions == [
        Decision(
            DecisionType.UpsertWorkflowSearchAttributes,
            {"search_attributes": {"CustomerId": "c-1", "When": START.isoformat()}},
        ),
        Decision(DecisionType.CompleteWorkflowExecution, {"result": '"c-1"'}),
    ]


def test_child_workflow_lifecycle() -> None:
    @workflow.defn
    class Parent:
        @workflow.run
        async def run(self) -> str:
            child = await workflow.start_child_workflow(
                "Child", str, "x", execution_start_to_close_timeout=timedelta(minutes=5)
            )
            result = await child
            return f"{child.workflow_id}/{child.run_id}/{result}"

    definition = WorkflowDefinition.of(Parent)
    builder = HistoryBuilder()
    decisions = builder.decide(definition)
    assert types(decisions) == [DecisionType.StartChildWorkflowExecution]
    assert decisions[0].get("workflow_id") == f"{RUN_ID}_0"
    assert decisions[0].get("workflow_type") == "Child"
    assert decisions[0].get("execution_start_to_close_timeout_seconds") == 300
    initiated = builder.events[-1].event_id

    builder.add(
        "ChildWorkflowExecutionStarted",
        initiated_event_id=initiated,
        workflow_execution={"workflow_id": f"{RUN_ID}_0", "run_id": "child-run"},
    )
    builder.schedule_decision()
    assert builder.decide(definition) == []
    builder.add("ChildWorkflowExecutionCompleted", initiated_event_id=initiated, result='"ok"')
    builder.schedule_decision()

    assert builder.decide(definition)[0].get("result") == f'"{RUN_ID}_0/child-run/ok"'
    assert builder.run(definition).decisions == ()


def test_failed_child_raises_workflow_failure_in_the_parent() -> None:
    @workflow.defn
    class Parent:
        @workflow.run
        async def run(self) -> str:
            try:
                return await workflow.execute_child_workflow(
                    "Child", str, workflow_id="kid", execution_start_to_close_timeout=T
                )
            except WorkflowFailure as failure:
                return f"{failure.close_status}:{failure.reason}"

    definition = WorkflowDefinition.of(Parent)
    builder = HistoryBuilder()
    builder.decide(definition)
    initiated = builder.events[-1].event_id
    builder.add("ChildWorkflowExecutionStarted", initiated_event_id=initiated, run_id="r")
    builder.add(
        "ChildWorkflowExecutionFailed", initiated_event_id=initiated, reason="Boom", details="d"
    )
    builder.schedule_decision()

    assert builder.decide(definition)[0].get("result") == '"FAILED:Boom"'


def test_signal_external_workflow() -> None:
    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> None:
            await workflow.signal_external_workflow("other", "ping", 1, run_id="r9")

    definition = WorkflowDefinition.of(Wf)
    builder = HistoryBuilder()
    decisions = builder.decide(definition)
    assert decisions == [
        Decision(
            DecisionType.SignalExternalWorkflowExecution,
            {
                "domain": "default",
                "workflow_id": "other",
                "run_id": "r9",
                "signal_name": "ping",
                "input": "1",
                "control": "0",
                "child_workflow_only": False,
            },
        )
    ]
    builder.add("ExternalWorkflowExecutionSignaled", initiated_event_id=builder.events[-1].event_id)
    builder.schedule_decision()
    assert types(builder.decide(definition)) == [DecisionType.CompleteWorkflowExecution]


# --- replay mode and teardown ------------------------------------------------------------------


def test_is_replaying_is_true_only_for_recorded_tasks() -> None:
    seen: list[bool] = []

    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> None:
            seen.append(workflow.is_replaying())
            await workflow.execute_activity("a", None, start_to_close_timeout=T)
            seen.append(workflow.is_replaying())

    definition = WorkflowDefinition.of(Wf)
    builder = HistoryBuilder()
    builder.decide(definition)
    builder.complete_activity("0", None)
    seen.clear()
    builder.decide(definition)

    assert seen == [True, False]


def test_pending_coroutines_are_closed_when_the_task_ends() -> None:
    events: list[str] = []

    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> None:
            try:
                await workflow.execute_activity("a", None, start_to_close_timeout=T)
            finally:
                events.append("finally")
                with pytest.raises(RuntimeError, match="decision task of this workflow is over"):
                    workflow.side_effect(lambda: 1)

    HistoryBuilder().decide(WorkflowDefinition.of(Wf))

    assert events == ["finally"]


# --- local activities ----------------------------------------------------------------------------


def test_local_activity_runs_once_and_replays_from_its_marker() -> None:
    calls: list[str] = []

    @activity.defn
    def lookup_price(sku: str) -> int:
        calls.append(sku)
        return 42

    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> int:
            price = await workflow.execute_local_activity(
                lookup_price, int, "sku-1", schedule_to_close_timeout=T
            )
            await workflow.execute_activity("charge", None, price, start_to_close_timeout=T)
            return price

    definition = WorkflowDefinition.of(Wf)
    builder = HistoryBuilder()
    # The replayer runs no user code of its own: the worker hands the executor in.
    decisions = builder.decide(definition, local_activity_runner=run_local_activity)

    assert calls == ["sku-1"]
    assert types(decisions) == [DecisionType.RecordMarker, DecisionType.ScheduleActivityTask]
    assert decisions[0].get("marker_name") == "LocalActivity"
    assert decisions[1].get("input") == "42"
    builder.complete_activity("0", None)
    final = builder.decide(definition, local_activity_runner=run_local_activity)
    assert final[0].get("result") == "42"
    assert calls == ["sku-1"]  # the replays read the marker


def test_local_activity_without_a_runner_fails_the_decision_task() -> None:
    calls: list[str] = []

    @activity.defn
    def lookup_price(sku: str) -> int:
        calls.append(sku)
        return 42

    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> int:
            return await workflow.execute_local_activity(
                lookup_price, int, "sku-1", schedule_to_close_timeout=T
            )

    with pytest.raises(RuntimeError, match="no local activity runner"):
        HistoryBuilder().decide(WorkflowDefinition.of(Wf))
    assert calls == []  # nothing ran


def test_recorded_local_activity_replays_without_a_runner() -> None:
    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> int:
            price = await workflow.execute_local_activity(
                "lookup_price", int, "sku-1", schedule_to_close_timeout=T
            )
            await workflow.execute_activity("charge", None, price, start_to_close_timeout=T)
            return price

    def runner(request: LocalActivityRequest) -> ActivityOutcome:
        return ActivityOutcome(kind="completed", result="42")

    registry = Registry()
    registry.activity(name="lookup_price")(lambda sku: 1)
    registry.activity(name="charge")(lambda price: None)
    definition = WorkflowDefinition.of(Wf)
    builder = HistoryBuilder()
    decisions = builder.decide(definition, local_activity_runner=runner,
                               registry_lookup_activity=registry.get_activity)
    assert types(decisions) == [DecisionType.RecordMarker, DecisionType.ScheduleActivityTask]
    builder.complete_activity("0", None)
    # Replaying the marker needs no runner: only a new local activity does.
    final = builder.decide(definition, registry_lookup_activity=registry.get_activity)
    assert final == [Decision(DecisionType.CompleteWorkflowExecution, {"result": "42"})]


def test_local_activity_failure_and_custom_runner() -> None:
    requests: list[LocalActivityRequest] = []

    def runner(request: LocalActivityRequest) -> ActivityOutcome:
        requests.append(request)
        return ActivityOutcome(kind="failed", reason="PriceUnavailable", details="no price")

    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> str:
            try:
                await workflow.execute_local_activity("lookup_price", int, "sku-2")
            except ActivityFailure as failure:
                return f"{failure.reason}: {failure.failure_details}"
            return "priced"

    registry = Registry()
    registry.activity(name="lookup_price")(lambda sku: 1)
    decisions = HistoryBuilder().decide(
        WorkflowDefinition.of(Wf),
        local_activity_runner=runner,
        registry_lookup_activity=registry.get_activity,
    )

    assert [r.activity_type for r in requests] == ["lookup_price"]
    assert requests[0].input == '"sku-2"'
    assert requests[0].workflow_id == WORKFLOW_ID
    assert decisions[-1].get("result") == '"PriceUnavailable: no price"'


def test_unregistered_local_activity_fails_in_the_workflow() -> None:
    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> None:
            await workflow.execute_local_activity("nowhere", None)

    decisions = HistoryBuilder().decide(
        WorkflowDefinition.of(Wf), local_activity_runner=run_local_activity
    )

    assert decisions[-1].get("reason") == "ActivityFailure"
    assert "ActivityNotRegisteredError" in decisions[-1].get("details")


def test_local_activity_added_to_old_code_is_non_deterministic() -> None:
    @workflow.defn(name="Wf")
    class Old:
        @workflow.run
        async def run(self) -> None:
            await workflow.execute_activity("a", None, start_to_close_timeout=T)

    @workflow.defn(name="Wf")
    class New:
        @workflow.run
        async def run(self) -> None:
            await workflow.execute_local_activity(lambda: 1, int)
            await workflow.execute_activity("a", None, start_to_close_timeout=T)

    builder = HistoryBuilder()
    builder.decide(WorkflowDefinition.of(Old))
    builder.complete_activity("0", None)

    with pytest.raises(NonDeterministicError, match="LocalActivity marker"):
        builder.run(WorkflowDefinition.of(New))
