"""Activities in workflow code: scheduling, results, failures, concurrency, cancellation."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

import pytest
from history_builder import HistoryBuilder

from cadenza import activity, workflow
from cadenza.core.decisions import Decision, DecisionType
from cadenza.error import ActivityFailure
from cadenza.registry import Registry
from cadenza.workflow import RetryPolicy, WorkflowDefinition

T = timedelta(seconds=30)


def types(decisions: list[Decision] | tuple[Decision, ...]) -> list[DecisionType]:
    return [d.decision_type for d in decisions]


def assert_replays_cleanly(builder: HistoryBuilder, definition: WorkflowDefinition) -> None:
    """The whole recorded history replays with no error and nothing new to decide."""
    assert builder.run(definition).decisions == ()


@dataclass
class Order:
    id: str
    amount: int


@dataclass
class Receipt:
    order_id: str
    charged: int


@activity.defn
async def compose(greeting: str, name: str) -> str:
    return f"{greeting}, {name}!"


@activity.defn(name="charge_card")
def charge(order: Order) -> Receipt:
    return Receipt(order.id, order.amount)


def test_schedule_activity_task_attributes() -> None:
    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> None:
            await workflow.execute_activity(
                "send",
                None,
                "a",
                2,
                schedule_to_close_timeout=timedelta(minutes=2),
                schedule_to_start_timeout=timedelta(seconds=1.5),
                start_to_close_timeout=timedelta(seconds=60),
                heartbeat_timeout=timedelta(seconds=10),
                retry_policy={"initial_interval": timedelta(seconds=2), "maximum_attempts": 5},
            )

    builder = HistoryBuilder(task_list="orders")
    decisions = builder.decide(WorkflowDefinition.of(Wf))

    assert decisions == [
        Decision(
            DecisionType.ScheduleActivityTask,
            {
                "activity_id": "0",
                "activity_type": "send",
                "task_list": "orders",
                "input": '"a" 2',
                "schedule_to_close_timeout_seconds": 120,
                "schedule_to_start_timeout_seconds": 2,
                "start_to_close_timeout_seconds": 60,
                "heartbeat_timeout_seconds": 10,
                "retry_policy": RetryPolicy(
                    initial_interval=timedelta(seconds=2), maximum_attempts=5
                ).to_attributes(),
            },
        )
    ]


def test_explicit_task_list_and_activity_id_and_unset_timeouts_are_none() -> None:
    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> None:
            await workflow.execute_activity(
                "send", None, task_list="other", activity_id="send-1", start_to_close_timeout=T
            )

    # An execution timeout unlike the client defaults' 3600 s, so the derived value is traceable.
    builder = HistoryBuilder(execution_timeout_seconds=900)
    decision = builder.decide(WorkflowDefinition.of(Wf))[0]

    assert decision.get("task_list") == "other"
    assert decision.get("activity_id") == "send-1"
    assert decision.get("input") is None
    # Only start_to_close given: the engine (Cadence's rule) also needs schedule_to_close, so the
    # attempt may wait for a worker as long as the run lives; nothing else is filled in.
    assert decision.get("schedule_to_close_timeout_seconds") == 900
    assert decision.get("schedule_to_start_timeout_seconds") is None
    assert decision.get("start_to_close_timeout_seconds") == 30
    assert decision.get("heartbeat_timeout_seconds") is None
    assert decision.get("retry_policy") is None


def test_missing_timeouts_take_the_cadence_client_defaults() -> None:
    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> None:
            await workflow.execute_activity("send", None)

    decisions = HistoryBuilder().decide(WorkflowDefinition.of(Wf))

    assert types(decisions) == [DecisionType.ScheduleActivityTask]
    assert decisions[0].get("schedule_to_close_timeout_seconds") == 3600
    assert decisions[0].get("schedule_to_start_timeout_seconds") == 10


def test_sequential_activities_with_dataclass_input_and_result() -> None:
    @workflow.defn
    class Checkout:
        @workflow.run
        async def run(self, order: Order) -> list[Receipt]:
            first = await workflow.execute_activity(
                "charge_card", Receipt, order, start_to_close_timeout=T
            )
            second = await charge.with_options(start_to_close_timeout=T)(
                Order(order.id + "-tip", 5)
            )
            return [first, second]

    definition = WorkflowDefinition.of(Checkout)
    builder = HistoryBuilder(input='{"id":"o1","amount":40}')

    first = builder.decide(definition)
    assert [(d.get("activity_id"), d.get("activity_type"), d.get("input")) for d in first] == [
        ("0", "charge_card", '{"id":"o1","amount":40}')
    ]
    builder.complete_activity("0", '{"order_id":"o1","charged":40}')

    second = builder.decide(definition)
    assert [(d.get("activity_id"), d.get("input")) for d in second] == [
        ("1", '{"id":"o1-tip","amount":5}')
    ]
    builder.complete_activity("1", '{"order_id":"o1-tip","charged":5}')

    final = builder.decide(definition)
    assert types(final) == [DecisionType.CompleteWorkflowExecution]
    assert final[0].get("result") == (
        '[{"order_id":"o1","charged":40},{"order_id":"o1-tip","charged":5}]'
    )
    assert_replays_cleanly(builder, definition)


def test_parallel_activities_with_gather_resolve_in_any_order() -> None:
    @workflow.defn
    class Parallel:
        @workflow.run
        async def run(self) -> str:
            a, b = await asyncio.gather(
                compose.with_options(start_to_close_timeout=T)("Hi", "A"),
                workflow.execute_activity(compose, str, "Hi", "B", start_to_close_timeout=T),
            )
            return f"{a} {b}"

    definition = WorkflowDefinition.of(Parallel)
    builder = HistoryBuilder()

    first = builder.decide(definition)
    assert [(d.get("activity_id"), d.get("activity_type"), d.get("input")) for d in first] == [
        ("0", "compose", '"Hi" "A"'),
        ("1", "compose", '"Hi" "B"'),
    ]
    builder.complete_activity("1", '"Hi, B!"')
    assert builder.decide(definition) == []
    builder.complete_activity("0", '"Hi, A!"')

    final = builder.decide(definition)
    assert final[0].get("result") == '"Hi, A! Hi, B!"'
    assert_replays_cleanly(builder, definition)


def test_results_arriving_in_the_same_task_are_all_applied() -> None:
    @workflow.defn
    class Parallel:
        @workflow.run
        async def run(self) -> int:
            tasks = [
                asyncio.create_task(
                    workflow.execute_activity("n", int, i, start_to_close_timeout=T)
                )
                for i in range(3)
            ]
            return sum([await task for task in tasks])

    definition = WorkflowDefinition.of(Parallel)
    builder = HistoryBuilder()
    assert len(builder.decide(definition)) == 3
    builder.complete_activity("2", "20", schedule=False)
    builder.complete_activity("0", "1", schedule=False)
    builder.complete_activity("1", "300")

    assert builder.decide(definition)[0].get("result") == "321"
    assert_replays_cleanly(builder, definition)


def test_failing_activity_caught_by_workflow() -> None:
    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> str:
            try:
                await workflow.execute_activity("charge", str, start_to_close_timeout=T)
            except ActivityFailure as failure:
                fallback = await workflow.execute_activity(
                    "refund", str, failure.reason, start_to_close_timeout=T
                )
                return f"{failure.reason}: {failure.failure_details} -> {fallback}"
            return "charged"

    definition = WorkflowDefinition.of(Wf)
    builder = HistoryBuilder()
    builder.decide(definition)
    builder.fail_activity("0", "CardDeclined", "no money")

    compensation = builder.decide(definition)
    assert [(d.get("activity_type"), d.get("input")) for d in compensation] == [
        ("refund", '"CardDeclined"')
    ]
    builder.complete_activity("1", '"refunded"')
    final = builder.decide(definition)
    assert final[0].get("result") == '"CardDeclined: no money -> refunded"'
    assert_replays_cleanly(builder, definition)


def test_uncaught_activity_failure_fails_the_workflow() -> None:
    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> str:
            return await workflow.execute_activity("charge", str, start_to_close_timeout=T)

    definition = WorkflowDefinition.of(Wf)
    builder = HistoryBuilder()
    builder.decide(definition)
    builder.fail_activity("0", "CardDeclined", "no money")

    final = builder.decide(definition)
    assert types(final) == [DecisionType.FailWorkflowExecution]
    assert final[0].get("reason") == "ActivityFailure"
    assert "CardDeclined" in final[0].get("details")
    assert_replays_cleanly(builder, definition)


def test_timed_out_activity_raises_activity_failure_with_timeout_type() -> None:
    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> str:
            try:
                await workflow.execute_activity("slow", str, start_to_close_timeout=T)
            except ActivityFailure as failure:
                return f"{failure.timeout_type}|{failure.reason}"
            return "fast"

    definition = WorkflowDefinition.of(Wf)
    builder = HistoryBuilder()
    builder.decide(definition)
    builder.time_out_activity("0", "START_TO_CLOSE")

    final = builder.decide(definition)
    assert final[0].get("result") == '"START_TO_CLOSE|cadenceInternal:Timeout START_TO_CLOSE"'


def test_workflow_exception_fails_the_run_with_class_name_and_traceback() -> None:
    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self, key: str) -> str:
            table: dict[str, str] = {}
            return table[key]

    decisions = HistoryBuilder(input='"missing"').decide(WorkflowDefinition.of(Wf))

    assert types(decisions) == [DecisionType.FailWorkflowExecution]
    assert decisions[0].get("reason") == "KeyError"
    details = decisions[0].get("details")
    assert details.startswith("'missing'\n")
    assert "Traceback (most recent call last)" in details
    assert "table[key]" in details


def test_decisions_made_before_failure_are_kept_and_completion_is_last() -> None:
    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> None:
            self.notify = asyncio.create_task(
                workflow.execute_activity("notify", None, start_to_close_timeout=T)
            )
            await asyncio.sleep(0)
            raise RuntimeError("bad input")

    decisions = HistoryBuilder().decide(WorkflowDefinition.of(Wf))

    assert types(decisions) == [
        DecisionType.ScheduleActivityTask,
        DecisionType.FailWorkflowExecution,
    ]


def test_cancelling_an_activity_before_it_is_sent_drops_its_decision() -> None:
    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> str:
            task = asyncio.create_task(
                workflow.execute_activity("slow", str, start_to_close_timeout=T)
            )
            await asyncio.sleep(0)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                return "cancelled"
            return "done"

    decisions = HistoryBuilder().decide(WorkflowDefinition.of(Wf))

    assert types(decisions) == [DecisionType.CompleteWorkflowExecution]
    assert decisions[0].get("result") == '"cancelled"'


def test_cancelling_a_scheduled_activity_requests_its_cancellation() -> None:
    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> str:
            slow = asyncio.create_task(
                workflow.execute_activity("slow", str, start_to_close_timeout=T)
            )
            await workflow.execute_activity("fast", str, start_to_close_timeout=T)
            slow.cancel()
            try:
                return await slow
            except asyncio.CancelledError:
                return "slow cancelled"

    definition = WorkflowDefinition.of(Wf)
    builder = HistoryBuilder()
    # The task starts running only when the run method awaits: "fast" is scheduled first.
    assert [d.get("activity_type") for d in builder.decide(definition)] == ["fast", "slow"]
    builder.complete_activity("0", '"ok"')

    decisions = builder.decide(definition)
    assert decisions == [
        Decision(DecisionType.RequestCancelActivityTask, {"activity_id": "1"}),
        Decision(DecisionType.CompleteWorkflowExecution, {"result": '"slow cancelled"'}),
    ]
    assert_replays_cleanly(builder, definition)


def waiting_workflow() -> WorkflowDefinition:
    """Cancels a started "slow" activity that waits for its cancellation, after "fast"."""

    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> str:
            slow = asyncio.create_task(workflow.execute_activity(
                "slow", str, start_to_close_timeout=T, wait_for_cancellation=True))
            await workflow.execute_activity("fast", str, start_to_close_timeout=T)
            slow.cancel()
            try:
                return f"slow finished anyway: {await slow}"
            except asyncio.CancelledError:
                return "slow acknowledged"

    return WorkflowDefinition.of(Wf)


def cancel_requested(builder: HistoryBuilder, definition: WorkflowDefinition) -> None:
    first = builder.decide(definition)
    assert [(d.get("activity_type"), d.get("wait_for_cancellation")) for d in first] == [
        ("fast", None), ("slow", True)]
    builder.complete_activity("0", '"ok"')
    # Only the request: the workflow keeps waiting for the activity to acknowledge.
    assert builder.decide(definition) == [
        Decision(DecisionType.RequestCancelActivityTask, {"activity_id": "1"})]


def test_wait_for_cancellation_waits_until_the_activity_acknowledges() -> None:
    definition = waiting_workflow()
    builder = HistoryBuilder()
    cancel_requested(builder, definition)
    # As the engine writes the acknowledgement: the attempt's start, then its cancellation.
    scheduled = builder.scheduled_id("1")
    started = builder.add("ActivityTaskStarted", scheduled_event_id=scheduled, attempt=0)
    builder.add("ActivityTaskCanceled", scheduled_event_id=scheduled, started_event_id=started,
                activity_id="1", details='"stopped"')
    builder.schedule_decision()
    assert builder.decide(definition) == [Decision(
        DecisionType.CompleteWorkflowExecution, {"result": '"slow acknowledged"'})]
    assert_replays_cleanly(builder, definition)


def test_wait_for_cancellation_takes_the_result_of_an_activity_that_finished_anyway() -> None:
    definition = waiting_workflow()
    builder = HistoryBuilder()
    cancel_requested(builder, definition)
    builder.complete_activity("1", '"late"')
    assert builder.decide(definition) == [Decision(
        DecisionType.CompleteWorkflowExecution, {"result": '"slow finished anyway: late"'})]
    assert_replays_cleanly(builder, definition)


def test_activity_definitions_and_registry_lookup_for_result_type() -> None:
    registry = Registry()

    @registry.activity
    async def make_receipt(order_id: str) -> Receipt:
        return Receipt(order_id, 0)

    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> str:
            via_call = await make_receipt.with_options(start_to_close_timeout=T)("a")
            via_execute = await make_receipt.with_options(start_to_close_timeout=T).execute("b")
            # result_type None: the registry supplies the return annotation.
            via_name = await workflow.execute_activity(
                "make_receipt", None, "c", start_to_close_timeout=T
            )
            return "/".join(r.order_id for r in (via_call, via_execute, via_name))

    definition = WorkflowDefinition.of(Wf)
    builder = HistoryBuilder()
    lookup = registry.get_activity
    for index, order_id in enumerate("abc"):
        decisions = builder.decide(definition, registry_lookup_activity=lookup)
        assert [(d.get("activity_type"), d.get("input")) for d in decisions] == [
            ("make_receipt", f'"{order_id}"')
        ]
        builder.complete_activity(str(index), f'{{"order_id":"{order_id}","charged":0}}')

    final = builder.decide(definition, registry_lookup_activity=lookup)
    assert final[0].get("result") == '"a/b/c"'


def test_sync_activity_definition_called_in_workflow_is_scheduled_not_run() -> None:
    calls: list[Order] = []

    @activity.defn
    def record(order: Order) -> None:
        calls.append(order)

    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> None:
            await record.with_options(start_to_close_timeout=T)(Order("x", 1))

    decisions = HistoryBuilder().decide(WorkflowDefinition.of(Wf))

    assert calls == []
    assert [(d.get("activity_type"), d.get("input")) for d in decisions] == [
        ("record", '{"id":"x","amount":1}')
    ]


def test_undecodable_result_raises_in_the_workflow() -> None:
    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> int:
            return await workflow.execute_activity("n", int, start_to_close_timeout=T)

    definition = WorkflowDefinition.of(Wf)
    builder = HistoryBuilder()
    builder.decide(definition)
    builder.complete_activity("0", '"not a number"')

    final = builder.decide(definition)
    assert types(final) == [DecisionType.FailWorkflowExecution]
    assert final[0].get("reason") == "ValidationError"


@pytest.mark.parametrize(
    "options",
    [
        {"start_to_close_timeout": timedelta(0)},
        {"start_to_close_timeout": T, "retry_policy": {"initial_interval": -1}},
        {"start_to_close_timeout": T, "retry_policy": {"maximum_attemps": 3}},
    ],
)
def test_invalid_options_fail_the_workflow(options: dict[str, object]) -> None:
    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> None:
            await workflow.execute_activity("a", None, **options)  # type: ignore[arg-type]

    decisions = HistoryBuilder().decide(WorkflowDefinition.of(Wf))

    assert types(decisions) == [DecisionType.FailWorkflowExecution]
    assert decisions[0].get("reason") in {"ValueError", "BadRequestError"}


def test_explicit_activity_id_in_use_is_refused_but_reusable_once_closed() -> None:
    @workflow.defn
    class Wf:
        @workflow.run
        async def run(self) -> str:
            first = asyncio.create_task(
                workflow.execute_activity("a", str, activity_id="x", start_to_close_timeout=T)
            )
            await asyncio.sleep(0)
            try:
                await workflow.execute_activity("b", str, activity_id="x", start_to_close_timeout=T)
            except ValueError as error:
                refused = str(error)
            result = await first
            again = await workflow.execute_activity(
                "c", str, activity_id="x", start_to_close_timeout=T
            )
            return f"{refused}|{result}|{again}"

    definition = WorkflowDefinition.of(Wf)
    builder = HistoryBuilder()
    assert [d.get("activity_type") for d in builder.decide(definition)] == ["a"]
    builder.complete_activity("x", '"A"')
    assert [d.get("activity_type") for d in builder.decide(definition)] == ["c"]
    scheduled_c = builder.events[-1].event_id
    started = builder.add("ActivityTaskStarted", scheduled_event_id=scheduled_c, attempt=0)
    builder.add(
        "ActivityTaskCompleted",
        scheduled_event_id=scheduled_c,
        started_event_id=started,
        result='"C"',
    )
    builder.schedule_decision()

    final = builder.decide(definition)
    assert final[0].get("result") == "\"activity id 'x' is already in use in this run|A|C\""
    assert builder.run(definition).decisions == ()
