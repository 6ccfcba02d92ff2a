"""The sample applications of examples/, each run end to end on the session's local stack.

Each example's ``run(api_url, ...)`` is the scenario ``python -m examples.<name>`` runs
against a stack of its own; here it runs against the shared ``local_stack`` fixture. The
workers the scenarios kill are real processes, killed with SIGKILL.
"""

from __future__ import annotations

from pathlib import Path

from examples.hosts import __main__ as hosts
from examples.monitor import __main__ as monitor
from examples.responder import __main__ as responder
from examples.responder.responder import reply_to

from cadenza.core import HistoryEvent
from cadenza.local import LocalStack


def of(events: list[HistoryEvent], kind: str) -> list[HistoryEvent]:
    return [e for e in events if e.event_type == kind]


def scheduled(events: list[HistoryEvent], activity_type: str) -> list[HistoryEvent]:
    return [e for e in of(events, "ActivityTaskScheduled")
            if e.attributes["activity_type"] == activity_type]


async def test_hosts_a_dead_host_s_file_is_processed_again_on_another(
    local_stack: LocalStack, tmp_path: Path,
) -> None:
    outcome = await hosts.run(local_stack.api_url, workdir=tmp_path)

    result = outcome.result
    assert (result.host, result.tries) == ("b", 2)
    assert result.earlier_failures == ("cadenceInternal:Timeout HEARTBEAT",)
    output = Path(result.output)
    assert output.parent == tmp_path / "results" and ".b." in output.name
    assert output.read_text() == hosts.SOURCE_TEXT.upper()
    assert not list((tmp_path / "a" / "work").iterdir())  # host a never finished

    events = outcome.history
    downloads = scheduled(events, "download_file")
    processes = scheduled(events, "process_file")
    assert [e.attributes["task_list"] for e in downloads] == ["file-downloads"] * 2
    assert [e.attributes["task_list"] for e in processes] == ["host-a", "host-b"]
    assert [e.attributes["task_list"] for e in scheduled(events, "upload_file")] == ["host-b"]
    (timed_out,) = of(events, "ActivityTaskTimedOut")
    assert timed_out.attributes["scheduled_event_id"] == processes[0].event_id
    assert timed_out.attributes["timeout_type"] == "HEARTBEAT"
    # The timeout, then the retry: the second download is scheduled after it.
    assert downloads[0].event_id < timed_out.event_id < downloads[1].event_id
    started_by = {e.attributes["scheduled_event_id"]: e.attributes["identity"]
                  for e in of(events, "ActivityTaskStarted")}
    assert started_by[downloads[0].event_id] == started_by[processes[0].event_id] == "host-a"
    assert started_by[downloads[1].event_id] == started_by[processes[1].event_id] == "host-b"


async def test_monitor_a_killed_watch_resumes_on_another_worker(
    local_stack: LocalStack,
) -> None:
    bucket = local_stack.bucket_name("ExamplesBucket")
    assert local_stack.description.outputs["ExamplesBucketName"] == bucket

    outcome = await monitor.run(local_stack.api_url, bucket)

    result = outcome.result
    assert result.key.startswith("incoming/") and result.size > 0
    assert result.attempt == 1
    # Resumed from worker 1's last report (read shortly before the kill, or one later).
    assert result.resumed_from >= outcome.reported_before_kill >= 3
    assert result.iterations > result.resumed_from
    (started,) = of(outcome.history, "ActivityTaskStarted")
    assert started.attributes["attempt"] == 1
    assert started.attributes["identity"] == "monitor-2"
    assert started.attributes["last_failure_reason"] == "cadenceInternal:Timeout HEARTBEAT"
    assert outcome.history[-1].event_type == "WorkflowExecutionCompleted"
    # The object is really in moto's S3.
    head = local_stack.client("s3").head_object(Bucket=bucket, Key=result.key)
    assert head["ContentLength"] == result.size


async def test_responder_completes_the_activity_by_its_token(local_stack: LocalStack) -> None:
    question = "is the answer the responder's"

    outcome = await responder.run(local_stack.api_url, question)

    answer = outcome.answer
    assert answer.question == question
    assert answer.reply == reply_to(question) == "5 words: responder's the answer the is"
    assert answer.responder.startswith("responder-")
    (completed,) = of(outcome.history, "ActivityTaskCompleted")
    assert answer.reply in completed.attributes["result"]
    assert outcome.history[-1].event_type == "WorkflowExecutionCompleted"
