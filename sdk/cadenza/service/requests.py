"""Requests the service accepts: typed bodies parsed once at the edge, errors naming the field.

Every route's JSON body is one :class:`Body` (a msgspec Struct) below: decoded from the bytes
received in one pass (or converted from the dict an in-process caller hands in), with the types
checked by msgspec, then every string in it checked once more: no lone surrogate anywhere, and
each field within its limit in UTF-8 bytes (core.limits), before anything else happens. A
malformed or mistyped field is a BadRequestError (400) naming it; a payload over its limit is a
PayloadTooLargeError (413) naming the limit. **Unknown fields are ignored**, on every route
alike (as Cadence's protobuf-based API does), so an older server accepts a newer client.

The OpenAPI document (service.openapi) is generated from these same types: what it says is
what is checked.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar, get_args, get_origin, get_type_hints

import msgspec

from ..core import Decision
from ..core.activities import check_retry_policy
from ..core.cron import CronSchedule
from ..core.decisions import DecisionType
from ..core.limits import (
    MAX_BODY_BYTES,
    MAX_ID_BYTES,
    MAX_IDENTITY_BYTES,
    MAX_MEMO_BYTES,
    MAX_PAYLOAD_BYTES,
    MAX_REASON_BYTES,
    MAX_REQUEST_ID_BYTES,
    MAX_SEARCH_ATTRIBUTES_BYTES,
    MAX_TASK_TOKEN_BYTES,
    check_text,
    utf8_size,
)
from ..core.policies import ReusePolicy
from ..error import BadRequestError, PayloadTooLargeError

_DOMAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
#: Longest timeout accepted, in seconds: Cadence's int32 seconds (about 68 years). Larger values
#: (and NaN or infinity, which JSON parsers accept) would overflow DynamoDB numbers and timers.
MAX_TIMEOUT_SECONDS = 2**31 - 1
#: Failure details the engine truncates to MAX_PAYLOAD_BYTES itself (a long traceback is
#: kept, cut), so the edge lets more through than for a payload it would store whole.
MAX_FAILURE_DETAILS_BYTES = 1024 * 1024


# --- field kinds: a type, its limit in bytes, and what a wrong value is told it must be -------


@dataclass(frozen=True, slots=True)
class Kind:
    """What a field holds, for its checks and its OpenAPI description."""

    what: str
    limit: int | None = None
    #: Over the limit: 413 PayloadTooLargeError (a payload) rather than 400.
    payload: bool = False


def _meta(kind: Kind, **schema: Any) -> msgspec.Meta:
    extra: dict[str, Any] = {"description": kind.what, **schema}
    if kind.limit is not None:
        extra["x-maxBytes"] = kind.limit
    return msgspec.Meta(extra={"kind": kind}, extra_json_schema=extra)


Id = Annotated[str, _meta(Kind("a string (an identifier)", MAX_ID_BYTES))]
Identity = Annotated[str, _meta(Kind("a string (who is calling, recorded in history)",
                                     MAX_IDENTITY_BYTES))]
RequestId = Annotated[str, _meta(Kind(
    "a string (an id that makes a retried request change nothing)", MAX_REQUEST_ID_BYTES))]
Reason = Annotated[str, _meta(Kind("a string (a short reason)", MAX_REASON_BYTES))]
Payload = Annotated[str, _meta(Kind(
    "a payload string (the data converter's encoding, JSON by default)", MAX_PAYLOAD_BYTES,
    payload=True))]
FailureDetails = Annotated[str, _meta(Kind(
    "a payload string (failure details, truncated to the payload limit when stored)",
    MAX_FAILURE_DETAILS_BYTES, payload=True))]
TaskToken = Annotated[str, _meta(Kind(
    "a string (the task token a worker received with the task)", MAX_TASK_TOKEN_BYTES))]
Seconds = Annotated[float, _meta(Kind("a number of seconds"))]
Memo = Annotated[dict[str, Any], _meta(Kind("an object (stored as JSON)", MAX_MEMO_BYTES))]
SearchAttributes = Annotated[dict[str, Any], _meta(Kind("an object of search attributes",
                                                        MAX_SEARCH_ATTRIBUTES_BYTES))]
Policy = Annotated[dict[str, Any], _meta(Kind(
    "an object: a retry policy in Cadence's attribute form"))]
Time = Annotated[str, _meta(Kind("a string (an ISO 8601 time with a UTC offset)"),
                            format="date-time")]
EventId = Annotated[int, _meta(Kind("a positive integer event id"))]
Count = Annotated[int, _meta(Kind("an integer"))]


class Body(msgspec.Struct, kw_only=True, frozen=True):
    """A route's JSON body. Unknown fields are ignored (never an error)."""


# --- workflows ---------------------------------------------------------------------------------


class StartWorkflowBody(Body, kw_only=True, frozen=True):
    workflow_id: Id
    workflow_type: Id
    task_list: Id
    execution_start_to_close_timeout_seconds: Seconds
    input: Payload | None = None
    task_start_to_close_timeout_seconds: Seconds | None = None
    workflow_id_reuse_policy: Id | None = None
    identity: Identity | None = None
    request_id: RequestId | None = None
    memo: Memo | None = None
    search_attributes: SearchAttributes | None = None
    retry_policy: Policy | None = None
    cron_schedule: Id | None = None
    delay_start_seconds: Seconds | None = None


class SignalWithStartBody(StartWorkflowBody, kw_only=True, frozen=True):
    signal_name: Id
    signal_input: Payload | None = None


class SignalBody(Body, kw_only=True, frozen=True):
    signal_name: Id
    run_id: Id | None = None
    input: Payload | None = None
    identity: Identity | None = None
    request_id: RequestId | None = None


class QueryBody(Body, kw_only=True, frozen=True):
    query_type: Id
    run_id: Id | None = None
    query_args: Payload | None = None
    wait_seconds: Seconds = 20.0


class QueryAnswerBody(Body, kw_only=True, frozen=True):
    task_token: TaskToken
    answer: Payload | None = None
    error: FailureDetails | None = None


class CancelBody(Body, kw_only=True, frozen=True):
    run_id: Id | None = None
    cause: Reason | None = None
    identity: Identity | None = None
    request_id: RequestId | None = None


class TerminateBody(Body, kw_only=True, frozen=True):
    run_id: Id | None = None
    reason: Reason | None = None
    details: Payload | None = None
    identity: Identity | None = None
    request_id: RequestId | None = None


class ResetBody(Body, kw_only=True, frozen=True):
    decision_finish_event_id: EventId
    run_id: Id | None = None
    reason: Reason | None = None
    identity: Identity | None = None
    request_id: RequestId | None = None


# --- tasks -------------------------------------------------------------------------------------


class DecisionBody(Body, kw_only=True, frozen=True):
    decision_type: Id
    attributes: dict[str, Any] | None = None


class CompleteDecisionBody(Body, kw_only=True, frozen=True):
    task_token: TaskToken
    history_length: Count
    started_at: Time
    decisions: list[DecisionBody] | None = None
    identity: Identity | None = None
    binary_checksum: Id | None = None
    request_id: RequestId | None = None
    #: Eager execution (sticky worker): how many scheduled activities of eager_task_list
    #: the completing worker takes at once.
    eager_activities: Count | None = None
    eager_task_list: Id | None = None


class FailDecisionBody(Body, kw_only=True, frozen=True):
    task_token: TaskToken
    cause: Reason
    started_at: Time
    details: FailureDetails | None = None
    identity: Identity | None = None


class StartActivityBody(Body, kw_only=True, frozen=True):
    task_token: TaskToken
    identity: Identity | None = None
    request_id: RequestId | None = None


class HeartbeatBody(Body, kw_only=True, frozen=True):
    task_token: TaskToken
    details: Payload | None = None
    identity: Identity | None = None


class CancelActivityBody(Body, kw_only=True, frozen=True):
    task_token: TaskToken
    details: Payload | None = None
    identity: Identity | None = None
    request_id: RequestId | None = None


class CompleteActivityBody(Body, kw_only=True, frozen=True):
    task_token: TaskToken
    result: Payload | None = None
    identity: Identity | None = None
    request_id: RequestId | None = None
    #: Decision hand-back: the worker decides this task list's tasks and has room for one.
    hand_back_task_list: Id | None = None


class FailActivityBody(Body, kw_only=True, frozen=True):
    task_token: TaskToken
    reason: Reason
    details: FailureDetails | None = None
    identity: Identity | None = None
    request_id: RequestId | None = None


B = TypeVar("B", bound=Body)


def parse_body(model: type[B], body: bytes | Mapping[str, Any] | None) -> B:
    """``body`` (the bytes received, or an in-process caller's dict; None: ``{}``) as ``model``.

    Raises PayloadTooLargeError for bytes over MAX_BODY_BYTES before reading them, and
    BadRequestError naming the field for anything else wrong.
    """
    try:
        if isinstance(body, bytes | bytearray | memoryview):
            check_body_size(len(body))
            parsed = msgspec.json.decode(body or b"{}", type=model)
        elif body is None or isinstance(body, Mapping):
            parsed = msgspec.convert(dict(body or {}), type=model)
        else:
            raise BadRequestError("request body must be a JSON object", field="body")
    except msgspec.ValidationError as error:
        raise _validation_error(model, str(error)) from None
    except (msgspec.DecodeError, RecursionError) as error:
        raise BadRequestError(f"request body is not valid JSON: {error}", field="body") from None
    check_strings(parsed)
    return parsed


def check_body_size(size: int) -> None:
    if size > MAX_BODY_BYTES:
        raise PayloadTooLargeError(
            f"the request body is {size} bytes; the limit is {MAX_BODY_BYTES} bytes",
            field="body", limit=MAX_BODY_BYTES, size=size,
        )


_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`")


def _validation_error(model: type[Body], text: str) -> BadRequestError:
    at = _AT.search(text)
    path = at["path"] if at else ""
    problem = text[: at.start()] if at else text
    top = re.match(r"^\.([A-Za-z0-9_]+)", path)
    missing = _MISSING.match(problem)
    if top is None and missing is not None:  # a required top-level field
        name = missing["name"]
        return BadRequestError(f"{name} is required", field=name)
    if top is None:
        if problem.startswith("Expected `object`"):
            return BadRequestError("request body must be a JSON object", field="body")
        return BadRequestError(f"request body: {problem}", field="body")
    name = top[1]
    kind = _kinds(model).get(name)
    what = f" must be {kind.what}" if kind is not None else " is malformed"
    where = f" (at {path[1:]})" if path != f".{name}" else ""
    return BadRequestError(f"{name}{what}: {problem}{where}", field=name)


@functools.cache
def _kinds(model: type[Body]) -> dict[str, Kind]:
    """Each field's Kind, read from its annotation."""
    kinds: dict[str, Kind] = {}
    for name, annotation in get_type_hints(model, include_extras=True).items():
        found = _kind_of(annotation)
        if found is not None:
            kinds[name] = found
    return kinds


def _kind_of(annotation: Any) -> Kind | None:
    if get_origin(annotation) is Annotated:
        for meta in get_args(annotation)[1:]:
            if isinstance(meta, msgspec.Meta) and meta.extra and "kind" in meta.extra:
                kind: Kind = meta.extra["kind"]
                return kind
    for argument in get_args(annotation):  # X | None
        found = _kind_of(argument)
        if found is not None:
            return found
    return None


def check_strings(body: Body) -> None:
    """Every field within its byte limit; no lone surrogate anywhere, nested values included."""
    kinds = _kinds(type(body))
    for name in body.__struct_fields__:
        value = getattr(body, name)
        if value is None:
            continue
        kind = kinds.get(name)
        if isinstance(value, str):
            if kind is not None and kind.limit is not None:
                _check_limit(name, value, kind)
            else:
                utf8_size(value, field=name)
        elif isinstance(value, dict):
            size = _json_size(value, field=name)
            if kind is not None and kind.limit is not None and size > kind.limit:
                raise BadRequestError(
                    f"{name} is {size} bytes as JSON; the limit is {kind.limit} bytes",
                    field=name, limit=kind.limit, size=size,
                )
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, Body):
                    try:
                        check_strings(item)
                    except BadRequestError as error:
                        raise BadRequestError(f"{name}: {error.message}", field=name,
                                              **_limits(error)) from None
                else:
                    _json_size(item, field=name)


def _limits(error: BadRequestError) -> dict[str, Any]:
    return {key: error.details[key] for key in ("limit", "size") if key in error.details}


def _check_limit(name: str, value: str, kind: Kind) -> None:
    assert kind.limit is not None
    if not kind.payload:
        check_text(value, field=name, limit=kind.limit)
        return
    size = utf8_size(value, field=name)
    if size > kind.limit:
        raise PayloadTooLargeError(
            f"{name} is {size} bytes; the limit is {kind.limit} bytes", field=name,
            limit=kind.limit, size=size,
        )


def _json_size(value: Any, *, field: str) -> int:
    """The size of ``value`` as compact JSON; BadRequestError for a lone surrogate in it."""
    try:
        return len(msgspec.json.encode(value))
    except UnicodeEncodeError as error:
        raise BadRequestError(
            f"{field} holds a string that is not valid Unicode text (a lone surrogate)",
            field=field,
        ) from error
    except (TypeError, OverflowError, RecursionError) as error:
        raise BadRequestError(f"{field} is not a JSON value: {error}", field=field) from error


# --- checks past the types ----------------------------------------------------------------------


def check_domain(domain: Any) -> str:
    if not isinstance(domain, str) or not _DOMAIN.match(domain):
        raise BadRequestError(
            "domain must be 1-100 letters, digits, '.', '_' or '-'", field="domain"
        )
    return domain


def required(value: str | None, name: str) -> str:
    if not value:
        raise BadRequestError(f"{name} is required", field=name)
    return value


def _timeout(value: float | None, name: str, *, default: int | None = None) -> int:
    """Whole seconds, at least 1; ``default`` when absent (required when there is none)."""
    if value is None:
        if default is None:
            raise BadRequestError(f"{name} is required", field=name)
        return default
    if not math.isfinite(value):
        raise BadRequestError(f"{name} must be a number of seconds", field=name)
    if value > MAX_TIMEOUT_SECONDS:
        raise BadRequestError(
            f"{name} must be at most {MAX_TIMEOUT_SECONDS} seconds", field=name,
            limit=MAX_TIMEOUT_SECONDS,
        )
    if value <= 0:
        raise BadRequestError(f"{name} must be greater than 0", field=name)
    return max(1, round(value))


def _delay(value: float | None, name: str) -> int:
    """A non-negative number of seconds, rounded up to whole seconds (0 when absent)."""
    if value is None:
        return 0
    if not math.isfinite(value):
        raise BadRequestError(f"{name} must be a number of seconds", field=name)
    if value < 0:
        raise BadRequestError(f"{name} cannot be negative", field=name)
    if value > MAX_TIMEOUT_SECONDS:
        raise BadRequestError(
            f"{name} must be at most {MAX_TIMEOUT_SECONDS} seconds", field=name,
            limit=MAX_TIMEOUT_SECONDS,
        )
    return math.ceil(value)


def wait_seconds(value: float, name: str = "wait_seconds") -> float:
    if not math.isfinite(value) or not 0 < value < 3600:
        raise BadRequestError(f"{name} must be a positive number", field=name)
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class StartWorkflowRequest:
    domain: str
    workflow_id: str
    workflow_type: str
    task_list: str
    input: str | None
    execution_start_to_close_timeout_seconds: int
    task_start_to_close_timeout_seconds: int
    workflow_id_reuse_policy: ReusePolicy
    identity: str = ""
    request_id: str = ""
    memo: dict[str, Any] | None = None
    search_attributes: dict[str, Any] | None = None
    #: Cadence's attribute form (``initial_interval_in_seconds`` ...), checked as an
    #: activity's is; None: a failed run is not retried.
    retry_policy: dict[str, Any] | None = None
    #: A valid cron expression (core.cron), stripped; None: not a cron workflow.
    cron_schedule: str | None = None
    #: Whole seconds before the first decision task; 0: at once.
    delay_start_seconds: int = 0

    @classmethod
    def from_dict(cls, domain: str, data: Mapping[str, Any]) -> StartWorkflowRequest:
        if not isinstance(data, Mapping):
            raise BadRequestError("request body must be a JSON object", field="body")
        domain = check_domain(domain)  # the path first: its error is the one to report
        return cls.from_body(domain, parse_body(StartWorkflowBody, data))

    @classmethod
    def from_body(cls, domain: str, body: StartWorkflowBody) -> StartWorkflowRequest:
        domain = check_domain(domain)
        execution = _timeout(body.execution_start_to_close_timeout_seconds,
                             "execution_start_to_close_timeout_seconds")
        task = _timeout(body.task_start_to_close_timeout_seconds,
                        "task_start_to_close_timeout_seconds", default=10)
        policy = body.retry_policy or None  # {}: no policy, as RetryPolicy reads it
        check_retry_policy(policy)  # exactly as an activity's: BadRequestError naming the key
        return cls(
            domain=domain,
            workflow_id=required(body.workflow_id, "workflow_id"),
            workflow_type=required(body.workflow_type, "workflow_type"),
            task_list=required(body.task_list, "task_list"),
            input=body.input,
            execution_start_to_close_timeout_seconds=execution,
            task_start_to_close_timeout_seconds=task,
            workflow_id_reuse_policy=ReusePolicy.parse(body.workflow_id_reuse_policy),
            identity=body.identity or "",
            request_id=body.request_id or "",
            memo=body.memo,
            search_attributes=body.search_attributes,
            retry_policy=policy,
            cron_schedule=(CronSchedule.parse(body.cron_schedule).text  # names the expression
                           if body.cron_schedule else None),
            delay_start_seconds=_delay(body.delay_start_seconds, "delay_start_seconds"),
        )


#: Longest reason a reset records, in bytes.
MAX_RESET_REASON = MAX_REASON_BYTES


@dataclass(frozen=True, slots=True, kw_only=True)
class ResetWorkflowRequest:
    """Reset a run to one of its DecisionTaskCompleted events: a new run continues from there."""

    domain: str
    workflow_id: str
    #: Empty: the current run.
    run_id: str
    #: The DecisionTaskCompleted event the new run's history stops after.
    decision_finish_event_id: int
    reason: str = ""
    identity: str = ""
    request_id: str = ""

    @classmethod
    def from_dict(cls, domain: str, workflow_id: str, run_id: str,
                  data: Mapping[str, Any]) -> ResetWorkflowRequest:
        if not isinstance(data, Mapping):
            raise BadRequestError("request body must be a JSON object", field="body")
        domain = check_domain(domain)
        return cls.from_body(domain, workflow_id, run_id, parse_body(ResetBody, data))

    @classmethod
    def from_body(cls, domain: str, workflow_id: str, run_id: str,
                  body: ResetBody) -> ResetWorkflowRequest:
        domain = check_domain(domain)
        if body.decision_finish_event_id <= 0:
            raise BadRequestError(
                "decision_finish_event_id must be a positive integer (the event id of a "
                "DecisionTaskCompleted event)", field="decision_finish_event_id",
            )
        return cls(
            domain=domain,
            workflow_id=required(workflow_id, "workflow_id"),
            run_id=run_id or "",
            decision_finish_event_id=body.decision_finish_event_id,
            reason=body.reason or "",
            identity=body.identity or "",
            request_id=body.request_id or "",
        )


def decisions_of(bodies: list[DecisionBody] | None) -> tuple[Decision, ...]:
    decisions = []
    for index, item in enumerate(bodies or ()):
        try:
            kind = DecisionType(item.decision_type)
        except ValueError as error:
            raise BadRequestError(
                f"decision {index} has unknown decision_type {item.decision_type!r}",
                field="decisions",
            ) from error
        decisions.append(Decision(kind, dict(item.attributes or {})))
    return tuple(decisions)


class _Decisions(Body, kw_only=True, frozen=True):
    decisions: list[DecisionBody] | None = None


def parse_decisions(value: Any) -> tuple[Decision, ...]:
    """Decisions from their wire form (a list of ``{decision_type, attributes}``)."""
    if value is not None and not isinstance(value, list):
        raise BadRequestError("decisions must be a list", field="decisions")
    return decisions_of(parse_body(_Decisions, {"decisions": value}).decisions)


# --- for routes still reading a dict ----------------------------------------------------------


def _string(data: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise BadRequestError(f"{name} is required", field=name)
        return ""
    if not isinstance(value, str):
        raise BadRequestError(f"{name} must be a string", field=name)
    check_text(value, field=name, limit=MAX_ID_BYTES if name != "task_token"
               else MAX_TASK_TOKEN_BYTES)
    return value


def required_string(data: Mapping[str, Any], name: str) -> str:
    return _string(data, name)


def optional_string(data: Mapping[str, Any], name: str) -> str:
    return _string(data, name, required=False)


def optional_payload(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequestError(f"{name} must be a payload string", field=name)
    _check_limit(name, value, Kind("a payload string", MAX_PAYLOAD_BYTES, payload=True))
    return value
