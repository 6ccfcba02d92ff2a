"""The stack's functions invoked from several threads at once answer for their own batch.

Lambda gives a sandbox one event at a time; the local runtime invokes a function from several
pollers at once (four per standard queue). A batch processor shared by those invocations
reported one batch's failures in another's answer, so a failed timer could be deleted as done.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from cadenza.core.tasks import DecisionTask, task_to_dict
from cadenza.local import LocalStack

BATCHES = 8
RECORDS = 5


#: A message the timer function drops at once (not a timer): a success of its batch.
NOT_A_TIMER = json.dumps({"task": task_to_dict(DecisionTask(
    domain="default", workflow_id="w", run_id="r", workflow_type="T", task_list="tl",
    scheduled_event_id=2, attempt=0))})


def _record(message_id: str, body: str) -> dict[str, Any]:
    return {
        "messageId": message_id, "receiptHandle": f"handle-{message_id}",
        "body": body, "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:timers", "awsRegion": "us-east-1",
    }


@pytest.mark.usefixtures("frequent_thread_switches")
def test_concurrent_timer_batches_report_their_own_failures(local_stack: LocalStack) -> None:
    timer = local_stack.function("TimerFunction")

    def invoke(batch: int) -> set[str]:
        # each batch: RECORDS malformed messages (failures) and one that is dropped (a success)
        records = [_record(f"b{batch}-m{n}", "not JSON") for n in range(RECORDS)]
        records.append(_record(f"b{batch}-ok", NOT_A_TIMER))
        answer = timer.invoke({"Records": records})
        return {failure["itemIdentifier"] for failure in answer["batchItemFailures"]}

    with ThreadPoolExecutor(BATCHES) as pool:
        answers = list(pool.map(invoke, range(BATCHES)))
    assert answers == [{f"b{batch}-m{n}" for n in range(RECORDS)} for batch in range(BATCHES)]
