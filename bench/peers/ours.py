"""Cadenza's own ``cadenza.testing.TestWorkflowEnvironment``: the real engine and replay code
behind in-memory adapters, virtual time (see the Testing section of the API contract).

A run: ``env.client.start_workflow`` -> (for c: ``signal_workflow(..., "go")``) ->
``env.client.get_workflow_result``, in one environment created once and reused for every run.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from importlib import metadata
from typing import Any

from cadenza import Registry, workflow

from .timing import NoServer

TASK_LIST = "bench"
ACTIVITY_TIMEOUT = timedelta(seconds=10)
RUN_TIMEOUT = timedelta(days=1)

registry = Registry()


@registry.activity()
async def work(value: int) -> int:
    return value + 1


@registry.workflow()
class Sequential:
    @workflow.run
    async def run(self) -> int:
        total = 0
        for index in range(10):
            total += await work.with_options(start_to_close_timeout=ACTIVITY_TIMEOUT).execute(index)
        await workflow.sleep(timedelta(hours=1))
        return total


@registry.workflow()
class Parallel:
    @workflow.run
    async def run(self) -> int:
        call = work.with_options(start_to_close_timeout=ACTIVITY_TIMEOUT)
        results = await asyncio.gather(*(call.execute(index) for index in range(100)))
        return sum(results)


@registry.workflow()
class Signalled:
    def __init__(self) -> None:
        self.got = False

    @workflow.signal(name="go")
    def go(self) -> None:
        self.got = True

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.got)
        return await work.with_options(start_to_close_timeout=ACTIVITY_TIMEOUT).execute(41)


WORKFLOW_CLASSES: dict[str, type] = {"a": Sequential, "b": Parallel, "c": Signalled}


def _import_env() -> Any:
    from cadenza.testing import TestWorkflowEnvironment

    return TestWorkflowEnvironment


class _OursSession(NoServer):
    def __init__(self, env: Any) -> None:
        self.env = env

    async def run(self, key: str) -> int:
        client = self.env.client
        run = await client.start_workflow(
            WORKFLOW_CLASSES[key],
            task_list=TASK_LIST,
            execution_start_to_close_timeout=RUN_TIMEOUT,
        )
        if key == "c":
            await client.signal_workflow(run.workflow_id, run.run_id, "go")
        return int(await client.get_workflow_result(run.workflow_id, run.run_id))


class OursPeer:
    name = "ours"
    label = "Cadenza `cadenza.testing.TestWorkflowEnvironment`"
    run_rule = (
        "one environment (`async with TestWorkflowEnvironment(registry, task_list=\"bench\")`) "
        "for all runs; a run is start_workflow -> (c: signal_workflow \"go\") -> "
        "client.get_workflow_result, virtual time skipping the one-hour sleep"
    )
    notes = "the real engine and replay code behind in-memory adapters, histories kept"

    def unavailable(self) -> str | None:
        try:
            _import_env()
        except ImportError as error:
            return f"cadenza.testing.TestWorkflowEnvironment cannot be imported yet ({error})"
        return None

    def versions(self) -> dict[str, str]:
        return {"cadenza": metadata.version("cadenza")}

    @asynccontextmanager
    async def session(self) -> AsyncIterator[_OursSession]:
        environment = _import_env()
        async with environment(registry, task_list=TASK_LIST) as env:
            yield _OursSession(env)


PEER = OursPeer()
