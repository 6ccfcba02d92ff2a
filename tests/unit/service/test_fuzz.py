"""Fuzzing every route's path, query and body (hypothesis): the answer is never a 500.

Any answer is fine but a server error: a typed ServiceError under 500, or a success. An
exception of any other type (a TypeError, a UnicodeEncodeError from deep inside) fails the
test. Bodies are drawn three ways: arbitrary bytes, arbitrary JSON, and objects with the
route's own field names holding arbitrary JSON values (so the checks past decoding are reached
too); strings include lone surrogates, non-ASCII over the byte limits, and traversal segments.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cadenza.error import BadRequestError, QueryTimeoutError, ServiceBusyError, ServiceError
from cadenza.service import StartWorkflowRequest, WorkflowService
from cadenza.service.routes import ROUTES, ApiRequest, Route, match
from cadenza.service.tokens import TaskTokens
from cadenza.testing._memory import (
    InMemoryHistoryStore,
    InMemoryQueryAnswers,
    InMemoryTaskQueues,
    InMemoryVisibility,
    VirtualClock,
)

#: Waits are real time in the service: fuzzed waits are cut to this.
_WAITS = {"wait_seconds", "wait_for_close_seconds"}

_TRICKY = st.sampled_from([
    "", " ", ".", "..", "../..", "a/../b", "\ud800", "x\udfff", "日" * 400, "é" * 1001,
    "\x00", "%2F", "%ED%A0%80", "wf-1", "default", "NaN", "-1", "1e400", "true", "{}",
])
_TEXT = st.one_of(st.text(max_size=40), _TRICKY,
                  st.text(st.characters(codec=None, categories=["Cs", "Lo", "Nd"]),
                          max_size=10))
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70),
                                                           max_value=2**70),
                     st.floats(allow_nan=True, allow_infinity=True), _TEXT)
_JSON = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(_TEXT, inner, max_size=4)), max_leaves=12)


def _fields(route: Route) -> list[str]:
    return list(route.body.__struct_fields__) if route.body is not None else ["anything"]


def _valid(route: Route) -> dict[str, Any]:
    """A body whose required fields have a value of their type (not necessarily a sensible
    one)."""
    if route.body is None:
        return {}
    samples = {str: "wf-1", float: 5.0, int: 3}
    body: dict[str, Any] = {}
    for field in msgspec.structs.fields(route.body):
        if not field.required:
            continue
        kind = msgspec.inspect.type_info(field.type)
        while isinstance(kind, msgspec.inspect.UnionType):
            kind = next(t for t in kind.types if not isinstance(t, msgspec.inspect.NoneType))
        if isinstance(kind, msgspec.inspect.Metadata):
            kind = kind.type
        python = {msgspec.inspect.StrType: str, msgspec.inspect.FloatType: float,
                  msgspec.inspect.IntType: int}.get(type(kind))
        if python is not None:
            body[field.name] = samples[python]
    if "started_at" in body:
        body["started_at"] = "2026-01-01T00:00:00+00:00"
    return body


def _bodies(route: Route) -> st.SearchStrategy[bytes | None]:
    names = _fields(route)
    named = st.fixed_dictionaries({}, optional={name: _JSON for name in names})
    # A body of the right types with one or two fields changed: reaches the checks past typing.
    mutated = st.dictionaries(st.sampled_from(names), st.one_of(_JSON, _TEXT), max_size=2).map(
        lambda changes: {**_valid(route), **changes})
    return st.one_of(
        st.none(),
        st.just(json.dumps(_valid(route)).encode()),
        st.binary(max_size=64),
        _JSON.map(lambda value: json.dumps(value).encode()),
        named.map(lambda value: json.dumps(value).encode()),  # \ud800 escapes included
        mutated.map(lambda value: json.dumps(value).encode()),
    )


def _segment(usual: str) -> st.SearchStrategy[str]:
    encoded = _TEXT.map(lambda text: quote(text, safe="", errors="surrogatepass"))
    return st.one_of(st.just(usual), encoded,
                     st.sampled_from(["..", ".", "%FF", "%C3", "%2E%2E", "..%2F..%2Fx",
                                      "default", "wf-1"]))


@pytest.fixture
def service() -> WorkflowService:
    clock = VirtualClock(datetime(2026, 1, 1, tzinfo=UTC))
    service = WorkflowService(
        store=InMemoryHistoryStore(), queues=InMemoryTaskQueues(clock, lambda: None),
        visibility=InMemoryVisibility(), answers=InMemoryQueryAnswers(),
        tokens=TaskTokens("fuzz"), clock=clock.now)
    # A run the fuzz can reach ("wf-1" in "default"), so the checks after the lookup run too.
    service.start_workflow(StartWorkflowRequest.from_dict("default", {
        "workflow_id": "wf-1", "workflow_type": "T", "task_list": "tl",
        "execution_start_to_close_timeout_seconds": 600}))
    return service


def _answer(service: WorkflowService, route: Route, path: str, query: dict[str, str],
            body: bytes | None) -> int:
    try:
        found = match(route.method, path)
        if found is None:
            return 404
        matched, params = found
        request = ApiRequest(path_params=params, query=query, raw_body=body)
        if matched.path.endswith("/query") and body is not None:
            request = ApiRequest(path_params=params, query=query, body=_short_wait(body))
        return matched.handler(service, request).status
    except (QueryTimeoutError, ServiceBusyError) as error:  # no worker: a timeout, not a fault
        return error.status
    except ServiceError as error:
        assert error.status < 500, f"{route.method} {path}: {error!r} {error.details}"
        return error.status


def _short_wait(body: bytes) -> Any:
    """A query waits (for a worker) in real time: keep the fuzzed body, with a short wait."""
    try:
        value = json.loads(body)
    except ValueError:
        return {"not": "json"}
    if isinstance(value, dict):
        value["wait_seconds"] = 0.01
    return value


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_no_route_answers_500_to_anything(
    service: WorkflowService, route: Route, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CADENZA_QUEUE_PREFIX", "fuzz")  # the cluster route reads it
    @settings(max_examples=100, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(
        domain=_segment("default"), workflow_id=_segment("wf-1"),
        query=st.dictionaries(st.sampled_from([*route.query, "other"]), _TEXT,
                              max_size=4),
        body=_bodies(route),
    )
    def check(domain: str, workflow_id: str, query: dict[str, str], body: bytes | None) -> None:
        for name in _WAITS & set(query):
            query[name] = "0"
        path = route.path.replace("<domain>", domain).replace("<workflow_id>", workflow_id)
        _answer(service, route, path, query, body)

    check()



@settings(max_examples=300, deadline=None, database=None)
@given(method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
       segments=st.lists(st.one_of(_segment("workflows"), st.sampled_from(
           ["api", "v1", "domains", "default", "tasks", "activity", "complete", ""])),
           max_size=8))
def test_any_path_finds_a_route_or_none_or_is_a_typed_400(method: str,
                                                          segments: list[str]) -> None:
    path = "/" + "/".join(segments)
    try:
        found = match(method, path)
    except BadRequestError as error:
        assert error.status == 400 and error.field
        return
    if found is not None:
        route, params = found
        assert route.method == method and set(params) == set(route.pattern.groupindex)
