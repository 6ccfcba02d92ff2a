"""A worker outlives a restarted ``cadenza dev``: it finds the new stack through the API on its
own, and says so in one line per outage instead of a traceback per poll."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta

import pytest

from cadenza import Client, Worker

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
