"""The OpenAPI document is the route table and the body models, nothing written by hand."""

from __future__ import annotations

import json
import re
from typing import Any, cast

import msgspec
import pytest

from cadenza.service import WorkflowService
from cadenza.service.openapi import openapi_document
from cadenza.service.requests import Body
from cadenza.service.routes import ROUTES, ApiRequest, Route, match

SAMPLE = {"domain": "default", "workflow_id": "wf-1"}


class _Parsed(Exception):
    def __init__(self, model: type[Body]) -> None:
        self.model = model


class _NoService:
    """Any call reaching the service stops the handler: it parsed nothing before that."""

    def __getattr__(self, name: str) -> Any:
        raise _Parsed(cast(type[Body], type(None)))


def concrete(route: Route) -> str:
    path = route.path
    for name, value in SAMPLE.items():
        path = path.replace(f"<{name}>", value)
    return path


def test_every_route_is_in_the_document_with_its_parameters() -> None:
    document = openapi_document()
    assert document["openapi"].startswith("3.")
    operations = {(method.upper(), path) for path, item in document["paths"].items()
                  for method in item}
    assert operations == {(r.method, re.sub(r"<(\w+)>", r"{\1}", r.path)) for r in ROUTES}
    for route in ROUTES:
        operation = document["paths"][re.sub(r"<(\w+)>", r"{\1}", route.path)][
            route.method.lower()]
        assert operation["operationId"] == route.handler.__name__
        path_names = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
        assert path_names == set(re.findall(r"<(\w+)>", route.path))
        query_names = {p["name"] for p in operation["parameters"] if p["in"] == "query"}
        assert query_names == set(route.query)
        assert {"400", "403", "413"} <= set(operation["responses"])


@pytest.mark.parametrize("route", [r for r in ROUTES if r.method == "POST"],
                         ids=lambda r: r.path)
def test_every_post_route_has_a_model_and_the_document_shows_it_exactly(route: Route) -> None:
    assert route.body is not None, f"{route.path} has no typed body model"
    document = openapi_document()
    operation = document["paths"][re.sub(r"<(\w+)>", r"{\1}", route.path)]["post"]
    reference = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert reference == f"#/components/schemas/{route.body.__name__}"
    _, alone = msgspec.json.schema_components([route.body],
                                              ref_template="#/components/schemas/{name}")
    for name, schema in alone.items():
        assert document["components"]["schemas"][name] == schema
    required = set(alone[route.body.__name__].get("required", ()))
    assert operation["requestBody"]["required"] is bool(required)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_each_handler_parses_exactly_the_model_its_route_declares(
    route: Route, monkeypatch: pytest.MonkeyPatch,
) -> None:
    def parse(self: ApiRequest, model: type[Body]) -> Body:
        raise _Parsed(model)

    monkeypatch.setattr(ApiRequest, "parse", parse)
    monkeypatch.setenv("CADENZA_QUEUE_PREFIX", "test")  # the cluster route reads it
    found = match(route.method, concrete(route))
    assert found is not None and found[0] is route
    with pytest.raises(_Parsed) as parsed:
        route.handler(cast(WorkflowService, _NoService()),
                      ApiRequest(path_params=found[1], raw_body=b"{}"))
        raise _Parsed(cast(type[Body], type(None)))  # a handler answering without a service
    assert parsed.value.model is (route.body or type(None))


def test_the_document_is_served_and_is_json() -> None:
    found = match("GET", "/api/v1/openapi.json")
    assert found is not None
    answer = found[0].handler(cast(WorkflowService, _NoService()), ApiRequest())
    assert answer.status == 200
    assert json.loads(json.dumps(answer.body)) == openapi_document()
    token = answer.body["components"]["schemas"]["CompleteActivityBody"]["properties"][
        "task_token"]
    assert token["type"] == "string" and token["x-maxBytes"] > 0
