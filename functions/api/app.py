"""HTTP API (API Gateway HTTP API, payload v2): the routes of ``cadenza.service.routes``.

Each route parses an ``ApiRequest``, calls the service and shapes JSON; this function only adapts
the event to it. Errors of the service become typed 4xx/5xx responses
({"code", "message", "details"}) that the client turns back into the same exception classes.

Routing uses the project's own route table (``routes.match``), and every request's data lives in
locals: powertools' resolver keeps the event being handled in a class attribute
(``BaseRouter.current_event``), shared by every thread of the process. One Lambda sandbox handles
one event at a time, but the local runtime invokes this handler from many threads at once, and
there concurrent requests read each other's bodies (tests/unit/test_api_function.py).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2
from aws_lambda_powertools.utilities.typing import LambdaContext

from cadenza.aws.metrics import PowertoolsMetrics
from cadenza.error import ServiceError
from cadenza.service.factory import service_from_environment
from cadenza.service.requests import check_body_size
from cadenza.service.routes import ApiRequest, Route, match

logger = Logger()
tracer = Tracer()
metrics = PowertoolsMetrics()  # EMF: what the service commits and sends, and server errors
service = service_from_environment(metrics=metrics)
#: The path parameters that say which run a request is about: logged with every line, and
#: X-Ray annotations (searchable: annotation.workflow_id = "...").
_CORRELATED = ("domain", "workflow_id", "run_id")


def _raw_body(event: APIGatewayProxyEventV2, route: Route) -> bytes | None:
    """The request's body bytes, parsed once by the route into its typed model; None without
    one. A body over the limit is refused here, before it is even decoded.

    No GET route reads a body, so one sent with a GET is ignored rather than parsed.
    """
    if route.method == "GET" or not event.body:
        return None
    text = event.body
    check_body_size(len(text) * 3 // 4 if event.is_base64_encoded else len(text))
    if event.is_base64_encoded:
        return base64.b64decode(text)
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate: invalid UTF-8, a 400


def _json(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"},
            "body": json.dumps(body, separators=(",", ":")), "isBase64Encoded": False}


def _answer(event: APIGatewayProxyEventV2) -> dict[str, Any]:
    try:
        found = match(event.request_context.http.method.upper(), event.raw_path)
        if found is None:
            return _json(404, {"code": "NotFound", "message": f"no route {event.raw_path}"})
        route, path_params = found  # percent-decoded, strictly (a 400 when not UTF-8)
        for name in _CORRELATED:
            if name in path_params:
                logger.append_keys(**{name: path_params[name]})
                tracer.put_annotation(name, path_params[name])
        request = ApiRequest(
            path_params=path_params,
            query=event.query_string_parameters or {},
            raw_body=_raw_body(event, route),
        )
        answer = route.handler(service, request)
    except ServiceError as error:
        if error.status >= 500:
            logger.exception("service error")
        return _json(error.status, error.to_wire())
    return _json(answer.status, answer.body)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP,
                              clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        response = _answer(APIGatewayProxyEventV2(event))
        if response["statusCode"] >= 500:
            metrics.count("ServerErrors")
        return response
    except Exception:  # an unexpected error: Lambda answers 500, so it counts too
        metrics.count("ServerErrors")
        raise
    finally:
        metrics.flush()  # one EMF line, only when something was measured
