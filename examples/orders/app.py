"""The order workflow and its activities, registered on one registry."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from cadenza import Registry, activity, workflow
from cadenza.error import ActivityFailure

registry = Registry()

ACTIVITY_TIMEOUT = timedelta(seconds=30)


@dataclass(frozen=True)
class Order:
    order_id: str
    sku: str
    quantity: int
    amount_cents: int
    card: str


@dataclass(frozen=True)
class Receipt:
    order_id: str
    reservation_id: str
    payment_id: str
    tracking_number: str


class PaymentDeclinedError(Exception):
    """The card was refused; retrying will not help."""


@registry.activity()
async def reserve_inventory(order: Order) -> str:
    await asyncio.sleep(0.05)  # stands for a call to the inventory service
    return f"rsv-{order.order_id}-{order.sku}x{order.quantity}"


@registry.activity()
def charge_payment(order: Order) -> str:
    # A synchronous activity: the worker runs it in a thread.
    if order.card.startswith("0000"):
        raise PaymentDeclinedError(f"card ending {order.card[-4:]} declined")
    return f"pay-{order.order_id}-{order.amount_cents}"


@registry.activity()
async def release_inventory(reservation_id: str) -> None:
    await asyncio.sleep(0.01)


@registry.activity()
async def ship_order(order: Order, reservation_id: str) -> str:
    info = activity.info()
    return f"trk-{order.order_id}-{info.attempt}"


@registry.workflow()
class OrderWorkflow:
    @workflow.run
    async def run(self, order: Order) -> Receipt:
        reserve = reserve_inventory.with_options(start_to_close_timeout=ACTIVITY_TIMEOUT)
        charge = charge_payment.with_options(start_to_close_timeout=ACTIVITY_TIMEOUT)
        reservation, payment = await asyncio.gather(
            reserve.execute(order), charge.execute(order), return_exceptions=True
        )
        if isinstance(payment, BaseException):
            if isinstance(reservation, str):
                await release_inventory.with_options(
                    start_to_close_timeout=ACTIVITY_TIMEOUT
                ).execute(reservation)
            raise payment
        if isinstance(reservation, BaseException):
            raise reservation
        tracking = await workflow.execute_activity(
            "ship_order", str, order, reservation, start_to_close_timeout=ACTIVITY_TIMEOUT
        )
        return Receipt(order.order_id, reservation, payment, tracking)


__all__ = ["ActivityFailure", "Order", "OrderWorkflow", "Receipt", "registry"]
