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
from typing import Any, TypeVar
from urllib.parse import unquote

import msgspec

from ..core import SignalWorkflow
from ..core.limits import MAX_ID_BYTES, MAX_QUERY_VALUE_BYTES, check_text, utf8_size
from ..error import BadRequestError
from .api import (
    activity_completion_answer,
    cluster_info,
    completion_answer,
    events_page,
    history_page,
    run_result,
)
from .engine import WorkflowService
from .requests import (
    Body,
    CancelActivityBody,
    CancelBody,
    CompleteActivityBody,
    CompleteDecisionBody,
    FailActivityBody,
    FailDecisionBody,
    HeartbeatBody,
    QueryAnswerBody,
    QueryBody,
    ResetBody,
    ResetWorkflowRequest,
    SignalBody,
    SignalWithStartBody,
    StartActivityBody,
    StartWorkflowBody,
    StartWorkflowRequest,
    TerminateBody,
    check_body_size,
    check_domain,
    decisions_of,
    parse_body,
    required,
    required_string,
    wait_seconds,
)

__all__ = ["ROUTES", "ApiRequest", "ApiResponse", "Handler", "Route", "match", "path_value"]

B = TypeVar("B", bound=Body)


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One request: URL-decoded path parameters, query string values and the parsed JSON body."""

    path_params: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    #: The JSON body an in-process caller hands in; None when there is none.
    body: Mapping[str, Any] | None = None
    #: The body's bytes as received over HTTP (then ``body`` is None): parsed once, by
    #: :meth:`parse`, straight into the route's typed model.
    raw_body: bytes | None = None

    def parse(self, model: type[B]) -> B:
        """The body as ``model`` (requests.parse_body): 400 naming a bad field, 413 when over
        a limit, unknown fields ignored."""
        return parse_body(model, self.raw_body if self.raw_body is not None else self.body)

    def param(self, name: str) -> str:
        """A path parameter, already URL-decoded, checked: the domain's pattern, no lone
        surrogate, at most MAX_ID_BYTES, no ``.``/``..`` segment (an encoded traversal)."""
        value = self.path_params[name]
        if name == "domain":
            return check_domain(value)
        check_text(value, field=name, limit=MAX_ID_BYTES)
        if any(segment in {".", ".."} for segment in value.split("/")):
            raise BadRequestError(
                f"{name} must not contain a '.' or '..' path segment", field=name
            )
        return value

    def query_value(self, name: str, default: str = "") -> str:
        """A query string value; ``default`` when absent or empty."""
        value = self.query.get(name, default) or default
        check_text(value, field=name, limit=MAX_QUERY_VALUE_BYTES)
        return value

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
        """A copy of the body (``{}`` when there was none), which must be a JSON object.

        For routes without a typed model yet; :meth:`parse` is the typed way."""
        if self.raw_body is not None:
            check_body_size(len(self.raw_body))
            try:
                decoded = msgspec.json.decode(self.raw_body or b"{}")
            except (msgspec.DecodeError, RecursionError) as error:
                raise BadRequestError(f"request body is not valid JSON: {error}",
                                      field="body") from None
            if not isinstance(decoded, dict):
                raise BadRequestError("request body must be a JSON object", field="body")
            return decoded
        if self.body is None:
            return {}
        if not isinstance(self.body, Mapping):
            raise BadRequestError("request body must be a JSON object", field="body")
        return dict(self.body)

    def started_at(self, text: str | None = None) -> datetime:
        """``text`` (default: the body's ``started_at``): an ISO 8601 time with a UTC offset."""
        text = required(text if text is not None else
                        required_string(self.json_body(), "started_at"), "started_at")
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
    #: The body's typed model (requests.Body), read by the handler and the OpenAPI document.
    body: type[Body] | None = None
    #: The query string parameters the handler reads (for the OpenAPI document).
    query: tuple[str, ...] = ()
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
        return {name: path_value(value, name) for name, value in found.groupdict().items()}


def path_value(raw: str, name: str = "path") -> str:
    """A path segment as sent, percent-decoded; 400 naming it when the bytes it encodes are
    not UTF-8 (``unquote`` would silently put U+FFFD in their place)."""
    try:
        value = unquote(raw, errors="strict")
    except UnicodeDecodeError as error:
        raise BadRequestError(f"{name} is not percent-encoded UTF-8", field=name) from error
    utf8_size(value, field=name)
    return value


def _ok(body: dict[str, Any], status: int = 200) -> ApiResponse:
    return ApiResponse(status, body)


# ---------------------------------------------------------------------------------------------
# Handlers: the bodies the Lambda function's views had, unchanged in behaviour.


def get_cluster(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    return _ok(cluster_info())


def get_openapi(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    """This API's OpenAPI 3.1 document, generated from this route table and its body models."""
    from .openapi import openapi_document

    return _ok(openapi_document())


def start_workflow(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    domain = request.param("domain")  # the path first: its error is the one to report
    start = StartWorkflowRequest.from_body(domain, request.parse(StartWorkflowBody))
    run_id = service.start_workflow(start)
    return _ok({"workflow_id": start.workflow_id, "run_id": run_id}, 201)


def signal_with_start_workflow(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    domain = request.param("domain")
    body = request.parse(SignalWithStartBody)
    # Cadence's signal-with-start allows a new run after any closed one unless told otherwise.
    if body.workflow_id_reuse_policy is None:
        body = msgspec.structs.replace(body, workflow_id_reuse_policy="AllowDuplicate")
    start = StartWorkflowRequest.from_body(domain, body)
    signal = SignalWorkflow(
        signal_name=required(body.signal_name, "signal_name"),
        input=body.signal_input,
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
    return _ok(events_page(
        service,
        request.param("domain"),
        request.param("workflow_id"),
        request.query_value("run_id"),
        after_version=int(request.number("after_version", 0)),
        page_size=int(request.number("page_size", 1000)),
    ))


def get_result(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    return _ok(run_result(service.get_result(
        request.param("domain"), request.param("workflow_id"), request.query_value("run_id"),
        wait_seconds=request.number("wait_seconds", 0),
    )))


def signal_workflow(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    domain, workflow_id = request.param("domain"), request.param("workflow_id")
    body = request.parse(SignalBody)
    service.signal_workflow(
        domain, workflow_id, body.run_id or "",
        signal_name=required(body.signal_name, "signal_name"),
        input=body.input,
        identity=body.identity or "",
        request_id=body.request_id or "",
    )
    return _ok({})


def query_workflow(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    domain, workflow_id = request.param("domain"), request.param("workflow_id")
    body = request.parse(QueryBody)
    result = service.query_workflow(
        domain, workflow_id, body.run_id or "",
        query_type=required(body.query_type, "query_type"),
        query_args=body.query_args,
        wait_seconds=wait_seconds(body.wait_seconds),
    )
    return _ok({"result": result})


def answer_query_task(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    body = request.parse(QueryAnswerBody)
    recorded = service.answer_query_task(
        required(body.task_token, "task_token"),
        answer=body.answer,
        error=body.error or None,
    )
    return _ok({"recorded": recorded})


def cancel_workflow(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    domain, workflow_id = request.param("domain"), request.param("workflow_id")
    body = request.parse(CancelBody)
    service.request_cancel_workflow(
        domain, workflow_id, body.run_id or "",
        cause=body.cause or "",
        identity=body.identity or "",
        request_id=body.request_id or "",
    )
    return _ok({})


def terminate_workflow(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    domain, workflow_id = request.param("domain"), request.param("workflow_id")
    body = request.parse(TerminateBody)
    service.terminate_workflow(
        domain, workflow_id, body.run_id or "",
        reason=body.reason or "",
        details=body.details,
        identity=body.identity or "",
        request_id=body.request_id or "",
    )
    return _ok({})


def reset_workflow(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    domain, workflow_id = request.param("domain"), request.param("workflow_id")
    body = request.parse(ResetBody)
    reset = ResetWorkflowRequest.from_body(domain, workflow_id, body.run_id or "", body)
    run_id = service.reset_workflow(
        reset.domain, reset.workflow_id, reset.run_id,
        decision_finish_event_id=reset.decision_finish_event_id,
        reason=reset.reason,
        identity=reset.identity,
        request_id=reset.request_id,
    )
    return _ok({"run_id": run_id})


def complete_decision_task(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    body = request.parse(CompleteDecisionBody)
    completion = service.complete_decision_task(
        required(body.task_token, "task_token"),
        decisions=decisions_of(body.decisions),
        history_length=body.history_length,
        started_at=request.started_at(body.started_at),
        identity=body.identity or "",
        binary_checksum=body.binary_checksum or "",
        request_id=body.request_id or "",
        eager_activities=body.eager_activities or 0,
        eager_task_list=body.eager_task_list or "",
    )
    return _ok(completion_answer(completion))


def fail_decision_task(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    body = request.parse(FailDecisionBody)
    recorded = service.fail_decision_task(
        required(body.task_token, "task_token"),
        cause=required(body.cause, "cause"),
        details=body.details,
        started_at=request.started_at(body.started_at),
        identity=body.identity or "",
    )
    return _ok({"recorded": recorded})


def start_activity_task(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    body = request.parse(StartActivityBody)
    started = service.start_activity_task(
        required(body.task_token, "task_token"),
        identity=body.identity or "",
        request_id=body.request_id or "",
    )
    return _ok({
        "attempt": started.attempt,
        "heartbeat_details": started.heartbeat_details,
        "started_time": started.started_time,
    })


def record_activity_heartbeat(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    body = request.parse(HeartbeatBody)
    cancel_requested = service.record_activity_heartbeat(
        required(body.task_token, "task_token"),
        details=body.details,
        identity=body.identity or "",
    )
    return _ok({"cancel_requested": bool(cancel_requested)})


def cancel_activity_task(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    body = request.parse(CancelActivityBody)
    service.cancel_activity_task(
        required(body.task_token, "task_token"),
        details=body.details,
        identity=body.identity or "",
        request_id=body.request_id or "",
    )
    return _ok({})


def complete_activity_task(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    body = request.parse(CompleteActivityBody)
    completion = service.complete_activity_task(
        required(body.task_token, "task_token"),
        result=body.result,
        identity=body.identity or "",
        request_id=body.request_id or "",
        hand_back_task_list=body.hand_back_task_list or "",
    )
    return _ok(activity_completion_answer(completion))


def fail_activity_task(service: WorkflowService, request: ApiRequest) -> ApiResponse:
    body = request.parse(FailActivityBody)
    service.fail_activity_task(
        required(body.task_token, "task_token"),
        reason=required(body.reason, "reason"),
        details=body.details,
        identity=body.identity or "",
        request_id=body.request_id or "",
    )
    return _ok({})


_WORKFLOW = "/api/v1/domains/<domain>/workflows/<workflow_id>"

#: Every route of the HTTP API. No two routes of one method match the same path.
ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/v1/cluster", get_cluster),
    Route("GET", "/api/v1/openapi.json", get_openapi),
    Route("POST", "/api/v1/domains/<domain>/workflows", start_workflow, body=StartWorkflowBody),
    Route("POST", "/api/v1/domains/<domain>/signal-with-start", signal_with_start_workflow,
          body=SignalWithStartBody),
    Route("GET", "/api/v1/domains/<domain>/workflows", list_workflows,
          query=("query", "status", "workflow_type", "workflow_id", "page_size",
                 "next_page_token")),
    Route("GET", _WORKFLOW, describe_workflow, query=("run_id",)),
    Route("GET", f"{_WORKFLOW}/history", get_history, waits=True,
          query=("run_id", "page_size", "next_page_token", "wait_for_close_seconds")),
    Route("GET", f"{_WORKFLOW}/events", get_history_after,
          query=("run_id", "after_version", "page_size")),
    Route("GET", f"{_WORKFLOW}/result", get_result, waits=True,
          query=("run_id", "wait_seconds")),
    Route("POST", f"{_WORKFLOW}/signal", signal_workflow, body=SignalBody),
    Route("POST", f"{_WORKFLOW}/query", query_workflow, waits=True, body=QueryBody),
    Route("POST", "/api/v1/tasks/query/answer", answer_query_task, body=QueryAnswerBody),
    Route("POST", f"{_WORKFLOW}/cancel", cancel_workflow, body=CancelBody),
    Route("POST", f"{_WORKFLOW}/terminate", terminate_workflow, body=TerminateBody),
    Route("POST", f"{_WORKFLOW}/reset", reset_workflow, body=ResetBody),
    Route("POST", "/api/v1/tasks/decision/complete", complete_decision_task,
          body=CompleteDecisionBody),
    Route("POST", "/api/v1/tasks/decision/fail", fail_decision_task, body=FailDecisionBody),
    Route("POST", "/api/v1/tasks/activity/start", start_activity_task,
          body=StartActivityBody),
    Route("POST", "/api/v1/tasks/activity/heartbeat", record_activity_heartbeat,
          body=HeartbeatBody),
    Route("POST", "/api/v1/tasks/activity/cancel", cancel_activity_task,
          body=CancelActivityBody),
    Route("POST", "/api/v1/tasks/activity/complete", complete_activity_task,
          body=CompleteActivityBody),
    Route("POST", "/api/v1/tasks/activity/fail", fail_activity_task, body=FailActivityBody),
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
