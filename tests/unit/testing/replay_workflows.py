"""Workflows whose recorded histories the replayer tests replay, and how they were recorded.

``fixtures/order_history.json`` is the history of one ``OrderWorkflow`` run on the embedded
local stack (real engine, real worker), as ``cadenza workflow show --json`` writes it: two
activities (async and sync), a signal awaited with ``wait_condition``, and a durable timer.
``fixtures/pricing_history.json`` holds markers (a local activity, a side effect), which the
engine does not accept yet; it is written by ``tests/unit/replay/history_builder.py``, which
records decisions as the engine does. Regenerate both after a change of the event format::

    .venv/bin/python -m tests.unit.testing.replay_workflows
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import timedelta
from pathlib import Path

from cadenza import Registry, activity, workflow

FIXTURES = Path(__file__).parent / "fixtures"
ORDER_FIXTURE = FIXTURES / "order_history.json"
PRICING_FIXTURE = FIXTURES / "pricing_history.json"
ORDER_ID = "order-7"
T = timedelta(seconds=30)

registry = Registry()
#: Orders ``quote`` was called for (the replayer tests check that replay adds none).
QUOTE_CALLS: list[str] = []


@activity.defn
def quote(order_id: str) -> int:
    """A local activity: replay reads its result from the marker and never calls it."""
    QUOTE_CALLS.append(order_id)
    return 42


@registry.activity()
async def reserve(order_id: str) -> str:
    return f"reservation-{order_id}"


@registry.activity()
def ship(reservation: str) -> str:
    return f"shipped {reservation}"


@registry.workflow(name="OrderWorkflow")
class OrderWorkflow:
    def __init__(self) -> None:
        self.approved_by: str | None = None

    @workflow.signal(name="approve")
    def approve(self, who: str) -> None:
        self.approved_by = who

    @workflow.run
    async def run(self, order_id: str) -> str:
        reservation: str = await workflow.execute_activity(
            "reserve", str, order_id, start_to_close_timeout=T
        )
        await workflow.wait_condition(lambda: self.approved_by is not None)
        await workflow.sleep(timedelta(seconds=1))
        shipped = await ship.with_options(start_to_close_timeout=T).execute(reservation)
        return f"{shipped} approved by {self.approved_by}"


@registry.workflow(name="PricingWorkflow")
class PricingWorkflow:
    """Uses markers (a local activity, a side effect), which the engine does not record yet."""

    @workflow.run
    async def run(self, order_id: str) -> str:
        price: int = await workflow.execute_local_activity(
            quote, int, order_id, schedule_to_close_timeout=T
        )
        coupon = workflow.side_effect(lambda: "SAVE5", str)
        return f"{order_id}: {price} with {coupon}"


async def _record_order() -> str:
    """Run one order on the embedded local stack; its history as ``show --json`` prints it."""
    from cadenza import Client, Worker
    from cadenza.local import LocalStack

    with LocalStack(api_port=0) as stack:
        async with Client(domain="default", target=stack.api_url) as client:
            async with Worker(client, "replay-fixture", registry):
                execution = await client.start_workflow(
                    OrderWorkflow,
                    ORDER_ID,
                    task_list="replay-fixture",
                    workflow_id="order-replay-fixture",
                    execution_start_to_close_timeout=timedelta(minutes=2),
                )
                while not any(
                    e.event_type == "ActivityTaskCompleted"
                    for e in await client.get_workflow_history(execution.workflow_id)
                ):
                    await asyncio.sleep(0.2)
                await client.signal_workflow(execution.workflow_id, "", "approve", "ann")
                await client.get_workflow_result(execution.workflow_id, timeout=60)
            events = await client.get_workflow_history(execution.workflow_id)
    return json.dumps([event.to_dict() for event in events], indent=2) + "\n"


def _record_pricing() -> str:
    """Decide one PricingWorkflow task with the replay engine and record it as the engine would."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "replay"))
    from history_builder import HistoryBuilder

    from cadenza.workflow import WorkflowDefinition

    builder = HistoryBuilder(workflow_type="PricingWorkflow", input=json.dumps(ORDER_ID))
    builder.decide(WorkflowDefinition.of(PricingWorkflow))
    return builder.to_json() + "\n"


if __name__ == "__main__":
    FIXTURES.mkdir(exist_ok=True)
    ORDER_FIXTURE.write_text(asyncio.run(_record_order()))
    PRICING_FIXTURE.write_text(_record_pricing())
    print(f"wrote {ORDER_FIXTURE} and {PRICING_FIXTURE}")
