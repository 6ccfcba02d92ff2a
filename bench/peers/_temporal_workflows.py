"""The three workflows for Temporal's Python SDK.

Kept in a module of their own that imports nothing but ``temporalio`` and the standard library,
because Temporal's workflow sandbox re-imports the module that defines a workflow for every run.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity, workflow

ACTIVITY_TIMEOUT = timedelta(seconds=10)


@activity.defn
async def work(value: int) -> int:
    return value + 1


@workflow.defn
class Sequential:
    @workflow.run
    async def run(self) -> int:
        total = 0
        for index in range(10):
            total += await workflow.execute_activity(
                work, index, start_to_close_timeout=ACTIVITY_TIMEOUT
            )
        await asyncio.sleep(timedelta(hours=1).total_seconds())
        return total


@workflow.defn
class Parallel:
    @workflow.run
    async def run(self) -> int:
        results = await asyncio.gather(
            *(
                workflow.execute_activity(work, index, start_to_close_timeout=ACTIVITY_TIMEOUT)
                for index in range(100)
            )
        )
        return sum(results)


@workflow.defn
class Signalled:
    def __init__(self) -> None:
        self.got = False

    @workflow.signal(name="go")
    def go(self) -> None:
        self.got = True

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.got)
        return await workflow.execute_activity(work, 41, start_to_close_timeout=ACTIVITY_TIMEOUT)


WORKFLOWS = {"a": Sequential, "b": Parallel, "c": Signalled}
