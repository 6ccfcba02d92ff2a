"""The Cadence Python client's ``cadence.testing.TestWorkflowEnvironment`` (PyPI
``cadence-python-client``).

It runs no engine and keeps no history: ``start_workflow`` drives the workflow coroutine on the
client's deterministic event loop in a worker thread, calls activities inline and fires timers
from a heap as soon as the workflow would otherwise block; it returns once the workflow is done
or waits on something other than a timer. The result is read with ``env.get_workflow_result``
(its mock client has no ``get_workflow_result``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from importlib import metadata
from typing import Any

from .timing import NoServer

TASK_LIST = "bench"
ACTIVITY_TIMEOUT = timedelta(seconds=10)
RUN_TIMEOUT = timedelta(days=1)
NAMES = {"a": "Sequential", "b": "Parallel", "c": "Signalled"}


def _build_registry() -> Any:
    from cadence import workflow
    from cadence.worker import Registry

    registry = Registry()

    @registry.activity()
    async def work(value: int) -> int:
        return value + 1

    @registry.workflow(name="Sequential")
    class Sequential:
        @workflow.run
        async def run(self) -> int:
            total = 0
            call = work.with_options(start_to_close_timeout=ACTIVITY_TIMEOUT)
            for index in range(10):
                total += await call.execute(index)
            await workflow.sleep(timedelta(hours=1))
            return total

    @registry.workflow(name="Parallel")
    class Parallel:
        @workflow.run
        async def run(self) -> int:
            call = work.with_options(start_to_close_timeout=ACTIVITY_TIMEOUT)
            results = await asyncio.gather(*(call.execute(index) for index in range(100)))
            return sum(results)

    @registry.workflow(name="Signalled")
    class Signalled:
        def __init__(self) -> None:
            self.got = False

        @workflow.signal(name="go")
        def go(self) -> None:
            self.got = True

        @workflow.run
        async def run(self) -> int:
            await workflow.wait_condition(lambda: self.got)
            call = work.with_options(start_to_close_timeout=ACTIVITY_TIMEOUT)
            return await call.execute(41)

    return registry


class _CadenceSession(NoServer):
    def __init__(self, env: Any) -> None:
        self.env = env

    async def run(self, key: str) -> int:
        client = self.env.client
        run = await client.start_workflow(
            NAMES[key], task_list=TASK_LIST, execution_start_to_close_timeout=RUN_TIMEOUT
        )
        if key == "c":
            await client.signal_workflow(run.workflow_id, run.run_id, "go")
        return int(self.env.get_workflow_result(int, run.workflow_id, run.run_id))


class CadencePeer:
    name = "cadence"
    label = "Cadence Python client `cadence.testing.TestWorkflowEnvironment`"
    run_rule = (
        "one environment for all runs; a run is client.start_workflow -> (c: signal_workflow "
        "\"go\") -> env.get_workflow_result; no engine, no history: activities run inline, "
        "timers fire from a heap"
    )
    notes = (
        "it runs no engine and records no history (only mocks driving the workflow coroutine), "
        "so it does less work per run than any other runner here"
    )

    def unavailable(self) -> str | None:
        try:
            import cadence.testing  # noqa: F401
        except ImportError as error:
            return f"cadence-python-client is not installed ({error}); pip install -e '.[bench]'"
        return None

    def versions(self) -> dict[str, str]:
        return {"cadence-python-client": metadata.version("cadence-python-client")}

    @asynccontextmanager
    async def session(self) -> AsyncIterator[_CadenceSession]:
        from cadence.testing import TestWorkflowEnvironment

        with TestWorkflowEnvironment(_build_registry(), task_list=TASK_LIST) as env:
            yield _CadenceSession(env)


PEER = CadencePeer()
