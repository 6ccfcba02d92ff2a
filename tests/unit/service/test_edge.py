"""Bad input and abuse at the API's edge, through the route table with an in-memory service.

Each case is sent as the Lambda front end sends it (the body's bytes, path segments still
percent-encoded) and asserts the status, the error's type and field, and that nothing was
written: the run is absent, or its history is exactly as long as before.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from cadenza.core.limits import (
    MAX_BODY_BYTES,
    MAX_HISTORY_PAGE_BYTES,
    MAX_ID_BYTES,
    MAX_IDENTITY_BYTES,
    MAX_MEMO_BYTES,
    MAX_PAYLOAD_BYTES,
    MAX_REQUEST_ID_BYTES,
    MAX_SEARCH_ATTRIBUTES_BYTES,
)
from cadenza.error import (
    BadRequestError,
    EntityNotExistsError,
    PayloadTooLargeError,
    ServiceError,
)
from cadenza.service import WorkflowService
from cadenza.service.routes import ApiRequest, match
from cadenza.service.tokens import TaskTokens
from cadenza.testing._memory import (
    InMemoryHistoryStore,
    InMemoryQueryAnswers,
    InMemoryTaskQueues,
    InMemoryVisibility,
    VirtualClock,
)

WORKFLOWS = "/api/v1/domains/default/workflows"


@pytest.fixture
def service() -> WorkflowService:
    clock = VirtualClock(datetime(2026, 1, 1, tzinfo=UTC))
    return WorkflowService(
        store=InMemoryHistoryStore(), queues=InMemoryTaskQueues(clock, lambda: None),
        visibility=InMemoryVisibility(), answers=InMemoryQueryAnswers(),
        tokens=TaskTokens("edge-tests"), clock=clock.now)


def send(service: WorkflowService, method: str, path: str, body: Any = None, *,
         raw: bytes | None = None, query: dict[str, str] | None = None) -> tuple[int, Any]:
    """(status, answer or error) as the api function would answer ``method path``."""
    found = match(method, path.split("?")[0])
    assert found is not None, path
    route, params = found
    if raw is None and body is not None:
        raw = json.dumps(body).encode()
    try:
        answer = route.handler(service, ApiRequest(path_params=params, query=query or {},
                                                   raw_body=raw))
    except ServiceError as error:
        return error.status, error
    return answer.status, answer.body


def refused(service: WorkflowService, status: int, error_type: type[ServiceError], field: str,
            method: str, path: str, body: Any = None, **options: Any) -> ServiceError:
    got, error = send(service, method, path, body, **options)
    assert got == status, error
    assert type(error) is error_type, error
    assert isinstance(error, BadRequestError) and error.field == field, error.details
    return error


def start_body(**overrides: Any) -> dict[str, Any]:
    return {"workflow_id": "wf-1", "workflow_type": "T", "task_list": "tl",
            "execution_start_to_close_timeout_seconds": 60, **overrides}


def assert_absent(service: WorkflowService, workflow_id: str = "wf-1") -> None:
    with pytest.raises(EntityNotExistsError):
        service.describe_workflow("default", workflow_id, "")


def started(service: WorkflowService, workflow_id: str = "wf-1") -> int:
    """Start a run; its history length."""
    status, _ = send(service, "POST", WORKFLOWS, start_body(workflow_id=workflow_id))
    assert status == 201
    return history_length(service, workflow_id)


def history_length(service: WorkflowService, workflow_id: str = "wf-1") -> int:
    return int(service.describe_workflow("default", workflow_id, "")["history_length"])


# --- ids: bytes, not characters ---------------------------------------------------------------


def test_a_700_character_non_ascii_workflow_id_is_2100_bytes_and_refused(
    service: WorkflowService,
) -> None:
    workflow_id = "日" * 700  # 700 characters, 2,100 bytes
    assert len(workflow_id.encode()) == 2100
    error = refused(service, 400, BadRequestError, "workflow_id", "POST", WORKFLOWS,
                    start_body(workflow_id=workflow_id))
    assert error.details["limit"] == MAX_ID_BYTES and error.details["size"] == 2100
    assert_absent(service, workflow_id)


def test_a_2000_character_workflow_id_is_refused(service: WorkflowService) -> None:
    refused(service, 400, BadRequestError, "workflow_id", "POST", WORKFLOWS,
            start_body(workflow_id="w" * 2000))
    assert_absent(service, "w" * 2000)


def test_an_id_at_the_byte_limit_is_accepted(service: WorkflowService) -> None:
    workflow_id = "日" * (MAX_ID_BYTES // 3) + "x" * (MAX_ID_BYTES % 3)
    assert len(workflow_id.encode()) == MAX_ID_BYTES
    assert started(service, workflow_id) == 2


def test_an_over_long_workflow_id_in_the_path_is_refused(service: WorkflowService) -> None:
    started(service)
    path = f"{WORKFLOWS}/{'%E6%97%A5' * 400}/signal"
    refused(service, 400, BadRequestError, "workflow_id", "POST", path, {"signal_name": "s"})


# --- lone surrogates, anywhere -----------------------------------------------------------------


@pytest.mark.parametrize("field", ["workflow_id", "workflow_type", "task_list", "input",
                                   "identity", "request_id"])
def test_a_lone_surrogate_in_a_start_is_refused(service: WorkflowService, field: str) -> None:
    raw = json.dumps(start_body(**{field: "ok\ud800"})).encode()  # sent as the escape \\ud800
    assert b"\\ud800" in raw
    got, error = send(service, "POST", WORKFLOWS, raw=raw)
    assert got == 400 and type(error) is BadRequestError, error
    assert_absent(service)
    # From an in-process caller, the string itself: refused naming the field.
    found = match("POST", WORKFLOWS)
    assert found is not None
    with pytest.raises(BadRequestError) as caught:
        found[0].handler(service, ApiRequest(path_params=found[1],
                                             body=start_body(**{field: "ok\ud800"})))
    assert caught.value.field == field
    assert_absent(service)


def test_a_lone_surrogate_nested_in_the_memo_is_refused(service: WorkflowService) -> None:
    found = match("POST", WORKFLOWS)
    assert found is not None
    with pytest.raises(BadRequestError) as caught:
        found[0].handler(service, ApiRequest(path_params=found[1], body=start_body(
            memo={"a": ["fine", {"b": "\udfff"}]})))
    assert caught.value.field == "memo"
    assert_absent(service)


@pytest.mark.parametrize(("suffix", "body"), [
    ("/signal", {"signal_name": "go\ud800"}),
    ("/signal", {"signal_name": "go", "input": "\"\ud800\""}),
    ("/terminate", {"reason": "stop\udc00"}),
    ("/cancel", {"cause": "\ud83d"}),
])
def test_a_lone_surrogate_in_a_signal_or_a_reason_is_not_written(
    service: WorkflowService, suffix: str, body: dict[str, Any],
) -> None:
    before = started(service)
    found = match("POST", f"{WORKFLOWS}/wf-1{suffix}")
    assert found is not None
    with pytest.raises(BadRequestError) as caught:
        found[0].handler(service, ApiRequest(path_params=found[1], body=body))
    assert caught.value.status == 400 and caught.value.field in body
    assert history_length(service) == before
    assert service.describe_workflow("default", "wf-1", "")["status"] == "OPEN"


def test_a_percent_encoded_path_that_is_not_utf8_is_refused(service: WorkflowService) -> None:
    started(service)
    for segment in ("%ED%A0%80", "%FF", "a%C3"):  # an encoded surrogate, stray bytes
        with pytest.raises(BadRequestError) as caught:
            match("POST", f"{WORKFLOWS}/{segment}/signal")
        assert caught.value.field == "workflow_id"
    assert history_length(service) == 2


# --- every field has a limit, checked before compression ---------------------------------------


@pytest.mark.parametrize(("field", "value", "limit", "error_type", "status"), [
    ("identity", "a" * (MAX_BODY_BYTES // 2), MAX_IDENTITY_BYTES, BadRequestError, 400),
    ("request_id", "r" * (MAX_REQUEST_ID_BYTES + 1), MAX_REQUEST_ID_BYTES, BadRequestError,
     400),
    ("memo", {"text": "m" * (MAX_MEMO_BYTES + 1)}, MAX_MEMO_BYTES, BadRequestError, 400),
    ("search_attributes", {"CustomText": "s" * MAX_SEARCH_ATTRIBUTES_BYTES},
     MAX_SEARCH_ATTRIBUTES_BYTES, BadRequestError, 400),
    ("input", json.dumps("x" * MAX_PAYLOAD_BYTES), MAX_PAYLOAD_BYTES, PayloadTooLargeError,
     413),
])
def test_repetitive_text_over_a_field_limit_is_refused(
    service: WorkflowService, field: str, value: Any, limit: int,
    error_type: type[ServiceError], status: int,
) -> None:
    # Repetitive text compresses to almost nothing: the limit counts the text as sent.
    error = refused(service, status, error_type, field, "POST", WORKFLOWS,
                    start_body(**{field: value}))
    assert error.details["limit"] == limit and str(limit) in error.message
    assert_absent(service)


@pytest.mark.parametrize(("suffix", "body", "field"), [
    ("/signal", {"signal_name": "s" * (MAX_ID_BYTES + 1)}, "signal_name"),
    ("/signal", {"signal_name": "s", "identity": "i" * (MAX_IDENTITY_BYTES + 1)}, "identity"),
    ("/terminate", {"reason": "r" * 1001}, "reason"),
    ("/cancel", {"cause": "日" * 334}, "cause"),
    ("/terminate", {"request_id": "q" * (MAX_REQUEST_ID_BYTES + 1)}, "request_id"),
])
def test_over_long_fields_of_a_running_workflow_change_nothing(
    service: WorkflowService, suffix: str, body: dict[str, Any], field: str,
) -> None:
    before = started(service)
    refused(service, 400, BadRequestError, field, "POST", f"{WORKFLOWS}/wf-1{suffix}", body)
    assert history_length(service) == before


def test_a_body_over_the_limit_is_refused_before_it_is_read(service: WorkflowService) -> None:
    raw = b"{" + b" " * MAX_BODY_BYTES + b"}"  # not even parsed: its size is enough
    error = refused(service, 413, PayloadTooLargeError, "body", "POST", WORKFLOWS, raw=raw)
    assert error.details["limit"] == MAX_BODY_BYTES and str(MAX_BODY_BYTES) in error.message
    assert_absent(service)


# --- malformed and mistyped bodies -------------------------------------------------------------


@pytest.mark.parametrize("raw", [
    b'{"workflow_id": "x", oops', b"[1, 2]", b'"text"', b"\xff\xfe", b"{" * 10_000,
    b"[" * 100_000 + b"]" * 100_000, b'{"workflow_id": NaN}',
])
def test_malformed_json_is_a_400_naming_the_body(service: WorkflowService, raw: bytes) -> None:
    refused(service, 400, BadRequestError, "body", "POST", WORKFLOWS, raw=raw)
    assert_absent(service)


@pytest.mark.parametrize(("field", "value"), [
    ("workflow_id", 5), ("task_list", ["tl"]), ("input", {"a": 1}), ("memo", "text"),
    ("execution_start_to_close_timeout_seconds", "60"),
    ("execution_start_to_close_timeout_seconds", True),
    ("delay_start_seconds", -1), ("retry_policy", 3),
])
def test_a_mistyped_field_is_named(service: WorkflowService, field: str, value: Any) -> None:
    error = refused(service, 400, BadRequestError, field, "POST", WORKFLOWS,
                    start_body(**{field: value}))
    assert field in error.message
    assert_absent(service)


def test_unknown_fields_are_ignored(service: WorkflowService) -> None:
    status, answer = send(service, "POST", WORKFLOWS,
                          start_body(surprise={"nested": True}, another=1))
    assert status == 201 and answer["workflow_id"] == "wf-1"


# --- paths and tokens --------------------------------------------------------------------------


@pytest.mark.parametrize("workflow_id", ["..", ".", "..%2F..%2Fcluster", "a%2F..%2Fb",
                                         "%2E%2E", "x%2F.%2Fy"])
def test_an_encoded_traversal_in_the_path_is_refused(
    service: WorkflowService, workflow_id: str,
) -> None:
    refused(service, 400, BadRequestError, "workflow_id", "POST",
            f"{WORKFLOWS}/{workflow_id}/terminate", {"reason": "r"})
    refused(service, 400, BadRequestError, "workflow_id", "GET", f"{WORKFLOWS}/{workflow_id}")


def test_a_slash_inside_an_id_is_still_fine(service: WorkflowService) -> None:
    assert started(service, "orders/2026/1") == 2
    status, answer = send(service, "GET", f"{WORKFLOWS}/orders%2F2026%2F1")
    assert status == 200 and answer["workflow_id"] == "orders/2026/1"


@pytest.mark.parametrize("path", [
    "/api/v1/tasks/activity/complete", "/api/v1/tasks/activity/fail",
    "/api/v1/tasks/activity/heartbeat", "/api/v1/tasks/activity/start",
    "/api/v1/tasks/decision/complete", "/api/v1/tasks/decision/fail",
    "/api/v1/tasks/query/answer", "/api/v1/tasks/activity/cancel",
])
def test_a_forged_task_token_is_a_typed_400(service: WorkflowService, path: str) -> None:
    before = started(service)
    genuine_looking = TaskTokens("another-stack").issue(  # signed, but with another secret
        _first_decision_task(service))
    body = {"task_token": genuine_looking, "reason": "r", "cause": "c", "history_length": 2,
            "started_at": "2026-01-01T00:00:00+00:00"}
    refused(service, 400, BadRequestError, "task_token", "POST", path, body)
    refused(service, 400, BadRequestError, "task_token", "POST", path,
            {**body, "task_token": "not.a-token"})
    assert history_length(service) == before


def _first_decision_task(service: WorkflowService) -> Any:
    """The run's first decision task, as a token names it."""
    from cadenza.core import TaskKind

    run_id = service.describe_workflow("default", "wf-1", "")["run_id"]
    return SimpleNamespace(domain="default", workflow_id="wf-1", run_id=run_id,
                           kind=TaskKind.DECISION, scheduled_event_id=2, attempt=0)


# --- history pages are bounded in bytes --------------------------------------------------------


def test_history_pages_stay_under_the_byte_bound_and_lose_nothing(
    service: WorkflowService,
) -> None:
    started(service)
    big = json.dumps("p" * (MAX_PAYLOAD_BYTES - 100))
    for index in range(20):  # 20 commits of ~128 KB: 2.5 MB of history
        status, _ = send(service, "POST", f"{WORKFLOWS}/wf-1/signal",
                         {"signal_name": f"s{index}", "input": big})
        assert status == 200
    events: list[dict[str, Any]] = []
    token = ""
    for _ in range(100):
        query = {"page_size": "1000", **({"next_page_token": token} if token else {})}
        status, page = send(service, "GET", f"{WORKFLOWS}/wf-1/history", query=query)
        assert status == 200
        assert len(json.dumps(page["events"]).encode()) <= MAX_HISTORY_PAGE_BYTES
        events.extend(page["events"])
        token = page["next_page_token"] or ""
        if not token:
            break
    assert [e["event_id"] for e in events] == list(range(1, history_length(service) + 1))
    assert sum(e["event_type"] == "WorkflowExecutionSignaled" for e in events) == 20
    # A worker's read of the commits after a version is bounded the same way.
    run_id = service.describe_workflow("default", "wf-1", "")["run_id"]
    read: list[dict[str, Any]] = []
    version, more = 0, True
    while more:
        status, page = send(service, "GET", f"{WORKFLOWS}/wf-1/events", query={
            "run_id": run_id, "after_version": str(version), "page_size": "1000"})
        assert status == 200
        assert len(json.dumps(page["events"]).encode()) <= MAX_HISTORY_PAGE_BYTES
        read.extend(page["events"])
        version, more = page["version"], page["more"]
        assert len(read) <= len(events)
    assert read == events
