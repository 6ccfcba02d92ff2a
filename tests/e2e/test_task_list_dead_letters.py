"""Every task-list queue has the stack's dead-letter queue, whoever creates it first: the
service when it sends, or a polling worker when it starts (it learns the dead-letter queue from
GET /api/v1/cluster)."""

from __future__ import annotations

import json

from cadenza import Client, Worker
from cadenza.aws.tasklists import MAX_RECEIVE_COUNT, queue_name
from cadenza.core import TaskKind
from cadenza.local import LocalStack

from .workflows import reg


async def test_a_worker_creates_its_queues_with_the_redrive_policy(
    local_stack: LocalStack, client: Client, task_list: str
) -> None:
    sqs = local_stack.client("sqs")
    dead_letters = sqs.get_queue_attributes(
        QueueUrl=local_stack.queue_url("TaskListDeadLetterQueue"),
        AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert (await client.cluster_info())["task_list_dlq_arn"] == dead_letters
    async with Worker(client, task_list, reg):
        for kind in (TaskKind.DECISION, TaskKind.ACTIVITY):
            name = queue_name(local_stack.environment["CADENZA_QUEUE_PREFIX"], "default",
                              task_list, kind)
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])[
                "Attributes"]
            assert json.loads(attributes["RedrivePolicy"]) == {
                "deadLetterTargetArn": dead_letters, "maxReceiveCount": MAX_RECEIVE_COUNT}
