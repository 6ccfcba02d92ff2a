"""Requests the service accepts, parsed from wire dicts with errors that name the field.

The HTTP API and in-process callers both build these, so validation lives in one place.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..core import Decision
from ..core.decisions import DecisionType
from ..error import BadRequestError

_DOMAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
#: Longest timeout accepted, in seconds: Cadence's int32 seconds (about 68 years). Larger values
#: (and NaN or infinity, which JSON parsers accept) would overflow DynamoDB numbers and timers.
MAX_TIMEOUT_SECONDS = 2**31 - 1


class ReusePolicy(StrEnum):
    ALLOW_DUPLICATE_FAILED_ONLY = "AllowDuplicateFailedOnly"
    ALLOW_DUPLICATE = "AllowDuplicate"
    REJECT_DUPLICATE = "RejectDuplicate"
    TERMINATE_IF_RUNNING = "TerminateIfRunning"

    @classmethod
    def parse(cls, value: Any) -> ReusePolicy:
        if value is None or value == "":
            return cls.ALLOW_DUPLICATE_FAILED_ONLY
        text = str(getattr(value, "value", value))
        wanted = re.sub(r"[^a-z]", "", text.lower()).removeprefix("workflowidreusepolicy")
        for policy in cls:
            if policy.value.lower() == wanted:
                return policy
        raise BadRequestError(
            f"workflow_id_reuse_policy {text!r} is not one of {', '.join(p.value for p in cls)}",
            field="workflow_id_reuse_policy",
        )


def check_domain(domain: Any) -> str:
    if not isinstance(domain, str) or not _DOMAIN.match(domain):
        raise BadRequestError(
            "domain must be 1-100 letters, digits, '.', '_' or '-'", field="domain"
        )
    return domain


def _string(data: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise BadRequestError(f"{name} is required", field=name)
        return ""
    if not isinstance(value, str):
        raise BadRequestError(f"{name} must be a string", field=name)
    return value


def _payload(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise BadRequestError(f"{name} must be a payload string", field=name)
    return value


def _seconds(data: Mapping[str, Any], name: str, *, required: bool = False,
             default: int | None = None) -> int | None:
    value = data.get(name)
    if value is None:
        if required:
            raise BadRequestError(f"{name} is required", field=name)
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequestError(f"{name} must be a number of seconds", field=name)
    if value > MAX_TIMEOUT_SECONDS:
        raise BadRequestError(
            f"{name} must be at most {MAX_TIMEOUT_SECONDS} seconds", field=name,
            limit=MAX_TIMEOUT_SECONDS,
        )
    if value <= 0:
        raise BadRequestError(f"{name} must be greater than 0", field=name)
    return max(1, round(value))


def _mapping(data: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise BadRequestError(f"{name} must be an object", field=name)
    return dict(value)


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
    retry_policy: dict[str, Any] | None = None
    cron_schedule: str | None = None

    @classmethod
    def from_dict(cls, domain: str, data: Mapping[str, Any]) -> StartWorkflowRequest:
        if not isinstance(data, Mapping):
            raise BadRequestError("request body must be a JSON object", field="body")
        domain = check_domain(domain)  # the path first: its error is the one to report
        execution = _seconds(data, "execution_start_to_close_timeout_seconds", required=True)
        task = _seconds(data, "task_start_to_close_timeout_seconds", default=10)
        assert execution is not None and task is not None
        if data.get("delay_start_seconds") or data.get("cron_schedule"):
            raise BadRequestError(
                "delay_start and cron_schedule need durable timers, which are not built yet",
                field="delay_start_seconds" if data.get("delay_start_seconds") else "cron_schedule",
            )
        return cls(
            domain=domain,
            workflow_id=_string(data, "workflow_id"),
            workflow_type=_string(data, "workflow_type"),
            task_list=_string(data, "task_list"),
            input=_payload(data, "input"),
            execution_start_to_close_timeout_seconds=execution,
            task_start_to_close_timeout_seconds=task,
            workflow_id_reuse_policy=ReusePolicy.parse(data.get("workflow_id_reuse_policy")),
            identity=_string(data, "identity", required=False),
            request_id=_string(data, "request_id", required=False),
            memo=_mapping(data, "memo"),
            search_attributes=_mapping(data, "search_attributes"),
            retry_policy=_mapping(data, "retry_policy"),
        )


def parse_decisions(value: Any) -> tuple[Decision, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise BadRequestError("decisions must be a list", field="decisions")
    decisions = []
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise BadRequestError(f"decision {index} must be an object", field="decisions")
        try:
            kind = DecisionType(str(item.get("decision_type")))
        except ValueError as error:
            raise BadRequestError(
                f"decision {index} has unknown decision_type {item.get('decision_type')!r}",
                field="decisions",
            ) from error
        attributes = item.get("attributes") or {}
        if not isinstance(attributes, Mapping):
            raise BadRequestError(
                f"decision {index} attributes must be an object", field="decisions"
            )
        decisions.append(Decision(kind, dict(attributes)))
    return tuple(decisions)


def required_string(data: Mapping[str, Any], name: str) -> str:
    return _string(data, name)


def optional_string(data: Mapping[str, Any], name: str) -> str:
    return _string(data, name, required=False)


def optional_payload(data: Mapping[str, Any], name: str) -> str | None:
    return _payload(data, name)
