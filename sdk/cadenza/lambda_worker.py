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
        message = json.loads(record.body)
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
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )

    return handler
