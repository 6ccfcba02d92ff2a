"""Replayer: recorded histories against today's code, every input shape, and the CLI command."""

from __future__ import annotations

import importlib
import io
import json
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cadenza import Registry, workflow
from cadenza.core.events import HistoryEvent
from cadenza.error import BadRequestError, NonDeterministicError
from cadenza.testing._replayer import Replayer, load_history

from . import replay_workflows
from .replay_workflows import ORDER_FIXTURE, PRICING_FIXTURE, OrderWorkflow, PricingWorkflow

# The module, not the function ``cadenza.cli`` re-exports under the same name.
cli = importlib.import_module("cadenza.cli.main")
T = timedelta(seconds=30)
MODULE = "tests.unit.testing.replay_workflows"
CHANGED_MODULE = "tests.unit.testing.replay_workflows_changed"


def order_events() -> list[HistoryEvent]:
    return [HistoryEvent.from_dict(item) for item in json.loads(ORDER_FIXTURE.read_text())]


def event_id(events: Sequence[HistoryEvent], event_type: str, **attributes: Any) -> int:
    return next(
        e.event_id
        for e in events
        if e.event_type == event_type and all(e.get(k) == v for k, v in attributes.items())
    )


def replayer_of(*classes: type) -> Replayer:
    registry = Registry()
    for cls in classes:
        registry.register_workflow(cls)
    return Replayer(registry)


# --- today's code, unchanged -------------------------------------------------------------------


class _OrderBase:
    def __init__(self) -> None:
        self.approved_by: str | None = None

    @workflow.signal(name="approve")
    def approve(self, who: str) -> None:
        self.approved_by = who


@workflow.defn(name="OrderWorkflow")
class OrderWithRenamedActivity(_OrderBase):
    @workflow.run
    async def run(self, order_id: str) -> str:
        await workflow.execute_activity("reserve_stock", str, order_id, start_to_close_timeout=T)
        return "unreachable in replay"


@workflow.defn(name="OrderWorkflow")
class OrderWithoutTimer(_OrderBase):
    @workflow.run
    async def run(self, order_id: str) -> str:
        reservation: str = await workflow.execute_activity(
            "reserve", str, order_id, start_to_close_timeout=T
        )
        await workflow.wait_condition(lambda: self.approved_by is not None)
        return await workflow.execute_activity("ship", str, reservation, start_to_close_timeout=T)


@workflow.defn(name="OrderWorkflow")
class OrderWithExtraActivity(_OrderBase):
    @workflow.run
    async def run(self, order_id: str) -> str:
        reservation: str = await workflow.execute_activity(
            "reserve", str, order_id, start_to_close_timeout=T
        )
        await workflow.wait_condition(lambda: self.approved_by is not None)
        await workflow.sleep(timedelta(seconds=1))
        shipped: str = await workflow.execute_activity(
            "ship", str, reservation, start_to_close_timeout=T
        )
        await workflow.execute_activity("notify", None, shipped, start_to_close_timeout=T)
        return shipped


@workflow.defn(name="OrderWorkflow")
class OrderFailingAtTheEnd(_OrderBase):
    @workflow.run
    async def run(self, order_id: str) -> str:
        reservation: str = await workflow.execute_activity(
            "reserve", str, order_id, start_to_close_timeout=T
        )
        await workflow.wait_condition(lambda: self.approved_by is not None)
        await workflow.sleep(timedelta(seconds=1))
        await workflow.execute_activity("ship", str, reservation, start_to_close_timeout=T)
        raise ValueError("the new code rejects this order")


@workflow.defn(name="OrderWorkflow")
class OrderWithFailingSignalHandler:
    @workflow.signal(name="approve")
    def approve(self, who: str) -> None:
        raise KeyError(who)

    @workflow.run
    async def run(self, order_id: str) -> str:
        await workflow.execute_activity("reserve", str, order_id, start_to_close_timeout=T)
        await workflow.wait_condition(lambda: False)
        return "never"


@workflow.defn(name="PricingWorkflow")
class PricingWithoutLocalActivity:
    @workflow.run
    async def run(self, order_id: str) -> str:
        coupon = workflow.side_effect(lambda: "SAVE5", str)
        return f"{order_id}: 42 with {coupon}"


# --- deterministic histories -----------------------------------------------------------------


def test_recorded_history_replays_against_the_code_that_wrote_it() -> None:
    events = order_events()
    assert events[-1].event_type == "WorkflowExecutionCompleted"  # a complete, real run

    Replayer(replay_workflows.registry).replay(events)


def test_markers_are_read_from_history_and_local_activities_never_run() -> None:
    calls_before = list(replay_workflows.QUOTE_CALLS)

    Replayer(replay_workflows.registry).replay(PRICING_FIXTURE)

    assert calls_before == replay_workflows.QUOTE_CALLS


def test_history_of_a_running_workflow_replays_up_to_its_last_decision_task() -> None:
    events = order_events()
    signaled = event_id(events, "WorkflowExecutionSignaled")

    Replayer(replay_workflows.registry).replay(events[:signaled])


def test_workflow_classes_can_be_given_instead_of_a_registry() -> None:
    Replayer([OrderWorkflow, PricingWorkflow]).replay(ORDER_FIXTURE)


def test_workflow_type_overrides_the_one_history_names() -> None:
    registry = Registry()
    registry.workflow(OrderWorkflow, name="OrderWorkflowV2")

    Replayer(registry).replay(ORDER_FIXTURE, workflow_type="OrderWorkflowV2")


def test_replay_workflow_history_is_the_same_check() -> None:
    replayer = replayer_of(OrderWithRenamedActivity)

    with pytest.raises(NonDeterministicError):
        replayer.replay_workflow_history(ORDER_FIXTURE)


# --- every input shape -------------------------------------------------------------------------


def show_json(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> str:
    """What ``cadenza workflow show --json`` prints for the recorded run (client faked)."""
    events = order_events()

    class FakeClient:
        def __init__(self, **options: Any) -> None:
            pass

        async def __aenter__(self) -> FakeClient:
            return self

        async def __aexit__(self, *exc: object) -> None:
            return None

        async def get_workflow_history(self, workflow_id: str, run_id: str, *,
                                       wait_for_close: bool = False) -> list[HistoryEvent]:
            return events

    monkeypatch.setattr(cli, "Client", FakeClient)
    capsys.readouterr()
    assert cli.main(["workflow", "show", "order-replay-fixture", "--json"]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(
    "shape",
    ["events", "dicts", "json list", "json object", "bytes", "str path", "Path", "show --json"],
)
@pytest.mark.parametrize("deterministic", [True, False], ids=["same code", "changed code"])
def test_every_history_shape_is_replayed(
    shape: str,
    deterministic: bool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    events = order_events()
    dicts = [event.to_dict() for event in events]
    sources: dict[str, Any] = {
        "events": lambda: events,
        "dicts": lambda: dicts,
        "json list": lambda: json.dumps(dicts),
        "json object": lambda: json.dumps({"events": dicts}),
        "bytes": lambda: json.dumps(dicts).encode(),
        "str path": lambda: str(ORDER_FIXTURE),
        "Path": lambda: ORDER_FIXTURE,
        "show --json": lambda: show_json(monkeypatch, capsys),
    }
    source = sources[shape]()
    assert load_history(source) == events

    if deterministic:
        replayer_of(OrderWorkflow).replay(source)
    else:
        with pytest.raises(NonDeterministicError, match="event 5 ActivityTaskScheduled"):
            replayer_of(OrderWithRenamedActivity).replay(source)


def test_show_json_output_written_to_a_file_replays(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "history.json"
    path.write_text(show_json(monkeypatch, capsys))

    replayer_of(OrderWorkflow).replay(path)
    with pytest.raises(NonDeterministicError):
        replayer_of(OrderWithRenamedActivity).replay(path)


# --- non-determinism -------------------------------------------------------------------------


def test_renamed_activity_names_the_event_what_history_holds_and_what_the_code_did() -> None:
    events = order_events()
    scheduled = event_id(events, "ActivityTaskScheduled", activity_type="reserve")

    with pytest.raises(NonDeterministicError) as raised:
        replayer_of(OrderWithRenamedActivity).replay(events)

    message = str(raised.value)
    assert f"event {scheduled} ActivityTaskScheduled" in message
    assert "history has 'reserve', the code has 'reserve_stock'" in message
    assert "'OrderWorkflow'" in message


def test_removed_timer_is_reported_at_the_timer_event() -> None:
    events = order_events()
    timer = event_id(events, "TimerStarted")

    with pytest.raises(NonDeterministicError) as raised:
        replayer_of(OrderWithoutTimer).replay(events)

    assert f"event {timer} TimerStarted" in str(raised.value)
    assert "ScheduleActivityTask" in str(raised.value)


def test_extra_activity_is_reported_at_the_recorded_close() -> None:
    events = order_events()
    completed = event_id(events, "WorkflowExecutionCompleted")

    with pytest.raises(NonDeterministicError) as raised:
        replayer_of(OrderWithExtraActivity).replay(events)

    assert f"event {completed} WorkflowExecutionCompleted" in str(raised.value)
    assert "'notify'" in str(raised.value)


def test_code_failing_where_history_completed_is_non_deterministic() -> None:
    events = order_events()
    completed = event_id(events, "WorkflowExecutionCompleted")

    with pytest.raises(NonDeterministicError) as raised:
        replayer_of(OrderFailingAtTheEnd).replay(events)

    message = str(raised.value)
    assert f"event {completed} WorkflowExecutionCompleted" in message
    assert "FailWorkflowExecution" in message
    assert "ValueError: the new code rejects this order" in message


def test_code_raising_in_a_replayed_task_is_non_deterministic() -> None:
    events = order_events()
    signaled = event_id(events, "WorkflowExecutionSignaled")
    # The signal is seen by the decision task that follows it.
    task = next(
        e.event_id
        for e in events
        if e.event_id > signaled and e.event_type == "DecisionTaskCompleted"
    )

    with pytest.raises(NonDeterministicError) as raised:
        replayer_of(OrderWithFailingSignalHandler).replay(events)

    message = str(raised.value)
    assert f"decision task completed by event {task}" in message
    assert "signal handler 'approve' raised KeyError" in message
    assert isinstance(raised.value.__cause__, RuntimeError)


def test_a_local_activity_the_code_no_longer_runs_is_reported_at_its_marker() -> None:
    with pytest.raises(NonDeterministicError) as raised:
        replayer_of(PricingWithoutLocalActivity).replay(PRICING_FIXTURE)

    message = str(raised.value)
    assert "event 5 MarkerRecorded" in message
    assert "history has 'LocalActivity', the code has 'SideEffect'" in message


# --- unusable input ----------------------------------------------------------------------------


def test_unknown_workflow_type_names_it_and_the_registered_ones() -> None:
    with pytest.raises(BadRequestError) as raised:
        replayer_of(PricingWorkflow).replay(ORDER_FIXTURE)

    assert "'OrderWorkflow' is not in the registry (registered: PricingWorkflow)" in str(
        raised.value
    )


@pytest.mark.parametrize(
    ("history", "message"),
    [
        ([], "history is empty"),
        ("[]", "history is empty"),
        ("[{]", "is not JSON"),
        ('{"history": []}', "'events' list"),
        (b'"just a string"', "not str"),
        ('[{"event_id": 1, "timestamp": 0}]', "missing 'event_type'"),
        ('[{"event_id": 1, "event_type": "NoSuchEvent", "timestamp": 0}]', "NoSuchEvent"),
        ([42], "history entry 0 is a int"),
    ],
)
def test_empty_or_malformed_history_is_a_bad_request(history: Any, message: str) -> None:
    with pytest.raises(BadRequestError, match=message):
        replayer_of(OrderWorkflow).replay(history)


def test_history_not_starting_with_the_start_event_is_a_bad_request() -> None:
    events = order_events()[1:]

    with pytest.raises(BadRequestError, match="must start with WorkflowExecutionStarted"):
        replayer_of(OrderWorkflow).replay(events)


def test_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        replayer_of(OrderWorkflow).replay(tmp_path / "nope.json")


# --- cadenza workflow replay -------------------------------------------------------------------


def test_cli_replays_a_file_with_the_module_registry(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["workflow", "replay", str(ORDER_FIXTURE), "--module", MODULE])

    captured = capsys.readouterr()
    assert code == 0, captured.err
    events = len(order_events())
    assert captured.out.strip() == f"ok: {events} events of OrderWorkflow replay deterministically"


def test_cli_reports_non_determinism_on_stderr_with_exit_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = cli.main(["workflow", "replay", str(ORDER_FIXTURE), "-m", CHANGED_MODULE])

    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    assert captured.err.startswith("NonDeterministicError: ")
    assert "event 5 ActivityTaskScheduled" in captured.err
    assert "history has 'reserve', the code has 'reserve_stock'" in captured.err


def test_cli_workflow_type_option_selects_the_workflow(
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry_name = "PricingWorkflow"
    code = cli.main(
        ["workflow", "replay", str(PRICING_FIXTURE), "-m", MODULE, "--workflow-type", registry_name]
    )

    assert code == 0
    assert f"events of {registry_name} replay" in capsys.readouterr().out


def test_cli_modules_defining_the_same_workflow_type_clash(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = cli.main(["workflow", "replay", str(ORDER_FIXTURE), "-m", MODULE, "-m", CHANGED_MODULE])

    assert code == 2
    error = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert "the modules clash: workflow 'OrderWorkflow' is already registered" in error


def test_cli_reads_the_history_from_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(PRICING_FIXTURE.read_text()))

    code = cli.main(["workflow", "replay", "-", "--module", MODULE])

    assert code == 0
    assert "events of PricingWorkflow replay deterministically" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["missing.json", "--module", MODULE], "cannot read missing.json"),
        ([str(ORDER_FIXTURE), "--module", "tests.unit.testing.no_such_module"], "cannot import"),
        ([str(ORDER_FIXTURE), "--module", MODULE, "--workflow-type", "Nope"], "'Nope'"),
    ],
)
def test_cli_usage_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["workflow", "replay", *argv])

    assert code == 2
    assert message in " ".join(capsys.readouterr().err.split())


def test_cli_requires_a_module(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["workflow", "replay", str(ORDER_FIXTURE)])

    assert exited.value.code == 2
    assert "--module" in capsys.readouterr().err
