"""The HTTP API's routes, independent of any HTTP front end.

Each route parses an :class:`ApiRequest`, calls the :class:`WorkflowService` and shapes the JSON
answer as an :class:`ApiResponse`. The Lambda function (functions/api/app.py, through powertools'
resolver) registers every route of :data:`ROUTES`; an in-process transport finds one with
:func:`match` and calls its handler directly. Errors are raised as :class:`ServiceError`
subclasses, which each front end turns into its typed 4xx/5xx answer.

This module must not import aws_lambda_powertools: the SDK's testing layer uses it without.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from ..core import SignalWorkflow
from ..error import BadRequestError
from .api import cluster_info, history_page, run_result
from .engine import WorkflowService
from .requests import (
    ResetWorkflowRequest,
    StartWorkflowRequest,
    optional_payload,
    optional_string,
    parse_decisions,
    required_string,
)

__all__ = ["ROUTES", "ApiRequest", "ApiResponse", "Handler", "Route", "match"]


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One request: URL-decoded path parameters, query string values and the parsed JSON body."""

    path_params: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    #: The parsed JSON body; None when the request had none.
    body: Mapping[str, Any] | None = None

    def param(self, name: str) -> str:
        """A path parameter, already URL-decoded."""
        return self.path_params[name]

    def query_value(self, name: str, default: str = "") -> str:
        """A query string value; ``default`` when absent or empty."""
        return self.query.get(name, default) or default

    def number(self, name: str, default: float) -> float:
        """A finite number from the query string; ``default`` when absent or empty."""
        text = self.query_value(name)
        try:
            value = float(text) if text else default
        except ValueError as error:
            raise BadRequestError(f"{name} must be a number", field=name) from error
        if not math.isfinite(value):  # float() accepts "nan" and "inf"; int() of them raises
            raise BadRequestError(f"{name} must be a finite number", field=name)
        return value

    def json_body(self) -> dict[str, Any]:
        """A copy of the body (``{}`` when there was none), which must be a JSON object."""
        if self.body is None:
            return {}
        if not isinstance(self.body, Mapping):
            raise BadRequestError("request body must be a JSON object", field="body")
        return dict(self.body)

    def started_at(self) -> datetime:
        """The body's ``started_at``: an ISO 8601 time with a UTC offset."""
        text = required_string(self.json_body(), "started_at")
        try:
            moment = datetime.fromisoformat(text)
        except ValueError as error:
            raise BadRequestError(
                "started_at must be an ISO 8601 time", field="started_at"
            ) from error
        if moment.tzinfo is None:  # the engine compares it with aware times
            raise BadRequestError("started_at must include a UTC offset", field="started_at")
        return moment


@dataclass(frozen=True, slots=True)
class ApiResponse:
    status: int
    body: dict[str, Any]


Handler = Callable[[WorkflowService, ApiRequest], ApiResponse]

_PLACEHOLDER = re.compile(r"<(\w+)>")


def _compile(path: str) -> re.Pattern[str]:
    parts = _PLACEHOLDER.split(path)  # literal, name, literal, name, ..., literal
    return re.compile("".join(
        re.escape(part) if index % 2 == 0 else f"(?P<{part}>[^/]+)"
        for index, part in enumerate(parts)
    ))


@dataclass(frozen=True, slots=True)
class Route:
    """``path`` uses powertools' ``<name>`` placeholders; each matches one path segment.

    ``waits`` marks routes that may block waiting (long polls), which a transport may want to
    run off its event loop or give a longer timeout.
    """

    method: str
    path: str
    handler: Handler
    waits: bool = False
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pattern", _compile(self.path))

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The URL-decoded path parameters when this route serves ``method`` and ``path``."""
        if method.upper() != self.method:
            return None
        found = self.pattern.fullmatch(path)
        if found is None:
            return None
        return {name: unquote(value) for name, value in found.groupdict().items()}


def _ok(body: dict[str, Any], status: int = 200) -> ApiResponse:
    return ApiResponse(status, body)


# ---------------------------------------------------------------------------------------------
# Handlers: the bodies the Lambda function's views had, unchanged in behaviour.


def get_cluster(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    return _ok(cluster_info())


def start_workflow(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    start = StartWorkflowRequest.from_dict(request.param("domain"), request.json_body())
    run_id = service.start_workflow(start)
    return _ok({"workflow_id": start.workflow_id, "run_id": run_id}, 201)


def signal_with_start_workflow(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    body = request.json_body()
    # Cadence's signal-with-start allows a new run after any closed one unless told otherwise.
    if body.get("workflow_id_reuse_policy") is None:
        body["workflow_id_reuse_policy"] = "AllowDuplicate"
    start = StartWorkflowRequest.from_dict(request.param("domain"), body)
    signal = SignalWorkflow(
        signal_name=required_string(body, "signal_name"),
        input=optional_payload(body, "signal_input"),
        identity=start.identity,
        request_id=start.request_id,
    )
    run_id = service.start_workflow(start, signal=signal)
    return _ok({"workflow_id": start.workflow_id, "run_id": run_id})


def list_workflows(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    """``query`` in the visibility query language; the older ``status`` (open, closed or a
    close status), ``workflow_type`` and ``workflow_id`` parameters are conditions ANDed to
    it. Without any, every run of the domain is listed, newest first."""
    from .visibility_query import CLOSE_STATUSES, quote

    conditions: list[str] = []
    status = request.query_value("status").lower()
    if status:
        if status not in {"open", "closed", *(s.lower() for s in CLOSE_STATUSES)}:
            raise BadRequestError(
                f"status must be open, closed or one of {', '.join(CLOSE_STATUSES)}",
                field="status")
        conditions.append(f"ExecutionStatus = {quote(status)}")
    for parameter, name in (("workflow_type", "WorkflowType"), ("workflow_id", "WorkflowID")):
        if request.query_value(parameter):
            conditions.append(f"{name} = {quote(request.query_value(parameter))}")
    query = request.query_value("query").strip()
    if conditions and query:
        joiner = " " if query.lower().startswith("order ") else " AND "
        query = " AND ".join(conditions) + joiner + query
    elif conditions:
        query = " AND ".join(conditions)
    runs, token = service.list_workflows(
        request.param("domain"),
        query=query,
        page_size=int(request.number("page_size", 100)),
        page_token=request.query_value("next_page_token") or None,
    )
    return _ok({"executions": runs, "next_page_token": token})


def describe_workflow(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    return _ok(service.describe_workflow(
        request.param("domain"), request.param("workflow_id"), request.query_value("run_id"),
    ))


def get_history(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    return _ok(history_page(
        service,
        request.param("domain"),
        request.param("workflow_id"),
        request.query_value("run_id"),
        page_size=int(request.number("page_size", 1000)),
        page_token=request.query_value("next_page_token") or None,
        wait_for_close_seconds=request.number("wait_for_close_seconds", 0),
    ))


def get_history_after(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    """A worker's history read: the events of the run's commits after ``after_version``."""
    events, version, more = service.history_after(
        request.param("domain"),
        request.param("workflow_id"),
        request.query_value("run_id"),
        after_version=int(request.number("after_version", 0)),
        page_size=int(request.number("page_size", 1000)),
    )
    return _ok({"events": [e.to_dict() for e in events], "version": version, "more": more})


def get_result(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    return _ok(run_result(service.get_result(
        request.param("domain"), request.param("workflow_id"), request.query_value("run_id"),
        wait_seconds=request.number("wait_seconds", 0),
    )))


def signal_workflow(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    body = request.json_body()
    service.signal_workflow(
        request.param("domain"), request.param("workflow_id"), optional_string(body, "run_id"),
        signal_name=required_string(body, "signal_name"),
        input=optional_payload(body, "input"),
        identity=optional_string(body, "identity"),
        request_id=optional_string(body, "request_id"),
    )
    return _ok({})


def query_workflow(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    body = request.json_body()
    wait = body.get("wait_seconds", 20)
    if isinstance(wait, bool) or not isinstance(wait, int | float) or not 0 < wait < 3600:
        raise BadRequestError("wait_seconds must be a positive number", field="wait_seconds")
    result = service.query_workflow(
        request.param("domain"), request.param("workflow_id"), optional_string(body, "run_id"),
        query_type=required_string(body, "query_type"),
        query_args=optional_payload(body, "query_args"),
        wait_seconds=float(wait),
    )
    return _ok({"result": result})


def answer_query_task(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    body = request.json_body()
    recorded = service.answer_query_task(
        required_string(body, "task_token"),
        answer=optional_payload(body, "answer"),
        error=optional_string(body, "error") or None,
    )
    return _ok({"recorded": recorded})


def cancel_workflow(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    body = request.json_body()
    service.request_cancel_workflow(
        request.param("domain"), request.param("workflow_id"), optional_string(body, "run_id"),
        cause=optional_string(body, "cause"),
        identity=optional_string(body, "identity"),
        request_id=optional_string(body, "request_id"),
    )
    return _ok({})


def terminate_workflow(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    body = request.json_body()
    service.terminate_workflow(
        request.param("domain"), request.param("workflow_id"), optional_string(body, "run_id"),
        reason=optional_string(body, "reason"),
        details=optional_payload(body, "details"),
        identity=optional_string(body, "identity"),
        request_id=optional_string(body, "request_id"),
    )
    return _ok({})


def reset_workflow(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    body = request.json_body()
    reset = ResetWorkflowRequest.from_dict(
        request.param("domain"), request.param("workflow_id"), optional_string(body, "run_id"),
        body,
    )
    run_id = service.reset_workflow(
        reset.domain, reset.workflow_id, reset.run_id,
        decision_finish_event_id=reset.decision_finish_event_id,
        reason=reset.reason,
        identity=reset.identity,
        request_id=reset.request_id,
    )
    return _ok({"run_id": run_id})


def complete_decision_task(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    body = request.json_body()
    history_length = body.get("history_length")
    if not isinstance(history_length, int) or isinstance(history_length, bool):
        raise BadRequestError("history_length must be an integer", field="history_length")
    service.complete_decision_task(
        required_string(body, "task_token"),
        decisions=parse_decisions(body.get("decisions")),
        history_length=history_length,
        started_at=request.started_at(),
        identity=optional_string(body, "identity"),
        binary_checksum=optional_string(body, "binary_checksum"),
    )
    return _ok({})


def fail_decision_task(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    body = request.json_body()
    recorded = service.fail_decision_task(
        required_string(body, "task_token"),
        cause=required_string(body, "cause"),
        details=optional_payload(body, "details"),
        started_at=request.started_at(),
        identity=optional_string(body, "identity"),
    )
    return _ok({"recorded": recorded})


def start_activity_task(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    body = request.json_body()
    started = service.start_activity_task(
        required_string(body, "task_token"),
        identity=optional_string(body, "identity"),
        request_id=optional_string(body, "request_id"),
    )
    return _ok({
        "attempt": started.attempt,
        "heartbeat_details": started.heartbeat_details,
        "started_time": started.started_time,
    })


def record_activity_heartbeat(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    body = request.json_body()
    cancel_requested = service.record_activity_heartbeat(
        required_string(body, "task_token"),
        details=optional_payload(body, "details"),
        identity=optional_string(body, "identity"),
    )
    return _ok({"cancel_requested": bool(cancel_requested)})


def cancel_activity_task(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    body = request.json_body()
    service.cancel_activity_task(
        required_string(body, "task_token"),
        details=optional_payload(body, "details"),
        identity=optional_string(body, "identity"),
        request_id=optional_string(body, "request_id"),
    )
    return _ok({})


def complete_activity_task(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    body = request.json_body()
    service.complete_activity_task(
        required_string(body, "task_token"),
        result=optional_payload(body, "result"),
        identity=optional_string(body, "identity"),
        request_id=optional_string(body, "request_id"),
    )
    return _ok({})


def fail_activity_task(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    body = request.json_body()
    service.fail_activity_task(
        required_string(body, "task_token"),
        reason=required_string(body, "reason"),
        details=optional_payload(body, "details"),
        identity=optional_string(body, "identity"),
        request_id=optional_string(body, "request_id"),
    )
    return _ok({})


_WORKFLOW = "/api/v1/domains/<domain>/workflows/<workflow_id>"

#: Every route of the HTTP API. No two routes of one method match the same path.
ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/v1/cluster", get_cluster),
    Route("POST", "/api/v1/domains/<domain>/workflows", start_workflow),
    Route("POST", "/api/v1/domains/<domain>/signal-with-start", signal_with_start_workflow),
    Route("GET", "/api/v1/domains/<domain>/workflows", list_workflows),
    Route("GET", _WORKFLOW, describe_workflow),
    Route("GET", f"{_WORKFLOW}/history", get_history, waits=True),
    Route("GET", f"{_WORKFLOW}/events", get_history_after),
    Route("GET", f"{_WORKFLOW}/result", get_result, waits=True),
    Route("POST", f"{_WORKFLOW}/signal", signal_workflow),
    Route("POST", f"{_WORKFLOW}/query", query_workflow, waits=True),
    Route("POST", "/api/v1/tasks/query/answer", answer_query_task),
    Route("POST", f"{_WORKFLOW}/cancel", cancel_workflow),
    Route("POST", f"{_WORKFLOW}/terminate", terminate_workflow),
    Route("POST", f"{_WORKFLOW}/reset", reset_workflow),
    Route("POST", "/api/v1/tasks/decision/complete", complete_decision_task),
    Route("POST", "/api/v1/tasks/decision/fail", fail_decision_task),
    Route("POST", "/api/v1/tasks/activity/start", start_activity_task),
    Route("POST", "/api/v1/tasks/activity/heartbeat", record_activity_heartbeat),
    Route("POST", "/api/v1/tasks/activity/cancel", cancel_activity_task),
    Route("POST", "/api/v1/tasks/activity/complete", complete_activity_task),
    Route("POST", "/api/v1/tasks/activity/fail", fail_activity_task),
)


def match(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route serving ``method`` and ``path`` (no query string), with its URL-decoded params.

    ``path`` is as sent, percent-encoding included: ``%2F`` in a workflow id stays inside one
    segment and is decoded afterwards. None when no route serves it (a 404 to the caller).
    """
    for route in ROUTES:
        params = route.match(method, path)
        if params is not None:
            return route, params
    return None
