"""An activity worker in a process of its own, run until it is killed.

    python -m tests.e2e.worker_process API_URL TASK_LIST IDENTITY

Prints "ready" once it polls. The tests kill it with SIGKILL to play a worker that dies
mid-activity (no clean-up, no answer, its SQS message left in flight).
"""

from __future__ import annotations

import asyncio
import sys

from cadenza import Client, Worker

from .activity_workflows import reg


async def main(api_url: str, task_list: str, identity: str) -> None:
    async with Client(target=api_url) as client, Worker(
        client, task_list, reg, identity=identity, disable_workflow_worker=True
    ):
        print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
