"""Lambda mode on the local stack: template.yaml's OrdersWorkerFunction runs the order example.

No polling worker here: the local runtime feeds the function from the "orders" task list's FIFO
queues through its SQS event sources, exactly as Lambda's event source mappings would, and
``cadenza.lambda_worker`` completes the tasks against the engine in-process (identity
"lambda"). The other end-to-end tests use task lists of their own, so nothing else takes these
tasks.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from examples.orders.app import Order, OrderWorkflow, Receipt

from cadenza import Client
from cadenza.error import WorkflowExecutionFailedError
from cadenza.local import LocalStack

START = {"task_list": "orders", "execution_start_to_close_timeout": timedelta(seconds=60)}
WAIT = timedelta(seconds=30)
STARTED = {"DecisionTaskStarted", "ActivityTaskStarted"}


def _order(card: str) -> Order:
    return Order(f"o-{uuid.uuid4().hex[:8]}", "book-42", 2, 4_200, card)


async def test_order_completes_on_the_stacks_lambda_worker(
    client: Client, local_stack: LocalStack
) -> None:
    function = local_stack.function("OrdersWorkerFunction")
    invocations = function.invocations
    order = _order("4242424242424242")
    execution = await client.start_workflow(
        OrderWorkflow, order, workflow_id=f"lambda-{order.order_id}", **START)
    receipt = await client.get_workflow_result(
        execution.workflow_id, execution.run_id, result_type=Receipt, timeout=WAIT)
    assert receipt == Receipt(
        order.order_id, f"rsv-{order.order_id}-book-42x2", f"pay-{order.order_id}-4200",
        f"trk-{order.order_id}-0")
    events = await client.get_workflow_history(execution.workflow_id, execution.run_id)
    started = [e for e in events if e.event_type in STARTED]
    assert started and {e.attributes["identity"] for e in started} == {"lambda"}
    scheduled = [e.attributes["activity_type"] for e in events
                 if e.event_type == "ActivityTaskScheduled"]
    assert sorted(scheduled) == ["charge_payment", "reserve_inventory", "ship_order"]
    assert function.invocations > invocations


async def test_declined_card_fails_the_workflow_after_compensating(client: Client) -> None:
    order = _order("0000000000000002")
    execution = await client.start_workflow(
        OrderWorkflow, order, workflow_id=f"lambda-{order.order_id}", **START)
    with pytest.raises(WorkflowExecutionFailedError) as failure:
        await client.get_workflow_result(
            execution.workflow_id, execution.run_id, result_type=Receipt, timeout=WAIT)
    assert "declined" in str(failure.value.details or failure.value)
    events = await client.get_workflow_history(execution.workflow_id, execution.run_id)
    scheduled = [e.attributes["activity_type"] for e in events
                 if e.event_type == "ActivityTaskScheduled"]
    assert "release_inventory" in scheduled  # the reservation was released
    assert events[-1].event_type == "WorkflowExecutionFailed"
    assert {e.attributes["identity"] for e in events if e.event_type in STARTED} == {"lambda"}
