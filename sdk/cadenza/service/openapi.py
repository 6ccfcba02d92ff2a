"""The HTTP API's OpenAPI 3.1 document, generated from the route table and the body models.

Served at ``GET /api/v1/openapi.json`` so that a worker in another language can poll SQS and
complete activities by token (``POST /api/v1/tasks/activity/complete``) from the document
alone. Nothing here is written by hand per route: each path, method, parameter and body
schema comes from :data:`cadenza.service.routes.ROUTES` and the msgspec Structs of
:mod:`cadenza.service.requests`, the same types the routes parse with, so the document cannot
drift from what is checked.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import msgspec

from ..core.limits import MAX_BODY_BYTES
from ..error import ServiceError
from .requests import Body

#: Answers a route can give besides its success, with why.
_ERRORS: dict[str, str] = {
    "400": "BadRequestError: a malformed or mistyped field (details.field names it)",
    "403": "AuthError: the request is not SigV4-signed by a principal allowed to call it",
    "404": "EntityNotExistsError (a workflow or run), or NotFound (no such route)",
    "409": "A conflict: already started, already completed, or a stale task",
    "413": "PayloadTooLargeError: a field or the body is over its limit (details.limit)",
    "429": "LimitExceededError",
    "503": "ServiceBusyError: retry with backoff",
}
_PLACEHOLDER = re.compile(r"<(\w+)>")
_REF = "#/components/schemas/{name}"


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The document, built once per process (the routes and models do not change)."""
    from .routes import ROUTES  # routes serves this document: imported when first asked for

    models: list[type[Body]] = sorted({r.body for r in ROUTES if r.body is not None},
                                      key=lambda model: model.__name__)
    _, schemas = msgspec.json.schema_components(models, ref_template=_REF)
    schemas["Error"] = _error_schema()
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        path = _PLACEHOLDER.sub(r"{\1}", route.path)
        operation: dict[str, Any] = {
            "operationId": route.handler.__name__,
            "summary": _summary(route.handler.__doc__, route.handler.__name__),
            "parameters": [
                *({"name": name, "in": "path", "required": True,
                   "schema": {"type": "string"}} for name in _PLACEHOLDER.findall(route.path)),
                *({"name": name, "in": "query", "required": False,
                   "schema": {"type": "string"}} for name in route.query),
            ],
            "responses": {
                "201" if route.handler.__name__ == "start_workflow" else "200": {
                    "description": "Done",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **{status: {"description": why, "content": {"application/json": {
                    "schema": {"$ref": _REF.format(name="Error")}}}}
                   for status, why in _ERRORS.items()},
            },
        }
        if route.body is not None:
            operation["requestBody"] = {
                "required": bool(schemas[route.body.__name__].get("required")),
                "description": f"JSON, at most {MAX_BODY_BYTES} bytes; unknown fields are "
                               "ignored",
                "content": {"application/json": {
                    "schema": {"$ref": _REF.format(name=route.body.__name__)}}},
            }
        paths.setdefault(path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Cadenza HTTP API",
            "version": "v1",
            "description": "Start, signal, query and manage workflows; poll nothing here (task "
                           "lists are SQS queues, see GET /api/v1/cluster) but answer tasks "
                           "by their task_token. Every string limit is in UTF-8 bytes.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"sigv4": {
                "type": "apiKey", "name": "Authorization", "in": "header",
                "description": "AWS SigV4, service execute-api (API Gateway IAM "
                               "authorization)",
                "x-amazon-apigateway-authtype": "awsSigv4",
            }},
        },
        "security": [{"sigv4": []}],
    }


def _summary(doc: str | None, name: str) -> str:
    first = (doc or "").strip().split("\n\n", 1)[0]
    return " ".join(first.split()) or name.replace("_", " ")


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "Every error answer; ``code`` is the class name of the error "
                       f"({ServiceError.__module__} hierarchy).",
        "properties": {
            "code": {"type": "string"},
            "message": {"type": "string"},
            "details": {"type": "object"},
        },
        "required": ["code", "message"],
    }
