"""Concurrent requests to the local stack's API each get their own body, query and answer.

The local runtime invokes the API function from many threads at once (a Lambda sandbox takes
one event at a time). powertools' resolver kept the current event in a class attribute, so
concurrent requests read each other's bodies: starts were recorded with another request's
input. The function now routes with its own table and keeps each request in locals.
"""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from cadenza.local import LocalStack

WORKFLOWS = "/api/v1/domains/default/workflows"
CONCURRENT = 48
ROUNDS = 4


@pytest.mark.usefixtures("frequent_thread_switches")
def test_concurrent_starts_each_record_their_own_input(local_stack: LocalStack) -> None:
    ids = [f"concurrent-{uuid.uuid4().hex[:10]}" for _ in range(CONCURRENT * ROUNDS)]

    def start(workflow_id: str) -> tuple[int, dict[str, object]]:
        with httpx.Client(base_url=local_stack.api_url, timeout=60) as http:
            response = http.post(WORKFLOWS, json={
                "workflow_id": workflow_id, "workflow_type": "SingleActivity",
                "task_list": f"nobody-{workflow_id}", "input": json.dumps(workflow_id),
                "execution_start_to_close_timeout_seconds": 60})
            return response.status_code, response.json()

    with ThreadPoolExecutor(CONCURRENT) as pool:
        answers = list(pool.map(start, ids))
    assert all(status == 201 for status, _ in answers), answers
    assert [answer["workflow_id"] for _, answer in answers] == ids

    with httpx.Client(base_url=local_stack.api_url, timeout=30) as http:
        for workflow_id in ids:
            history = http.get(f"{WORKFLOWS}/{workflow_id}/history").json()
            started = history["events"][0]
            assert started["event_type"] == "WorkflowExecutionStarted"
            assert json.loads(started["attributes"]["input"]) == workflow_id
            assert started["attributes"]["task_list"] == f"nobody-{workflow_id}"
            http.post(f"{WORKFLOWS}/{workflow_id}/terminate", json={"reason": "test over"})
