"""Retry policies for activities and workflows, with Cadence's semantics.

A policy is a plain frozen record so that the engine (which computes backoffs when an attempt
fails) and the authoring API (which accepts it as an option) share one definition. On the wire
and in history it is written with Cadence's attribute names and whole seconds
(``initial_interval_in_seconds`` ...), the resolution Cadence itself uses.

Attempts are numbered from 0: attempt 0 is the first execution, so ``maximum_attempts=3``
allows attempts 0, 1 and 2.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Any

from cadenza.error import BadRequestError

__all__ = ["RetryPolicy", "next_retry_delay"]

#: Cadence clients cap the backoff at 100 times the initial interval when no maximum is given.
_DEFAULT_MAXIMUM_INTERVAL_FACTOR = 100

_DURATION_FIELDS = ("initial_interval", "maximum_interval", "expiration_interval")


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How a failed activity (or workflow) attempt is retried.

    ``maximum_attempts`` counts every attempt including the first; ``0`` means no limit.
    ``maximum_interval`` caps the exponential backoff (``None``: 100 x ``initial_interval``).
    ``expiration_interval`` bounds the time since the first attempt was scheduled (``None``:
    no bound of its own; for activities the engine passes the schedule-to-close timeout).
    ``non_retryable_error_reasons`` lists failure reasons (exception class names) that are
    never retried.
    """

    initial_interval: timedelta = timedelta(seconds=1)
    backoff_coefficient: float = 2.0
    maximum_interval: timedelta | None = None
    maximum_attempts: int = 0
    #: Stored as a tuple; any sequence of names is accepted.
    non_retryable_error_reasons: Sequence[str] = field(default=())
    expiration_interval: timedelta | None = None

    def __post_init__(self) -> None:
        # Accept any iterable of names (a list from a dict, typically) but store a tuple so the
        # record stays hashable and immutable.
        reasons = self.non_retryable_error_reasons
        if isinstance(reasons, str) or not isinstance(reasons, Iterable):
            raise BadRequestError(
                "non_retryable_error_reasons must be a list of strings",
                field="retry_policy.non_retryable_error_reasons",
            )
        reasons = tuple(reasons)
        if not all(isinstance(reason, str) for reason in reasons):
            raise BadRequestError(
                "non_retryable_error_reasons must be a list of strings",
                field="retry_policy.non_retryable_error_reasons",
            )
        object.__setattr__(self, "non_retryable_error_reasons", reasons)
        self._validate()

    def _validate(self) -> None:
        for name in _DURATION_FIELDS:
            value = getattr(self, name)
            if value is None and name != "initial_interval":
                continue
            if not isinstance(value, timedelta):
                raise BadRequestError(f"{name} must be a timedelta", field=f"retry_policy.{name}")
        if self.initial_interval <= timedelta(0):
            raise BadRequestError(
                "initial_interval must be greater than 0", field="retry_policy.initial_interval"
            )
        coefficient = self.backoff_coefficient
        if (
            isinstance(coefficient, bool)
            or not isinstance(coefficient, int | float)
            or not math.isfinite(coefficient)
            or coefficient < 1
        ):
            raise BadRequestError(
                "backoff_coefficient must be a number >= 1",
                field="retry_policy.backoff_coefficient",
            )
        if self.maximum_interval is not None:
            if self.maximum_interval <= timedelta(0):
                raise BadRequestError(
                    "maximum_interval must be greater than 0",
                    field="retry_policy.maximum_interval",
                )
            if self.maximum_interval < self.initial_interval:
                raise BadRequestError(
                    "maximum_interval cannot be less than initial_interval",
                    field="retry_policy.maximum_interval",
                )
        attempts = self.maximum_attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0:
            raise BadRequestError(
                "maximum_attempts must be an integer >= 0 (0 means unlimited)",
                field="retry_policy.maximum_attempts",
            )
        if self.expiration_interval is not None and self.expiration_interval < timedelta(0):
            raise BadRequestError(
                "expiration_interval must not be negative",
                field="retry_policy.expiration_interval",
            )

    # -- conversions ---------------------------------------------------------------------------

    @classmethod
    def from_value(cls, value: RetryPolicy | Mapping[str, Any] | None) -> RetryPolicy | None:
        """Accept what users pass as ``retry_policy=``: a policy, a plain dict, or ``None``.

        A dict uses the field names; durations may be ``timedelta`` or a number of seconds.
        ``None`` and an empty dict both mean "no retry policy". Unknown keys and bad values are
        refused with :class:`~cadenza.error.BadRequestError` naming the field, so a typo never
        silently turns retries off.
        """
        if value is None or isinstance(value, RetryPolicy):
            return value
        if not isinstance(value, Mapping):
            raise BadRequestError(
                f"retry_policy must be a RetryPolicy or a dict, not {type(value).__name__}",
                field="retry_policy",
            )
        if not value:
            return None
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, item in value.items():
            if key not in known:
                raise BadRequestError(
                    f"unknown retry policy key {key!r}; expected one of {sorted(known)}",
                    field=f"retry_policy.{key}",
                )
            if item is None:
                continue
            if key in _DURATION_FIELDS:
                item = _as_duration(key, item)
            kwargs[key] = item
        return cls(**kwargs)

    def to_attributes(self) -> dict[str, Any]:
        """Cadence's attribute form (whole seconds, ``0`` for "not set")."""
        return {
            "initial_interval_in_seconds": _ceil_seconds(self.initial_interval),
            "backoff_coefficient": float(self.backoff_coefficient),
            "maximum_interval_in_seconds": _ceil_seconds(self.maximum_interval),
            "maximum_attempts": self.maximum_attempts,
            "non_retryable_error_reasons": list(self.non_retryable_error_reasons),
            "expiration_interval_in_seconds": _ceil_seconds(self.expiration_interval),
        }

    @classmethod
    def from_attributes(cls, attributes: Mapping[str, Any] | None) -> RetryPolicy | None:
        """Inverse of :meth:`to_attributes`; ``None`` or an empty mapping gives ``None``."""
        if not attributes:
            return None

        def seconds(name: str) -> timedelta | None:
            raw = attributes.get(name)
            return timedelta(seconds=raw) if raw else None

        return cls(
            initial_interval=seconds("initial_interval_in_seconds") or timedelta(seconds=1),
            backoff_coefficient=float(attributes.get("backoff_coefficient") or 2.0),
            maximum_interval=seconds("maximum_interval_in_seconds"),
            maximum_attempts=int(attributes.get("maximum_attempts") or 0),
            non_retryable_error_reasons=tuple(attributes.get("non_retryable_error_reasons") or ()),
            expiration_interval=seconds("expiration_interval_in_seconds"),
        )


def next_retry_delay(
    policy: RetryPolicy | None,
    attempt: int,
    elapsed: timedelta,
    reason: str | None,
    *,
    default_expiration: timedelta | None = None,
) -> timedelta | None:
    """Backoff before the attempt after ``attempt`` (numbered from 0), or ``None``: do not retry.

    Follows Cadence's server rule: no retry when attempts are exhausted, when the next attempt
    would start after the expiration (``elapsed`` is the time since the first attempt was
    scheduled), when ``reason`` is non-retryable, or when the policy bounds neither attempts nor
    time. The interval is ``initial * coefficient ** attempt`` in whole seconds, capped by
    ``maximum_interval``. ``default_expiration`` stands in for an unset
    ``expiration_interval`` (Cadence uses the activity's schedule-to-close timeout).
    """
    if policy is None:
        return None
    expiration = policy.expiration_interval or default_expiration
    if policy.maximum_attempts == 0 and expiration is None:
        return None
    if policy.maximum_attempts > 0 and attempt >= policy.maximum_attempts - 1:
        return None
    initial = _ceil_seconds(policy.initial_interval)
    maximum = (
        _ceil_seconds(policy.maximum_interval)
        if policy.maximum_interval is not None
        else initial * _DEFAULT_MAXIMUM_INTERVAL_FACTOR
    )
    try:
        interval = float(initial) * math.pow(policy.backoff_coefficient, attempt)
    except OverflowError:
        interval = math.inf
    seconds = maximum if not math.isfinite(interval) or interval > maximum else int(interval)
    delay = timedelta(seconds=seconds)
    if expiration is not None and elapsed + delay > expiration:
        return None
    if reason is not None and reason in policy.non_retryable_error_reasons:
        return None
    return delay


def _ceil_seconds(value: timedelta | None) -> int:
    if value is None:
        return 0
    return math.ceil(value.total_seconds())


def _as_duration(key: str, value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return timedelta(seconds=value)
    raise BadRequestError(
        f"{key} must be a timedelta or a number of seconds, not {value!r}",
        field=f"retry_policy.{key}",
    )
