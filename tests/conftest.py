"""Fixtures shared by the suite: one moto server per session, fresh tables per test."""

from __future__ import annotations

import dataclasses
import functools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from cadenza.aws.settings import AwsSettings
from cadenza.local.fidelity import apply_dynamodb_transactions, apply_sqs_fifo_deduplication
from cadenza.local.template import describe_stack

# Never let a test reach a real account.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.pop("AWS_PROFILE", None)
# Every LocalStack of the suite runs its own moto unless a test says otherwise (tests/localstack
# takes its endpoint from CADENZA_LOCALSTACK_ENDPOINT).
os.environ.pop("CADENZA_AWS_ENDPOINT", None)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    # As the local stack does: moto then deduplicates and transacts like AWS.
    apply_sqs_fifo_deduplication()
    apply_dynamodb_transactions()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@functools.cache
def _declared_tables() -> dict[str, Any]:
    """template.yaml's tables as the local stack reads it (through the SAM translator)."""
    described = describe_stack(Path(__file__).resolve().parents[1] / "template.yaml")
    return {table.logical_id: table for table in described.tables}


def create_tables(settings: AwsSettings) -> None:
    """The two tables as template.yaml declares them: the local stack's own description of
    them, so the suite holds no copy of the schema."""
    client = boto3.client("dynamodb", endpoint_url=settings.endpoint_url,
                          region_name=settings.region)
    for logical_id, name in (("HistoryTable", settings.history_table),
                             ("VisibilityTable", settings.visibility_table)):
        request = _declared_tables()[logical_id].create_table_request()
        client.create_table(**{**request, "TableName": name})


@pytest.fixture
def aws_settings(moto_endpoint: str) -> AwsSettings:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    settings = AwsSettings(
        history_table=f"{prefix}-history",
        visibility_table=f"{prefix}-visibility",
        queue_prefix=prefix,
        task_token_secret="test-secret",
        region="us-east-1",
        endpoint_url=moto_endpoint,
    )
    create_tables(settings)
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name=settings.region)
    timer_queue = sqs.create_queue(QueueName=f"{prefix}-timers")["QueueUrl"]
    timer_arn = sqs.get_queue_attributes(QueueUrl=timer_queue, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    scheduler = boto3.client("scheduler", endpoint_url=moto_endpoint, region_name=settings.region)
    scheduler.create_schedule_group(Name=f"{prefix}-timers")
    return dataclasses.replace(
        settings, timer_queue_url=timer_queue, timer_queue_arn=timer_arn,
        schedule_group=f"{prefix}-timers",
        scheduler_role_arn="arn:aws:iam::123456789012:role/scheduler",
    )
