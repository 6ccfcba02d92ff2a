"""The history stream's redrive against moto: it sends only what may not have been delivered.

Every SQS request the service makes is counted with a botocore hook, so "not sent again" is a
request that never happens, not a copy the FIFO queue happens to drop.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from cadenza.aws.settings import AwsSettings
from cadenza.core import Decision, DecisionType, RunStatus, TaskKind, TimerTask
from cadenza.core.records import StoredBatch, TaskMessage
from cadenza.service import WorkflowService, service_from_settings

from .test_service import Crash, complete_decision, drain, schedule, start_request, stream_batches


def count_sends(service: WorkflowService) -> Counter[str]:
    """SendMessageBatch requests by queue kind (decision, activity, timer) from now on."""
    sent: Counter[str] = Counter()

    def hook(params: dict[str, Any], **_: Any) -> None:
        url = str(params.get("QueueUrl", ""))
        kind = next((k for k in ("decision", "activity") if f"-{k}.fifo" in url), "timer")
        sent[kind] += 1
        sent[f"{kind} messages"] += len(params.get("Entries") or ())

    service.queues.client.meta.events.register(  # type: ignore[attr-defined]
        "provide-client-params.sqs.SendMessageBatch", hook)
    return sent


def test_a_crash_before_the_send_is_covered_by_the_redrive(aws_settings: AwsSettings) -> None:
    def crash(_: StoredBatch) -> None:
        raise Crash

    crashing = service_from_settings(aws_settings)
    crashing.after_commit = crash
    with pytest.raises(Crash):
        crashing.start_workflow(start_request("crashed"))
    stream = service_from_settings(aws_settings)
    sent = count_sends(stream)
    stream.on_committed_all(stream_batches(aws_settings))
    assert sent["decision messages"] == 1  # the only copy: the commit's direct send never ran
    (message,) = drain(stream, TaskKind.DECISION)
    assert message.task.scheduled_event_id == 2


def test_tasks_consumed_before_the_redrive_looks_are_not_sent_again(
    aws_settings: AwsSettings,
) -> None:
    service = service_from_settings(aws_settings)
    service.start_workflow(start_request("consumed"))
    (decision,) = drain(service, TaskKind.DECISION)
    complete_decision(service, decision, [schedule("a1", "reserve")], history_length=3)
    (activity,) = drain(service, TaskKind.ACTIVITY)
    service.start_activity_task(activity.task_token)
    service.complete_activity_task(activity.task_token, result='"ok"')
    stream = service_from_settings(aws_settings)
    sent = count_sends(stream)
    stream.on_committed_all(stream_batches(aws_settings))
    # The first decision task and the activity task were consumed by later commits of the
    # same read; the decision task the result scheduled is still pending: it alone is sent,
    # with the timers that still matter (the run's timeout, the started attempt's deadline).
    assert sent["decision messages"] == 1
    assert sent["activity"] == 0
    (pending,) = drain(stream, TaskKind.DECISION)
    assert pending.task.scheduled_event_id > decision.task.scheduled_event_id


def test_the_redrive_sends_a_queue_s_tasks_in_batches_of_ten(aws_settings: AwsSettings) -> None:
    crashing = service_from_settings(aws_settings)
    service = service_from_settings(aws_settings)
    service.start_workflow(start_request("fan-out"))
    (decision,) = drain(service, TaskKind.DECISION)

    def crash(_: StoredBatch) -> None:
        raise Crash

    crashing.after_commit = crash
    with pytest.raises(Crash):
        complete_decision(crashing, decision, [schedule(f"a{i}", "reserve") for i in range(12)],
                          history_length=3)
    stream = service_from_settings(aws_settings)
    sent = count_sends(stream)
    stream.on_committed_all(stream_batches(aws_settings))
    assert sent["activity messages"] == 12
    assert sent["activity"] == 2  # 10 + 2, not one request per commit or per task
    assert len(drain(stream, TaskKind.ACTIVITY)) == 12


def test_a_closed_run_s_redrive_sends_nothing_of_its_own(aws_settings: AwsSettings) -> None:
    service = service_from_settings(aws_settings)
    service.start_workflow(start_request("closed"))
    (decision,) = drain(service, TaskKind.DECISION)
    complete_decision(service, decision, [Decision(
        DecisionType.CompleteWorkflowExecution, {"result": '"done"'})], history_length=3)
    stream = service_from_settings(aws_settings)
    sent = count_sends(stream)
    stream.on_committed_all(stream_batches(aws_settings))
    assert sum(sent.values()) == 0  # decision consumed, execution timeout moot
    closed, _ = stream.list_workflows("default", query="CloseTime > '2000-01-01'")
    assert [r["workflow_id"] for r in closed] == ["closed"]  # visibility kept all the same


def schedules(settings: AwsSettings) -> dict[str, dict[str, Any]]:
    """The timer schedules stored, by name, with their expression and target input."""
    scheduler = boto3.client("scheduler", endpoint_url=settings.endpoint_url,
                             region_name=settings.region)
    found = {}
    for summary in scheduler.list_schedules(GroupName=settings.schedule_group)["Schedules"]:
        found[summary["Name"]] = scheduler.get_schedule(Name=summary["Name"],
                                                        GroupName=settings.schedule_group)
    return found


def long_run(workflow_id: str) -> Any:
    return start_request(workflow_id, execution_start_to_close_timeout_seconds=600)


def test_a_long_execution_timeout_is_a_schedule_deleted_when_the_run_closes(
    aws_settings: AwsSettings,
) -> None:
    service = service_from_settings(aws_settings)
    sent = count_sends(service)
    run_id = service.start_workflow(long_run("deadline"))
    assert sent["timer"] == 0  # 600 s away: nothing on the queue, from the commit or later
    service.on_committed_all(stream_batches(aws_settings))
    service.on_committed_all(stream_batches(aws_settings))  # the stream retried the read
    assert sent["timer"] == 0
    (schedule,) = schedules(aws_settings).values()  # one, however often it was created
    task = json.loads(schedule["Target"]["Input"])["task"]
    assert (task["timer_kind"], task["run_id"]) == ("workflow_timeout", run_id)
    at = datetime.fromisoformat(schedule["ScheduleExpression"][3:-1]).replace(tzinfo=UTC)
    due = datetime.fromtimestamp(task["fire_at"] / 1000, tz=UTC)
    assert timedelta(seconds=55) <= due - at <= timedelta(seconds=61)  # early: never late
    (decision,) = drain(service, TaskKind.DECISION)
    complete_decision(service, decision, [Decision(
        DecisionType.CompleteWorkflowExecution, {"result": '"done"'})], history_length=3)
    assert len(schedules(aws_settings)) == 1  # the request path makes no Scheduler call
    service.on_committed_all(stream_batches(aws_settings)[-1:])  # the close's redrive
    assert schedules(aws_settings) == {}


def test_a_run_that_closes_before_the_redrive_looks_gets_no_schedule(
    aws_settings: AwsSettings,
) -> None:
    service = service_from_settings(aws_settings)
    service.start_workflow(long_run("quick"))
    (decision,) = drain(service, TaskKind.DECISION)
    complete_decision(service, decision, [Decision(
        DecisionType.CompleteWorkflowExecution, {"result": '"done"'})], history_length=3)
    service.on_committed_all(stream_batches(aws_settings))
    assert schedules(aws_settings) == {}


def test_a_schedule_whose_delete_was_lost_fires_stale_and_is_dropped(
    aws_settings: AwsSettings,
) -> None:
    service = service_from_settings(aws_settings)
    service.start_workflow(long_run("lost-delete"))
    service.on_committed_all(stream_batches(aws_settings))
    (schedule,) = schedules(aws_settings).values()
    service.terminate_workflow("default", "lost-delete", reason="stop")
    # The close's redrive never ran: the schedule fires and its timer reaches the function.
    message = TaskMessage.parse(schedule["Target"]["Input"])
    assert message is not None and isinstance(message.task, TimerTask)
    assert service.fire_timer(message.task) is False  # stale: the run is closed
    assert service.latest("default", "lost-delete").state.status is RunStatus.TERMINATED


def test_an_activity_s_long_deadline_is_deleted_when_the_activity_closes(
    aws_settings: AwsSettings,
) -> None:
    service = service_from_settings(aws_settings)
    service.start_workflow(long_run("activity-deadline"))
    (decision,) = drain(service, TaskKind.DECISION)
    complete_decision(service, decision, [Decision(DecisionType.ScheduleActivityTask, {
        "activity_id": "a1", "activity_type": "reserve",
        "schedule_to_close_timeout_seconds": 300})], history_length=3)
    service.on_committed_all(stream_batches(aws_settings))
    kinds = sorted(json.loads(s["Target"]["Input"])["task"]["timer_kind"]
                   for s in schedules(aws_settings).values())
    assert kinds == ["activity_timeout", "workflow_timeout"]
    (activity,) = drain(service, TaskKind.ACTIVITY)
    service.start_activity_task(activity.task_token)
    service.complete_activity_task(activity.task_token, result='"ok"')
    service.on_committed_all(stream_batches(aws_settings)[-2:])
    kinds = [json.loads(s["Target"]["Input"])["task"]["timer_kind"]
             for s in schedules(aws_settings).values()]
    assert kinds == ["workflow_timeout"]  # the run's own stays until the run closes


def test_the_redrive_looks_at_the_run_once_more_before_sending(aws_settings: AwsSettings) -> None:
    service = service_from_settings(aws_settings)
    service.start_workflow(start_request("last-look"))
    (decision,) = drain(service, TaskKind.DECISION)
    complete_decision(service, decision, [Decision(DecisionType.StartTimer, {
        "timer_id": "t", "start_to_fire_timeout_seconds": 3})], history_length=3)
    armed = stream_batches(aws_settings)[-1]  # the commit that started the timer
    service.signal_workflow("default", "last-look", signal_name="stop")
    (decision,) = drain(service, TaskKind.DECISION)
    complete_decision(service, decision, [Decision(DecisionType.CancelTimer, {"timer_id": "t"})],
                      history_length=decision.task.scheduled_event_id + 1)
    stream = service_from_settings(aws_settings)
    sent = count_sends(stream)
    stream.on_committed_all([armed])  # a read holding only the timer's commit
    assert sent["timer"] == 0  # the run's newest commit shows it cancelled: not sent again
    crashed = service_from_settings(aws_settings)
    crashed.start_workflow(start_request("still-pending"))
    sent = count_sends(stream)
    stream.on_committed_all(stream_batches(aws_settings)[-1:])
    assert sent["decision messages"] == 1  # pending in the newest commit too: sent
