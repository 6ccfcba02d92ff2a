"""Wire shapes of the HTTP API's answers, shared by the api function and its tests."""

from __future__ import annotations

import json
import os
from typing import Any

import msgspec

from ..core.limits import MAX_HISTORY_PAGE_BYTES
from ..core.records import ActivityCompletion, DecisionCompletion
from .engine import RunResult, WorkflowService

#: ``iam``: the API checks SigV4 signatures (API Gateway's IAM authorization, or
#: ``cadenza dev --auth iam``); ``none``: it does not.
AUTH_ENV = "CADENZA_API_AUTH"


def cluster_info() -> dict[str, Any]:
    """What a worker that knows only the API URL needs in order to poll its task lists."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or None
    return {
        "region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        or "us-east-1",
        "sqs_endpoint_url": endpoint,
        "queue_prefix": os.environ["CADENZA_QUEUE_PREFIX"],
        # A worker that creates a task list's queues first gives them the stack's redrive.
        "task_list_dlq_arn": os.environ.get("CADENZA_TASK_LIST_DLQ_ARN", ""),
        # An emulator accepts any credentials; a worker without its own may use these.
        "emulated": endpoint is not None,
        # Whether calls must be SigV4-signed (the client signs whenever it is "iam").
        "auth": os.environ.get(AUTH_ENV) or "none",
    }


def history_page(
    service: WorkflowService,
    domain: str,
    workflow_id: str,
    run_id: str,
    *,
    page_size: int,
    page_token: str | None,
    wait_for_close_seconds: float,
) -> dict[str, Any]:
    """One page of a run's history, at most MAX_HISTORY_PAGE_BYTES of events as JSON.

    The store pages by whole commits and counts events; when the events of ``page_size``
    would be larger than the bound, the page is read again with half as many (fewer commits),
    down to one commit, whose size the per-field limits bound. A Lambda response (6 MB at
    most) therefore never overflows, whatever the payloads.
    """
    size = page_size
    while True:
        run, events, token = service.get_history(
            domain, workflow_id, run_id, page_size=size, page_token=page_token,
            wait_for_close_seconds=wait_for_close_seconds,
        )
        encoded = [e.to_dict() for e in events]
        if len(events) <= 1 or size <= 1 or _json_size(encoded) <= MAX_HISTORY_PAGE_BYTES:
            return {"run_id": run, "events": encoded, "next_page_token": token}
        size = max(1, min(size, len(events)) // 2)
        run_id, wait_for_close_seconds = run, 0.0  # the same run, without waiting again


def events_page(
    service: WorkflowService,
    domain: str,
    workflow_id: str,
    run_id: str,
    *,
    after_version: int,
    page_size: int,
) -> dict[str, Any]:
    """A worker's read of the commits after ``after_version``, bounded in bytes as
    :func:`history_page` is: fewer commits a page (``more`` says to read on), never a cut one."""
    size = page_size
    while True:
        events, version, more = service.history_after(
            domain, workflow_id, run_id, after_version=after_version, page_size=size)
        encoded = [e.to_dict() for e in events]
        if len(events) <= 1 or size <= 1 or _json_size(encoded) <= MAX_HISTORY_PAGE_BYTES:
            return {"events": encoded, "version": version, "more": more}
        size = max(1, min(size, len(events)) // 2)


def _json_size(value: Any) -> int:
    try:
        return len(msgspec.json.encode(value))
    except (TypeError, UnicodeEncodeError, OverflowError):
        return len(json.dumps(value, default=str).encode("utf-8", "surrogatepass"))


def run_result(result: RunResult) -> dict[str, Any]:
    return {"run_id": result.run_id, "status": str(result.status), **result.close_attributes}


def completion_answer(completion: DecisionCompletion) -> dict[str, Any]:
    """A decision completion's answer: the activity tasks started eagerly for its worker,
    each as the message a queue would have carried, with its start; the commit's events and
    version (a worker holding the run's history stays current)."""
    answer: dict[str, Any] = {"activity_tasks": [{
        "message": eager.message.encode(),
        "attempt": eager.start.attempt,
        "heartbeat_details": eager.start.heartbeat_details,
        "started_time": eager.start.started_time,
    } for eager in completion.activities]}
    if completion.version:
        answer["events"] = [e.to_dict() for e in completion.events]
        answer["version"] = completion.version
    return answer


def activity_completion_answer(completion: ActivityCompletion) -> dict[str, Any]:
    """An activity completion's answer: the decision task handed back, if any, as the message
    a queue would have carried, with the commit's events and version."""
    handed = completion.decision
    if handed is None:
        return {}
    return {"decision_task": {
        "message": handed.message.encode(),
        "events": [e.to_dict() for e in handed.events],
        "version": handed.version,
    }}
