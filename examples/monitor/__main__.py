"""Run the bucket monitor end to end, killing its worker in the middle of the watch.

    python -m examples.monitor                                # embedded local stack
    python -m examples.monitor --address URL --bucket NAME    # a running stack

The scenario: this process runs the coordinator (the workflow's decision worker) and starts
monitoring worker 1 as a process of its own (:mod:`examples.monitor.worker`). A watch for an
object that does not exist yet is started; once worker 1 has heartbeated a few iterations it is
killed with SIGKILL and worker 2 is started. After the heartbeat timeout the engine retries the
activity; worker 2 takes attempt 1, resuming from the count worker 1 last reported. Then the
object is put into the bucket, and the watch returns it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from rich.console import Console

from cadenza import Client, Worker
from cadenza.cli.main import history_table
from cadenza.core import HistoryEvent
from cadenza.local import LocalStack

from .._support import Processes, on_stack
from .app import TASK_LIST, Sighting, Watch, WatchBucket, aws_client, workflows

console = Console()
#: The bucket template.yaml declares for the examples.
BUCKET_LOGICAL_ID = "ExamplesBucket"


@dataclass(frozen=True)
class Takeover:
    """What the scenario produced: the run, its result, its history, and an iteration count
    the first worker had reported before it was killed (it may have reported one more in the
    moment between that reading and the kill)."""

    workflow_id: str
    run_id: str
    result: Sighting
    history: list[HistoryEvent]
    reported_before_kill: int


class WorkerProcesses(Processes):
    """Monitoring worker processes (:mod:`examples.monitor.worker`)."""

    def __init__(self, api_url: str) -> None:
        super().__init__()
        self.api_url = api_url

    async def start_worker(self, identity: str) -> None:
        process = await self.start(identity, "examples.monitor.worker", "--api", self.api_url,
                                   "--identity", identity)
        console.print(f"{identity} is up (pid {process.pid})")


async def _pending_watch(client: Client, workflow_id: str) -> dict[str, Any] | None:
    described = await client.describe_workflow(workflow_id)
    pending = described.raw.get("pending_activities") or []
    return pending[0] if pending else None


async def _until(client: Client, workflow_id: str, what: str,
                 check: Any, seconds: float = 60) -> dict[str, Any]:
    """Poll the run's pending watch until ``check(pending)`` holds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pending = await _pending_watch(client, workflow_id)
        if pending is not None and check(pending):
            return pending
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{workflow_id}: {what} did not happen in {seconds:.0f} s")


async def run(api_url: str, bucket: str) -> Takeover:
    """The takeover scenario against the stack at ``api_url``, watching ``bucket``."""
    key = f"incoming/{uuid.uuid4().hex[:8]}.csv"
    async with (
        Client(target=api_url, identity="coordinator") as client,
        Worker(client, TASK_LIST, workflows, disable_activity_worker=True),
        WorkerProcesses(api_url) as workers,
    ):
        s3 = await aws_client(client, "s3")
        decode = client.data_converter.from_data
        await workers.start_worker("monitor-1")
        execution = await client.start_workflow(
            WatchBucket, Watch(bucket, key), task_list=TASK_LIST,
            workflow_id=f"watch-{uuid.uuid4().hex[:8]}",
            execution_start_to_close_timeout=timedelta(minutes=10),
        )
        console.rule(f"{execution.workflow_id}: waiting for s3://{bucket}/{key}")

        def counted(pending: dict[str, Any]) -> bool:
            details = pending.get("heartbeat_details")
            return bool(details) and int(decode(details, [int])[0]) >= 3

        pending = await _until(client, execution.workflow_id, "three heartbeats", counted)
        reported = int(decode(pending["heartbeat_details"], [int])[0])
        console.print(f"monitor-1 has reported iteration {reported}")
        await workers.kill("monitor-1")
        await workers.start_worker("monitor-2")
        await _until(client, execution.workflow_id, "the retry on monitor-2",
                     lambda p: p["attempt"] >= 1 and p["state"] == "STARTED")
        console.print("attempt 1 is running on monitor-2; putting the object")
        await asyncio.to_thread(s3.put_object, Bucket=bucket, Key=key, Body=b"id,amount\n1,42\n")
        result = await client.get_workflow_result(
            execution.workflow_id, execution.run_id, result_type=Sighting,
            timeout=timedelta(seconds=60),
        )
        history = await client.get_workflow_history(execution.workflow_id, execution.run_id)
    console.print(f"[green]found[/] {result.key} ({result.size} bytes) on attempt "
                  f"{result.attempt}, resumed from iteration {result.resumed_from}, "
                  f"{result.iterations} polls in all")
    console.print(history_table(history, title=execution.workflow_id))
    return Takeover(execution.workflow_id, execution.run_id, result, history, reported)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.monitor")
    parser.add_argument("--address", default=None,
                        help="HTTP API of a running stack (default: start one here)")
    parser.add_argument("--bucket", default=None,
                        help="bucket to watch (with --address: the stack's ExamplesBucketName "
                             "output)")
    args = parser.parse_args(argv)
    if args.address and not args.bucket:
        parser.error("--address needs --bucket")

    def watch(api_url: str, stack: LocalStack | None) -> Coroutine[Any, Any, Takeover]:
        bucket = args.bucket or (stack.bucket_name(BUCKET_LOGICAL_ID) if stack else "")
        console.print(f"bucket {bucket}")
        return run(api_url, bucket)

    outcome = on_stack(args.address, watch)
    return 0 if outcome.result.attempt == 1 and outcome.result.resumed_from > 0 else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
