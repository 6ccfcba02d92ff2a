"""Workflows the browser tests (and docs/ui.png) show: every kind of bar on the timeline."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from cadenza import Registry, RetryPolicy, activity, workflow

reg = Registry()
QUICK = timedelta(seconds=20)
_attempts: dict[str, int] = {}


@reg.activity()
async def reserve_stock(order: str) -> str:
    await asyncio.sleep(0.3)
    return f"reserved {order}"


@reg.activity()
async def charge_card(order: str) -> str:
    """Fails its first attempt (the timeline shows the retry), then succeeds."""
    info = activity.info()
    _attempts[info.workflow_id] = _attempts.get(info.workflow_id, 0) + 1
    await asyncio.sleep(0.2)
    if info.attempt == 0:
        raise RuntimeError("card network timed out")
    return f"charged {order}"


@reg.activity()
async def ship(order: str) -> str:
    activity.heartbeat("packing")
    await asyncio.sleep(0.4)
    return f"shipped {order}"


@reg.workflow()
class Invoice:
    @workflow.run
    async def run(self, order: str) -> str:
        await workflow.sleep(timedelta(milliseconds=200))
        return f"invoice for {order}"


@reg.workflow()
class OrderFlow:
    """Reserve and charge in parallel, wait for approval, a pause, a child, then ship."""

    def __init__(self) -> None:
        self.approved_by: str | None = None
        self.stage = "starting"

    @workflow.signal(name="approve")
    def approve(self, who: str) -> None:
        self.approved_by = who

    @workflow.query(name="stage")
    def current_stage(self) -> str:
        return self.stage

    @workflow.run
    async def run(self, order: str) -> dict[str, str]:
        self.stage = "reserving"
        options = {"start_to_close_timeout": QUICK,
                   "retry_policy": RetryPolicy(initial_interval=timedelta(milliseconds=300),
                                               maximum_attempts=3)}
        reserved, charged = await asyncio.gather(
            reserve_stock.with_options(**options).execute(order),
            charge_card.with_options(**options).execute(order),
        )
        self.stage = "awaiting approval"
        await workflow.wait_condition(lambda: self.approved_by is not None)
        workflow.side_effect(lambda: "label-42", str)
        self.stage = "cooling off"
        await workflow.sleep(timedelta(seconds=1))
        invoice = await workflow.execute_child_workflow(
            "Invoice", str, order, workflow_id=f"invoice-{order}",
            execution_start_to_close_timeout=timedelta(minutes=1))
        self.stage = "shipping"
        shipped = await ship.with_options(start_to_close_timeout=QUICK,
                                          heartbeat_timeout=QUICK).execute(order)
        self.stage = "done"
        return {"reserved": reserved, "charged": charged, "approved_by": str(self.approved_by),
                "invoice": invoice, "shipped": shipped}


@reg.workflow()
class Waiting:
    """Waits for a signal forever (until terminated): an open run to signal and terminate."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    @workflow.signal(name="note")
    def note(self, text: str) -> None:
        self.messages.append(text)

    @workflow.query(name="messages")
    def current_messages(self) -> list[str]:
        return self.messages

    @workflow.run
    async def run(self, label: str) -> list[str]:
        await workflow.wait_condition(lambda: "stop" in self.messages)
        return self.messages


@reg.activity()
async def dawdle(steps: int) -> int:
    """Heartbeats its progress until done or cancelled (a pending activity to look at)."""
    for step in range(steps):
        activity.heartbeat({"step": step})
        if activity.is_cancelled():
            break
        await asyncio.sleep(0.25)
    return steps


@reg.workflow()
class Dawdling:
    @workflow.run
    async def run(self, steps: int) -> int:
        return await dawdle.with_options(start_to_close_timeout=timedelta(minutes=2),
                                         heartbeat_timeout=timedelta(seconds=2)).execute(steps)


@reg.workflow()
class Chain:
    """Continues as new ``links`` times: a chain of runs of one workflow id."""

    @workflow.run
    async def run(self, links: int) -> str:
        if links > 0:
            workflow.continue_as_new(links - 1)
        return "end of the chain"


@reg.workflow()
class ManyMarkers:
    """Records ``count`` side effects in one decision: a timeline with many rows."""

    @workflow.run
    async def run(self, count: int) -> int:
        for n in range(count):
            workflow.side_effect(lambda n=n: n, int)
        return count
