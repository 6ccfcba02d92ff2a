"""Closed runs expire through DynamoDB TTL: every history item carries `expires_at`, never
before the retention period after the run's close, and a closed run's visibility items carry
close + retention (docs/design.md, "Retention")."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import boto3

from cadenza import core
from cadenza.aws.settings import AwsSettings
from cadenza.aws.store import CLOSE_LAG_SECONDS, DynamoHistoryStore, expires_at
from cadenza.aws.visibility import DynamoVisibilityStore
from cadenza.core import CompleteDecisionTask, Decision, DecisionType, StartWorkflow, to_millis

from .test_store import T0

DAY = 86_400
TIMEOUT = 600


def _items(settings: AwsSettings) -> list[dict[str, object]]:
    client = boto3.client("dynamodb", endpoint_url=settings.endpoint_url,
                          region_name=settings.region)
    answer = client.query(
        TableName=settings.history_table, KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "default#w"}}, ConsistentRead=True)
    return answer["Items"]


def _run_to_completion(store: DynamoHistoryStore) -> core.RunState:
    started = core.start(StartWorkflow(
        domain="default", workflow_id="w", run_id="r", workflow_type="T", task_list="tl",
        input=None, execution_start_to_close_timeout_seconds=TIMEOUT,
        task_start_to_close_timeout_seconds=10), now=T0)
    store.append(started, committed_at=to_millis(T0))
    state = started.state
    assert state.decision is not None
    closed_at = T0 + timedelta(seconds=100)
    closing = core.apply(state, CompleteDecisionTask(
        scheduled_event_id=state.decision.scheduled_event_id, attempt=0,
        history_length=state.next_event_id, started_at=closed_at,
        decisions=[Decision(DecisionType.CompleteWorkflowExecution, {"result": None})]),
        now=closed_at)
    store.append(closing, committed_at=to_millis(closed_at))
    return closing.state


def test_every_item_expires_no_sooner_than_retention_after_the_close(
    aws_settings: AwsSettings,
) -> None:
    settings = dataclasses.replace(aws_settings, retention_days=30)
    closed = _run_to_completion(DynamoHistoryStore(settings))
    assert closed.close_time is not None
    floor = closed.close_time // 1000 + 30 * DAY
    items = _items(settings)
    expiries = [int(item["expires_at"]["N"]) for item in items]  # type: ignore[index]
    assert len(expiries) == 2
    assert all(expiry >= floor for expiry in expiries)
    # The closing batch: exactly retention after the close. The open one: the bound.
    assert expiries[1] == floor
    assert expiries[0] == int(T0.timestamp()) + TIMEOUT + CLOSE_LAG_SECONDS + 30 * DAY


def test_without_retention_nothing_expires(aws_settings: AwsSettings) -> None:
    _run_to_completion(DynamoHistoryStore(aws_settings))
    assert all("expires_at" not in item for item in _items(aws_settings))


def test_the_open_bound_counts_a_delayed_start(aws_settings: AwsSettings) -> None:
    """A delayed start (backoff) closes at most backoff + timeout after its start."""
    started = core.start(StartWorkflow(
        domain="default", workflow_id="w", run_id="r", workflow_type="T", task_list="tl",
        input=None, execution_start_to_close_timeout_seconds=TIMEOUT,
        task_start_to_close_timeout_seconds=10), now=T0).state
    delayed = dataclasses.replace(started, backoff_seconds=3_600)
    committed = to_millis(T0)
    assert expires_at(delayed, committed, DAY) - expires_at(started, committed, DAY) == 3_600
    assert expires_at(delayed, committed, DAY) >= delayed.timeout_at // 1000 + DAY


def _visibility_items(settings: AwsSettings) -> list[dict[str, Any]]:
    client = boto3.client("dynamodb", endpoint_url=settings.endpoint_url,
                          region_name=settings.region)
    items: list[dict[str, Any]] = client.scan(TableName=settings.visibility_table)["Items"]
    return items


def test_a_closed_runs_visibility_record_and_index_items_expire(
    aws_settings: AwsSettings,
) -> None:
    settings = dataclasses.replace(aws_settings, retention_days=30)
    visibility = DynamoVisibilityStore(settings)
    closed = _run_to_completion(DynamoHistoryStore(settings))
    assert closed.close_time is not None
    opened = dataclasses.replace(closed, status=core.RunStatus.OPEN, close_time=None,
                                 version=closed.version - 1,
                                 search_attributes={"CustomKeywordField": "k"})
    visibility.record(opened)
    assert all("expires_at" not in item for item in _visibility_items(settings))  # open
    visibility.record(dataclasses.replace(closed, search_attributes={"CustomKeywordField": "k"}))
    items = _visibility_items(settings)
    assert len(items) >= 2  # the record and its search attribute's index item
    assert {int(item["expires_at"]["N"]) for item in items} == {
        closed.close_time // 1000 + 30 * DAY}
