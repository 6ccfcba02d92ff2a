"""Signals whose arguments do not fit their handler are dropped, once and deterministically.

Such a signal used to fail every later decision task (decoding raised inside the handler's
task) and wedge the run. Now it is dropped with one warning in the ``cadenza`` log, the same
way on every replay, and the run goes on; an exception of the handler's own body still fails
the decision task (a code bug, repaired by a fix and a redeploy).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from cadenza import Registry, workflow
from cadenza.core import EventType
from cadenza.testing import Replayer, TestWorkflowEnvironment

T0 = datetime(2030, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)

registry = Registry()


@dataclass
class Order:
    sku: str
    quantity: int


@registry.workflow(name="Collector")
class Collector:
    def __init__(self) -> None:
        self.names: list[str] = []
        self.orders: list[Order] = []

    @workflow.signal(name="add")
    def add(self, name: str) -> None:
        self.names.append(name)

    @workflow.signal(name="pair")
    def pair(self, name: str, count: int) -> None:
        self.names.append(f"{name}x{count}")

    @workflow.signal(name="order")
    async def order(self, order: Order) -> None:
        self.orders.append(order)

    @workflow.signal(name="explode")
    def explode(self, text: str) -> None:
        raise ValueError(f"cannot handle {text!r}")

    @workflow.run
    async def run(self, wanted: int) -> list[str]:
        await workflow.wait_condition(lambda: len(self.names) + len(self.orders) >= wanted)
        return self.names + [f"{o.sku}:{o.quantity}" for o in self.orders]


def dropped_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.levelno == logging.WARNING
        and record.name.startswith("cadenza")
        and "dropped" in record.getMessage()
    ]


async def start(env: TestWorkflowEnvironment, wanted: int, workflow_id: str) -> str:
    run = await env.client.start_workflow(
        Collector, wanted, task_list=env.task_list, workflow_id=workflow_id,
        execution_start_to_close_timeout=DAY,
    )
    return run.run_id


async def test_signals_that_do_not_fit_are_dropped_and_the_run_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="cadenza")
    async with TestWorkflowEnvironment(registry, start_time=T0) as env:
        run_id = await start(env, 3, "collector")
        signal = env.client.signal_workflow
        await signal("collector", run_id, "add", 1, 2, 3)  # too many values (and ints)
        await signal("collector", run_id, "pair", "solo")  # a required value is missing
        await signal("collector", run_id, "add", 7)  # an int where the handler wants a str
        await signal("collector", run_id, "order", {"sku": "a", "quantity": "many"})
        await env.sleep(timedelta(seconds=1))
        await signal("collector", run_id, "add", "ann")
        await signal("collector", run_id, "pair", "bo", 2)
        await env.sleep(timedelta(seconds=1))
        await signal("collector", run_id, "order", {"sku": "b", "quantity": 3})

        result = await env.client.get_workflow_result("collector", run_id)
        assert result == ["ann", "box2", "b:3"]
        history = await env.client.get_workflow_history("collector", run_id)

    kinds = [event.event_type for event in history]
    assert EventType.DecisionTaskFailed not in kinds
    assert kinds[-1] is EventType.WorkflowExecutionCompleted
    assert kinds.count(EventType.DecisionTaskCompleted) >= 3  # the drops were replayed

    # One warning per dropped signal, although later decision tasks replayed them all.
    warnings = dropped_warnings(caplog)
    assert len(warnings) == 4, [w.getMessage() for w in warnings]
    messages = [w.getMessage() for w in warnings]
    for message in messages:
        assert "collector" in message and "Collector" in message
    assert "'add'" in messages[0]
    assert "takes 1 argument(s)" in messages[0] and "holds 3" in messages[0]
    assert "'pair'" in messages[1] and "'count'" in messages[1]
    assert "'add'" in messages[2] and "Expected `str`, got `int`" in messages[2]
    assert "'order'" in messages[3] and "Expected `int`" in messages[3]

    # The same history replays cleanly: the same signals are dropped the same way, silently.
    caplog.clear()
    Replayer(registry).replay(history, workflow_id="collector")
    assert dropped_warnings(caplog) == []


async def test_a_malformed_payload_is_dropped_too(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="cadenza")
    async with TestWorkflowEnvironment(registry, start_time=T0) as env:
        run_id = await start(env, 1, "malformed")
        # What a client of another language might send: not the data converter's format.
        env.service.signal_workflow(
            env.domain, "malformed", run_id, signal_name="add", input='{"unclosed": '
        )
        await env.client.signal_workflow("malformed", run_id, "add", {"not": "a str"})
        await env.sleep(timedelta(seconds=1))
        await env.client.signal_workflow("malformed", run_id, "add", "ok")
        assert await env.client.get_workflow_result("malformed", run_id) == ["ok"]
        history = await env.client.get_workflow_history("malformed", run_id)
    warnings = [w.getMessage() for w in dropped_warnings(caplog)]
    assert len(warnings) == 2, warnings
    assert "JSONDecodeError" in warnings[0] and "Expected `str`, got `object`" in warnings[1]
    Replayer(registry).replay(history, workflow_id="malformed")


async def test_an_exception_in_the_handler_body_still_fails_the_decision_task(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="cadenza")
    async with TestWorkflowEnvironment(registry, start_time=T0) as env:
        run_id = await start(env, 1, "exploding")
        await env.client.signal_workflow("exploding", run_id, "explode", "boom")
        await env.sleep(timedelta(seconds=1))
        history = await env.client.get_workflow_history("exploding", run_id)
        assert not env.is_workflow_completed("exploding")

    failed = [e for e in history if e.event_type is EventType.DecisionTaskFailed]
    assert failed, [str(e.event_type) for e in history]
    assert "signal handler 'explode' raised ValueError" in str(failed[0].get("details"))
    assert dropped_warnings(caplog) == []
