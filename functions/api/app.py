"""HTTP API (API Gateway HTTP API, payload v2): the routes of ``cadenza.service.routes``.

Each route parses an ``ApiRequest``, calls the service and shapes JSON; this function only adapts
powertools' events to it. Errors of the service become typed 4xx/5xx responses
({"code", "message", "details"}) that the client turns back into the same exception classes.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cadenza.aws.metrics import PowertoolsMetrics
from cadenza.error import ServiceError
from cadenza.service.factory import service_from_environment
from cadenza.service.requests import check_body_size
from cadenza.service.routes import ROUTES, ApiRequest, Route, path_value

logger = Logger()
tracer = Tracer()
metrics = PowertoolsMetrics()  # EMF: what the service commits and sends, and server errors
app = APIGatewayHttpResolver()
service = service_from_environment(metrics=metrics)
#: The path parameters that say which run a request is about: logged with every line, and
#: X-Ray annotations (searchable: annotation.workflow_id = "...").
_CORRELATED = ("domain", "workflow_id", "run_id")


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
        for name in _CORRELATED:
            if name in path_params:
                logger.append_keys(**{name: path_params[name]})
                tracer.put_annotation(name, path_params[name])
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


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP,
                              clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        response = app.resolve(event, context)
        if int(response.get("statusCode", 500)) >= 500:
            metrics.count("ServerErrors")
        return response
    except Exception:  # an unexpected error: Lambda answers 500, so it counts too
        metrics.count("ServerErrors")
        raise
    finally:
        metrics.flush()  # one EMF line, only when something was measured
