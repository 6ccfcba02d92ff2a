"""SQS task lists on moto: queue naming, and messages that are not tasks."""

from __future__ import annotations

import pytest

from cadenza.aws.settings import AwsSettings
from cadenza.aws.tasklists import SqsTaskLists, queue_name, sqs_client
from cadenza.core import TaskKind


def test_queue_names_are_valid_and_stable() -> None:
    assert queue_name("stack", "default", "orders", TaskKind.DECISION) == \
        "stack-default-orders-decision.fifo"
    odd = queue_name("stack", "default", "a/b c" + "x" * 100, TaskKind.ACTIVITY)
    assert odd.endswith(".fifo") and len(odd) <= 80
    assert set(odd.removesuffix(".fifo")) <= set(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
    assert odd == queue_name("stack", "default", "a/b c" + "x" * 100, TaskKind.ACTIVITY)
    assert odd != queue_name("stack", "default", "a_b c" + "x" * 100, TaskKind.ACTIVITY)


@pytest.fixture
def lists(aws_settings: AwsSettings) -> SqsTaskLists:
    return SqsTaskLists(client=sqs_client(aws_settings), prefix=aws_settings.queue_prefix)


def test_a_message_that_is_not_a_task_is_dropped_and_the_rest_delivered(
    lists: SqsTaskLists,
) -> None:
    url = lists.queue_url("default", "t", TaskKind.ACTIVITY)
    good = '{"task": {"kind": "activity"}, "task_token": "tok"}'
    for index, body in enumerate(["not json", good]):
        lists.client.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=f"g{index}",
                                  MessageDeduplicationId=f"d{index}")
    received = lists.receive("default", "t", TaskKind.ACTIVITY, wait_seconds=1)
    assert [m.body["task_token"] for m in received] == ["tok"]
    lists.retry_later(received[0], 0)
    again = lists.receive("default", "t", TaskKind.ACTIVITY, wait_seconds=1)
    assert [m.body["task_token"] for m in again] == ["tok"]  # the poison one is gone for good
