"""Wire shapes of the HTTP API's answers, shared by the api function and its tests."""

from __future__ import annotations

import os
from typing import Any

from .engine import RunResult, WorkflowService


def cluster_info() -> dict[str, Any]:
    """What a worker that knows only the API URL needs in order to poll its task lists."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or None
    return {
        "region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        or "us-east-1",
        "sqs_endpoint_url": endpoint,
        "queue_prefix": os.environ["CADENZA_QUEUE_PREFIX"],
        # An emulator accepts any credentials; a worker without its own may use these.
        "emulated": endpoint is not None,
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
    run, events, token = service.get_history(
        domain, workflow_id, run_id, page_size=page_size, page_token=page_token,
        wait_for_close_seconds=wait_for_close_seconds,
    )
    return {"run_id": run, "events": [e.to_dict() for e in events], "next_page_token": token}


def run_result(result: RunResult) -> dict[str, Any]:
    return {"run_id": result.run_id, "status": str(result.status), **result.close_attributes}
