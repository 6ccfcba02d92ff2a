"""Service operations on moto: uniqueness, one winner per task, duplicates, crash redrive."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from cadenza.aws.settings import AwsSettings
from cadenza.aws.store import decode_stream_image
from cadenza.core import (
    ActivityTask,
    Decision,
    DecisionTask,
    DecisionType,
    EventType,
    SignalWorkflow,
    TaskKind,
    TimerKind,
    TimerTask,
    to_millis,
)
from cadenza.core.records import StoredBatch, TaskMessage
from cadenza.error import (
    ActivityTaskAlreadyStartedError,
    BadRequestError,
    EntityNotExistsError,
    PayloadTooLargeError,
    StaleTaskError,
    WorkflowExecutionAlreadyStartedError,
)
from cadenza.service import (
    StartWorkflowRequest,
    TaskTokens,
    WorkflowService,
    service_from_settings,
)
from cadenza.service.engine import CLOSE_WAITS


class Crash(Exception):
    """Stands for the process dying between the commit and the dispatch."""


def start_request(workflow_id: str = "order-1", **overrides: Any) -> StartWorkflowRequest:
    body = {"workflow_id": workflow_id, "workflow_type": "Order", "task_list": "orders",
            "input": '"x"', "execution_start_to_close_timeout_seconds": 60}
    body.update(overrides)
    return StartWorkflowRequest.from_dict("default", body)


def receive(service: WorkflowService, kind: TaskKind, task_list: str = "orders") -> list[Any]:
    queues = service.queues
    return queues.receive("default", task_list, kind, wait_seconds=0)  # type: ignore[attr-defined]


def drain(service: WorkflowService, kind: TaskKind) -> list[TaskMessage]:
    received: list[TaskMessage] = []
    while True:
        messages = receive(service, kind)
        if not messages:
            return received
        for message in messages:
            received.append(message.message)
            service.queues.delete(message)  # type: ignore[attr-defined]


def schedule(activity_id: str, activity_type: str) -> Decision:
    # Cadence's rule: schedule_to_close, or both schedule_to_start and start_to_close.
    return Decision(DecisionType.ScheduleActivityTask, {
        "activity_id": activity_id, "activity_type": activity_type,
        "schedule_to_close_timeout_seconds": 30, "start_to_close_timeout_seconds": 5})


def stream_batches(settings: AwsSettings) -> list[StoredBatch]:
    endpoint = {"endpoint_url": settings.endpoint_url, "region_name": settings.region}
    arn = boto3.client("dynamodb", **endpoint).describe_table(
        TableName=settings.history_table)["Table"]["LatestStreamArn"]
    streams = boto3.client("dynamodbstreams", **endpoint)
    batches = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        for record in streams.get_records(ShardIterator=iterator)["Records"]:
            if record["eventName"] == "INSERT":
                batches.append(decode_stream_image(record["dynamodb"]["NewImage"]))
    return batches


@pytest.fixture
def service(aws_settings: AwsSettings) -> WorkflowService:
    return service_from_settings(aws_settings)


def complete_decision(service: WorkflowService, message: TaskMessage,
                      decisions: list[Decision], *, history_length: int) -> None:
    service.complete_decision_task(message.task_token, decisions=decisions,
                                   history_length=history_length,
                                   started_at=datetime.now(UTC))


def test_start_dispatches_the_first_decision_task(service: WorkflowService) -> None:
    run_id = service.start_workflow(start_request())
    (message,) = drain(service, TaskKind.DECISION)
    assert isinstance(message.task, DecisionTask)
    assert message.task.run_id == run_id and message.task.scheduled_event_id == 2
    info = service.describe_workflow("default", "order-1")
    assert info["status"] == "OPEN" and info["history_length"] == 2


def test_running_workflow_id_cannot_start_twice(service: WorkflowService) -> None:
    run_id = service.start_workflow(start_request())
    with pytest.raises(WorkflowExecutionAlreadyStartedError) as caught:
        service.start_workflow(start_request())
    assert caught.value.run_id == run_id


def test_concurrent_starts_create_exactly_one_run(service: WorkflowService) -> None:
    def attempt(_: int) -> str | None:
        try:
            return service.start_workflow(start_request("race"))
        except WorkflowExecutionAlreadyStartedError:
            return None

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(attempt, range(6)))
    assert len([r for r in results if r]) == 1
    assert len(drain(service, TaskKind.DECISION)) == 1


def test_reuse_policy_after_close(service: WorkflowService) -> None:
    first = service.start_workflow(start_request())
    service.terminate_workflow("default", "order-1", reason="test")
    second = service.start_workflow(start_request())  # terminated counts as failed
    assert second != first and second > first
    service.terminate_workflow("default", "order-1")
    with pytest.raises(WorkflowExecutionAlreadyStartedError):
        service.start_workflow(start_request(workflow_id_reuse_policy="RejectDuplicate"))
    third = service.start_workflow(
        start_request(workflow_id_reuse_policy="WORKFLOW_ID_REUSE_POLICY_TERMINATE_IF_RUNNING"))
    fourth = service.start_workflow(start_request(workflow_id_reuse_policy="TerminateIfRunning"))
    assert service.describe_workflow("default", "order-1", third)["status"] == "TERMINATED"
    assert service.describe_workflow("default", "order-1")["run_id"] == fourth


def test_two_concurrent_completions_of_one_decision_task_one_wins(
    service: WorkflowService,
) -> None:
    service.start_workflow(start_request())
    (body,) = drain(service, TaskKind.DECISION)

    def complete(activity_type: str) -> str:
        try:
            complete_decision(service, body, [schedule("0", activity_type)],
                              history_length=3)
            return "won"
        except StaleTaskError:
            return "stale"

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(complete, ["reserve", "charge"]))
    assert sorted(outcomes) == ["stale", "won"]
    _, events, _ = service.get_history("default", "order-1")
    assert [e.event_id for e in events] == list(range(1, 6))
    assert [e.event_type for e in events].count(EventType.DecisionTaskCompleted) == 1
    assert len(drain(service, TaskKind.ACTIVITY)) == 1


def test_duplicate_activity_delivery_changes_nothing(service: WorkflowService) -> None:
    service.start_workflow(start_request())
    (decision,) = drain(service, TaskKind.DECISION)
    complete_decision(service, decision, [schedule("0", "reserve")], history_length=3)
    (activity,) = drain(service, TaskKind.ACTIVITY)
    service.start_activity_task(activity.task_token, identity="worker-1")
    # A redelivered copy of the running attempt is refused before it runs.
    with pytest.raises(ActivityTaskAlreadyStartedError):
        service.start_activity_task(activity.task_token, identity="worker-2")
    service.complete_activity_task(activity.task_token, result='"ok"')
    before = service.get_history("default", "order-1")[1]
    with pytest.raises(StaleTaskError):
        service.start_activity_task(activity.task_token, identity="worker-2")
    with pytest.raises(StaleTaskError):
        service.complete_activity_task(activity.task_token, result='"again"')
    with pytest.raises(StaleTaskError):
        service.fail_activity_task(activity.task_token, reason="late", details=None)
    assert service.get_history("default", "order-1")[1] == before
    # the redelivered decision message of the first task is stale too
    with pytest.raises(StaleTaskError):
        complete_decision(service, decision, [], history_length=len(before) + 1)


def test_forged_token_is_refused(service: WorkflowService, aws_settings: AwsSettings) -> None:
    service.start_workflow(start_request())
    (body,) = drain(service, TaskKind.DECISION)
    payload, signature = body.task_token.split(".")
    with pytest.raises(BadRequestError) as caught:
        service.complete_decision_task(f"{payload}.{signature[:-2]}xx", decisions=[],
                                       history_length=3, started_at=datetime.now(UTC))
    assert caught.value.field == "task_token"
    # A token signed with another stack's secret does not touch this stack's runs.
    stranger = TaskTokens("another-secret")
    with pytest.raises(BadRequestError):
        service.complete_decision_task(stranger.issue(body.task), decisions=[],
                                       history_length=3, started_at=datetime.now(UTC))
    with pytest.raises(BadRequestError):
        service.complete_activity_task(body.task_token, result=None)  # a decision token
    with pytest.raises(BadRequestError):
        service.start_activity_task(body.task_token)  # a decision token


def test_crash_between_commit_and_dispatch_loses_no_task(
    aws_settings: AwsSettings,
) -> None:
    def crash(_: StoredBatch) -> None:
        raise Crash

    crashing = service_from_settings(aws_settings)
    crashing.after_commit = crash
    with pytest.raises(Crash):
        crashing.start_workflow(start_request())
    survivor = service_from_settings(aws_settings)
    assert drain(survivor, TaskKind.DECISION) == []  # nothing was sent
    assert survivor.describe_workflow("default", "order-1")["status"] == "OPEN"
    # The stream consumer sees the commit and sends its outbox.
    for batch in stream_batches(aws_settings):
        survivor.on_committed(batch)
    (message,) = drain(survivor, TaskKind.DECISION)
    assert message.task.scheduled_event_id == 2


def test_redrive_after_a_successful_dispatch_is_dropped_by_the_queue(
    service: WorkflowService, aws_settings: AwsSettings,
) -> None:
    service.start_workflow(start_request())
    for batch in stream_batches(aws_settings):
        service.on_committed(batch)
    assert len(drain(service, TaskKind.DECISION)) == 1


def test_redrive_after_the_task_was_consumed_is_dropped_too(
    service: WorkflowService, aws_settings: AwsSettings,
) -> None:
    service.start_workflow(start_request())
    assert len(drain(service, TaskKind.DECISION)) == 1  # received and deleted
    for batch in stream_batches(aws_settings):
        service.on_committed(batch)
    assert drain(service, TaskKind.DECISION) == []  # SQS remembers the id for five minutes


def test_unknown_workflow_is_entity_not_exists(service: WorkflowService) -> None:
    with pytest.raises(EntityNotExistsError):
        service.describe_workflow("default", "nope")
    with pytest.raises(EntityNotExistsError):
        service.terminate_workflow("default", "nope")


def test_bad_start_requests_name_the_field_and_write_nothing(service: WorkflowService) -> None:
    with pytest.raises(BadRequestError) as caught:
        StartWorkflowRequest.from_dict("default", {"workflow_id": "x", "workflow_type": "T",
                                                   "execution_start_to_close_timeout_seconds": 5})
    assert caught.value.field == "task_list"
    with pytest.raises(BadRequestError) as caught:
        StartWorkflowRequest.from_dict("default", {"workflow_id": "x", "workflow_type": "T",
                                                   "task_list": "t"})
    assert caught.value.field == "execution_start_to_close_timeout_seconds"
    with pytest.raises(PayloadTooLargeError):
        service.start_workflow(start_request("big", input=json.dumps("x" * 200_000)))
    with pytest.raises(EntityNotExistsError):
        service.describe_workflow("default", "big")


def test_visibility_lists_open_and_closed_runs(
    service: WorkflowService, aws_settings: AwsSettings,
) -> None:
    service.start_workflow(start_request("a"))
    service.start_workflow(start_request("b", workflow_type="Other"))
    service.terminate_workflow("default", "b")
    for batch in stream_batches(aws_settings):
        service.on_committed(batch)
    open_runs, _ = service.list_workflows("default", query="ExecutionStatus = 'Open'")
    closed, _ = service.list_workflows("default", query="CloseTime > '2000-01-01'")
    assert [r["workflow_id"] for r in open_runs] == ["a"]
    assert [(r["workflow_id"], r["status"], r["close_status"]) for r in closed] == [
        ("b", "TERMINATED", "TERMINATED")]
    typed, _ = service.list_workflows(
        "default", query="WorkflowType = 'Order' AND ExecutionStatus = 'Closed'")
    assert typed == []
    every, _ = service.list_workflows("default")
    assert sorted(r["workflow_id"] for r in every) == ["a", "b"]


def test_concurrent_signal_with_start_creates_one_run_and_loses_no_signal(
    service: WorkflowService,
) -> None:
    def signal_with_start(index: int) -> str:
        return service.start_workflow(
            start_request("sws", workflow_id_reuse_policy="AllowDuplicate"),
            signal=SignalWorkflow(signal_name="approve", input=str(index)),
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        run_ids = set(pool.map(signal_with_start, range(4)))
    assert len(run_ids) == 1
    _, events, _ = service.get_history("default", "sws")
    inputs = sorted(e.attributes["input"] for e in events
                    if e.event_type is EventType.WorkflowExecutionSignaled)
    assert inputs == ["0", "1", "2", "3"]
    assert [e.event_id for e in events] == list(range(1, len(events) + 1))
    assert len(drain(service, TaskKind.DECISION)) == 1  # one decision task for all of them


def test_many_activity_results_of_one_run_at_once_are_all_recorded(
    service: WorkflowService,
) -> None:
    service.start_workflow(start_request("busy"))
    (decision,) = drain(service, TaskKind.DECISION)
    complete_decision(service, decision, [schedule(str(i), "work") for i in range(12)],
                      history_length=3)
    activities = drain(service, TaskKind.ACTIVITY)
    assert len(activities) == 12

    def complete(message: TaskMessage) -> None:
        assert isinstance(message.task, ActivityTask)
        # Each worker records its start (a state-only commit) before it runs the activity.
        service.start_activity_task(message.task_token, identity=message.task.activity_id)
        result = json.dumps(message.task.activity_id)
        service.complete_activity_task(message.task_token, result=result)

    with ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(complete, activities))  # raises if any result was lost to a race
    _, events, _ = service.get_history("default", "busy")
    completed = [e for e in events if e.event_type is EventType.ActivityTaskCompleted]
    assert sorted(json.loads(e.attributes["result"]) for e in completed) == sorted(
        str(i) for i in range(12))
    assert [e.event_id for e in events] == list(range(1, len(events) + 1))
    assert [e.event_type for e in events].count(EventType.DecisionTaskScheduled) == 2


def timer_messages(service: WorkflowService, aws_settings: AwsSettings,
                   wait: int = 0) -> list[TaskMessage]:
    sqs = service.queues.client  # type: ignore[attr-defined]
    answer = sqs.receive_message(QueueUrl=aws_settings.timer_queue_url, MaxNumberOfMessages=10,
                                 WaitTimeSeconds=wait)
    messages = answer.get("Messages", [])
    for message in messages:
        sqs.delete_message(QueueUrl=aws_settings.timer_queue_url,
                           ReceiptHandle=message["ReceiptHandle"])
    parsed = [TaskMessage.parse(m["Body"]) for m in messages]
    assert None not in parsed
    return parsed  # type: ignore[return-value]


def test_timer_is_a_delayed_message_that_fires_once_and_never_early(
    service: WorkflowService, aws_settings: AwsSettings,
) -> None:
    service.start_workflow(start_request("sleepy"))
    (decision,) = drain(service, TaskKind.DECISION)
    complete_decision(service, decision, [Decision(DecisionType.StartTimer, {
        "timer_id": "t", "start_to_fire_timeout_seconds": 2})], history_length=3)
    assert timer_messages(service, aws_settings) == []  # delayed by SQS
    (message,) = timer_messages(service, aws_settings, wait=5)
    due = message.task
    assert isinstance(due, TimerTask) and due.started_event_id == 5
    assert service.fire_timer(due) is True
    assert service.fire_timer(due) is False  # a duplicate (the redrive copy, say) is dropped
    _, events, _ = service.get_history("default", "sleepy")
    fired = [e for e in events if e.event_type is EventType.TimerFired]
    assert len(fired) == 1
    assert fired[0].timestamp >= events[4].timestamp + timedelta(seconds=2)


def test_a_long_timer_is_one_schedule_and_an_early_message_is_sent_again(
    service: WorkflowService, aws_settings: AwsSettings,
) -> None:
    service.start_workflow(start_request("long-sleep"))
    (decision,) = drain(service, TaskKind.DECISION)
    complete_decision(service, decision, [Decision(DecisionType.StartTimer, {
        "timer_id": "t", "start_to_fire_timeout_seconds": 3600})], history_length=3)
    batch = service.store.latest("default", "long-sleep")
    assert batch is not None
    (task,) = [t for t in batch.tasks if isinstance(t, TimerTask)]
    assert service.fire_timer(task) is False  # an hour early: re-delayed, history untouched
    _, events, _ = service.get_history("default", "long-sleep")
    assert events[-1].event_type is EventType.TimerStarted
    # An hour-long timer is one Scheduler schedule, due a minute early, that puts the timer's
    # message on the timer queue; sending the same timer again changes nothing.
    scheduler = boto3.client("scheduler", endpoint_url=aws_settings.endpoint_url,
                             region_name=aws_settings.region)
    (summary,) = scheduler.list_schedules(GroupName=aws_settings.schedule_group)["Schedules"]
    schedule = scheduler.get_schedule(Name=summary["Name"], GroupName=aws_settings.schedule_group)
    at = datetime.fromisoformat(schedule["ScheduleExpression"][3:-1]).replace(tzinfo=UTC)
    due = datetime.fromtimestamp(task.fire_at / 1000, tz=UTC)
    assert timedelta(seconds=55) <= due - at <= timedelta(seconds=61)
    assert schedule["Target"]["Arn"] == aws_settings.timer_queue_arn
    assert json.loads(schedule["Target"]["Input"])["task"]["timer_id"] == "t"
    assert schedule["ActionAfterCompletion"] == "DELETE"
    attributes = service.queues.client.get_queue_attributes(  # type: ignore[attr-defined]
        QueueUrl=aws_settings.timer_queue_url,
        AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    # The run's execution timeout (60 s) is due later than STREAM_ONLY_TIMER_SECONDS: only
    # the stream's redrive sends it, and no stream runs here.
    assert int(attributes["Attributes"]["ApproximateNumberOfMessagesDelayed"]) == 0


def test_a_timer_due_later_is_sent_once_by_the_stream_a_soon_one_at_once_too(
    service: WorkflowService, aws_settings: AwsSettings,
) -> None:
    def delayed() -> int:
        attributes = service.queues.client.get_queue_attributes(  # type: ignore[attr-defined]
            QueueUrl=aws_settings.timer_queue_url,
            AttributeNames=["ApproximateNumberOfMessagesDelayed"])
        return int(attributes["Attributes"]["ApproximateNumberOfMessagesDelayed"])

    service.start_workflow(start_request("timeouts"))  # execution timeout: 60 s
    assert delayed() == 0
    started = service.store.read_batch("default", "timeouts",
                                       service.latest("default", "timeouts").run_id, 1)
    assert started is not None
    service.on_committed(started)  # the stream's redrive
    assert delayed() == 1
    (decision,) = drain(service, TaskKind.DECISION)
    complete_decision(service, decision, [Decision(DecisionType.StartTimer, {
        "timer_id": "soon", "start_to_fire_timeout_seconds": 3})], history_length=3)
    assert delayed() == 2  # a 3 s timer is sent right after its commit


# --- activity attempts: starts, retries by timer, heartbeats, cancellation ----------------------


def test_a_failed_attempt_is_retried_by_its_timer_and_writes_no_history(
    service: WorkflowService,
) -> None:
    now = [datetime.now(UTC)]
    service.clock = lambda: now[0]
    base = now[0]
    service.start_workflow(start_request("retry"))
    (decision,) = drain(service, TaskKind.DECISION)
    complete_decision(service, decision, [Decision(DecisionType.ScheduleActivityTask, {
        "activity_id": "0", "activity_type": "charge", "input": '"card"',
        "schedule_to_close_timeout_seconds": 50, "start_to_close_timeout_seconds": 5,
        "retry_policy": {"initial_interval_in_seconds": 2, "backoff_coefficient": 2.0,
                         "maximum_attempts": 3}})], history_length=3)
    (first,) = drain(service, TaskKind.ACTIVITY)
    taken = service.start_activity_task(first.task_token, identity="worker-1")
    assert (taken.attempt, taken.heartbeat_details) == (0, None)
    assert service.record_activity_heartbeat(first.task_token, details='"p1"') is False
    before = service.get_history("default", "retry")[1]
    service.fail_activity_task(first.task_token, reason="Declined", details="no")
    assert service.get_history("default", "retry")[1] == before  # a retry writes no event
    latest = service.store.latest("default", "retry")
    assert latest is not None and latest.events == ()
    (retry,) = [t for t in latest.tasks
                if isinstance(t, TimerTask) and t.timer_kind is TimerKind.ACTIVITY_RETRY]
    assert retry.attempt == 1 and retry.fire_at == to_millis(base) + 2000
    assert service.fire_timer(retry) is False  # early: sent again, no task yet
    assert drain(service, TaskKind.ACTIVITY) == []
    now[0] = base + timedelta(seconds=2)
    assert service.fire_timer(retry) is True
    # The next attempt's task, rebuilt from the commit that scheduled the activity.
    (second,) = drain(service, TaskKind.ACTIVITY)
    task = second.task
    assert isinstance(task, ActivityTask) and isinstance(first.task, ActivityTask)
    assert (task.attempt, task.input, task.scheduled_event_id) == (
        1, '"card"', first.task.scheduled_event_id)
    assert task.scheduled_time == retry.fire_at
    assert service.fire_timer(retry) is True  # a redelivered timer sends the same task ...
    assert drain(service, TaskKind.ACTIVITY) == []  # ... which the queue drops
    retaken = service.start_activity_task(second.task_token, identity="worker-2")
    assert (retaken.attempt, retaken.heartbeat_details) == (1, '"p1"')  # resumes from there
    with pytest.raises(StaleTaskError):  # the old attempt's answers are stale
        service.complete_activity_task(first.task_token, result='"late"')
    service.complete_activity_task(second.task_token, result='"ok"')
    _, events, _ = service.get_history("default", "retry")
    assert [e.event_type for e in events][len(before):] == [
        EventType.ActivityTaskStarted, EventType.ActivityTaskCompleted,
        EventType.DecisionTaskScheduled]
    started = events[len(before)]
    assert started.attributes["attempt"] == 1
    assert started.attributes["last_failure_reason"] == "Declined"
    assert started.attributes["identity"] == "worker-2"


def test_a_waiting_activity_learns_of_its_cancellation_from_its_heartbeat(
    service: WorkflowService,
) -> None:
    service.start_workflow(start_request("cancel-me"))
    (decision,) = drain(service, TaskKind.DECISION)
    complete_decision(service, decision, [Decision(DecisionType.ScheduleActivityTask, {
        "activity_id": "0", "activity_type": "export", "schedule_to_close_timeout_seconds": 50,
        "start_to_close_timeout_seconds": 30, "wait_for_cancellation": True})],
        history_length=3)
    (activity,) = drain(service, TaskKind.ACTIVITY)
    service.start_activity_task(activity.task_token, identity="worker-1")
    assert service.record_activity_heartbeat(activity.task_token, details="1") is False
    service.signal_workflow("default", "cancel-me", signal_name="stop")
    (decision,) = drain(service, TaskKind.DECISION)
    length = service.describe_workflow("default", "cancel-me")["history_length"]
    complete_decision(service, decision, [Decision(DecisionType.RequestCancelActivityTask, {
        "activity_id": "0"})], history_length=length + 1)
    info = service.describe_workflow("default", "cancel-me")
    (pending,) = info["pending_activities"]
    assert pending["cancel_requested"] is True and pending["state"] == "STARTED"
    assert service.record_activity_heartbeat(activity.task_token, details="2") is True
    service.cancel_activity_task(activity.task_token, details='"stopped at 2"',
                                 identity="worker-1")
    _, events, _ = service.get_history("default", "cancel-me")
    assert [e.event_type for e in events][-3:] == [
        EventType.ActivityTaskStarted, EventType.ActivityTaskCanceled,
        EventType.DecisionTaskScheduled]
    assert events[-2].attributes["details"] == '"stopped at 2"'
    # The attempt is gone: a heartbeat tells the worker to stop, an answer is stale.
    assert service.record_activity_heartbeat(activity.task_token, details="3") is True
    with pytest.raises(StaleTaskError):
        service.complete_activity_task(activity.task_token, result=None)


def test_a_crash_after_a_state_only_commit_loses_none_of_its_timers(
    aws_settings: AwsSettings,
) -> None:
    """The retry's backoff timer and the new attempt's deadline are stored with the commit that
    writes no event: a crash before they are sent loses neither, the stream redrive sends both."""
    service = service_from_settings(aws_settings)
    service.start_workflow(start_request("crash-retry"))
    (decision,) = drain(service, TaskKind.DECISION)
    complete_decision(service, decision, [Decision(DecisionType.ScheduleActivityTask, {
        "activity_id": "0", "activity_type": "charge", "input": '"card"',
        "schedule_to_close_timeout_seconds": 50, "start_to_close_timeout_seconds": 5,
        "retry_policy": {"initial_interval_in_seconds": 1, "maximum_attempts": 3}})],
        history_length=3)
    (first,) = drain(service, TaskKind.ACTIVITY)
    service.start_activity_task(first.task_token)
    timer_messages(service, aws_settings)  # what was sent so far is not the point here

    def crash(_: StoredBatch) -> None:
        raise Crash

    crashing = service_from_settings(aws_settings)
    crashing.after_commit = crash
    with pytest.raises(Crash):
        crashing.fail_activity_task(first.task_token, reason="Declined", details=None)
    assert timer_messages(service, aws_settings) == []  # nothing was sent
    latest = service.store.latest("default", "crash-retry")
    assert latest is not None and latest.events == () and latest.state.activities[0].attempt == 1
    # The stream consumer sees the state-only commit and sends its outbox.
    service.on_committed(stream_batches(aws_settings)[-1])
    sent: set[tuple[TimerKind, int]] = set()
    for _ in range(5):  # the retry timer is due in a second; the deadline later
        sent |= {(m.task.timer_kind, m.task.attempt) for m in timer_messages(
            service, aws_settings, wait=1) if isinstance(m.task, TimerTask)}
    assert (TimerKind.ACTIVITY_RETRY, 1) in sent
    # The new attempt's deadline timer went with it (the redrive sends every stored task); it is
    # delayed on the queue until its deadline, the schedule-to-close 50 s after the schedule.
    stored = {(t.timer_kind, t.attempt) for t in latest.tasks if isinstance(t, TimerTask)}
    assert stored == {(TimerKind.ACTIVITY_RETRY, 1), (TimerKind.ACTIVITY_TIMEOUT, 1)}


def test_a_result_wait_is_woken_by_a_close_committed_in_this_process(
    service: WorkflowService, aws_settings: AwsSettings,
) -> None:
    service.start_workflow(start_request("woken"))
    run_id = service.latest("default", "woken").run_id
    answers: list[Any] = []
    waiter = threading.Thread(target=lambda: answers.append(
        service.get_result("default", "woken", run_id, wait_seconds=20)))
    waiter.start()
    key = ("default", "woken", run_id)
    for _ in range(200):
        if CLOSE_WAITS.waiting(key):
            break
        threading.Event().wait(0.01)
    assert CLOSE_WAITS.waiting(key), "the wait never registered"
    # Another service of the same process commits the close (the local stack runs the API
    # function and the one a worker completes through as two services in one process).
    other = service_from_settings(aws_settings)
    (decision,) = drain(other, TaskKind.DECISION)
    complete_decision(other, decision, [Decision(
        DecisionType.CompleteWorkflowExecution, {"result": '"done"'})], history_length=3)
    assert not CLOSE_WAITS.waiting(key)  # woken by the commit itself, not by the next poll
    waiter.join(timeout=20)
    assert answers and answers[0].close_attributes["result"] == '"done"'
