"""Run the host-routed file processing end to end, with a host that dies mid-work.

    python -m examples.hosts                  # embedded local stack, started and stopped here
    python -m examples.hosts --address URL    # a running stack (cadenza dev, or API Gateway)

The scenario: this process runs the coordinator (the workflow's decision worker) and starts
host ``a`` as a process of its own (:mod:`examples.hosts.host`), slow to process files. One
file is submitted; host ``a`` downloads it and starts processing. Host ``b`` comes up, and host
``a`` is killed with SIGKILL, as a machine that loses power: no clean-up, no answer. Its
processing task times out (no heartbeat), the workflow starts over, host ``b`` (now the only
one polling the shared list) downloads, processes and uploads the file. The result, the output
file and the history (the HEARTBEAT timeout, then the second download) are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from rich.console import Console

from cadenza import Client, Worker
from cadenza.cli.main import history_table
from cadenza.core import HistoryEvent

from .._support import Processes, on_stack
from .app import WORKFLOWS, FileJob, Processed, ProcessFile, host_task_list, workflows

console = Console()

SOURCE_TEXT = "quarterly report\nrevenue: up\ncosts: down\n"


@dataclass(frozen=True)
class Failover:
    """What the scenario produced: the run, its result and its history."""

    workflow_id: str
    run_id: str
    result: Processed
    history: list[HistoryEvent]


class HostProcesses(Processes):
    """Host processes started by this scenario (:mod:`examples.hosts.host`)."""

    def __init__(self, api_url: str) -> None:
        super().__init__()
        self.api_url = api_url

    async def start_host(self, name: str, root: Path, *, work_seconds: float = 0.0) -> None:
        """Start host ``name`` and wait until it polls its task lists."""
        process = await self.start(
            f"host {name}", "examples.hosts.host", "--api", self.api_url, "--name", name,
            "--root", str(root), "--work-seconds", str(work_seconds))
        console.print(f"host {name} is up, polling {host_task_list(name)} (pid {process.pid})")


async def _until_processing(client: Client, workflow_id: str, task_list: str) -> None:
    """Wait until the run's process_file task is running on ``task_list``."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        described = await client.describe_workflow(workflow_id)
        for pending in described.raw.get("pending_activities") or []:
            if (pending["activity_type"], pending["task_list"], pending["state"]) == (
                    "process_file", task_list, "STARTED"):
                return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{workflow_id} never started processing on {task_list}")


async def run(api_url: str, *, workdir: str | Path | None = None,
              host_timeout_seconds: int = 3) -> Failover:
    """The failover scenario against the stack at ``api_url``; files go under ``workdir``
    (a temporary directory by default)."""
    with contextlib.ExitStack() as cleanup:
        if workdir is None:
            workdir = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="hosts-"))
        root = Path(workdir)
        source = root / "remote" / "report.txt"
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text(SOURCE_TEXT, encoding="utf-8")
        job = FileJob(source=str(source), output_dir=str(root / "results"),
                      host_timeout_seconds=host_timeout_seconds)
        async with (
            Client(target=api_url, identity="coordinator") as client,
            Worker(client, WORKFLOWS, workflows, disable_activity_worker=True),
            HostProcesses(api_url) as hosts,
        ):
            await hosts.start_host("a", root / "a", work_seconds=600)
            execution = await client.start_workflow(
                ProcessFile, job, task_list=WORKFLOWS,
                workflow_id=f"file-{uuid.uuid4().hex[:8]}",
                execution_start_to_close_timeout=timedelta(minutes=5),
            )
            console.rule(f"{execution.workflow_id} (run {execution.run_id})")
            await _until_processing(client, execution.workflow_id, host_task_list("a"))
            console.print("host a downloaded the file and is processing it")
            await hosts.start_host("b", root / "b")
            await hosts.kill("host a")
            result = await client.get_workflow_result(
                execution.workflow_id, execution.run_id, result_type=Processed,
                timeout=timedelta(seconds=60),
            )
            history = await client.get_workflow_history(execution.workflow_id, execution.run_id)
        console.print(f"[green]completed[/] by host {result.host} after {result.tries} tries "
                      f"(earlier: {', '.join(result.earlier_failures) or 'none'})")
        console.print(f"{result.output}: {json.dumps(Path(result.output).read_text())}")
        console.print(history_table(history, title=execution.workflow_id))
        return Failover(execution.workflow_id, execution.run_id, result, history)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.hosts")
    parser.add_argument("--address", default=None,
                        help="HTTP API of a running stack (default: start one here)")
    args = parser.parse_args(argv)
    outcome = on_stack(args.address, lambda api_url, _: run(api_url))
    return 0 if outcome.result.host == "b" else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
