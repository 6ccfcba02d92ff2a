"""The built-in ``__stack_trace`` query: a replayed run's suspended coroutines and their lines."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from cadenza import Registry, workflow
from cadenza.replay.stack import STACK_TRACE_QUERY
from cadenza.testing import TestWorkflowEnvironment

registry = Registry()


@registry.activity()
async def slow(name: str) -> str:
    return name


@registry.workflow()
class Waiter:
    def __init__(self) -> None:
        self.approved = False

    @workflow.signal(name="approve")
    def approve(self) -> None:
        self.approved = True

    @workflow.run
    async def run(self) -> str:
        ticker = asyncio.create_task(self.tick())
        await workflow.wait_condition(lambda: self.approved)  # waiting for approval
        ticker.cancel()
        return "approved"

    async def tick(self) -> None:
        while True:
            await workflow.sleep(timedelta(hours=1))  # the ticker's sleep


START = {"execution_start_to_close_timeout": timedelta(days=1)}


async def test_stack_trace_names_every_waiting_coroutine_and_its_line() -> None:
    async with TestWorkflowEnvironment(registry) as env:
        run = await env.client.start_workflow(Waiter, task_list=env.task_list, **START)
        await env.sleep(timedelta(minutes=1))
        before = await env.client.get_workflow_history(run.workflow_id)
        stack = await env.client.query_workflow(run.workflow_id, run.run_id, STACK_TRACE_QUERY)
        assert isinstance(stack, str)
        blocks = stack.strip().split("\n\n")
        assert len(blocks) == 2, stack  # run() and the ticker; the replayer's wrappers hidden
        assert blocks[0].startswith("coroutine 1 (Waiter.run):")
        assert "await workflow.wait_condition(lambda: self.approved)  # waiting for approval" \
            in blocks[0]
        assert "(Waiter.tick):" in blocks[1]
        assert "# the ticker's sleep" in blocks[1]
        assert __file__ in stack
        assert "asyncio" not in stack and "cadenza/replay" not in stack
        # A query: nothing written.
        assert await env.client.get_workflow_history(run.workflow_id) == before

        await env.client.signal_workflow(run.workflow_id, "", "approve")
        assert await env.client.get_workflow_result(run.workflow_id) == "approved"


async def test_stack_trace_of_a_finished_run_says_nothing_waits() -> None:
    async with TestWorkflowEnvironment(registry) as env:
        run = await env.client.start_workflow(Waiter, task_list=env.task_list, **START)
        await env.client.signal_workflow(run.workflow_id, "", "approve")
        assert await env.client.get_workflow_result(run.workflow_id) == "approved"
        stack = await env.client.query_workflow(run.workflow_id, run.run_id, STACK_TRACE_QUERY)
        assert stack == "no coroutine is waiting (the run's code has finished)\n"
