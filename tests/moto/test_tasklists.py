"""SQS task lists on moto: queue naming, and messages that are not tasks."""

from __future__ import annotations

import pytest

from cadenza.aws.settings import AwsSettings
from cadenza.aws.tasklists import SqsTaskLists, queue_name, sqs_client
from cadenza.core import ActivityTask, TaskKind
from cadenza.core.records import TaskMessage


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
    task = ActivityTask(
        domain="default", workflow_id="w", run_id="r", workflow_type="T", task_list="t",
        scheduled_event_id=5, attempt=0, activity_id="0", activity_type="a", input=None,
        scheduled_time=0, start_to_close_timeout_seconds=5,
    )
    good = TaskMessage(task, "tok").encode()
    # Not JSON; JSON of a task kind whose fields are missing (no retry makes either a task).
    poison = ["not json", '{"task": {"kind": "activity"}, "task_token": "tok"}']
    for index, body in enumerate([*poison, good]):
        lists.client.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=f"g{index}",
                                  MessageDeduplicationId=f"d{index}")
    received = lists.receive("default", "t", TaskKind.ACTIVITY, wait_seconds=1)
    assert [m.message for m in received] == [TaskMessage(task, "tok")]  # parsed, typed
    lists.retry_later(received[0], 0)
    again = lists.receive("default", "t", TaskKind.ACTIVITY, wait_seconds=1)
    assert [m.message.task_token for m in again] == ["tok"]  # the poison ones are gone for good
