"""``LocalStack(aws_endpoint=...)`` on a moto server started here: the LocalStack code path,
proven without LocalStack (tests/localstack runs the same scenario against a real one)."""

from __future__ import annotations

from typing import Any

import pytest

import cadenza.local.stack
from cadenza.local import AWS_ENDPOINT_VARIABLE, LocalStack, LocalStackError

from .endpoint_scenario import run_scenario


class _NoEmulator:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("an external AWS endpoint was given: no emulator may be started")


async def test_stack_runs_against_an_external_endpoint(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cadenza.local.stack, "Emulator", _NoEmulator)
    await run_scenario(moto_endpoint)


def test_endpoint_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(AWS_ENDPOINT_VARIABLE, "http://localhost:4566/")
    assert LocalStack(api_port=0).aws_endpoint == "http://localhost:4566"
    assert not LocalStack(api_port=0).embedded
    assert LocalStack(api_port=0, aws_endpoint="").embedded  # "" forces the embedded moto
    assert LocalStack(api_port=0, aws_endpoint="http://other:1").aws_endpoint == "http://other:1"
    monkeypatch.delenv(AWS_ENDPOINT_VARIABLE)
    assert LocalStack(api_port=0).embedded


def test_unreachable_endpoint_is_a_clear_error() -> None:
    stack = LocalStack(api_port=0, aws_endpoint="http://127.0.0.1:9", stack_name="nowhere")
    with pytest.raises(LocalStackError, match="does not answer"):
        stack.start()
    assert not stack.running
