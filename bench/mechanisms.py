"""What each activity mechanism costs: the requests a retry, a heartbeat, an async completion
add to a single-activity workflow, counted on the local stack like the main bench.

Each scenario runs ``runs`` workflows; the figures are requests per workflow, and the cost is
that of the engine's DynamoDB and SQS requests at the list prices of ``bench.run.PRICE``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

from cadenza import Client, Registry, Worker, activity, workflow
from cadenza.local import LocalStack

from .meter import Meter

registry = Registry()
TIMEOUT = timedelta(seconds=30)
_FAILED: set[str] = set()
_TOKENS: list[str] = []


@registry.activity()
async def once(key: str) -> str:
    return key


@registry.activity()
async def fails_once(key: str) -> str:
    if key not in _FAILED:
        _FAILED.add(key)
        raise RuntimeError("first attempt fails")
    return key


@registry.activity()
async def completes_later(key: str) -> str:
    activity.complete_async()
    _TOKENS.append(activity.info().task_token)
    return key


@registry.workflow()
class Mechanism:
    @workflow.run
    async def run(self, name: str, key: str) -> str:
        return str(await workflow.execute_activity(
            name, str, key, start_to_close_timeout=TIMEOUT,
            retry_policy={"initial_interval": timedelta(seconds=1), "maximum_attempts": 3}))


@registry.workflow()
class Leaf:
    """No activity: the floor a child or a chained run adds."""

    @workflow.run
    async def run(self, name: str, key: str) -> str:
        return key


@registry.workflow()
class ChildOf:
    @workflow.run
    async def run(self, name: str, key: str) -> str:
        return str(await workflow.execute_child_workflow(
            "Leaf", str, name, key, execution_start_to_close_timeout=TIMEOUT))


@registry.workflow()
class Chain:
    @workflow.run
    async def run(self, name: str, key: str) -> str:
        if name == "continue":
            workflow.continue_as_new("done", key)
        return key


async def _completer(client: Client, heartbeats: int) -> None:
    """Completes the async activities by token, after ``heartbeats`` heartbeats each."""
    while True:
        while not _TOKENS:
            await asyncio.sleep(0.02)
        token = _TOKENS.pop()
        for index in range(heartbeats):
            await client.record_activity_heartbeat(token, index)
        await client.complete_activity(token, "done")


async def scenario(stack: LocalStack, meter: Meter, runs: int, name: str, *,
                   heartbeats: int = 0, workflow_type: str = "Mechanism") -> Counter[str]:
    task_list = f"mech-{uuid.uuid4().hex[:6]}"
    async with Client(target=stack.api_url) as client, Worker(client, task_list, registry):
        helper = asyncio.create_task(_completer(client, heartbeats))
        try:
            async def one() -> None:
                run = await client.start_workflow(
                    workflow_type, name, uuid.uuid4().hex, task_list=task_list,
                    execution_start_to_close_timeout=TIMEOUT)
                await client.get_workflow_result(run.workflow_id, timeout=TIMEOUT)

            await one()  # warm-up, outside the window
            await asyncio.sleep(1.0)
            before = meter.snapshot()
            for _ in range(runs):
                await one()
            await asyncio.sleep(1.5)  # the stream redrive is asynchronous
            return meter.snapshot() - before
        finally:
            helper.cancel()


SCENARIOS: tuple[tuple[str, str, int, str], ...] = (
    ("one activity, first attempt succeeds", "once", 0, "Mechanism"),
    ("one activity retried once (1 s backoff)", "fails_once", 0, "Mechanism"),
    ("one activity completed by token", "completes_later", 0, "Mechanism"),
    ("... and heartbeated 5 times by token", "completes_later", 5, "Mechanism"),
    ("no activity (the floor of a run)", "leaf", 0, "Leaf"),
    ("a parent whose child has no activity", "leaf", 0, "ChildOf"),
    ("a run that continues as new once", "continue", 0, "Chain"),
)


async def measure(stack: LocalStack, meter: Meter, runs: int,
                  cost: Callable[[Counter[str], int], float]) -> list[str]:
    """Markdown rows: scenario, requests per workflow, engine cost per million."""
    lines = ["## What each mechanism costs (requests per workflow)", "",
             "| scenario | PutItem | Query | SendMessageBatch | Receive | Delete | engine $/M |",
             "|---|---|---|---|---|---|---|"]
    for label, name, heartbeats, workflow_type in SCENARIOS:
        delta = await scenario(stack, meter, runs, name, heartbeats=heartbeats,
                               workflow_type=workflow_type)
        per = {key: value / runs for key, value in delta.items()}
        lines.append(
            f"| {label} | {per.get('dynamodb:PutItem', 0):.2f} | "
            f"{per.get('dynamodb:Query', 0) + per.get('dynamodb:GetItem', 0):.2f} | "
            f"{per.get('sqs:SendMessageBatch', 0):.2f} | {per.get('sqs:ReceiveMessage', 0):.2f} | "
            f"{per.get('sqs:DeleteMessage', 0):.2f} | {cost(delta, runs):.2f} |")
    return lines

