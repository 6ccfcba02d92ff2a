"""HTTP API (API Gateway HTTP API, payload v2): the routes of ``cadenza.service.routes``.

Each route parses an ``ApiRequest``, calls the service and shapes JSON; this function only adapts
powertools' events to it. Errors of the service become typed 4xx/5xx responses
({"code", "message", "details"}) that the client turns back into the same exception classes.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from cadenza.error import ServiceError
from cadenza.service.factory import service_from_environment
from cadenza.service.requests import check_body_size
from cadenza.service.routes import ROUTES, ApiRequest, Route, path_value

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace="Cadenza")
app = APIGatewayHttpResolver()
service = service_from_environment()


def _raw_body(route: Route) -> bytes | None:
    """The request's body bytes, parsed once by the route into its typed model; None without
    one. A body over the limit is refused here, before it is even decoded.

    No GET route reads a body, so one sent with a GET is ignored rather than parsed.
    """
    event = app.current_event
    if route.method == "GET" or not event.body:
        return None
    text = event.body
    check_body_size(len(text) * 3 // 4 if event.is_base64_encoded else len(text))
    if event.is_base64_encoded:
        return base64.b64decode(text)
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate: invalid UTF-8, a 400


def _view(route: Route) -> Callable[..., Response]:
    def view(**path_params: str) -> Response:
        request = ApiRequest(
            # powertools passes path parameters as sent, still percent-encoded
            path_params={name: path_value(value, name) for name, value in path_params.items()},
            query=app.current_event.query_string_parameters or {},
            raw_body=_raw_body(route),
        )
        answer = route.handler(service, request)
        return Response(answer.status, content_types.APPLICATION_JSON, answer.body)

    view.__name__ = view.__qualname__ = route.handler.__name__
    return view


for _route in ROUTES:
    app.route(_route.path, method=_route.method)(_view(_route))


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
