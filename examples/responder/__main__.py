"""Run the async-completion example end to end.

    python -m examples.responder                  # embedded local stack
    python -m examples.responder --address URL    # a running stack

The scenario: this process creates a standard SQS queue for the requests (deleted at the
end), starts the responder as a process of its own (:mod:`examples.responder.responder`) and
runs a worker for the workflow and the forwarding activity. One question is asked; the
activity forwards it with its task token and returns; the responder heartbeats it, answers,
and completes it by token. The answer and the history are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from rich.console import Console

from cadenza import Client, Registry, Worker
from cadenza.cli.main import history_table
from cadenza.core import HistoryEvent

from .._support import REPO_ROOT, on_stack
from .app import TASK_LIST, Answer, AskResponder, Question, aws_client, forwarder_registry
from .app import workflows as workflow_registry

console = Console()

QUESTION = "what does the responder make of this sentence"


@dataclass(frozen=True)
class Answered:
    """What the scenario produced: the run, the answer it returned, its history."""

    workflow_id: str
    run_id: str
    answer: Answer
    history: list[HistoryEvent]


async def run(api_url: str, question: str = QUESTION) -> Answered:
    """Ask ``question`` through the stack at ``api_url`` and a responder process."""
    async with Client(target=api_url, identity="asker") as client:
        sqs = await aws_client(client, "sqs")
        queue_url = (await asyncio.to_thread(
            sqs.create_queue, QueueName=f"cadenza-responder-{uuid.uuid4().hex[:8]}",
        ))["QueueUrl"]
        responder = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "examples.responder.responder", "--api", api_url,
            "--queue-url", queue_url, "--count", "1", cwd=REPO_ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert responder.stdout is not None
            line = await asyncio.wait_for(responder.stdout.readline(), timeout=60)
            if line.strip() != b"ready":
                raise RuntimeError(f"the responder did not start (exit {await responder.wait()})")
            console.print(f"responder is up (pid {responder.pid}), reading {queue_url}")
            registry = Registry.of(workflow_registry, forwarder_registry(sqs, queue_url))
            async with Worker(client, TASK_LIST, registry):
                execution = await client.start_workflow(
                    AskResponder, Question(question), task_list=TASK_LIST,
                    workflow_id=f"ask-{uuid.uuid4().hex[:8]}",
                    execution_start_to_close_timeout=timedelta(minutes=10),
                )
                console.rule(f"{execution.workflow_id} (run {execution.run_id})")
                answer = await client.get_workflow_result(
                    execution.workflow_id, execution.run_id, result_type=Answer,
                    timeout=timedelta(seconds=60),
                )
            history = await client.get_workflow_history(execution.workflow_id, execution.run_id)
            await asyncio.wait_for(responder.wait(), timeout=30)  # it stops after one answer
        finally:
            if responder.returncode is None:
                responder.kill()
                await responder.wait()
            with contextlib.suppress(Exception):
                await asyncio.to_thread(sqs.delete_queue, QueueUrl=queue_url)
    console.print(f"[green]answered[/] by {answer.responder}: {answer.reply}")
    console.print(history_table(history, title=execution.workflow_id))
    return Answered(execution.workflow_id, execution.run_id, answer, history)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.responder")
    parser.add_argument("--address", default=None,
                        help="HTTP API of a running stack (default: start one here)")
    args = parser.parse_args(argv)
    outcome = on_stack(args.address, lambda api_url, _: run(api_url))
    return 0 if outcome.answer.responder.startswith("responder") else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
