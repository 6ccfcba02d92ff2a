"""The DynamoDB store on moto: conditional commits, ordered paged history, stream images."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from cadenza import core
from cadenza.aws.settings import AwsSettings
from cadenza.aws.store import DynamoHistoryStore, decode_stream_image
from cadenza.core import (
    CompleteActivityTask,
    CompleteDecisionTask,
    Decision,
    DecisionType,
    StartWorkflow,
)
from cadenza.error import CommitConflictError

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def start_run(
    store: DynamoHistoryStore, workflow_id: str = "w1", run_id: str = "r1"
) -> core.RunState:
    transition = core.start(StartWorkflow(
        domain="default", workflow_id=workflow_id, run_id=run_id, workflow_type="T",
        task_list="tl", input=None, execution_start_to_close_timeout_seconds=600,
        task_start_to_close_timeout_seconds=10), now=T0)
    store.append(transition, committed_at=0)
    return transition.state


def complete_decision(state: core.RunState, activities: int) -> core.Transition:
    assert state.decision is not None
    return core.apply(state, CompleteDecisionTask(
        scheduled_event_id=state.decision.scheduled_event_id, attempt=0,
        history_length=state.next_event_id, started_at=T0,
        decisions=[Decision(DecisionType.ScheduleActivityTask, {
            "activity_id": str(i), "activity_type": "a", "start_to_close_timeout_seconds": 5})
            for i in range(activities)]), now=T0)


def test_latest_batch_is_the_runs_state(aws_settings: AwsSettings) -> None:
    store = DynamoHistoryStore(aws_settings)
    assert store.latest("default", "w1") is None
    state = start_run(store)
    latest = store.latest("default", "w1")
    assert latest is not None and latest.state == state
    assert [t.kind for t in latest.tasks] == ["timer", "decision"]  # execution timeout, first task
    assert store.latest("default", "w1", "r1") == latest
    assert store.latest("default", "w1", "other-run") is None


def test_two_writers_from_the_same_state_exactly_one_wins(aws_settings: AwsSettings) -> None:
    store = DynamoHistoryStore(aws_settings)
    state = start_run(store)
    candidates = [complete_decision(state, n) for n in (1, 2, 3, 4)]

    def commit(transition: core.Transition) -> bool:
        try:
            store.append(transition, committed_at=1)
            return True
        except CommitConflictError:
            return False

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(commit, candidates))
    assert outcomes.count(True) == 1
    winner = candidates[outcomes.index(True)]
    events = list(store.all_events("default", "w1", "r1"))
    assert [e.event_id for e in events] == list(range(1, winner.state.next_event_id))
    assert store.latest("default", "w1").state == winner.state  # type: ignore[union-attr]


def test_stale_writer_collides_with_a_newer_commit(aws_settings: AwsSettings) -> None:
    store = DynamoHistoryStore(aws_settings)
    state = start_run(store)
    store.append(complete_decision(state, 1), committed_at=1)
    with pytest.raises(CommitConflictError):
        store.append(complete_decision(state, 2), committed_at=2)


def test_history_reads_back_dense_in_order_across_pages(aws_settings: AwsSettings) -> None:
    store = DynamoHistoryStore(aws_settings)
    state = start_run(store)
    transition = complete_decision(state, 30)
    store.append(transition, committed_at=1)
    state = transition.state
    for scheduled in range(5, 35):
        step = core.apply(state, CompleteActivityTask(scheduled_event_id=scheduled, attempt=0,
                                                      result='"r"'), now=T0)
        store.append(step, committed_at=2)
        state = step.state
    pages, token = [], None
    while True:
        events, token = store.history_pages("default", "w1", "r1", page_size=7, page_token=token)
        pages.append(events)
        if token is None:
            break
    assert len(pages) > 3
    ids = [e.event_id for page in pages for e in page]
    assert ids == list(range(1, state.next_event_id))


def test_runs_of_one_workflow_id_are_kept_apart(aws_settings: AwsSettings) -> None:
    store = DynamoHistoryStore(aws_settings)
    start_run(store, run_id="00000001-aaaa-8aaa-8aaa-aaaaaaaaaaaa")
    start_run(store, run_id="00000002-aaaa-8aaa-8aaa-aaaaaaaaaaaa")
    latest = store.latest("default", "w1")
    assert latest is not None and latest.run_id.startswith("00000002")
    assert len(list(store.all_events("default", "w1", latest.run_id))) == 2


def test_stream_image_decodes_to_the_committed_batch(aws_settings: AwsSettings) -> None:
    store = DynamoHistoryStore(aws_settings)
    start_run(store)
    streams = boto3.client("dynamodbstreams", endpoint_url=aws_settings.endpoint_url,
                           region_name=aws_settings.region)
    arn = boto3.client("dynamodb", endpoint_url=aws_settings.endpoint_url,
                       region_name=aws_settings.region).describe_table(
        TableName=aws_settings.history_table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator)["Records"]
    batch = decode_stream_image(records[0]["dynamodb"]["NewImage"])
    assert batch == store.latest("default", "w1")
    assert T0 + timedelta(0) == batch.events[0].timestamp
