"""Timer queue consumer: fire each due timer once; re-delay one that surfaced early.

A timer message is checked against the run's state: a fired, cancelled or closed run's timer is
dropped, and a timer is never fired before its time (SQS delays stop at 15 minutes, so a longer
timer comes back here early and is sent again with the remaining delay).
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from cadenza.aws.metrics import PowertoolsMetrics
from cadenza.core import TimerTask, task_from_dict
from cadenza.service.factory import service_from_environment

logger = Logger()
tracer = Tracer()
metrics = PowertoolsMetrics()
service = service_from_environment(metrics=metrics)


def record_handler(record: SQSRecord) -> None:
    task = task_from_dict(json.loads(record.body)["task"])
    if not isinstance(task, TimerTask):
        logger.error("dropping a message that is not a timer: %s", record.message_id)
        return
    logger.append_keys(workflow_id=task.workflow_id, run_id=task.run_id,
                       timer_id=task.timer_id, attempt=task.attempt)
    service.fire_timer(task)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    # A processor per invocation: it keeps the batch's successes and failures in its own
    # state, and the local runtime invokes this function from several threads at once (a
    # shared one reported one batch's failures for another, and deleted a failed timer).
    processor = BatchProcessor(event_type=EventType.SQS)
    try:
        return process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    finally:
        metrics.flush()
