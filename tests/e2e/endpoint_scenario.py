"""The whole stack against an AWS endpoint somebody else runs (LocalStack, or a moto server).

``LocalStack(aws_endpoint=...)`` starts no emulator: it creates the stack's tables (with their
streams) and queues at the endpoint, runs the handlers against it, and leaves its resources there
when it stops; a second start with the same stack name reuses them. Shared by
tests/e2e/test_aws_endpoint.py (a moto server of this process) and
tests/localstack/test_localstack.py (a real LocalStack, when one is reachable).
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import timedelta
from typing import Any

import boto3
from botocore.config import Config
from examples.orders.app import Order, OrderWorkflow, Receipt

from cadenza import Client, Worker
from cadenza.local import LocalStack

from .workflows import reg

START = {"execution_start_to_close_timeout": timedelta(seconds=60)}
WAIT = timedelta(seconds=30)


def aws_client(endpoint: str, service: str) -> Any:
    return boto3.client(
        service, endpoint_url=endpoint, region_name="us-east-1",  # type: ignore[call-overload]
        aws_access_key_id="testing", aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 2, "mode": "standard"}),
    )


def delete_stack_resources(endpoint: str, stack_name: str) -> None:
    """Remove what the stack left at the endpoint: its tables and every queue of its prefix
    (the template's and the task-list queues the service created)."""
    dynamodb = aws_client(endpoint, "dynamodb")
    for table in ("HistoryTable", "VisibilityTable"):
        with contextlib.suppress(Exception):
            dynamodb.delete_table(TableName=f"{stack_name}-{table}")
    sqs = aws_client(endpoint, "sqs")
    for url in sqs.list_queues(QueueNamePrefix=stack_name).get("QueueUrls", []):
        with contextlib.suppress(Exception):
            sqs.delete_queue(QueueUrl=url)


def check_resources(endpoint: str, stack_name: str) -> None:
    """The tables (history with its stream) and the example worker's FIFO queues are there."""
    dynamodb = aws_client(endpoint, "dynamodb")
    history = dynamodb.describe_table(TableName=f"{stack_name}-HistoryTable")["Table"]
    assert history["StreamSpecification"] == {"StreamEnabled": True,
                                              "StreamViewType": "NEW_IMAGE"}
    assert history["LatestStreamArn"]
    visibility = dynamodb.describe_table(TableName=f"{stack_name}-VisibilityTable")["Table"]
    assert {i["IndexName"] for i in visibility["GlobalSecondaryIndexes"]} == {
        "by_start", "by_type", "by_close_status", "by_attribute"}
    sqs = aws_client(endpoint, "sqs")
    for kind in ("decision", "activity"):
        url = sqs.get_queue_url(QueueName=f"{stack_name}-default-orders-{kind}.fifo")["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attributes["FifoQueue"] == "true"
        assert attributes["VisibilityTimeout"] == "180"


async def run_polled_workflow(client: Client) -> tuple[str, str]:
    """A workflow of tests/e2e/workflows.py run by a polling Worker; its (workflow, run) ids."""
    task_list = f"tl-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_list, reg):
        execution = await client.start_workflow(
            "SingleActivity", "polled", task_list=task_list, **START)
        result = await client.get_workflow_result(
            execution.workflow_id, execution.run_id, result_type=str, timeout=WAIT)
    assert result == "polled"
    return execution.workflow_id, execution.run_id


async def run_lambda_order(client: Client) -> tuple[str, str]:
    """No worker: the stack's OrdersWorkerFunction runs the order, fed from the FIFO queues."""
    order = Order(f"o-{uuid.uuid4().hex[:8]}", "book-42", 1, 1_000, "4242424242424242")
    execution = await client.start_workflow(
        OrderWorkflow, order, task_list="orders", workflow_id=f"order-{order.order_id}", **START)
    receipt = await client.get_workflow_result(
        execution.workflow_id, execution.run_id, result_type=Receipt, timeout=WAIT)
    assert receipt.payment_id == f"pay-{order.order_id}-1000"
    return execution.workflow_id, execution.run_id


async def run_scenario(endpoint: str) -> None:
    stack_name = f"ep-{uuid.uuid4().hex[:8]}"
    try:
        with LocalStack(api_port=0, aws_endpoint=endpoint, stack_name=stack_name) as stack:
            assert not stack.embedded
            assert stack.emulator_endpoint == endpoint.rstrip("/")
            assert stack.environment["AWS_ENDPOINT_URL"] == endpoint.rstrip("/")
            check_resources(endpoint, stack_name)
            async with Client(domain="default", target=stack.api_url) as client:
                runs = [await run_polled_workflow(client), await run_lambda_order(client)]

        # Stopped: the resources stay at the endpoint, and a new start reuses them (history
        # included) instead of failing on "already exists".
        check_resources(endpoint, stack_name)
        with LocalStack(api_port=0, aws_endpoint=endpoint, stack_name=stack_name) as again:
            async with Client(domain="default", target=again.api_url) as client:
                for workflow_id, run_id in runs:
                    events = await client.get_workflow_history(workflow_id, run_id)
                    assert events[-1].event_type == "WorkflowExecutionCompleted"
                await run_lambda_order(client)
    finally:
        delete_stack_resources(endpoint, stack_name)
