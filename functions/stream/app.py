"""History stream consumer: redrive what may not have been delivered, keep visibility records.

Every new history batch arrives here, a stream read at a time. The tasks of each commit that no
later commit in the same read shows consumed are sent again (SQS FIFO deduplication drops the
copy when the direct send already happened, and delivers it when the process that committed
died before sending), together in batched sends; runs that start, upsert or close are recorded
for listing. A failure fails the whole read, which Lambda retries (bisecting it): every send and
write here is idempotent, and a smaller read only sends more.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecordEventName,
    DynamoDBStreamEvent,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from cadenza.aws.metrics import PowertoolsMetrics
from cadenza.aws.store import decode_stream_image
from cadenza.service.factory import service_from_environment
from cadenza.service.metrics import REDRIVES

logger = Logger()
tracer = Tracer()
metrics = PowertoolsMetrics()
# Every task this function sends is a redrive (a copy of a committed task).
service = service_from_environment(metrics=metrics, sent_metric=REDRIVES)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> Any:
    batches = [
        decode_stream_image(record.raw_event["dynamodb"]["NewImage"])
        for record in DynamoDBStreamEvent(event).records
        if record.event_name is DynamoDBRecordEventName.INSERT
    ]
    runs = {(b.state.workflow_id, b.state.run_id) for b in batches}
    logger.append_keys(commits=len(batches), runs=len(runs))
    if len(runs) == 1:
        ((workflow_id, run_id),) = runs
        logger.append_keys(workflow_id=workflow_id, run_id=run_id)
    try:
        service.on_committed_all(batches)
    finally:
        metrics.flush()
    return {"batchItemFailures": []}
