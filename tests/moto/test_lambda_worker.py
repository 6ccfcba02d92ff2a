"""Lambda mode on moto: SQS task-list messages wrapped as exact AWS SQS Lambda events.

The handler is ``cadenza.lambda_worker.lambda_handler(registry, backend=ServiceBackend(...))``,
fed what an SQS event source mapping would give it; its answer (``batchItemFailures``) decides
which messages SQS redelivers, as the mapping would with ReportBatchItemFailures.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import boto3
import pytest

from cadenza import Registry, workflow
from cadenza.aws.settings import AwsSettings
from cadenza.core import EventType, TaskKind
from cadenza.lambda_worker import lambda_handler
from cadenza.service import StartWorkflowRequest, WorkflowService, service_from_settings
from cadenza.service.backend import ServiceBackend

from ..e2e.workflows import reg


@dataclass
class FakeLambdaContext:
    function_name: str = "worker"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:worker"
    memory_limit_in_mb: int = 512
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    log_group_name: str = "/aws/lambda/worker"
    log_stream_name: str = "2026/01/01/[$LATEST]0"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


class TaskLists:
    """The task list's FIFO queues read with boto3, messages turned into Lambda events."""

    def __init__(self, service: WorkflowService, settings: AwsSettings, task_list: str) -> None:
        self.service = service
        self.task_list = task_list
        self.region = settings.region
        self.sqs = boto3.client("sqs", endpoint_url=settings.endpoint_url,
                                region_name=settings.region)

    def url(self, kind: TaskKind) -> str:
        return self.service.queues.queue_url(  # type: ignore[attr-defined]
            "default", self.task_list, kind)

    def arn(self, kind: TaskKind) -> str:
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.url(kind),
                                                   AttributeNames=["QueueArn"])
        return str(attributes["Attributes"]["QueueArn"])

    def receive(self, kind: TaskKind, expected: int = 1) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        for _ in range(5):
            answer = self.sqs.receive_message(
                QueueUrl=self.url(kind), MaxNumberOfMessages=10, WaitTimeSeconds=1,
                MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"],
            )
            messages.extend(dict(m) for m in answer.get("Messages", []))
            if len(messages) >= expected:
                break
        assert len(messages) == expected, messages
        return messages

    def record(self, kind: TaskKind, message: dict[str, Any]) -> dict[str, Any]:
        """One record exactly as Lambda's SQS event source mapping delivers it."""
        attributes = message["Attributes"]
        record = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": {
                "ApproximateReceiveCount": attributes["ApproximateReceiveCount"],
                "SentTimestamp": attributes["SentTimestamp"],
                "SequenceNumber": attributes.get("SequenceNumber", "18880000000000000001"),
                "MessageGroupId": attributes["MessageGroupId"],
                "SenderId": attributes.get("SenderId", "AIDAIENQZJOLO23YVJ4VO"),
                "MessageDeduplicationId": attributes["MessageDeduplicationId"],
                "ApproximateFirstReceiveTimestamp":
                    attributes["ApproximateFirstReceiveTimestamp"],
            },
            "messageAttributes": {},
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self.arn(kind),
            "awsRegion": self.region,
        }
        return record

    def delete(self, kind: TaskKind, messages: Sequence[dict[str, Any]]) -> None:
        for message in messages:
            self.sqs.delete_message(QueueUrl=self.url(kind),
                                    ReceiptHandle=message["ReceiptHandle"])

    def release(self, kind: TaskKind, messages: Sequence[dict[str, Any]]) -> None:
        """What the visibility timeout does for a failed record, without waiting for it."""
        for message in messages:
            self.sqs.change_message_visibility(QueueUrl=self.url(kind),
                                               ReceiptHandle=message["ReceiptHandle"],
                                               VisibilityTimeout=0)


Handler = Callable[[dict[str, Any], Any], Any]


def deliver(handler: Handler, lists: TaskLists, kind: TaskKind,
            messages: Sequence[dict[str, Any]]) -> set[str]:
    """One Lambda invocation with ``messages``; SQS deletes the ones that did not fail.

    Returns the message ids reported as batch item failures.
    """
    event = {"Records": [lists.record(kind, m) for m in messages]}
    answer = handler(event, FakeLambdaContext())
    assert set(answer) == {"batchItemFailures"}
    failed = {item["itemIdentifier"] for item in answer["batchItemFailures"]}
    assert failed <= {m["MessageId"] for m in messages}
    lists.delete(kind, [m for m in messages if m["MessageId"] not in failed])
    return failed


@pytest.fixture
def service(aws_settings: AwsSettings) -> WorkflowService:
    return service_from_settings(aws_settings)


@pytest.fixture
def lists(service: WorkflowService, aws_settings: AwsSettings) -> TaskLists:
    return TaskLists(service, aws_settings, f"lambda-{uuid.uuid4().hex[:8]}")


def start(service: WorkflowService, lists: TaskLists, workflow_type: str,
          payload: str | None = None) -> str:
    workflow_id = f"{workflow_type}-{uuid.uuid4().hex[:8]}"
    service.start_workflow(StartWorkflowRequest.from_dict("default", {
        "workflow_id": workflow_id, "workflow_type": workflow_type,
        "task_list": lists.task_list, "input": payload,
        "execution_start_to_close_timeout_seconds": 60,
    }))
    return workflow_id


def history(service: WorkflowService, workflow_id: str) -> list[Any]:
    return service.get_history("default", workflow_id)[1]


def handler_for(service: WorkflowService, registry: Registry = reg, sqs: Any = None,
                **options: Any) -> Handler:
    # Every activity through its queue, unless a test asks for eager ones.
    options.setdefault("max_eager_activities", 0)
    return lambda_handler(registry, backend=ServiceBackend(service, domain="default"), sqs=sqs,
                          **options)


def test_a_workflow_runs_to_completion_through_lambda_events(
    service: WorkflowService, lists: TaskLists,
) -> None:
    handler = handler_for(service)
    workflow_id = start(service, lists, "SingleActivity", '"hi"')

    decision = lists.receive(TaskKind.DECISION)
    assert deliver(handler, lists, TaskKind.DECISION, decision) == set()
    activity = lists.receive(TaskKind.ACTIVITY)
    assert json.loads(activity[0]["Body"])["task"]["activity_type"] == "echo"
    assert deliver(handler, lists, TaskKind.ACTIVITY, activity) == set()
    second = lists.receive(TaskKind.DECISION)
    assert deliver(handler, lists, TaskKind.DECISION, second) == set()

    result = service.get_result("default", workflow_id)
    assert str(result.status) == "COMPLETED"
    assert result.close_attributes["result"] == '"hi"'
    events = history(service, workflow_id)
    assert [e.event_id for e in events] == list(range(1, len(events) + 1))
    assert [e.event_type for e in events] == [
        EventType.WorkflowExecutionStarted, EventType.DecisionTaskScheduled,
        EventType.DecisionTaskStarted, EventType.DecisionTaskCompleted,
        EventType.ActivityTaskScheduled, EventType.ActivityTaskStarted,
        EventType.ActivityTaskCompleted, EventType.DecisionTaskScheduled,
        EventType.DecisionTaskStarted, EventType.DecisionTaskCompleted,
        EventType.WorkflowExecutionCompleted]
    assert events[2].attributes["identity"] == "lambda"

    # At-least-once delivery: the same first decision record again is recognised and dropped.
    assert deliver(handler, lists, TaskKind.DECISION, decision) == set()
    assert deliver(handler, lists, TaskKind.ACTIVITY, activity) == set()
    assert history(service, workflow_id) == events


def test_unregistered_activity_fails_the_activity_not_the_batch(
    service: WorkflowService, lists: TaskLists,
) -> None:
    partial = Registry()

    @partial.workflow()
    class CallsAnUnknownActivity:
        @workflow.run
        async def run(self) -> str:
            return await workflow.execute_activity(
                "not_registered_here", str, "x", start_to_close_timeout=timedelta(seconds=10))

    handler = handler_for(service, partial)
    workflow_id = start(service, lists, "CallsAnUnknownActivity")
    assert deliver(handler, lists, TaskKind.DECISION, lists.receive(TaskKind.DECISION)) == set()
    assert deliver(handler, lists, TaskKind.ACTIVITY, lists.receive(TaskKind.ACTIVITY)) == set()
    failed = [e for e in history(service, workflow_id)
              if e.event_type is EventType.ActivityTaskFailed]
    assert len(failed) == 1
    assert failed[0].attributes["reason"] == "ActivityNotRegisteredError"
    assert "not_registered_here" in failed[0].attributes["details"]
    # The workflow sees the failure on its next decision and fails with it.
    assert deliver(handler, lists, TaskKind.DECISION, lists.receive(TaskKind.DECISION)) == set()
    assert str(service.get_result("default", workflow_id).status) == "FAILED"


def test_a_task_to_retry_is_reported_as_a_batch_item_failure(
    service: WorkflowService, lists: TaskLists,
) -> None:
    """A decision of an unknown workflow type: the first failure is recorded; the retried
    task fails again, is not written, and must come back later (a batch item failure) while
    the other records of the same batch are processed."""
    handler = handler_for(service, sqs=lists.sqs)
    unknown = start(service, lists, "NoSuchWorkflow", '"x"')
    assert deliver(handler, lists, TaskKind.DECISION, lists.receive(TaskKind.DECISION)) == set()
    events = history(service, unknown)
    assert [e.event_type for e in events][-3:] == [
        EventType.DecisionTaskStarted, EventType.DecisionTaskFailed,
        EventType.DecisionTaskScheduled]
    failure = events[-2]
    assert failure.attributes["cause"] == "WORKFLOW_WORKER_UNHANDLED_FAILURE"
    assert "NoSuchWorkflow" in failure.attributes["details"]
    assert events[-1].attributes["attempt"] == 1

    # The retried decision task and a healthy workflow's decision, in one batch.
    healthy = start(service, lists, "SingleActivity", '"ok"')
    both = lists.receive(TaskKind.DECISION, expected=2)
    retried = [m for m in both if json.loads(m["Body"])["task"]["workflow_id"] == unknown]
    assert len(retried) == 1
    retried_first = [*retried, *[m for m in both if m not in retried]]
    failed = deliver(handler, lists, TaskKind.DECISION, retried_first)
    assert failed == {retried[0]["MessageId"]}
    assert history(service, unknown) == events  # a repeated failure is not written
    # It comes back after the worker's backoff, not at once.
    assert lists.sqs.receive_message(QueueUrl=lists.url(TaskKind.DECISION),
                                     WaitTimeSeconds=0).get("Messages", []) == []
    healthy_types = [e.event_type for e in history(service, healthy)]
    assert healthy_types[-1] is EventType.ActivityTaskScheduled  # processed all the same

    # Redelivered (after the visibility timeout), it fails again: reported again.
    lists.release(TaskKind.DECISION, retried)
    again = lists.receive(TaskKind.DECISION)
    assert again[0]["MessageId"] == retried[0]["MessageId"]
    assert int(again[0]["Attributes"]["ApproximateReceiveCount"]) == 2
    assert deliver(handler, lists, TaskKind.DECISION, again) == {again[0]["MessageId"]}

    # Once the run is closed, the leftover task is stale: dropped, not retried.
    service.terminate_workflow("default", unknown, reason="no worker knows it")
    lists.release(TaskKind.DECISION, again)
    assert deliver(handler, lists, TaskKind.DECISION, lists.receive(TaskKind.DECISION)) == set()


def test_a_record_that_is_not_a_task_is_dropped_not_retried_forever(
    service: WorkflowService, lists: TaskLists,
) -> None:
    handler = handler_for(service)
    url = lists.url(TaskKind.DECISION)
    for index, body in enumerate(["not json", json.dumps({"something": "else"}),
                                  json.dumps({"task": {"kind": "mystery"}, "task_token": "x"})]):
        lists.sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=f"g{index}",
                               MessageDeduplicationId=f"d{index}")
    workflow_id = start(service, lists, "SingleActivity", '"fine"')
    messages = lists.receive(TaskKind.DECISION, expected=4)
    assert deliver(handler, lists, TaskKind.DECISION, messages) == set()
    # The real task among them was processed.
    assert history(service, workflow_id)[-1].event_type is EventType.ActivityTaskScheduled


def test_a_run_is_carried_through_in_one_invocation_by_eager_and_handed_back_tasks(
    service: WorkflowService, lists: TaskLists,
) -> None:
    handler = handler_for(service, max_eager_activities=10)
    workflow_id = start(service, lists, "SingleActivity", '"hi"')

    first = lists.receive(TaskKind.DECISION)
    assert deliver(handler, lists, TaskKind.DECISION, first) == set()
    # That invocation ran the activity (started eagerly by the decision's commit), then the
    # decision task its result handed back: the run is closed and no queue was used (no
    # stream runs here, so no redrive copy either).
    result = service.get_result("default", workflow_id)
    assert str(result.status) == "COMPLETED"
    assert result.close_attributes["result"] == '"hi"'
    for kind in (TaskKind.ACTIVITY, TaskKind.DECISION):
        empty = lists.sqs.receive_message(QueueUrl=lists.url(kind), MaxNumberOfMessages=10,
                                          WaitTimeSeconds=1)
        assert empty.get("Messages", []) == []
    events = history(service, workflow_id)
    (scheduled,) = [e for e in events if e.event_type is EventType.ActivityTaskScheduled]
    (started,) = [e for e in events if e.event_type is EventType.ActivityTaskStarted]
    assert started.timestamp == scheduled.timestamp
    # The second decision was decided by the instance the first one kept (warm cache); the
    # closed run is held without one.
    cache = handler.cache  # type: ignore[attr-defined]
    assert (cache.hits, cache.misses) == (1, 1)
    run_id = service.get_history("default", workflow_id)[0]
    held = cache.take(("default", workflow_id, run_id))
    assert held is not None and held.sticky is None
