"""A monitoring worker as a process of its own (the one the scenario kills).

    python -m examples.monitor.worker --api URL [--identity NAME]

Polls the ``bucket-monitors`` task list for activities only (the coordinator makes the
decisions), with an S3 client for the stack behind the API. Prints ``ready`` once it polls,
then runs until stopped (Ctrl-C, SIGTERM) or killed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys

from cadenza import Client, Worker

from .app import TASK_LIST, aws_client, watcher_registry


async def serve(api: str, identity: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with Client(target=api, identity=identity) as client:
        registry = watcher_registry(await aws_client(client, "s3"))
        async with Worker(client, TASK_LIST, registry, disable_workflow_worker=True):
            print("ready", flush=True)
            await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.monitor.worker")
    parser.add_argument("--api", required=True, help="HTTP API of the stack")
    parser.add_argument("--identity", default=f"monitor-{os.getpid()}",
                        help="who this worker is in the history")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.api, args.identity))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
