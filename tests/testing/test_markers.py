"""Markers on the real engine in virtual time: side effects, mutable side effects, versions.

Each marker is recorded once by the decision task that first needs it and read back from
history by every later replay, so the non-deterministic code it guards never runs again, and
code deployed later (get_version) keeps the path a run started on.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cadenza import Registry, workflow
from cadenza.core import EventType
from cadenza.error import NonDeterministicError
from cadenza.testing import Replayer, TestWorkflowEnvironment

from .semantic_workflows import Deployment

T0 = datetime(2030, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
SHORT = timedelta(seconds=10)


def markers(history: list[Any], name: str) -> list[Any]:
    return [
        event
        for event in history
        if event.event_type is EventType.MarkerRecorded and event.get("marker_name") == name
    ]


def decision_tasks(history: list[Any]) -> int:
    return sum(1 for event in history if event.event_type is EventType.DecisionTaskCompleted)


# --- side_effect -------------------------------------------------------------------------------

side_effects = Registry()
#: How often each side effect's function ran (workflow code runs in-process here).
CALLS: dict[str, int] = {}


def roll(key: str, value: int) -> int:
    CALLS[key] = CALLS.get(key, 0) + 1
    return value + CALLS[key]  # another value on every call: a re-run would show


@side_effects.workflow(name="Dice")
class Dice:
    @workflow.run
    async def run(self, key: str) -> list[int]:
        first = workflow.side_effect(lambda: roll(key, 10), int)
        await workflow.sleep(HOUR)
        await workflow.sleep(HOUR)
        second = workflow.side_effect(lambda: roll(key + "-later", 100), int)
        await workflow.sleep(HOUR)
        return [first, second, workflow.side_effect(lambda: roll(key, 1000), int)]


async def test_side_effect_runs_once_and_later_tasks_replay_its_recorded_value() -> None:
    async with TestWorkflowEnvironment(side_effects, start_time=T0) as env:
        run = await env.client.start_workflow(
            Dice, "dice", task_list=env.task_list, execution_start_to_close_timeout=DAY
        )
        result = await env.client.get_workflow_result(run.workflow_id, run.run_id)
        history = await env.client.get_workflow_history(run.workflow_id, run.run_id)

    assert result == [11, 101, 1002]
    # Four decision tasks replayed the first side effect; its function ran once (then once
    # more for the third call, a side effect of its own).
    assert decision_tasks(history) == 4
    assert CALLS == {"dice": 2, "dice-later": 1}
    recorded = markers(history, "SideEffect")
    assert [event.get("details") for event in recorded] == ['"0" 11', '"1" 101', '"2" 1002']
    Replayer(side_effects).replay(history)
    assert CALLS == {"dice": 2, "dice-later": 1}  # the replayer reads them too


# --- mutable_side_effect -----------------------------------------------------------------------

mutables = Registry()
#: The outside world the workflow reads through mutable_side_effect.
CONFIG: dict[str, int] = {"limit": 0, "price": 0}


@mutables.workflow(name="Watcher")
class Watcher:
    def __init__(self) -> None:
        self.ticks = 0

    @workflow.signal(name="tick")
    def tick(self) -> None:
        self.ticks += 1

    @workflow.run
    async def run(self, rounds: int) -> list[list[int]]:
        seen: list[list[int]] = []
        for round_ in range(rounds):
            await workflow.wait_condition(lambda: self.ticks > round_)  # noqa: B023
            limit = workflow.mutable_side_effect("limit", lambda: CONFIG["limit"], int)
            # Prices within 10 of the recorded one count as unchanged.
            price = workflow.mutable_side_effect(
                "price", lambda: CONFIG["price"], int, lambda old, new: abs(old - new) < 10
            )
            seen.append([limit, price])
        return seen


async def test_mutable_side_effect_records_a_marker_only_when_the_value_changes() -> None:
    steps = [(1, 100), (1, 105), (2, 108), (2, 120), (2, 125), (3, 125)]
    async with TestWorkflowEnvironment(mutables, start_time=T0) as env:
        run = await env.client.start_workflow(
            Watcher, len(steps), task_list=env.task_list, execution_start_to_close_timeout=DAY
        )
        await env.sleep(timedelta(seconds=1))  # the first decision task: it waits for a tick
        for limit, price in steps:
            CONFIG.update(limit=limit, price=price)
            await env.client.signal_workflow(run.workflow_id, run.run_id, "tick")
            await env.sleep(timedelta(seconds=1))  # its decision task runs now
        result = await env.client.get_workflow_result(run.workflow_id, run.run_id)
        history = await env.client.get_workflow_history(run.workflow_id, run.run_id)

    assert result == [[1, 100], [1, 100], [2, 100], [2, 120], [2, 120], [3, 120]]
    assert decision_tasks(history) == len(steps) + 1
    recorded = [event.get("details") for event in markers(history, "MutableSideEffect")]
    # limit changed at rounds 0, 2 and 5; price (by its equals) at rounds 0 and 3.
    assert recorded == [
        '"limit#0" 1', '"price#0" 100', '"limit#2" 2', '"price#3" 120', '"limit#5" 3'
    ]
    CONFIG.update(limit=-1, price=-1)  # a replay must not look at the world again
    Replayer(mutables).replay(history)


# --- get_version -------------------------------------------------------------------------------

CHANGE = "ship-with-tracking"


def versioned_registry(workflow_class: type) -> Registry:
    registry = Registry()
    registry.workflow(name="Shipping")(workflow_class)

    @registry.activity(name="ship")
    def ship(order: str) -> str:
        return f"shipped {order}"

    @registry.activity(name="ship_tracked")
    def ship_tracked(order: str) -> str:
        return f"shipped {order} with tracking"

    return registry


class _Shipping:
    def __init__(self) -> None:
        self.approved = False

    @workflow.signal(name="approve")
    def approve(self) -> None:
        self.approved = True


class ShippingV0(_Shipping):
    """The code before the change."""

    @workflow.run
    async def run(self, order: str) -> str:
        await workflow.wait_condition(lambda: self.approved)
        return await workflow.execute_activity("ship", str, order, start_to_close_timeout=SHORT)


class ShippingV1(_Shipping):
    """The change: new runs ship with tracking; runs started before it keep shipping plainly."""

    @workflow.run
    async def run(self, order: str) -> str:
        version = workflow.get_version(CHANGE, workflow.DEFAULT_VERSION, 1)
        await workflow.wait_condition(lambda: self.approved)
        activity = "ship" if version == workflow.DEFAULT_VERSION else "ship_tracked"
        result = await workflow.execute_activity(
            activity, str, order, start_to_close_timeout=SHORT
        )
        return f"v{version}: {result}"


class ShippingV2(_Shipping):
    """Support for the old path and version 1 dropped: only version 2 runs are supported."""

    @workflow.run
    async def run(self, order: str) -> str:
        version = workflow.get_version(CHANGE, 2, 2)
        await workflow.wait_condition(lambda: self.approved)
        return f"v{version}"


class ShippingV1Cleaned(_Shipping):
    """Once no run of the old code is left, the get_version call may go (as in Cadence)."""

    @workflow.run
    async def run(self, order: str) -> str:
        await workflow.wait_condition(lambda: self.approved)
        result = await workflow.execute_activity(
            "ship_tracked", str, order, start_to_close_timeout=SHORT
        )
        return f"cleaned: {result}"


V0 = versioned_registry(ShippingV0)
V1 = versioned_registry(ShippingV1)
V2 = versioned_registry(ShippingV2)
V1_CLEANED = versioned_registry(ShippingV1Cleaned)


async def start_shipping(env: TestWorkflowEnvironment, workflow_id: str) -> str:
    run = await env.client.start_workflow(
        "Shipping", workflow_id, task_list=env.task_list, workflow_id=workflow_id,
        execution_start_to_close_timeout=DAY,
    )
    await env.sleep(timedelta(seconds=1))  # the first decision task: it waits for approval
    return run.run_id


async def deploy(env: TestWorkflowEnvironment, deployment: Deployment, registry: Registry) -> None:
    env.stop_worker(env.task_list)
    deployment.current = registry
    env.start_worker(env.task_list)


async def test_get_version_keeps_runs_started_by_old_code_on_the_old_path() -> None:
    deployment = Deployment(V0)
    async with TestWorkflowEnvironment(deployment, start_time=T0) as env:
        old_run = await start_shipping(env, "old-order")
        before = await env.client.get_workflow_history("old-order", old_run)
        assert markers(before, "Version") == []

        await deploy(env, deployment, V1)
        new_run = await start_shipping(env, "new-order")
        for workflow_id, run_id in (("old-order", old_run), ("new-order", new_run)):
            await env.client.signal_workflow(workflow_id, run_id, "approve")
        old_result = await env.client.get_workflow_result("old-order", old_run)
        new_result = await env.client.get_workflow_result("new-order", new_run)
        old_history = await env.client.get_workflow_history("old-order", old_run)
        new_history = await env.client.get_workflow_history("new-order", new_run)

    # The run the old code started takes the DEFAULT_VERSION branch and records no marker.
    assert old_result == "v-1: shipped old-order"
    assert markers(old_history, "Version") == []
    # A new run gets max_supported, recorded as a Version marker by its first task.
    assert new_result == "v1: shipped new-order with tracking"
    [marker] = markers(new_history, "Version")
    assert marker.get("details") == f'"{CHANGE}" 1'
    first_completed = next(
        e for e in new_history if e.event_type is EventType.DecisionTaskCompleted
    )
    assert marker.get("decision_task_completed_event_id") == first_completed.event_id
    # Both histories replay against the new code.
    Replayer(V1).replay(old_history, workflow_id="old-order")
    Replayer(V1).replay(new_history, workflow_id="new-order")
    with pytest.raises(NonDeterministicError):
        Replayer(V0).replay(new_history, workflow_id="new-order")


async def test_a_recorded_version_outside_the_supported_range_fails_the_decision_task() -> None:
    deployment = Deployment(V1)
    async with TestWorkflowEnvironment(deployment, start_time=T0) as env:
        run_id = await start_shipping(env, "order")
        await deploy(env, deployment, V2)
        await env.client.signal_workflow("order", run_id, "approve")
        await env.sleep(timedelta(seconds=1))
        history = await env.client.get_workflow_history("order", run_id)
        assert not env.is_workflow_completed("order")
        failed = [e for e in history if e.event_type is EventType.DecisionTaskFailed]
        assert len(failed) == 1
        details = str(failed[0].get("details"))
        assert "NonDeterministicError" in details
        assert f"version 1 of change {CHANGE!r}" in details and "[2, 2]" in details

        # The run is intact: rolling back to code that supports it finishes it.
        await deploy(env, deployment, V1)
        result = await env.client.get_workflow_result("order", run_id)
        history = await env.client.get_workflow_history("order", run_id)

    assert result == "v1: shipped order with tracking"
    Replayer(V1).replay(history, workflow_id="order")
    with pytest.raises(NonDeterministicError, match="outside"):
        Replayer(V2).replay(history, workflow_id="order")


async def test_a_get_version_call_can_go_once_no_old_run_is_left() -> None:
    deployment = Deployment(V1)
    async with TestWorkflowEnvironment(deployment, start_time=T0) as env:
        run_id = await start_shipping(env, "order")
        await deploy(env, deployment, V1_CLEANED)
        await env.client.signal_workflow("order", run_id, "approve")
        result = await env.client.get_workflow_result("order", run_id)
        history = await env.client.get_workflow_history("order", run_id)

    assert result == "cleaned: shipped order with tracking"
    assert EventType.DecisionTaskFailed not in [event.event_type for event in history]
    assert len(markers(history, "Version")) == 1  # recorded by V1, ignored by the new code
    Replayer(V1_CLEANED).replay(history, workflow_id="order")
