"""The responder: reads requests from the queue and completes their activities by token.

    python -m examples.responder.responder --api URL --queue-url URL [--count N]

It needs no worker, no registry and no knowledge of the workflow: only the HTTP API (any
process, in any language, can do the same through it) and the queue. For each request it
heartbeats the activity once ("I have it"), works out the reply and completes the activity
with the answer. A request whose attempt is over (timed out and retried, or its run closed)
is dropped. Prints ``ready`` once it polls; stops after ``--count`` answers (0: never), on
Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys

from cadenza import Client
from cadenza.error import EntityNotExistsError, StaleTaskError

from .app import Answer, Request, aws_client

logger = logging.getLogger("examples.responder")


def reply_to(question: str) -> str:
    """The responder's work: here, a word count and the words in reverse order."""
    words = question.split()
    return f"{len(words)} words: {' '.join(reversed(words))}"


async def respond(api: str, queue_url: str, *, identity: str, count: int = 0) -> int:
    """Answer requests until ``count`` are answered (0: until stopped); how many were."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    answered = 0
    async with Client(target=api, identity=identity) as client:
        sqs = await aws_client(client, "sqs")
        wait = 1 if (await client.cluster_info()).get("emulated") else 20
        print("ready", flush=True)
        while not stop.is_set() and (count == 0 or answered < count):
            received = await asyncio.to_thread(
                sqs.receive_message, QueueUrl=queue_url, MaxNumberOfMessages=10,
                WaitTimeSeconds=wait,
            )
            for message in received.get("Messages", []):
                request = Request.from_json(message["Body"])
                if await _answer(client, request, identity):
                    answered += 1
                await asyncio.to_thread(sqs.delete_message, QueueUrl=queue_url,
                                        ReceiptHandle=message["ReceiptHandle"])
    return answered


async def _answer(client: Client, request: Request, identity: str) -> bool:
    """Heartbeat, work, complete. False when the attempt is no longer waiting for this."""
    try:
        if await client.record_activity_heartbeat(request.task_token, f"received by {identity}"):
            logger.warning("%s attempt %d no longer wants an answer", request.workflow_id,
                           request.attempt)
            return False
        answer = Answer(request.question.text, reply_to(request.question.text), identity)
        await client.complete_activity(request.task_token, answer)
    except (StaleTaskError, EntityNotExistsError) as error:
        logger.warning("stale request of %s dropped: %s", request.workflow_id, error)
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.responder.responder")
    parser.add_argument("--api", required=True, help="HTTP API of the stack")
    parser.add_argument("--queue-url", required=True, help="the queue requests arrive on")
    parser.add_argument("--count", type=int, default=0,
                        help="stop after this many answers (default 0: never)")
    parser.add_argument("--identity", default=f"responder-{os.getpid()}")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(respond(args.api, args.queue_url, identity=args.identity, count=args.count))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
