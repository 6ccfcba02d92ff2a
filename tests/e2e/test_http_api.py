"""The HTTP API over raw HTTP: typed errors for bad input, nothing half-written, paging, cluster."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from cadenza import Client, Worker
from cadenza.core import MAX_PAYLOAD_BYTES
from cadenza.local import LocalStack

from .workflows import reg

WORKFLOWS = "/api/v1/domains/default/workflows"


@pytest.fixture
def http(local_stack: LocalStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_stack.api_url, timeout=30) as client:
        yield client


def start_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "workflow_id": f"http-{uuid.uuid4().hex[:12]}",
        "workflow_type": "SingleActivity",
        "task_list": f"tl-{uuid.uuid4().hex[:8]}",
        "input": '"hi"',
        "execution_start_to_close_timeout_seconds": 30,
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code, body
    assert body["message"]
    return body


def bad_request(response: httpx.Response, field: str) -> dict[str, Any]:
    body = error_of(response, 400, "BadRequestError")
    assert body["details"]["field"] == field, body
    return body


def assert_not_written(http: httpx.Client, workflow_id: str) -> None:
    error_of(http.get(f"{WORKFLOWS}/{workflow_id}"), 404, "EntityNotExistsError")


# --- starting: bad input is refused with the field named, and nothing is written ---------------


def test_malformed_json_body_names_the_body(http: httpx.Client) -> None:
    response = http.post(WORKFLOWS, content=b'{"workflow_id": "x", oops',
                         headers={"content-type": "application/json"})
    assert "JSON" in bad_request(response, "body")["message"]


def test_body_that_is_not_an_object_names_the_body(http: httpx.Client) -> None:
    bad_request(http.post(WORKFLOWS, json=["not", "an", "object"]), "body")


def test_absurdly_nested_body_is_a_bad_request_not_a_crash(http: httpx.Client) -> None:
    depth = 100_000
    response = http.post(WORKFLOWS, content=b"[" * depth + b"]" * depth,
                         headers={"content-type": "application/json"})
    bad_request(response, "body")


def test_missing_task_list(http: httpx.Client) -> None:
    body = start_body(task_list=None)
    bad_request(http.post(WORKFLOWS, json=body), "task_list")
    assert_not_written(http, body["workflow_id"])


def test_missing_execution_timeout(http: httpx.Client) -> None:
    body = start_body(execution_start_to_close_timeout_seconds=None)
    field = "execution_start_to_close_timeout_seconds"
    answer = bad_request(http.post(WORKFLOWS, json=body), field)
    assert "execution_start_to_close_timeout_seconds" in answer["message"]
    assert_not_written(http, body["workflow_id"])


@pytest.mark.parametrize("value", ["30", "soon", True, [30], {"seconds": 30}, 0, -5])
def test_non_numeric_or_non_positive_timeout(http: httpx.Client, value: Any) -> None:
    body = start_body(execution_start_to_close_timeout_seconds=value)
    bad_request(http.post(WORKFLOWS, json=body), "execution_start_to_close_timeout_seconds")
    assert_not_written(http, body["workflow_id"])


@pytest.mark.parametrize(("literal", "field"), [
    # NaN and Infinity are not JSON (Python's own parser accepts them): the body is refused.
    ("NaN", "body"), ("Infinity", "body"), ("-Infinity", "body"),
    ("1e300", "execution_start_to_close_timeout_seconds"),
    ("1e400", "execution_start_to_close_timeout_seconds"),
])
def test_non_finite_or_absurd_timeout(http: httpx.Client, literal: str, field: str) -> None:
    body = start_body(task_start_to_close_timeout_seconds=5)
    text = json.dumps(body)[:-1] + f', "execution_start_to_close_timeout_seconds": {literal}}}'
    response = http.post(WORKFLOWS, content=text.encode(),
                         headers={"content-type": "application/json"})
    bad_request(response, field)
    assert_not_written(http, body["workflow_id"])


@pytest.mark.parametrize("domain", ["bad%20domain", "-leading-dash", "x" * 101, "d%C3%A9j%C3%A0"])
def test_bad_domain_name(http: httpx.Client, domain: str) -> None:
    response = http.post(f"/api/v1/domains/{domain}/workflows", json=start_body())
    bad_request(response, "domain")
    bad_request(http.get(f"/api/v1/domains/{domain}/workflows/anything"), "domain")


def test_oversized_input_is_413_naming_the_limit_and_writes_nothing(http: httpx.Client) -> None:
    body = start_body(input=json.dumps("x" * (MAX_PAYLOAD_BYTES + 10)))
    answer = error_of(http.post(WORKFLOWS, json=body), 413, "PayloadTooLargeError")
    assert answer["details"]["field"] == "input"
    assert answer["details"]["limit"] == MAX_PAYLOAD_BYTES
    assert str(MAX_PAYLOAD_BYTES) in answer["message"]
    assert_not_written(http, body["workflow_id"])
    listed = http.get(WORKFLOWS, params={"workflow_id": body["workflow_id"]}).json()
    assert listed["executions"] == []


def test_input_at_the_limit_is_accepted(http: httpx.Client) -> None:
    payload = json.dumps("x" * (MAX_PAYLOAD_BYTES - 2))
    assert len(payload.encode()) == MAX_PAYLOAD_BYTES
    body = start_body(input=payload)
    response = http.post(WORKFLOWS, json=body)
    assert response.status_code == 201, response.text
    http.post(f"{WORKFLOWS}/{body['workflow_id']}/terminate", json={"reason": "cleanup"})


def test_start_answers_201_with_the_ids(http: httpx.Client) -> None:
    body = start_body()
    response = http.post(WORKFLOWS, json=body)
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["workflow_id"] == body["workflow_id"] and answer["run_id"]
    described = http.get(f"{WORKFLOWS}/{body['workflow_id']}").json()
    assert described["run_id"] == answer["run_id"] and described["status"] == "OPEN"
    assert described["task_list"] == body["task_list"]


def test_duplicate_start_is_409_with_the_running_run_id(http: httpx.Client) -> None:
    body = start_body()
    first = http.post(WORKFLOWS, json=body).json()
    answer = error_of(http.post(WORKFLOWS, json=body), 409,
                      "WorkflowExecutionAlreadyStartedError")
    assert answer["details"]["run_id"] == first["run_id"]
    # The refused start changed nothing: still one run with its two first events.
    described = http.get(f"{WORKFLOWS}/{body['workflow_id']}").json()
    assert described["run_id"] == first["run_id"] and described["history_length"] == 2


# --- reading -----------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "/history", "/result"])
def test_unknown_workflow_is_404(http: httpx.Client, suffix: str) -> None:
    workflow_id = f"missing-{uuid.uuid4().hex}"
    answer = error_of(http.get(f"{WORKFLOWS}/{workflow_id}{suffix}"), 404,
                      "EntityNotExistsError")
    assert answer["details"]["workflow_id"] == workflow_id
    assert workflow_id in answer["message"]


def test_unknown_workflow_terminate_is_404(http: httpx.Client) -> None:
    error_of(http.post(f"{WORKFLOWS}/missing-{uuid.uuid4().hex}/terminate", json={}), 404,
             "EntityNotExistsError")


def test_unknown_run_of_a_known_workflow_is_404(http: httpx.Client) -> None:
    body = start_body()
    http.post(WORKFLOWS, json=body)
    answer = error_of(http.get(f"{WORKFLOWS}/{body['workflow_id']}",
                               params={"run_id": "no-such-run"}), 404, "EntityNotExistsError")
    assert answer["details"]["run_id"] == "no-such-run"


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/v1"),  # not "/": the local stack serves its web UI there
    ("GET", "/api/v1/nothing-here"),
    ("GET", "/api/v2/cluster"),
    ("DELETE", f"{WORKFLOWS}/some-id"),
    ("POST", "/api/v1/tasks/decision/explode"),
])
def test_unknown_route_is_404(http: httpx.Client, method: str, path: str) -> None:
    response = http.request(method, path)
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "NotFound"


@pytest.mark.parametrize(("name", "value"), [
    ("page_size", "many"), ("page_size", "nan"), ("page_size", "inf"), ("page_size", "0"),
    ("wait_for_close_seconds", "nan"), ("wait_for_close_seconds", "later"),
])
def test_bad_history_query_parameters(http: httpx.Client, name: str, value: str) -> None:
    body = start_body()
    http.post(WORKFLOWS, json=body)
    response = http.get(f"{WORKFLOWS}/{body['workflow_id']}/history", params={name: value})
    bad_request(response, name)


@pytest.mark.parametrize(("name", "value"), [
    ("page_size", "inf"), ("page_size", "0"), ("page_size", "5000"), ("status", "sideways"),
    ("next_page_token", "garbage"),
])
def test_bad_list_query_parameters(http: httpx.Client, name: str, value: str) -> None:
    bad_request(http.get(WORKFLOWS, params={name: value}), name)


def test_bad_result_wait(http: httpx.Client) -> None:
    body = start_body()
    http.post(WORKFLOWS, json=body)
    bad_request(http.get(f"{WORKFLOWS}/{body['workflow_id']}/result",
                         params={"wait_seconds": "nan"}), "wait_seconds")


async def test_history_pages_are_dense_across_next_page_tokens(
    http: httpx.Client, client: Client, task_list: str,
) -> None:
    async with Worker(client, task_list, reg, poll_wait_seconds=1):
        execution = await client.start_workflow(
            "SingleActivity", "paged", task_list=task_list,
            execution_start_to_close_timeout=timedelta(seconds=30))
        assert await client.get_workflow_result(execution.workflow_id, timeout=30) == "paged"
    path = f"{WORKFLOWS}/{execution.workflow_id}/history"
    pages: list[list[dict[str, Any]]] = []
    token: str | None = None
    while True:
        params: dict[str, Any] = {"page_size": 2, "run_id": execution.run_id}
        if token:
            params["next_page_token"] = token
        response = http.get(path, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["run_id"] == execution.run_id
        pages.append(page["events"])
        token = page["next_page_token"]
        if not token:
            break
        assert len(pages) < 20, "paging does not end"
    # A page holds whole commits: at least page_size events, but for the last one.
    assert len(pages) >= 3
    assert all(len(page) >= 2 for page in pages[:-1]) and pages[-1]
    events = [event for page in pages for event in page]
    assert [e["event_id"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["event_type"] == "WorkflowExecutionStarted"
    assert events[-1]["event_type"] == "WorkflowExecutionCompleted"
    # One page of everything says the same.
    whole = http.get(path, params={"run_id": execution.run_id}).json()
    assert whole["events"] == events and whole["next_page_token"] is None


def test_page_token_of_another_run_or_a_forged_one_is_refused(http: httpx.Client) -> None:
    ids = []
    for _ in range(2):
        body = start_body()
        http.post(WORKFLOWS, json=body)
        http.post(f"{WORKFLOWS}/{body['workflow_id']}/terminate", json={"reason": "paging"})
        ids.append(body["workflow_id"])
    first = http.get(f"{WORKFLOWS}/{ids[0]}/history", params={"page_size": 1}).json()
    token = first["next_page_token"]
    assert token
    # The token continues its own history ...
    rest = http.get(f"{WORKFLOWS}/{ids[0]}/history", params={"next_page_token": token}).json()
    assert [e["event_id"] for e in first["events"] + rest["events"]] == [1, 2, 3]
    # ... and no other: not another workflow's, not the run listing's.
    bad_request(http.get(f"{WORKFLOWS}/{ids[1]}/history", params={"next_page_token": token}),
                "next_page_token")
    bad_request(http.get(WORKFLOWS, params={"next_page_token": token}), "next_page_token")

    def forged(key: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()

    pk = {"S": f"default#{ids[0]}"}
    for key in ({"pk": pk, "sk": 5}, {"pk": pk, "sk": {"N": "5"}},
                {"pk": pk, "sk": {"S": "another-run#0000000001"}}, [1, 2], "x"):
        bad_request(http.get(f"{WORKFLOWS}/{ids[0]}/history",
                             params={"next_page_token": forged(key)}), "next_page_token")


def test_list_page_token_is_bound_to_its_domain_and_status(http: httpx.Client) -> None:
    for _ in range(2):
        body = start_body()
        http.post(WORKFLOWS, json=body)
        http.post(f"{WORKFLOWS}/{body['workflow_id']}/terminate", json={})
    # Visibility is written from the stream: wait for two closed runs to be listed.
    deadline = time.monotonic() + 10
    while True:
        page = http.get(WORKFLOWS, params={"status": "closed", "page_size": 1}).json()
        if page["next_page_token"] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    token = page["next_page_token"]
    assert token and len(page["executions"]) == 1
    following = http.get(WORKFLOWS, params={"status": "closed", "page_size": 1,
                                            "next_page_token": token})
    assert following.status_code == 200
    assert following.json()["executions"][0]["run_id"] != page["executions"][0]["run_id"]
    bad_request(http.get(WORKFLOWS, params={"status": "open", "next_page_token": token}),
                "next_page_token")
    bad_request(http.get("/api/v1/domains/elsewhere/workflows",
                         params={"status": "closed", "next_page_token": token}),
                "next_page_token")


# --- task completions ----------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


FORGED_BODY = _b64(json.dumps(["default", "w", "r", "activity", 5, 0]).encode())


@pytest.mark.parametrize("token", [
    "garbage",
    "a.b",
    "!!!.@@@",
    "é.é",
    f"{FORGED_BODY}.{_b64(b'0' * 20)}",  # well-formed, but not signed with this stack's secret
])
def test_forged_or_garbage_task_token_is_400(http: httpx.Client, token: str) -> None:
    response = http.post("/api/v1/tasks/activity/complete",
                         json={"task_token": token, "result": '"x"'})
    bad_request(response, "task_token")


@pytest.mark.parametrize("path", [
    "/api/v1/tasks/activity/complete", "/api/v1/tasks/activity/fail",
    "/api/v1/tasks/decision/complete", "/api/v1/tasks/decision/fail",
])
def test_missing_or_non_string_task_token_is_400(http: httpx.Client, path: str) -> None:
    body = {"reason": "r", "cause": "c", "history_length": 3,
            "started_at": "2024-01-01T00:00:00+00:00"}
    bad_request(http.post(path, json=body), "task_token")
    bad_request(http.post(path, json={**body, "task_token": 12}), "task_token")


async def test_task_completions_check_their_fields(
    http: httpx.Client, local_stack: LocalStack,
) -> None:
    """With a real decision token: naive or missing started_at and bad history_length are 400."""
    from cadenza.core import TaskKind
    from cadenza.service import service_from_environment

    body = start_body()
    http.post(WORKFLOWS, json=body)
    service = service_from_environment(local_stack.environment)
    (message,) = service.queues.receive(  # type: ignore[attr-defined]
        "default", body["task_list"], TaskKind.DECISION, wait_seconds=1)
    token = message.message.task_token
    fail = {"task_token": token, "cause": "c"}
    answer = bad_request(http.post("/api/v1/tasks/decision/fail", json=fail), "started_at")
    assert "required" in answer["message"]
    bad_request(http.post("/api/v1/tasks/decision/fail",
                          json={**fail, "started_at": "yesterday"}), "started_at")
    bad_request(http.post("/api/v1/tasks/decision/fail",
                          json={**fail, "started_at": "2024-01-01T00:00:00"}), "started_at")
    complete = {"task_token": token, "decisions": [], "started_at": "2024-01-01T00:00:00+00:00"}
    for length in (None, "3", True, 2.5):
        bad_request(http.post("/api/v1/tasks/decision/complete",
                              json={**complete, "history_length": length}), "history_length")
    bad_request(http.post("/api/v1/tasks/decision/complete",
                          json={**complete, "history_length": 3, "decisions": {}}), "decisions")
    # A decision token is not an activity token.
    bad_request(http.post("/api/v1/tasks/activity/complete", json={"task_token": token}),
                "task_token")
    # Nothing of that touched the run.
    described = http.get(f"{WORKFLOWS}/{body['workflow_id']}").json()
    assert described["history_length"] == 2 and described["status"] == "OPEN"


# --- cluster -----------------------------------------------------------------------------------


def test_cluster_tells_workers_where_the_queues_are(
    http: httpx.Client, local_stack: LocalStack,
) -> None:
    response = http.get("/api/v1/cluster")
    assert response.status_code == 200
    info = response.json()
    assert info["region"] == local_stack.environment["AWS_REGION"]
    assert info["sqs_endpoint_url"] == local_stack.emulator_endpoint
    assert info["queue_prefix"] == local_stack.environment["CADENZA_QUEUE_PREFIX"]
    assert info["queue_prefix"]
    assert info["emulated"] is True
    assert info["auth"] == "none"  # template.yaml says iam; this stack enforces nothing


# --- abuse over the wire: limits in bytes, surrogates, traversal, size, the document ----------


def test_a_700_character_non_ascii_workflow_id_is_a_400_not_a_500(http: httpx.Client) -> None:
    from cadenza.core.limits import MAX_ID_BYTES

    workflow_id = "日" * 700  # 2,100 bytes: past DynamoDB's key limit
    answer = bad_request(http.post(WORKFLOWS, json=start_body(workflow_id=workflow_id)),
                         "workflow_id")
    assert answer["details"]["limit"] == MAX_ID_BYTES
    # Reading it back is refused the same way (the path's id is over the limit too): a 400,
    # where DynamoDB's key error used to make it a 500.
    bad_request(http.get(f"{WORKFLOWS}/{workflow_id}"), "workflow_id")


def test_a_2000_character_workflow_id_is_refused(http: httpx.Client) -> None:
    workflow_id = "w" * 2000
    bad_request(http.post(WORKFLOWS, json=start_body(workflow_id=workflow_id)), "workflow_id")
    bad_request(http.get(f"{WORKFLOWS}/{workflow_id}"), "workflow_id")


@pytest.mark.parametrize("field", ["workflow_id", "input", "identity"])
def test_a_lone_surrogate_is_a_400(http: httpx.Client, field: str) -> None:
    body = start_body()
    text = json.dumps({**body, field: "bad\ud800"})  # the escape \ud800, as JSON allows
    assert "\\ud800" in text
    response = http.post(WORKFLOWS, content=text.encode(),
                         headers={"content-type": "application/json"})
    error_of(response, 400, "BadRequestError")
    assert_not_written(http, body["workflow_id"])


@pytest.mark.parametrize("suffix", ["signal", "terminate"])
def test_a_lone_surrogate_in_a_signal_name_or_reason_is_not_written(
    http: httpx.Client, suffix: str,
) -> None:
    body = start_body()
    assert http.post(WORKFLOWS, json=body).status_code == 201
    field = {"signal": "signal_name", "terminate": "reason"}[suffix]
    text = json.dumps({field: "x\udc00"})
    response = http.post(f"{WORKFLOWS}/{body['workflow_id']}/{suffix}", content=text.encode(),
                         headers={"content-type": "application/json"})
    error_of(response, 400, "BadRequestError")
    described = http.get(f"{WORKFLOWS}/{body['workflow_id']}").json()
    assert described["history_length"] == 2 and described["status"] == "OPEN"


def test_memo_of_2_mb_repetitive_text_is_refused_before_compression(http: httpx.Client) -> None:
    from cadenza.core.limits import MAX_MEMO_BYTES

    body = start_body(memo={"text": "a" * (MAX_MEMO_BYTES + 1)})
    answer = bad_request(http.post(WORKFLOWS, json=body), "memo")
    assert answer["details"]["limit"] == MAX_MEMO_BYTES
    assert_not_written(http, body["workflow_id"])


def test_a_body_over_the_limit_is_413_naming_it(http: httpx.Client) -> None:
    from cadenza.core.limits import MAX_BODY_BYTES

    body = start_body(identity="i" * (MAX_BODY_BYTES + 10))
    answer = error_of(http.post(WORKFLOWS, json=body), 413, "PayloadTooLargeError")
    assert answer["details"]["field"] == "body"
    assert answer["details"]["limit"] == MAX_BODY_BYTES
    assert_not_written(http, body["workflow_id"])


@pytest.mark.parametrize("workflow_id", ["..%2F..%2Fcluster", "%2E%2E", "a%2F..%2Fb"])
def test_a_path_with_an_encoded_traversal_is_refused(http: httpx.Client, workflow_id: str) -> None:
    bad_request(http.get(f"{WORKFLOWS}/{workflow_id}"), "workflow_id")
    bad_request(http.post(f"{WORKFLOWS}/{workflow_id}/terminate", json={}), "workflow_id")


def test_a_mistyped_field_names_it_and_unknown_fields_are_ignored(http: httpx.Client) -> None:
    body = start_body(task_list=["not", "a", "string"])
    answer = bad_request(http.post(WORKFLOWS, json=body), "task_list")
    assert "task_list" in answer["message"]
    assert_not_written(http, body["workflow_id"])
    accepted = start_body(some_future_option={"x": 1})
    assert http.post(WORKFLOWS, json=accepted).status_code == 201
    http.post(f"{WORKFLOWS}/{accepted['workflow_id']}/terminate", json={"reason": "cleanup"})


def test_the_openapi_document_is_served(http: httpx.Client) -> None:
    from cadenza.service.openapi import openapi_document

    response = http.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.headers["content-type"].startswith(
        "application/json")
    document = response.json()
    assert document == json.loads(json.dumps(openapi_document()))
    assert "/api/v1/tasks/activity/complete" in document["paths"]
