"""Task-list queues created at run time carry the stack's dead-letter queue and encryption."""

from __future__ import annotations

import json

import boto3
import pytest

from cadenza.aws.settings import AwsSettings
from cadenza.aws.tasklists import MAX_RECEIVE_COUNT, SqsTaskLists, sqs_client
from cadenza.core import TaskKind


@pytest.fixture
def dead_letters(aws_settings: AwsSettings) -> tuple[str, str]:
    sqs = boto3.client("sqs", endpoint_url=aws_settings.endpoint_url, region_name="us-east-1")
    url = sqs.create_queue(QueueName=f"{aws_settings.queue_prefix}_dead-letters.fifo",
                           Attributes={"FifoQueue": "true"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    return url, arn


def test_a_created_queue_redrives_to_the_dead_letter_queue(
    aws_settings: AwsSettings, dead_letters: tuple[str, str]
) -> None:
    dlq_url, dlq_arn = dead_letters
    lists = SqsTaskLists(client=sqs_client(aws_settings), prefix=aws_settings.queue_prefix,
                         dead_letter_arn=dlq_arn)
    url = lists.queue_url("default", "poison", TaskKind.ACTIVITY)
    attributes = lists.client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])[
        "Attributes"]
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
    assert attributes["SqsManagedSseEnabled"] == "true"

    # A message no worker can take: received MAX_RECEIVE_COUNT times, then SQS moves it.
    lists.client.send_message(QueueUrl=url, MessageBody="poison", MessageGroupId="g",
                              MessageDeduplicationId="d")
    for _ in range(MAX_RECEIVE_COUNT):
        got = lists.client.receive_message(QueueUrl=url, VisibilityTimeout=0)
        assert len(got.get("Messages", [])) == 1
    assert lists.client.receive_message(QueueUrl=url, VisibilityTimeout=0).get(
        "Messages", []) == []
    moved = lists.client.receive_message(QueueUrl=dlq_url).get("Messages", [])
    assert [m["Body"] for m in moved] == ["poison"]


def test_without_a_dead_letter_queue_no_redrive_policy(aws_settings: AwsSettings) -> None:
    """Tests and polling-only setups that configure none get plain queues, as before."""
    lists = SqsTaskLists(client=sqs_client(aws_settings), prefix=aws_settings.queue_prefix)
    url = lists.queue_url("default", "plain", TaskKind.DECISION)
    attributes = lists.client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])[
        "Attributes"]
    assert "RedrivePolicy" not in attributes
