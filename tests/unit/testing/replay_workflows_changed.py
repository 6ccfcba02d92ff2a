"""``OrderWorkflow`` after an incompatible change: its first activity was renamed.

No ``registry`` here, so ``cadenza workflow replay --module`` collects the decorated class.
"""

from __future__ import annotations

from datetime import timedelta

from cadenza import workflow

T = timedelta(seconds=30)


@workflow.defn(name="OrderWorkflow")
class OrderWorkflowRenamedActivity:
    def __init__(self) -> None:
        self.approved_by: str | None = None

    @workflow.signal(name="approve")
    def approve(self, who: str) -> None:
        self.approved_by = who

    @workflow.run
    async def run(self, order_id: str) -> str:
        reservation: str = await workflow.execute_activity(
            "reserve_stock", str, order_id, start_to_close_timeout=T
        )
        await workflow.wait_condition(lambda: self.approved_by is not None)
        await workflow.sleep(timedelta(seconds=1))
        shipped: str = await workflow.execute_activity(
            "ship", str, reservation, start_to_close_timeout=T
        )
        return f"{shipped} approved by {self.approved_by}"
