"""Activity timeouts and retries: the rules, apart from how they are committed.

An attempt has up to four deadlines (Cadence's): schedule-to-start (nobody took it),
start-to-close (the attempt ran too long), heartbeat (no sign of life for too long) and
schedule-to-close (all attempts together). One durable timer per attempt stands for the
earliest of them; when it fires, the deadlines are computed again from the state: one that
passed times the attempt out, otherwise the timer is sent again for the new earliest one. So a
healthy attempt costs one timer message per heartbeat period at most, and no commit.
"""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from ..error import BadRequestError
from .retry import RetryPolicy, next_retry_delay
from .state import PendingActivity


class TimeoutType(StrEnum):
    SCHEDULE_TO_START = "SCHEDULE_TO_START"
    START_TO_CLOSE = "START_TO_CLOSE"
    SCHEDULE_TO_CLOSE = "SCHEDULE_TO_CLOSE"
    HEARTBEAT = "HEARTBEAT"


#: Timeouts after which another attempt may help; the other two are final (Cadence's rule:
#: more attempts do not make a worker appear, nor give back time already spent).
RETRYABLE_TIMEOUTS = frozenset({TimeoutType.START_TO_CLOSE, TimeoutType.HEARTBEAT})

#: On a tie, the timeout that is final wins (a start-to-close derived from schedule-to-close
#: ends at the same moment, and retrying it could not help).
_PRIORITY = {
    TimeoutType.SCHEDULE_TO_START: 0,
    TimeoutType.SCHEDULE_TO_CLOSE: 1,
    TimeoutType.START_TO_CLOSE: 2,
    TimeoutType.HEARTBEAT: 3,
}


def timeout_reason(timeout: TimeoutType) -> str:
    """The failure reason a timed-out attempt counts as (what retry policies match)."""
    return f"cadenceInternal:Timeout {timeout}"


def deadline(activity: PendingActivity) -> tuple[int, TimeoutType]:
    """The earliest deadline of the current attempt (epoch ms) and the timeout it would be."""
    candidates: list[tuple[int, TimeoutType]] = []
    if activity.schedule_to_close_timeout_seconds:
        candidates.append((
            activity.scheduled_time + 1000 * activity.schedule_to_close_timeout_seconds,
            TimeoutType.SCHEDULE_TO_CLOSE,
        ))
    if activity.started_time is None:
        if activity.schedule_to_start_timeout_seconds:
            candidates.append((
                activity.attempt_scheduled_time
                + 1000 * activity.schedule_to_start_timeout_seconds,
                TimeoutType.SCHEDULE_TO_START,
            ))
    else:
        if activity.start_to_close_timeout_seconds:
            candidates.append((
                activity.started_time + 1000 * activity.start_to_close_timeout_seconds,
                TimeoutType.START_TO_CLOSE,
            ))
        if activity.heartbeat_timeout_seconds:
            last = activity.last_heartbeat_time or activity.started_time
            candidates.append((
                last + 1000 * activity.heartbeat_timeout_seconds, TimeoutType.HEARTBEAT
            ))
    if not candidates:  # the decision's validation makes this unreachable
        raise ValueError(f"activity {activity.activity_id!r} has no timeout")
    return min(candidates, key=lambda item: (item[0], _PRIORITY[item[1]]))


def retry_delay(activity: PendingActivity, reason: str, now: int) -> timedelta | None:
    """The backoff before the next attempt, or None when the failure is final.

    Cadence's rule: the policy decides (attempts, expiration, non-retryable reasons), the
    schedule-to-close timeout bounds the expiration, and a cancellation request ends retries.
    """
    if activity.cancel_requested:
        return None
    policy = RetryPolicy.from_attributes(activity.retry_policy)
    if policy is None:
        return None
    elapsed = timedelta(milliseconds=now - activity.scheduled_time)
    schedule_to_close = (
        timedelta(seconds=activity.schedule_to_close_timeout_seconds)
        if activity.schedule_to_close_timeout_seconds else None
    )
    delay = next_retry_delay(
        policy, activity.attempt, elapsed, reason, default_expiration=schedule_to_close
    )
    if delay is None:
        return None
    if schedule_to_close is not None and elapsed + delay >= schedule_to_close:
        return None
    return delay


def check_retry_policy(attributes: object) -> None:
    """BadRequestError naming the field for a retry policy the engine cannot follow."""
    if attributes is None:
        return
    if not isinstance(attributes, dict):
        raise BadRequestError("retry_policy must be an object", field="retry_policy")
    initial = attributes.get("initial_interval_in_seconds")
    if isinstance(initial, bool) or not isinstance(initial, int | float) or initial <= 0:
        raise BadRequestError(
            "retry_policy.initial_interval is required and must be greater than 0",
            field="retry_policy.initial_interval",
        )
    try:
        RetryPolicy.from_attributes(attributes)
    except (TypeError, ValueError) as error:
        if isinstance(error, BadRequestError):
            raise
        raise BadRequestError(f"retry_policy is not valid: {error}",
                              field="retry_policy") from error


__all__ = [
    "RETRYABLE_TIMEOUTS",
    "TimeoutType",
    "check_retry_policy",
    "deadline",
    "retry_delay",
    "timeout_reason",
]
