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
    EventType,
    StartActivityTask,
    StartWorkflow,
    TimerKind,
    TimerTask,
    to_millis,
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
            "activity_id": str(i), "activity_type": "a", "schedule_to_close_timeout_seconds": 60,
            "start_to_close_timeout_seconds": 5})
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
    # Four different commits of the same version (identical ones would all be "own" retries).
    assert len({c.state.next_event_id for c in candidates}) == 4
    assert {c.state.version for c in candidates} == {state.version + 1}

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


# --- versions: state-only commits, reading one commit, retried writes -------------------------


def scheduled_activity(store: DynamoHistoryStore, workflow_id: str = "w1") -> core.RunState:
    """A run with activity 5 scheduled (versions 1 and 2 committed)."""
    decided = complete_decision(start_run(store, workflow_id=workflow_id), 1)
    store.append(decided, committed_at=1)
    assert decided.state.version == 2
    return decided.state


def start_and_complete(state: core.RunState) -> tuple[core.Transition, core.Transition]:
    """Two commits from one read state: a state-only start and a completion with events."""
    at = T0 + timedelta(seconds=1)
    started = core.apply(state, StartActivityTask(scheduled_event_id=5, attempt=0,
                                                  identity="worker-1"), now=at)
    completed = core.apply(state, CompleteActivityTask(scheduled_event_id=5, attempt=0,
                                                       result='"r"'), now=at)
    assert started.events == () and started.commit  # state only
    assert completed.events
    assert started.state.version == completed.state.version == state.version + 1
    return started, completed


def test_a_state_only_commit_and_an_event_commit_of_one_state_exactly_one_wins(
    aws_settings: AwsSettings,
) -> None:
    store = DynamoHistoryStore(aws_settings)
    for round_ in range(5):  # several races, so either side gets to win
        workflow_id = f"race-{round_}"
        candidates = start_and_complete(scheduled_activity(store, workflow_id))

        def commit(transition: core.Transition) -> bool:
            try:
                store.append(transition, committed_at=2)
                return True
            except CommitConflictError:
                return False

        with ThreadPoolExecutor(max_workers=2) as pool:
            outcomes = list(pool.map(commit, candidates))
        assert outcomes.count(True) == 1
        winner = candidates[outcomes.index(True)]
        latest = store.latest("default", workflow_id)
        assert latest is not None and latest.state == winner.state
        events = list(store.all_events("default", workflow_id, "r1"))
        assert [e.event_id for e in events] == list(range(1, winner.state.next_event_id))


@pytest.mark.parametrize("first", ["state_only", "events"])
def test_the_later_of_a_state_only_and_an_event_commit_conflicts(
    aws_settings: AwsSettings, first: str
) -> None:
    store = DynamoHistoryStore(aws_settings)
    started, completed = start_and_complete(scheduled_activity(store))
    winner, loser = (started, completed) if first == "state_only" else (completed, started)
    store.append(winner, committed_at=2)
    with pytest.raises(CommitConflictError):
        store.append(loser, committed_at=2)
    assert store.latest("default", "w1").state == winner.state  # type: ignore[union-attr]


def test_read_batch_returns_one_commit_by_its_version(aws_settings: AwsSettings) -> None:
    store = DynamoHistoryStore(aws_settings)
    state = scheduled_activity(store)
    started, _ = start_and_complete(state)
    store.append(started, committed_at=2)
    done = core.apply(started.state, CompleteActivityTask(scheduled_event_id=5, attempt=0,
                                                          result='"r"'),
                      now=T0 + timedelta(seconds=2))
    store.append(done, committed_at=3)

    first = store.read_batch("default", "w1", "r1", 1)
    assert first is not None and first.state.version == 1
    assert [e.event_type for e in first.events] == [
        EventType.WorkflowExecutionStarted, EventType.DecisionTaskScheduled]
    second = store.read_batch("default", "w1", "r1", 2)
    assert second is not None and second.state == state and second.committed_at == 1
    assert [e.event_type for e in second.events][2:] == [EventType.ActivityTaskScheduled]
    # The state-only commit: no events, its state and its outbox (the new deadline timer).
    third = store.read_batch("default", "w1", "r1", 3)
    assert third is not None and third.events == () and third.state == started.state
    assert third.tasks == started.tasks
    (timer,) = third.tasks
    assert isinstance(timer, TimerTask) and timer.timer_kind is TimerKind.ACTIVITY_TIMEOUT
    assert (timer.seq, timer.fire_at) == (2, to_millis(T0) + 1000 + 5000)  # start-to-close
    fourth = store.read_batch("default", "w1", "r1", 4)
    assert fourth is not None and fourth.state == done.state
    assert [e.event_type for e in fourth.events][:2] == [
        EventType.ActivityTaskStarted, EventType.ActivityTaskCompleted]
    assert store.read_batch("default", "w1", "r1", 5) is None
    assert store.read_batch("default", "w1", "other-run", 1) is None
    # The state-only commit leaves the history dense; the newest commit is the run's state.
    events = list(store.all_events("default", "w1", "r1"))
    assert [e.event_id for e in events] == list(range(1, done.state.next_event_id))
    assert store.latest("default", "w1") == fourth


def test_a_put_retried_after_its_answer_was_lost_is_a_success(aws_settings: AwsSettings) -> None:
    # botocore retries a PutItem whose answer it did not get, and the retry meets the item the
    # first try wrote: here botocore is told to retry the first PutItem although it succeeded.
    store = DynamoHistoryStore(aws_settings)
    state = scheduled_activity(store)
    started, completed = start_and_complete(state)
    client = store.model._get_connection().connection.client
    retried: list[int] = []

    def retry_first_put(attempts: int, **_: object) -> float | None:
        if attempts == 1 and not retried:
            retried.append(attempts)
            return 0.0  # retry at once, as after a read timeout
        return None

    client.meta.events.register("needs-retry.dynamodb.PutItem", retry_first_put)
    try:
        first = store.append(started, committed_at=2)  # no CommitConflictError
    finally:
        client.meta.events.unregister("needs-retry.dynamodb.PutItem", retry_first_put)
    assert retried == [1]
    assert store.latest("default", "w1") == first
    # Another writer's commit of the same version, even an identical one, still conflicts.
    with pytest.raises(CommitConflictError):
        store.append(completed, committed_at=2)
    with pytest.raises(CommitConflictError):
        store.append(started, committed_at=2)
    done = core.apply(started.state, CompleteActivityTask(scheduled_event_id=5, attempt=0),
                      now=T0 + timedelta(seconds=2))
    store.append(done, committed_at=3)
    events = list(store.all_events("default", "w1", "r1"))
    assert [e.event_id for e in events] == list(range(1, done.state.next_event_id))
