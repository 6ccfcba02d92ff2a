"""RetryPolicy parsing/serialisation and Cadence's backoff rule."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cadenza.core.retry import RetryPolicy, next_retry_delay
from cadenza.error import BadRequestError

S = timedelta(seconds=1)


def test_defaults_and_frozen() -> None:
    policy = RetryPolicy()

    assert policy.initial_interval == S
    assert policy.backoff_coefficient == 2.0
    assert policy.maximum_interval is None
    assert policy.maximum_attempts == 0
    assert policy.non_retryable_error_reasons == ()
    assert policy.expiration_interval is None
    with pytest.raises(AttributeError):
        policy.maximum_attempts = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        RetryPolicy(S)  # type: ignore[misc]  # keyword-only


def test_from_value_accepts_policies_dicts_and_none() -> None:
    policy = RetryPolicy(maximum_attempts=3)

    assert RetryPolicy.from_value(policy) is policy
    assert RetryPolicy.from_value(None) is None
    assert RetryPolicy.from_value({}) is None
    assert RetryPolicy.from_value(
        {
            "initial_interval": timedelta(seconds=2),
            "backoff_coefficient": 3,
            "maximum_interval": 60,
            "maximum_attempts": 4,
            "non_retryable_error_reasons": ["ValueError", "KeyError"],
            "expiration_interval": timedelta(minutes=5),
        }
    ) == RetryPolicy(
        initial_interval=timedelta(seconds=2),
        backoff_coefficient=3,
        maximum_interval=timedelta(seconds=60),
        maximum_attempts=4,
        non_retryable_error_reasons=("ValueError", "KeyError"),
        expiration_interval=timedelta(minutes=5),
    )


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"maximum_attemps": 3}, "retry_policy.maximum_attemps"),
        ({"initial_interval": "1s"}, "retry_policy.initial_interval"),
        ({"initial_interval": timedelta(0)}, "retry_policy.initial_interval"),
        ({"backoff_coefficient": 0.5}, "retry_policy.backoff_coefficient"),
        ({"backoff_coefficient": True}, "retry_policy.backoff_coefficient"),
        ({"maximum_attempts": -1}, "retry_policy.maximum_attempts"),
        ({"maximum_attempts": 2.5}, "retry_policy.maximum_attempts"),
        (
            {"initial_interval": 10, "maximum_interval": 5},
            "retry_policy.maximum_interval",
        ),
        ({"expiration_interval": -1}, "retry_policy.expiration_interval"),
        ({"non_retryable_error_reasons": "ValueError"}, "retry_policy.non_retryable_error_reasons"),
        ({"non_retryable_error_reasons": [1]}, "retry_policy.non_retryable_error_reasons"),
        ("every second", "retry_policy"),
    ],
)
def test_from_value_rejects_bad_input_naming_the_field(value: object, field: str) -> None:
    with pytest.raises(BadRequestError) as raised:
        RetryPolicy.from_value(value)  # type: ignore[arg-type]

    assert raised.value.field == field


def test_attributes_use_cadence_names_and_whole_seconds() -> None:
    policy = RetryPolicy(
        initial_interval=timedelta(seconds=1.2),
        backoff_coefficient=1.5,
        maximum_interval=timedelta(minutes=1),
        maximum_attempts=5,
        non_retryable_error_reasons=["Fatal"],  # type: ignore[arg-type]
    )

    attributes = policy.to_attributes()

    assert attributes == {
        "initial_interval_in_seconds": 2,
        "backoff_coefficient": 1.5,
        "maximum_interval_in_seconds": 60,
        "maximum_attempts": 5,
        "non_retryable_error_reasons": ["Fatal"],
        "expiration_interval_in_seconds": 0,
    }
    restored = RetryPolicy.from_attributes(attributes)
    assert restored == RetryPolicy(
        initial_interval=timedelta(seconds=2),
        backoff_coefficient=1.5,
        maximum_interval=timedelta(minutes=1),
        maximum_attempts=5,
        non_retryable_error_reasons=("Fatal",),
    )
    assert RetryPolicy.from_attributes(None) is None
    assert RetryPolicy.from_attributes({}) is None


def test_backoff_grows_exponentially_and_is_capped() -> None:
    policy = RetryPolicy(
        initial_interval=timedelta(seconds=2),
        backoff_coefficient=3,
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=10,
    )

    delays = [next_retry_delay(policy, attempt, timedelta(0), "E") for attempt in range(5)]

    assert delays == [
        timedelta(seconds=2),
        timedelta(seconds=6),
        timedelta(seconds=18),
        timedelta(seconds=30),
        timedelta(seconds=30),
    ]


def test_maximum_attempts_counts_the_first_attempt() -> None:
    policy = RetryPolicy(maximum_attempts=3)

    assert next_retry_delay(policy, 0, timedelta(0), None) == timedelta(seconds=1)
    assert next_retry_delay(policy, 1, timedelta(0), None) == timedelta(seconds=2)
    assert next_retry_delay(policy, 2, timedelta(0), None) is None


def test_non_retryable_reasons_stop_retries() -> None:
    policy = RetryPolicy(maximum_attempts=5, non_retryable_error_reasons=("ValueError",))

    assert next_retry_delay(policy, 0, timedelta(0), "ValueError") is None
    assert next_retry_delay(policy, 0, timedelta(0), "KeyError") == timedelta(seconds=1)


def test_expiration_bounds_the_next_attempt() -> None:
    policy = RetryPolicy(expiration_interval=timedelta(seconds=10))

    assert next_retry_delay(policy, 2, timedelta(seconds=5), None) == timedelta(seconds=4)
    assert next_retry_delay(policy, 2, timedelta(seconds=7), None) is None


def test_unbounded_policy_uses_default_expiration_or_does_not_retry() -> None:
    policy = RetryPolicy()

    # Cadence: neither attempts nor expiration bounded -> no retry.
    assert next_retry_delay(policy, 0, timedelta(0), None) is None
    # For activities the engine passes the schedule-to-close timeout.
    assert next_retry_delay(
        policy, 0, timedelta(0), None, default_expiration=timedelta(minutes=1)
    ) == timedelta(seconds=1)


def test_default_maximum_interval_is_a_hundred_times_the_initial_one() -> None:
    policy = RetryPolicy(maximum_attempts=10_000)

    assert next_retry_delay(policy, 50, timedelta(0), None) == timedelta(seconds=100)
    # 2.0 ** 5000 overflows a float: still capped, not an error.
    assert next_retry_delay(policy, 5000, timedelta(0), None) == timedelta(seconds=100)
    assert next_retry_delay(None, 0, timedelta(0), None) is None
