"""Start options that need durable timers (delay, cron), the run's retry policy, and reset:
how requests are parsed, routed, and sent by the client."""

from __future__ import annotations

import math
import uuid
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest

from cadenza import Client, RetryPolicy
from cadenza.error import BadRequestError
from cadenza.service import WorkflowService
from cadenza.service.requests import (
    MAX_RESET_REASON,
    MAX_TIMEOUT_SECONDS,
    ResetWorkflowRequest,
    StartWorkflowRequest,
)
from cadenza.service.routes import ApiRequest, match

BODY: dict[str, Any] = {
    "workflow_id": "order-1", "workflow_type": "Order", "task_list": "orders",
    "execution_start_to_close_timeout_seconds": 60,
}


def start(**overrides: Any) -> StartWorkflowRequest:
    return StartWorkflowRequest.from_dict("default", {**BODY, **overrides})


def refused(**overrides: Any) -> BadRequestError:
    with pytest.raises(BadRequestError) as caught:
        start(**overrides)
    return caught.value


# --- delay_start_seconds --------------------------------------------------------------------


def test_a_start_without_delay_cron_or_retry_has_none() -> None:
    request = start()
    assert request.delay_start_seconds == 0
    assert request.cron_schedule is None
    assert request.retry_policy is None


@pytest.mark.parametrize(("value", "seconds"), [
    (None, 0), (0, 0), (0.0, 0), (5, 5), (2.1, 3), (0.001, 1), (59.999, 60),
    (MAX_TIMEOUT_SECONDS, MAX_TIMEOUT_SECONDS),
])
def test_delay_start_rounds_up_to_whole_seconds(value: Any, seconds: int) -> None:
    request = start(delay_start_seconds=value)
    assert request.delay_start_seconds == seconds
    assert isinstance(request.delay_start_seconds, int)


@pytest.mark.parametrize(("value", "message"), [
    (-1, "delay_start_seconds cannot be negative"),
    (-0.5, "delay_start_seconds cannot be negative"),
    (MAX_TIMEOUT_SECONDS + 1, f"delay_start_seconds must be at most {MAX_TIMEOUT_SECONDS}"),
    (math.nan, "delay_start_seconds must be a number of seconds"),
    (math.inf, "delay_start_seconds must be a number of seconds"),
    ("5", "delay_start_seconds must be a number of seconds"),
    (True, "delay_start_seconds must be a number of seconds"),
    ([5], "delay_start_seconds must be a number of seconds"),
])
def test_bad_delays_are_refused_naming_the_field(value: Any, message: str) -> None:
    error = refused(delay_start_seconds=value)
    assert error.field == "delay_start_seconds"
    assert message in str(error)


# --- cron_schedule --------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["*/15 * * * *", " @daily ", "0 9 * * MON-FRI"])
def test_a_valid_cron_schedule_is_kept_stripped(value: str) -> None:
    assert start(cron_schedule=value).cron_schedule == value.strip()


def test_an_empty_cron_schedule_means_none() -> None:
    assert start(cron_schedule="").cron_schedule is None
    assert start(cron_schedule=None).cron_schedule is None


@pytest.mark.parametrize(("value", "problem"), [
    ("61 * * * *", "61 is out of range 0-59"),
    ("* * *", "expected 5 fields"),
    ("0 0 30 2 *", "never matches"),
    ("@often", "unknown macro"),
])
def test_a_bad_cron_schedule_is_a_400_naming_the_expression(value: str, problem: str) -> None:
    error = refused(cron_schedule=value)
    assert error.status == 400
    assert error.field == "cron_schedule"
    assert repr(value) in str(error)
    assert problem in str(error)


def test_a_cron_schedule_must_be_a_string() -> None:
    error = refused(cron_schedule=5)
    assert error.field == "cron_schedule"


def test_delay_and_cron_are_no_longer_refused_together() -> None:
    request = start(delay_start_seconds=30, cron_schedule="@hourly")
    assert (request.delay_start_seconds, request.cron_schedule) == (30, "@hourly")


# --- retry_policy ---------------------------------------------------------------------------


def test_a_retry_policy_in_attribute_form_is_kept() -> None:
    attributes = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_attempts=5,
                             non_retryable_error_reasons=["Fatal"]).to_attributes()
    assert start(retry_policy=attributes).retry_policy == attributes


def test_an_empty_retry_policy_means_none() -> None:
    assert start(retry_policy={}).retry_policy is None


@pytest.mark.parametrize(("policy", "field"), [
    ("often", "retry_policy"),
    ([1], "retry_policy"),
    ({"maximum_attempts": 3}, "retry_policy.initial_interval"),
    ({"initial_interval_in_seconds": 0}, "retry_policy.initial_interval"),
    ({"initial_interval_in_seconds": True}, "retry_policy.initial_interval"),
    ({"initial_interval_in_seconds": 1, "backoff_coefficient": 0.5},
     "retry_policy.backoff_coefficient"),
    ({"initial_interval_in_seconds": 10, "maximum_interval_in_seconds": 5},
     "retry_policy.maximum_interval"),
    ({"initial_interval_in_seconds": 1, "maximum_attempts": -1},
     "retry_policy.maximum_attempts"),
    ({"initial_interval_in_seconds": 1, "non_retryable_error_reasons": [1]},
     "retry_policy.non_retryable_error_reasons"),
])
def test_a_bad_retry_policy_is_refused_as_an_activitys_is(policy: Any, field: str) -> None:
    error = refused(retry_policy=policy)
    assert error.field == field


# --- the start route passes them on ---------------------------------------------------------


class FakeService:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def start_workflow(self, request: StartWorkflowRequest, **kwargs: Any) -> str:
        self.calls.append(("start_workflow", (request,), kwargs))
        return "run-1"

    def reset_workflow(self, *args: Any, **kwargs: Any) -> str:
        self.calls.append(("reset_workflow", args, kwargs))
        return "run-2"


def call(service: FakeService, method: str, path: str, body: dict[str, Any]) -> Any:
    found = match(method, path)
    assert found is not None, path
    route, params = found
    return route.handler(cast(WorkflowService, service), ApiRequest(path_params=params,
                                                                    body=body))


def test_the_start_route_passes_delay_cron_and_retry_to_the_service() -> None:
    service = FakeService()
    policy = RetryPolicy(maximum_attempts=2).to_attributes()
    answer = call(service, "POST", "/api/v1/domains/default/workflows",
                  {**BODY, "delay_start_seconds": 1.5, "cron_schedule": "@daily",
                   "retry_policy": policy})
    assert answer.status == 201
    (name, (request,), _), = service.calls
    assert name == "start_workflow"
    assert (request.delay_start_seconds, request.cron_schedule, request.retry_policy) == (
        2, "@daily", policy)


# --- reset ----------------------------------------------------------------------------------


def reset(body: dict[str, Any], *, domain: str = "default", workflow_id: str = "wf-1",
          run_id: str = "") -> ResetWorkflowRequest:
    return ResetWorkflowRequest.from_dict(domain, workflow_id, run_id, body)


def test_a_reset_request_reads_its_fields() -> None:
    request = reset({"decision_finish_event_id": 4, "reason": "bad deploy", "identity": "me",
                     "request_id": "r-1"}, run_id="run-9")
    assert request == ResetWorkflowRequest(
        domain="default", workflow_id="wf-1", run_id="run-9", decision_finish_event_id=4,
        reason="bad deploy", identity="me", request_id="r-1",
    )
    assert reset({"decision_finish_event_id": 1}).run_id == ""  # the current run
    assert reset({"decision_finish_event_id": 1, "reason": "x" * MAX_RESET_REASON}).reason


@pytest.mark.parametrize(("body", "field", "message"), [
    ({}, "decision_finish_event_id", "decision_finish_event_id is required"),
    ({"decision_finish_event_id": 0}, "decision_finish_event_id", "positive integer"),
    ({"decision_finish_event_id": -3}, "decision_finish_event_id", "positive integer"),
    ({"decision_finish_event_id": "4"}, "decision_finish_event_id", "positive integer"),
    ({"decision_finish_event_id": 4.0}, "decision_finish_event_id", "positive integer"),
    ({"decision_finish_event_id": True}, "decision_finish_event_id", "positive integer"),
    ({"decision_finish_event_id": 4, "reason": "x" * (MAX_RESET_REASON + 1)}, "reason",
     f"the limit is {MAX_RESET_REASON} bytes"),
    ({"decision_finish_event_id": 4, "reason": 5}, "reason", "reason must be a string"),
    ({"decision_finish_event_id": 4, "identity": 5}, "identity", "must be a string"),
    ({"decision_finish_event_id": 4, "request_id": []}, "request_id", "must be a string"),
])
def test_bad_reset_requests_name_the_field(body: dict[str, Any], field: str,
                                           message: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        reset(body)
    assert caught.value.field == field
    assert message in str(caught.value)


def test_a_reset_needs_a_domain_a_workflow_id_and_an_object() -> None:
    with pytest.raises(BadRequestError) as caught:
        reset({"decision_finish_event_id": 4}, domain="bad domain")
    assert caught.value.field == "domain"
    with pytest.raises(BadRequestError) as caught:
        reset({"decision_finish_event_id": 4}, workflow_id="")
    assert caught.value.field == "workflow_id"
    with pytest.raises(BadRequestError) as caught:
        ResetWorkflowRequest.from_dict("default", "wf-1", "", cast(Any, [1]))
    assert caught.value.field == "body"


def test_the_reset_route_calls_the_service_and_answers_the_new_run_id() -> None:
    service = FakeService()
    answer = call(service, "POST", "/api/v1/domains/default/workflows/wf%2F1/reset",
                  {"run_id": "run-1", "decision_finish_event_id": 4, "reason": "bad deploy",
                   "identity": "me", "request_id": "r-1"})
    assert (answer.status, answer.body) == (200, {"run_id": "run-2"})
    assert service.calls == [("reset_workflow", ("default", "wf/1", "run-1"), {
        "decision_finish_event_id": 4, "reason": "bad deploy", "identity": "me",
        "request_id": "r-1",
    })]


def test_the_reset_route_refuses_a_bad_body_before_calling_the_service() -> None:
    service = FakeService()
    with pytest.raises(BadRequestError) as caught:
        call(service, "POST", "/api/v1/domains/default/workflows/wf-1/reset", {})
    assert caught.value.field == "decision_finish_event_id"
    assert service.calls == []


# --- the client -----------------------------------------------------------------------------


class FakeTransport:
    def __init__(self, answer: dict[str, Any] | None = None) -> None:
        self.answer = answer or {}
        self.calls: list[SimpleNamespace] = []

    async def call(self, method: str, path: str, *, json: dict[str, Any] | None = None,
                   params: dict[str, Any] | None = None,
                   timeout: float | None = None) -> dict[str, Any]:
        self.calls.append(SimpleNamespace(method=method, path=path, json=json, params=params))
        return self.answer

    async def close(self) -> None:
        pass


def client(answer: dict[str, Any] | None = None) -> tuple[Client, FakeTransport]:
    transport = FakeTransport(answer)
    return Client(domain="default", transport=transport, identity="tester"), transport


START = {"task_list": "orders", "execution_start_to_close_timeout": timedelta(minutes=1)}


def start_body(**options: Any) -> dict[str, Any]:
    made, _ = client()
    return made._start_body("Order", (), {**START, **options})


def test_the_client_sends_delay_start_in_seconds() -> None:
    assert start_body(delay_start=timedelta(seconds=1.5))["delay_start_seconds"] == 1.5
    assert start_body(delay_start=timedelta(hours=2))["delay_start_seconds"] == 7200
    assert start_body(delay_start=timedelta(0))["delay_start_seconds"] is None
    assert start_body()["delay_start_seconds"] is None


@pytest.mark.parametrize(("delay", "message"), [
    (timedelta(seconds=-1), "delay_start cannot be negative"),
    (5, "delay_start must be a timedelta"),
    ("5s", "delay_start must be a timedelta"),
])
def test_the_client_refuses_a_bad_delay(delay: Any, message: str) -> None:
    with pytest.raises(BadRequestError, match=message) as caught:
        start_body(delay_start=delay)
    assert caught.value.field == "delay_start"


def test_the_client_checks_the_cron_schedule_before_sending() -> None:
    assert start_body(cron_schedule=" */5 * * * * ")["cron_schedule"] == "*/5 * * * *"
    assert start_body(cron_schedule="")["cron_schedule"] is None
    with pytest.raises(BadRequestError, match="cron_schedule '0 0 30 2 \\*' never matches"):
        start_body(cron_schedule="0 0 30 2 *")


def test_the_client_sends_the_retry_policy_in_attribute_form() -> None:
    body = start_body(retry_policy={"initial_interval": 2, "maximum_attempts": 3})
    assert body["retry_policy"] == RetryPolicy(initial_interval=timedelta(seconds=2),
                                               maximum_attempts=3).to_attributes()
    assert StartWorkflowRequest.from_dict("default", body).retry_policy == body["retry_policy"]


def test_what_the_client_sends_the_service_accepts() -> None:
    body = start_body(delay_start=timedelta(seconds=2.5), cron_schedule="@weekly",
                      retry_policy=RetryPolicy(maximum_attempts=2))
    request = StartWorkflowRequest.from_dict("default", body)
    assert (request.delay_start_seconds, request.cron_schedule) == (3, "@weekly")


async def test_client_reset_posts_to_the_reset_route_and_returns_the_new_run_id() -> None:
    made, transport = client({"run_id": "run-2"})
    new_run = await made.reset_workflow("wf/1", "run-1", decision_finish_event_id=4,
                                        reason="bad deploy")
    assert new_run == "run-2"
    (sent,) = transport.calls
    assert (sent.method, sent.path) == ("POST", "/api/v1/domains/default/workflows/wf%2F1/reset")
    found = match(sent.method, sent.path)
    assert found is not None and found[0].handler.__name__ == "reset_workflow"
    assert sent.json["run_id"] == "run-1"
    assert sent.json["decision_finish_event_id"] == 4
    assert sent.json["reason"] == "bad deploy"
    assert sent.json["identity"] == "tester"
    assert uuid.UUID(sent.json["request_id"]).version == 4
    assert ResetWorkflowRequest.from_dict("default", "wf/1", sent.json["run_id"], sent.json)


async def test_client_reset_defaults_to_the_current_run_and_a_fresh_request_id() -> None:
    made, transport = client({"run_id": "run-2"})
    await made.reset_workflow("wf-1", decision_finish_event_id=4)
    await made.reset_workflow("wf-1", decision_finish_event_id=4)
    await made.reset_workflow("wf-1", decision_finish_event_id=4, request_id="mine")
    first, second, third = (sent.json for sent in transport.calls)
    assert first["run_id"] == "" and first["reason"] == ""
    assert first["request_id"] != second["request_id"]
    assert third["request_id"] == "mine"


@pytest.mark.parametrize("event_id", [0, -1, True, "4", 4.0])
async def test_client_reset_refuses_a_bad_event_id_without_calling(event_id: Any) -> None:
    made, transport = client({"run_id": "run-2"})
    with pytest.raises(BadRequestError) as caught:
        await made.reset_workflow("wf-1", decision_finish_event_id=event_id)
    assert caught.value.field == "decision_finish_event_id"
    assert transport.calls == []


async def test_client_reset_needs_a_workflow_id() -> None:
    made, transport = client({"run_id": "run-2"})
    with pytest.raises(BadRequestError) as caught:
        await made.reset_workflow("", decision_finish_event_id=4)
    assert caught.value.field == "workflow_id"
    assert transport.calls == []
