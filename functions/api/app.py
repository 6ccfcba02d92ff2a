"""HTTP API (API Gateway HTTP API, payload v2): parse the request, call the service, shape JSON.

Errors of the service become typed 4xx/5xx responses ({"code", "message", "details"}) that the
client turns back into the same exception classes.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from cadenza.core import SignalWorkflow
from cadenza.error import BadRequestError, ServiceError
from cadenza.service import StartWorkflowRequest, parse_decisions, service_from_environment
from cadenza.service.api import cluster_info, history_page, run_result
from cadenza.service.requests import optional_payload, optional_string, required_string

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="Cadenza")
app = APIGatewayHttpResolver()
service = service_from_environment()

WORKFLOW = "/api/v1/domains/<domain>/workflows/<workflow_id>"


def _body() -> dict[str, Any]:
    try:
        body = app.current_event.json_body if app.current_event.body else {}
    except (ValueError, RecursionError) as error:  # RecursionError: absurdly deep nesting
        raise BadRequestError("request body is not valid JSON", field="body") from error
    if not isinstance(body, dict):
        raise BadRequestError("request body must be a JSON object", field="body")
    return body


def _query(name: str, default: str = "") -> str:
    return app.current_event.get_query_string_value(name, default_value=default) or default


def _number(name: str, default: float) -> float:
    text = _query(name)
    try:
        value = float(text) if text else default
    except ValueError as error:
        raise BadRequestError(f"{name} must be a number", field=name) from error
    if not math.isfinite(value):  # float() accepts "nan" and "inf"; int() of them raises
        raise BadRequestError(f"{name} must be a finite number", field=name)
    return value


def _started_at(body: dict[str, Any]) -> datetime:
    text = required_string(body, "started_at")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise BadRequestError("started_at must be an ISO 8601 time", field="started_at") from error
    if moment.tzinfo is None:  # the engine compares it with aware times
        raise BadRequestError("started_at must include a UTC offset", field="started_at")
    return moment


@app.get("/api/v1/cluster")
def get_cluster() -> dict[str, Any]:
    return cluster_info()


@app.post("/api/v1/domains/<domain>/workflows")
def start_workflow(domain: str) -> Response:
    request = StartWorkflowRequest.from_dict(unquote(domain), _body())
    run_id = service.start_workflow(request)
    return Response(201, content_types.APPLICATION_JSON,
                    {"workflow_id": request.workflow_id, "run_id": run_id})


@app.post("/api/v1/domains/<domain>/signal-with-start")
def signal_with_start_workflow(domain: str) -> Response:
    body = _body()
    # Cadence's signal-with-start allows a new run after any closed one unless told otherwise.
    if body.get("workflow_id_reuse_policy") is None:
        body["workflow_id_reuse_policy"] = "AllowDuplicate"
    request = StartWorkflowRequest.from_dict(unquote(domain), body)
    signal = SignalWorkflow(
        signal_name=required_string(body, "signal_name"),
        input=optional_payload(body, "signal_input"),
        identity=request.identity,
        request_id=request.request_id,
    )
    run_id = service.start_workflow(request, signal=signal)
    return Response(200, content_types.APPLICATION_JSON,
                    {"workflow_id": request.workflow_id, "run_id": run_id})


@app.get("/api/v1/domains/<domain>/workflows")
def list_workflows(domain: str) -> dict[str, Any]:
    status = _query("status", "open").lower()
    if status not in {"open", "closed"}:
        raise BadRequestError("status must be open or closed", field="status")
    runs, token = service.list_workflows(
        unquote(domain),
        open_runs=status == "open",
        workflow_type=_query("workflow_type") or None,
        workflow_id=_query("workflow_id") or None,
        page_size=int(_number("page_size", 100)),
        page_token=_query("next_page_token") or None,
    )
    return {"executions": runs, "next_page_token": token}


@app.get(WORKFLOW)
def describe_workflow(domain: str, workflow_id: str) -> dict[str, Any]:
    return service.describe_workflow(unquote(domain), unquote(workflow_id), _query("run_id"))


@app.get(f"{WORKFLOW}/history")
def get_history(domain: str, workflow_id: str) -> dict[str, Any]:
    return history_page(
        service,
        unquote(domain),
        unquote(workflow_id),
        _query("run_id"),
        page_size=int(_number("page_size", 1000)),
        page_token=_query("next_page_token") or None,
        wait_for_close_seconds=_number("wait_for_close_seconds", 0),
    )


@app.get(f"{WORKFLOW}/result")
def get_result(domain: str, workflow_id: str) -> dict[str, Any]:
    return run_result(service.get_result(
        unquote(domain), unquote(workflow_id), _query("run_id"),
        wait_seconds=_number("wait_seconds", 0),
    ))


@app.post(f"{WORKFLOW}/signal")
def signal_workflow(domain: str, workflow_id: str) -> dict[str, Any]:
    body = _body()
    service.signal_workflow(
        unquote(domain), unquote(workflow_id), optional_string(body, "run_id"),
        signal_name=required_string(body, "signal_name"),
        input=optional_payload(body, "input"),
        identity=optional_string(body, "identity"),
        request_id=optional_string(body, "request_id"),
    )
    return {}


@app.post(f"{WORKFLOW}/query")
def query_workflow(domain: str, workflow_id: str) -> dict[str, Any]:
    body = _body()
    wait = body.get("wait_seconds", 20)
    if isinstance(wait, bool) or not isinstance(wait, int | float) or not 0 < wait < 3600:
        raise BadRequestError("wait_seconds must be a positive number", field="wait_seconds")
    result = service.query_workflow(
        unquote(domain), unquote(workflow_id), optional_string(body, "run_id"),
        query_type=required_string(body, "query_type"),
        query_args=optional_payload(body, "query_args"),
        wait_seconds=float(wait),
    )
    return {"result": result}


@app.post("/api/v1/tasks/query/answer")
def answer_query_task() -> dict[str, Any]:
    body = _body()
    recorded = service.answer_query_task(
        required_string(body, "task_token"),
        answer=optional_payload(body, "answer"),
        error=optional_string(body, "error") or None,
    )
    return {"recorded": recorded}


@app.post(f"{WORKFLOW}/cancel")
def cancel_workflow(domain: str, workflow_id: str) -> dict[str, Any]:
    body = _body()
    service.request_cancel_workflow(
        unquote(domain), unquote(workflow_id), optional_string(body, "run_id"),
        cause=optional_string(body, "cause"),
        identity=optional_string(body, "identity"),
        request_id=optional_string(body, "request_id"),
    )
    return {}


@app.post(f"{WORKFLOW}/terminate")
def terminate_workflow(domain: str, workflow_id: str) -> dict[str, Any]:
    body = _body()
    service.terminate_workflow(
        unquote(domain), unquote(workflow_id), optional_string(body, "run_id"),
        reason=optional_string(body, "reason"),
        details=optional_payload(body, "details"),
        identity=optional_string(body, "identity"),
    )
    return {}


@app.post("/api/v1/tasks/decision/complete")
def complete_decision_task() -> dict[str, Any]:
    body = _body()
    history_length = body.get("history_length")
    if not isinstance(history_length, int) or isinstance(history_length, bool):
        raise BadRequestError("history_length must be an integer", field="history_length")
    service.complete_decision_task(
        required_string(body, "task_token"),
        decisions=parse_decisions(body.get("decisions")),
        history_length=history_length,
        started_at=_started_at(body),
        identity=optional_string(body, "identity"),
        binary_checksum=optional_string(body, "binary_checksum"),
    )
    return {}


@app.post("/api/v1/tasks/decision/fail")
def fail_decision_task() -> dict[str, Any]:
    body = _body()
    recorded = service.fail_decision_task(
        required_string(body, "task_token"),
        cause=required_string(body, "cause"),
        details=optional_payload(body, "details"),
        started_at=_started_at(body),
        identity=optional_string(body, "identity"),
    )
    return {"recorded": recorded}


@app.post("/api/v1/tasks/activity/complete")
def complete_activity_task() -> dict[str, Any]:
    body = _body()
    service.complete_activity_task(
        required_string(body, "task_token"),
        result=optional_payload(body, "result"),
        identity=optional_string(body, "identity"),
    )
    return {}


@app.post("/api/v1/tasks/activity/fail")
def fail_activity_task() -> dict[str, Any]:
    body = _body()
    service.fail_activity_task(
        required_string(body, "task_token"),
        reason=required_string(body, "reason"),
        details=optional_payload(body, "details"),
        identity=optional_string(body, "identity"),
    )
    return {}


@app.exception_handler(ServiceError)
def service_error(error: ServiceError) -> Response:
    if error.status >= 500:
        logger.exception("service error")
    return Response(error.status, content_types.APPLICATION_JSON, error.to_wire())


@app.not_found
def not_found(_: Exception) -> Response:
    return Response(404, content_types.APPLICATION_JSON,
                    {"code": "NotFound", "message": f"no route {app.current_event.path}"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        response = app.resolve(event, context)
    except Exception:  # an unexpected error: Lambda answers 500, so it counts too
        _count_server_error()
        raise
    if int(response.get("statusCode", 500)) >= 500:
        _count_server_error()
    return response


def _count_server_error() -> None:
    """Only failures are counted: an alarm wants them, and every metric is a log line.

    Flushed here rather than by ``@metrics.log_metrics``, which warns on every request that
    adds no metric (that is, on every successful one).
    """
    metrics.add_metric(name="ServerErrors", unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()
