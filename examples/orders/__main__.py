"""Run the order example end to end.

    python -m examples.orders                  # embedded local stack, started and stopped here
    python -m examples.orders --address URL    # a running stack (cadenza dev, or API Gateway)
    python -m examples.orders --lambda         # no worker here: the stack's Lambda function works

A worker polls the "orders" task list, two orders are started through the client (one paid,
one declined), and their results and histories are printed. With ``--lambda`` no worker is
started: the stack's OrdersWorkerFunction (template.yaml), fed by the "orders" queues through
its SQS event sources, runs the tasks, as in AWS. Without it, that function still consumes the
same queues alongside the polling worker: either one may take a task, and both are correct.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import uuid
from datetime import timedelta

from rich.console import Console

from cadenza import Client, Worker
from cadenza.cli.main import history_table
from cadenza.error import WorkflowFailure

from .._support import on_stack
from .app import Order, OrderWorkflow, Receipt, registry

console = Console()


async def run_orders(address: str, *, lambda_mode: bool = False) -> int:
    async with contextlib.AsyncExitStack() as resources:
        client = await resources.enter_async_context(Client(domain="default", target=address))
        if not lambda_mode:
            await resources.enter_async_context(Worker(client, "orders", registry))
        return await _order_two(client)


async def _order_two(client: Client) -> int:
    orders = [
        Order(f"o-{uuid.uuid4().hex[:6]}", "book-42", 2, 4_200, "4242424242424242"),
        Order(f"o-{uuid.uuid4().hex[:6]}", "lamp-7", 1, 9_900, "0000000000000002"),
    ]
    failures = 0
    for order in orders:
        execution = await client.start_workflow(
            OrderWorkflow, order, task_list="orders",
            execution_start_to_close_timeout=timedelta(minutes=5),
            workflow_id=f"order-{order.order_id}",
        )
        console.rule(f"order {order.order_id} (run {execution.run_id})")
        try:
            receipt = await client.get_workflow_result(
                execution.workflow_id, execution.run_id, result_type=Receipt,
                timeout=timedelta(seconds=60),
            )
            console.print(f"[green]completed[/]: {receipt}")
        except WorkflowFailure as failure:
            failures += 1
            console.print(f"[yellow]failed as expected[/]: {failure.reason}")
        events = await client.get_workflow_history(execution.workflow_id, execution.run_id)
        console.print(history_table(events, title=execution.workflow_id))
    return 0 if failures == 1 else 1


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.orders")
    parser.add_argument("--address", default=None,
                        help="HTTP API of a running stack (default: start one here)")
    parser.add_argument("--lambda", dest="lambda_mode", action="store_true",
                        help="start no worker: the stack's OrdersWorkerFunction runs the tasks")
    args = parser.parse_args()
    return on_stack(args.address,
                    lambda api_url, _: run_orders(api_url, lambda_mode=args.lambda_mode))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
