"""Requests the service accepts, parsed from wire dicts with errors that name the field.

The HTTP API and in-process callers both build these, so validation lives in one place.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..core import Decision
from ..core.activities import check_retry_policy
from ..core.cron import CronSchedule
from ..core.decisions import DecisionType
from ..core.policies import ReusePolicy
from ..error import BadRequestError

_DOMAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
#: Longest timeout accepted, in seconds: Cadence's int32 seconds (about 68 years). Larger values
#: (and NaN or infinity, which JSON parsers accept) would overflow DynamoDB numbers and timers.
MAX_TIMEOUT_SECONDS = 2**31 - 1


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
        execution = _seconds(data, "execution_start_to_close_timeout_seconds", required=True)
        task = _seconds(data, "task_start_to_close_timeout_seconds", default=10)
        assert execution is not None and task is not None
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
            retry_policy=_retry_policy(data),
            cron_schedule=_cron_schedule(data),
            delay_start_seconds=_delay_seconds(data, "delay_start_seconds"),
        )


#: Longest reason a reset records.
MAX_RESET_REASON = 1000


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
        ids = {"workflow_id": workflow_id, "run_id": run_id}
        event_id = data.get("decision_finish_event_id")
        if event_id is None:
            raise BadRequestError(
                "decision_finish_event_id is required", field="decision_finish_event_id"
            )
        if isinstance(event_id, bool) or not isinstance(event_id, int) or event_id <= 0:
            raise BadRequestError(
                "decision_finish_event_id must be a positive integer (the event id of a "
                "DecisionTaskCompleted event)", field="decision_finish_event_id",
            )
        reason = _string(data, "reason", required=False)
        if len(reason) > MAX_RESET_REASON:
            raise BadRequestError(
                f"reason must be at most {MAX_RESET_REASON} characters", field="reason",
                limit=MAX_RESET_REASON,
            )
        return cls(
            domain=domain,
            workflow_id=_string(ids, "workflow_id"),
            run_id=_string(ids, "run_id", required=False),
            decision_finish_event_id=event_id,
            reason=reason,
            identity=_string(data, "identity", required=False),
            request_id=_string(data, "request_id", required=False),
        )


def _retry_policy(data: Mapping[str, Any]) -> dict[str, Any] | None:
    policy = _mapping(data, "retry_policy") or None  # {}: no policy, as RetryPolicy reads it
    check_retry_policy(policy)  # exactly as an activity's: BadRequestError naming the key
    return policy


def _cron_schedule(data: Mapping[str, Any]) -> str | None:
    value = data.get("cron_schedule")
    if value is None or value == "":
        return None
    return CronSchedule.parse(value).text  # BadRequestError naming the expression


def _delay_seconds(data: Mapping[str, Any], name: str) -> int:
    """A non-negative number of seconds, rounded up to whole seconds (0 when absent)."""
    value = data.get(name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequestError(f"{name} must be a number of seconds", field=name)
    if value < 0:
        raise BadRequestError(f"{name} cannot be negative", field=name)
    if value > MAX_TIMEOUT_SECONDS:
        raise BadRequestError(
            f"{name} must be at most {MAX_TIMEOUT_SECONDS} seconds", field=name,
            limit=MAX_TIMEOUT_SECONDS,
        )
    return math.ceil(value)


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
