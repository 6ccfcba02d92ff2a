"""One worker host of the file-processing example, as a process of its own.

    python -m examples.hosts.host --api URL --name a --root /tmp/hosts/a [--work-seconds 30]

It polls two task lists for activities: the shared downloads list and its own ``host-<name>``
list, each with its own :class:`~cadenza.Worker` (a worker serves one task list). Decisions
are not its business (the coordinator runs them), so a host can die at any moment without
holding up a workflow task. Prints ``ready host-<name>`` once both workers poll, then runs
until it is stopped (Ctrl-C, SIGTERM) or killed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from cadenza import Client, Worker

from .app import DOWNLOADS, FileHost, host_registry


async def serve(api: str, host: FileHost) -> None:
    """Poll the shared and the host's own task list until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    registry = host_registry(host)
    identity = f"host-{host.name}"
    async with (
        Client(target=api, identity=identity) as client,
        Worker(client, DOWNLOADS, registry, identity=identity, disable_workflow_worker=True),
        Worker(client, host.task_list, registry, identity=identity,
               disable_workflow_worker=True),
    ):
        print(f"ready {host.task_list}", flush=True)
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.hosts.host")
    parser.add_argument("--api", required=True, help="HTTP API of the stack")
    parser.add_argument("--name", required=True, help="host name (its task list: host-NAME)")
    parser.add_argument("--root", required=True, help="the host's scratch directory")
    parser.add_argument("--work-seconds", type=float, default=0.0,
                        help="how long processing a file takes (default: no time)")
    args = parser.parse_args(argv)
    host = FileHost(args.name, args.root, work_seconds=args.work_seconds)
    asyncio.run(serve(args.api, host))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
