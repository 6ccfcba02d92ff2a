"""Lambda mode: a registry as the handler of SQS task-list events.

    from cadenza.lambda_worker import lambda_handler
    handler = lambda_handler(registry)

Each record is one task, processed by the same code as a polling worker; records that must be
retried are reported as batch item failures (powertools), so SQS redelivers only those.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from ._tasks import WorkerBackend, process_activity, process_decision
from .core import TaskKind
from .data_converter import DataConverter, DefaultDataConverter

__all__ = ["TaskRetryLaterError", "lambda_handler"]

logger = Logger(service="cadenza-worker")


class TaskRetryLaterError(Exception):
    """The task must come back later (reported as a batch item failure)."""


def lambda_handler(
    registry: Any,
    *,
    backend: WorkerBackend | None = None,
    domain: str = "default",
    converter: DataConverter | None = None,
) -> Callable[[dict[str, Any], Any], Any]:
    codec = converter or DefaultDataConverter()
    state: dict[str, WorkerBackend] = {}

    def engine() -> WorkerBackend:
        if "backend" not in state:
            if backend is not None:
                state["backend"] = backend
            else:
                from .service import service_from_environment
                from .service.backend import ServiceBackend

                state["backend"] = ServiceBackend(service_from_environment(), domain=domain)
        return state["backend"]

    def record_handler(record: SQSRecord) -> None:
        message = _task_message(record.body)
        if message is None:
            # No retry can make it a task: redelivering it would only cost invocations until
            # the message expires. Logged with its id, then dropped (reported as processed).
            logger.error("dropping SQS message %s: not a Cadenza task (%.200r)",
                         record.message_id, record.body)
            return
        kind = message["task"]["kind"]
        receive_count = int(record.attributes.approximate_receive_count or 1)
        if kind == "decision":
            outcome = asyncio.run(process_decision(
                engine(), registry, message, converter=codec, receive_count=receive_count,
            ))
        else:
            outcome = asyncio.run(process_activity(engine(), registry, message, converter=codec))
        if not outcome.done:
            raise TaskRetryLaterError(outcome.note or "retry later")

    def handler(event: dict[str, Any], context: Any) -> Any:
        processor = SqsFifoPartialProcessor(skip_group_on_error=True)
        # A batch whose every record must come back later is answered like a partial one:
        # by default powertools raises instead, which fails the invocation (an error for
        # Lambda's metrics and the event source mapping's backoff) for an expected outcome.
        processor.raise_on_entire_batch_failure = False
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )

    return handler


def _task_message(body: str) -> dict[str, Any] | None:
    """The task message a record carries; None for a body that is not one."""
    try:
        message = json.loads(body)
    except ValueError:
        return None
    if not isinstance(message, dict) or not isinstance(message.get("task_token"), str):
        return None
    task = message.get("task")
    if not isinstance(task, dict) or task.get("kind") not in set(TaskKind):
        return None
    return message
