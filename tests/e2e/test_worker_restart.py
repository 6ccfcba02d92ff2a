"""A worker outlives a restarted ``cadenza dev``: it finds the new stack through the API on its
own, and says so in one line per outage instead of a traceback per poll (or per task in hand)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from datetime import timedelta

import pytest

from cadenza import Client, Registry, Worker, workflow
from cadenza import _tasks as tasks_module

from .test_dev_command import dev_process, free_port, stop, wait_until_serving
from .workflows import reg

OUTAGE = "cannot poll its queues"
BACK = "reconnected after"


async def run_one(client: Client, task_list: str, message: str) -> str:
    execution = await client.start_workflow(
        "SingleActivity", message, task_list=task_list,
        execution_start_to_close_timeout=timedelta(seconds=60))
    return str(await client.get_workflow_result(execution.workflow_id, execution.run_id,
                                                timeout=60))


async def test_a_worker_survives_a_restarted_stack(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="cadenza.worker")
    port = free_port()
    api_url = f"http://127.0.0.1:{port}"
    task_list = "restarted-stack"
    async with Client(domain="default", target=api_url) as client:
        with dev_process("--port", str(port)) as first:
            await asyncio.to_thread(wait_until_serving, first, api_url)
            worker = Worker(client, task_list, reg, poll_wait_seconds=1)
            async with worker:
                assert await run_one(client, task_list, "before") == "before"

                # The stack goes away (its emulator with it: every queue is gone) ...
                await asyncio.to_thread(stop, first, signal.SIGINT)
                # ... and the pollers notice it before the new one comes up.
                for _ in range(300):
                    if any(OUTAGE in r.getMessage() for r in caplog.records):
                        break
                    await asyncio.sleep(0.1)
                else:
                    pytest.fail("the worker never noticed that the stack stopped")

                with dev_process("--port", str(port)) as second:
                    await asyncio.to_thread(wait_until_serving, second, api_url)
                    # Nobody touches the worker: the run started on the new stack completes.
                    assert await run_one(client, task_list, "after") == "after"
                    await asyncio.to_thread(stop, second, signal.SIGINT)
                    # (the worker sees this second outage too; it is stopped below)

    worker_records = [r for r in caplog.records if r.name == "cadenza.worker"]
    outages = [r for r in worker_records if OUTAGE in r.getMessage()]
    back = [r for r in worker_records if BACK in r.getMessage()]
    # One line for the restart (and perhaps one for the final stop), never one per poll.
    assert 1 <= len(outages) <= 2, [r.getMessage() for r in outages]
    assert outages[0].levelno == logging.WARNING
    assert "\n" not in outages[0].getMessage()
    assert len(back) == 1, [r.getMessage() for r in back]
    assert all(r.exc_info is None for r in worker_records if r.levelno >= logging.WARNING), [
        r.getMessage() for r in worker_records if r.exc_info]


# --- a task in hand when the stack stops ------------------------------------------------------

held = Registry()


class Gate:
    """The activity in hand says it runs, and ends when the test releases it (fresh events
    for each test: an event belongs to the loop that first waits on it)."""

    def __init__(self) -> None:
        self.running = asyncio.Event()
        self.release = asyncio.Event()


gate = Gate()


@held.activity(name="HeldActivity")
async def held_activity(message: str) -> str:
    gate.running.set()
    await gate.release.wait()
    return message


@held.workflow(name="HeldWorkflow")
class HeldWorkflow:
    @workflow.run
    async def run(self, message: str) -> str:
        return await held_activity.with_options(
            schedule_to_close_timeout=timedelta(seconds=120)).execute(message)


async def wait_for_line(caplog: pytest.LogCaptureFixture, text: str, what: str) -> None:
    for _ in range(600):
        if any(text in r.getMessage() for r in caplog.records if r.name == "cadenza.worker"):
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"the worker never logged that {what}")


@pytest.mark.parametrize("eager", [True, False], ids=["eager", "from-its-queue"])
async def test_a_task_in_hand_when_the_stack_stops_is_counted_into_the_outage_line(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, eager: bool,
) -> None:
    # The completion of the task in hand gives up after one round of the client's retries
    # (a few seconds) instead of the worker's fourteen (about a minute).
    monkeypatch.setattr(tasks_module, "ANSWER_ATTEMPTS", 1)
    monkeypatch.setattr(sys.modules[__name__], "gate", Gate())
    caplog.set_level(logging.DEBUG, logger="cadenza.worker")
    port = free_port()
    api_url = f"http://127.0.0.1:{port}"
    task_list = "stack-stops-under-a-task"
    async with Client(domain="default", target=api_url) as client:
        with dev_process("--port", str(port)) as first:
            await asyncio.to_thread(wait_until_serving, first, api_url)
            async with Worker(client, task_list, held, poll_wait_seconds=1,
                              disable_eager_execution=not eager):
                await client.start_workflow(
                    "HeldWorkflow", "held", task_list=task_list,
                    execution_start_to_close_timeout=timedelta(seconds=120))
                await asyncio.wait_for(gate.running.wait(), 60)

                await asyncio.to_thread(stop, first, signal.SIGINT)
                await wait_for_line(caplog, OUTAGE, "the stack stopped")
                gate.release.set()  # the activity ends; its result cannot reach the API
                await wait_for_line(caplog, "not finished", "the task could not finish")

                with dev_process("--port", str(port)) as second:
                    await asyncio.to_thread(wait_until_serving, second, api_url)
                    await wait_for_line(caplog, BACK, "it reconnected")
                    await asyncio.to_thread(stop, second, signal.SIGINT)

    records = [r for r in caplog.records if r.name == "cadenza.worker"]
    loud = [r for r in records if r.levelno >= logging.WARNING]
    assert all(r.exc_info is None for r in records), [r.getMessage() for r in records
                                                      if r.exc_info]
    # The stop's line (and perhaps the second stop's); nothing for the task in hand ...
    assert 1 <= len(loud) <= 2 and all(OUTAGE in r.getMessage() for r in loud), [
        r.getMessage() for r in loud]
    # ... which the end of the outage counts, in its one line.
    back = [r.getMessage() for r in records if BACK in r.getMessage()]
    assert len(back) == 1 and "1 task in hand could not be finished" in back[0], back
