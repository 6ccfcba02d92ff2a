"""History stream consumer: redrive each commit's tasks and keep visibility records.

Every new history batch arrives here; its outbox tasks are sent again (SQS FIFO deduplication
drops the copy when the direct send already happened, and delivers it when the process that
committed died before sending), and runs that start or close are recorded for listing.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecordEventName,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from cadenza.aws.store import decode_stream_image
from cadenza.service.factory import service_from_environment

logger = Logger()
tracer = Tracer()
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
service = service_from_environment()


def record_handler(record: Any) -> None:
    if record.event_name is not DynamoDBRecordEventName.INSERT:
        return
    image = record.raw_event["dynamodb"]["NewImage"]
    service.on_committed(decode_stream_image(image))


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
