"""The HTTP API's route table (cadenza.service.routes): matching, request parsing, handlers."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace
from typing import Any, cast

import pytest

from cadenza.core.records import DecisionCompletion
from cadenza.error import BadRequestError
from cadenza.service import WorkflowService
from cadenza.service.routes import ROUTES, ApiRequest, ApiResponse, Route, match

WORKFLOW = "/api/v1/domains/<domain>/workflows/<workflow_id>"
SAMPLE = {"domain": "default", "workflow_id": "wf-1"}


def concrete(route: Route, **values: str) -> str:
    path = route.path
    for name, value in {**SAMPLE, **values}.items():
        path = path.replace(f"<{name}>", value)
    return path


def test_routes_are_the_api_of_the_lambda_function() -> None:
    assert {(r.method, r.path) for r in ROUTES} == {
        ("GET", "/api/v1/cluster"),
        ("GET", "/api/v1/openapi.json"),
        ("POST", "/api/v1/domains/<domain>/workflows"),
        ("POST", "/api/v1/domains/<domain>/signal-with-start"),
        ("GET", "/api/v1/domains/<domain>/workflows"),
        ("GET", WORKFLOW),
        ("GET", f"{WORKFLOW}/history"),
        ("GET", f"{WORKFLOW}/events"),
        ("GET", f"{WORKFLOW}/result"),
        ("POST", f"{WORKFLOW}/signal"),
        ("POST", f"{WORKFLOW}/query"),
        ("POST", "/api/v1/tasks/query/answer"),
        ("POST", f"{WORKFLOW}/cancel"),
        ("POST", f"{WORKFLOW}/terminate"),
        ("POST", f"{WORKFLOW}/reset"),
        ("POST", "/api/v1/tasks/decision/complete"),
        ("POST", "/api/v1/tasks/decision/fail"),
        ("POST", "/api/v1/tasks/activity/start"),
        ("POST", "/api/v1/tasks/activity/heartbeat"),
        ("POST", "/api/v1/tasks/activity/cancel"),
        ("POST", "/api/v1/tasks/activity/complete"),
        ("POST", "/api/v1/tasks/activity/fail"),
    }
    assert len(ROUTES) == len({(r.method, r.path) for r in ROUTES})
    assert {r.path for r in ROUTES if r.waits} == {
        f"{WORKFLOW}/history", f"{WORKFLOW}/result", f"{WORKFLOW}/query",
    }


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_each_route_matches_its_own_paths_only(route: Route) -> None:
    found = match(route.method, concrete(route))

    assert found is not None
    assert found[0] is route
    assert found[1] == {name: SAMPLE[name] for name in route.pattern.groupindex}
    assert match(route.method.lower(), concrete(route)) == found
    other = "POST" if route.method == "GET" else "GET"
    assert all(r is not route for r, _ in filter(None, [match(other, concrete(route))]))


def test_path_params_are_url_decoded_per_segment() -> None:
    found = match("GET", "/api/v1/domains/my%2Ddomain/workflows/a%2Fb%20c/history")

    assert found is not None
    route, params = found
    assert route.path == f"{WORKFLOW}/history"
    assert params == {"domain": "my-domain", "workflow_id": "a/b c"}


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/v1/domains/default/workflows/a/b"),  # '/' is not part of a segment
    ("GET", "/api/v1/domains//workflows"),  # a placeholder needs at least one character
    ("GET", "/api/v1/cluster/"),
    ("GET", "/api/v1/clusterx"),
    ("GET", "/prefix/api/v1/cluster"),
    ("DELETE", "/api/v1/cluster"),
    ("GET", "/api/v1/tasks/activity/complete"),  # POST only
    ("POST", "/api/v1/domains/default/workflows/wf/history"),  # GET only
])
def test_no_route(method: str, path: str) -> None:
    assert match(method, path) is None


def test_literal_parts_are_not_regex() -> None:
    route = Route("GET", "/a.b/<x>", lambda s, r: ApiResponse(200, {}))

    assert route.match("GET", "/a.b/1") == {"x": "1"}
    assert route.match("GET", "/axb/1") is None


def test_routes_module_does_not_need_powertools() -> None:
    code = ("import sys, cadenza.service.routes; "
            "assert 'aws_lambda_powertools' not in sys.modules, 'powertools imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# --- ApiRequest -------------------------------------------------------------------------------


def test_query_values_and_numbers() -> None:
    request = ApiRequest(query={"a": "x", "empty": "", "n": "2.5", "i": "10"})

    assert request.query_value("a") == "x"
    assert request.query_value("empty", "d") == "d"
    assert request.query_value("missing") == ""
    assert request.query_value("missing", "open") == "open"
    assert request.number("n", 0) == 2.5
    assert request.number("i", 0) == 10
    assert request.number("empty", 7) == 7
    assert request.number("missing", 1000) == 1000


@pytest.mark.parametrize(("text", "message"), [
    ("abc", "page_size must be a number"),
    ("nan", "page_size must be a finite number"),
    ("inf", "page_size must be a finite number"),
    ("-Infinity", "page_size must be a finite number"),
])
def test_bad_numbers(text: str, message: str) -> None:
    with pytest.raises(BadRequestError, match=message) as raised:
        ApiRequest(query={"page_size": text}).number("page_size", 100)
    assert raised.value.field == "page_size"


def test_json_body() -> None:
    body = {"a": 1}
    request = ApiRequest(body=body)

    copy = request.json_body()
    copy["b"] = 2
    assert request.json_body() == {"a": 1} and body == {"a": 1}  # handlers may change their copy
    assert ApiRequest().json_body() == {}
    with pytest.raises(BadRequestError, match="must be a JSON object") as raised:
        ApiRequest(body=cast(Any, [1, 2])).json_body()
    assert raised.value.field == "body"


def test_started_at() -> None:
    moment = ApiRequest(body={"started_at": "2024-05-01T10:00:00+00:00"}).started_at()
    assert moment.utcoffset() is not None and moment.hour == 10
    for body, message in [
        ({}, "started_at is required"),
        ({"started_at": "yesterday"}, "ISO 8601"),
        ({"started_at": "2024-05-01T10:00:00"}, "UTC offset"),
    ]:
        with pytest.raises(BadRequestError, match=message) as raised:
            ApiRequest(body=body).started_at()
        assert raised.value.field == "started_at"


def test_api_types_are_frozen() -> None:
    with pytest.raises(AttributeError):
        ApiRequest().body = {}  # type: ignore[misc]
    with pytest.raises(AttributeError):
        ApiResponse(200, {}).status = 201  # type: ignore[misc]
    with pytest.raises(AttributeError):
        ROUTES[0].path = "/x"  # type: ignore[misc]


# --- handlers, over a fake service -------------------------------------------------------------


class FakeService:
    """Records calls; answers what each test sets."""

    def __init__(self, **answers: Any) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.answers = answers

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args, kwargs))
            return self.answers.get(name)
        return call


def call(method: str, path: str, service: FakeService, *, query: dict[str, str] | None = None,
         body: dict[str, Any] | None = None) -> ApiResponse:
    found = match(method, path)
    assert found is not None
    route, params = found
    return route.handler(cast(WorkflowService, service),
                         ApiRequest(path_params=params, query=query or {}, body=body))


def test_list_workflows_checks_before_calling() -> None:
    service = FakeService(list_workflows=([{"workflow_id": "w"}], "tok"))
    path = "/api/v1/domains/default/workflows"

    with pytest.raises(BadRequestError) as raised:
        call("GET", path, service, query={"status": "running"})
    assert raised.value.field == "status"
    with pytest.raises(BadRequestError) as raised:
        call("GET", path, service, query={"page_size": "nan"})
    assert raised.value.field == "page_size"
    assert service.calls == []

    answer = call("GET", path, service, query={"status": "CLOSED", "page_size": "5"})
    assert answer == ApiResponse(200, {"executions": [{"workflow_id": "w"}],
                                       "next_page_token": "tok"})
    assert service.calls == [("list_workflows", ("default",), {
        "query": "ExecutionStatus = 'closed'", "page_size": 5, "page_token": None})]


def test_list_workflows_translates_the_older_parameters_into_the_query() -> None:
    service = FakeService(list_workflows=([], None))
    path = "/api/v1/domains/default/workflows"
    call("GET", path, service, query={"query": "CustomIntField = 3", "next_page_token": "t"})
    call("GET", path, service, query={"status": "failed", "workflow_type": "Order",
                                      "workflow_id": "it's", "query": "StartTime > '2026-01-01'"})
    call("GET", path, service, query={"workflow_type": "Order",
                                      "query": "ORDER BY StartTime DESC"})
    call("GET", path, service)
    assert [kwargs["query"] for _, _, kwargs in service.calls] == [
        "CustomIntField = 3",
        "ExecutionStatus = 'failed' AND WorkflowType = 'Order' AND WorkflowID = 'it\\'s' "
        "AND StartTime > '2026-01-01'",
        "WorkflowType = 'Order' ORDER BY StartTime DESC",
        "",
    ]
    assert service.calls[0][2]["page_token"] == "t"


def test_start_workflow_answers_201() -> None:
    service = FakeService(start_workflow="run-1")
    body = {"workflow_id": "w", "workflow_type": "T", "task_list": "tl",
            "execution_start_to_close_timeout_seconds": 30}

    answer = call("POST", "/api/v1/domains/default/workflows", service, body=body)

    assert answer == ApiResponse(201, {"workflow_id": "w", "run_id": "run-1"})
    with pytest.raises(BadRequestError) as raised:
        call("POST", "/api/v1/domains/bad%20domain/workflows", service, body=body)
    assert raised.value.field == "domain"


def test_signal_with_start_defaults_to_allow_duplicate() -> None:
    service = FakeService(start_workflow="run-2")
    body = {"workflow_id": "w", "workflow_type": "T", "task_list": "tl", "signal_name": "go",
            "execution_start_to_close_timeout_seconds": 30}

    answer = call("POST", "/api/v1/domains/default/signal-with-start", service, body=body)

    assert answer == ApiResponse(200, {"workflow_id": "w", "run_id": "run-2"})
    (_, (request,), kwargs), = service.calls
    assert str(request.workflow_id_reuse_policy) == "AllowDuplicate"
    assert kwargs["signal"].signal_name == "go"
    assert "workflow_id_reuse_policy" not in body  # the caller's body is left alone


@pytest.mark.parametrize("wait", [0, -1, 3600, True, "5", None])
def test_query_wait_seconds(wait: Any) -> None:
    service = FakeService()
    with pytest.raises(BadRequestError) as raised:
        call("POST", "/api/v1/domains/default/workflows/w/query", service,
             body={"query_type": "q", "wait_seconds": wait})
    assert raised.value.field == "wait_seconds"
    assert service.calls == []


def test_complete_decision_task_checks_history_length_and_started_at() -> None:
    service = FakeService(complete_decision_task=DecisionCompletion())
    path = "/api/v1/tasks/decision/complete"
    with pytest.raises(BadRequestError) as raised:
        call("POST", path, service, body={"task_token": "t", "history_length": True})
    assert raised.value.field == "history_length"
    with pytest.raises(BadRequestError) as raised:
        call("POST", path, service, body={"task_token": "t", "history_length": 3,
                                          "started_at": "2024-05-01T10:00:00"})
    assert raised.value.field == "started_at"
    assert service.calls == []

    assert call("POST", path, service, body={
        "task_token": "t", "history_length": 3, "started_at": "2024-05-01T10:00:00Z",
    }) == ApiResponse(200, {"activity_tasks": []})  # no eager activities asked for
    assert service.calls[0][0] == "complete_decision_task"


def test_activity_task_routes() -> None:
    service = FakeService(
        start_activity_task=SimpleNamespace(attempt=2, heartbeat_details='"d"',
                                            started_time=1_700_000_000_000),
        record_activity_heartbeat=True,
    )

    assert call("POST", "/api/v1/tasks/activity/start", service,
                body={"task_token": "t", "identity": "me"}) == ApiResponse(200, {
        "attempt": 2, "heartbeat_details": '"d"', "started_time": 1_700_000_000_000})
    assert call("POST", "/api/v1/tasks/activity/heartbeat", service,
                body={"task_token": "t", "details": '"p"'}) == ApiResponse(
        200, {"cancel_requested": True})
    assert call("POST", "/api/v1/tasks/activity/cancel", service,
                body={"task_token": "t"}) == ApiResponse(200, {})
    assert service.calls == [
        ("start_activity_task", ("t",), {"identity": "me", "request_id": ""}),
        ("record_activity_heartbeat", ("t",), {"details": '"p"', "identity": ""}),
        ("cancel_activity_task", ("t",), {"details": None, "identity": "", "request_id": ""}),
    ]
    for path in ("start", "heartbeat", "cancel"):
        with pytest.raises(BadRequestError) as raised:
            call("POST", f"/api/v1/tasks/activity/{path}", service, body={})
        assert raised.value.field == "task_token"
    with pytest.raises(BadRequestError) as raised:
        call("POST", "/api/v1/tasks/activity/heartbeat", service,
             body={"task_token": "t", "details": {"not": "a payload"}})
    assert raised.value.field == "details"
