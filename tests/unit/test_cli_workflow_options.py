"""Parsing of ``cadenza workflow start`` (delay, cron, retry) and ``cadenza workflow reset``,
against a stand-in client: what reaches the client, and what is printed."""

from __future__ import annotations

import importlib
import json
from datetime import timedelta
from typing import Any

import pytest

from cadenza.client import Client, WorkflowExecution
from cadenza.core.retry import RetryPolicy

cli = importlib.import_module("cadenza.cli.main")


class FakeClient:
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __init__(self, domain: str = "default", target: str = "") -> None:
        self.domain = domain

    async def __aenter__(self) -> FakeClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        pass

    async def start_workflow(self, workflow: Any, *args: Any, **options: Any) -> WorkflowExecution:
        # What the real client would send: its checks run too.
        Client(transport=object())._start_body(workflow, args, options)  # type: ignore[arg-type]
        self.calls.append(("start_workflow", (workflow, *args), options))
        return WorkflowExecution(workflow_id=options.get("workflow_id") or "wf", run_id="run-1")

    async def reset_workflow(self, workflow_id: str, run_id: str = "", **options: Any) -> str:
        self.calls.append(("reset_workflow", (workflow_id, run_id), options))
        return "run-new"


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    FakeClient.calls = []
    monkeypatch.setattr(cli, "Client", FakeClient)
    return FakeClient.calls


START = ["workflow", "start", "Order", "--task-list", "orders", "--execution-timeout", "60"]


def test_start_without_the_new_options_sends_none_of_them(calls: list[Any]) -> None:
    assert cli.main(START) == 0
    (_, _, options), = calls
    assert set(options) == {"task_list", "execution_start_to_close_timeout"}


def test_start_with_a_delay_and_a_cron_schedule(calls: list[Any]) -> None:
    assert cli.main([*START, "--delay-start", "90.5", "--cron", "*/15 * * * *"]) == 0
    (_, _, options), = calls
    assert options["delay_start"] == timedelta(seconds=90.5)
    assert options["cron_schedule"] == "*/15 * * * *"


def test_start_with_retry_options_builds_a_retry_policy(calls: list[Any]) -> None:
    assert cli.main([*START, "--retry-initial-interval", "2", "--retry-backoff", "3",
                     "--retry-max-interval", "60", "--retry-max-attempts", "5",
                     "--retry-expiration", "600", "--retry-non-retryable", "Fatal",
                     "--retry-non-retryable", "Bad"]) == 0
    (_, _, options), = calls
    assert RetryPolicy.from_value(options["retry_policy"]) == RetryPolicy(
        initial_interval=timedelta(seconds=2), backoff_coefficient=3,
        maximum_interval=timedelta(seconds=60), maximum_attempts=5,
        expiration_interval=timedelta(seconds=600), non_retryable_error_reasons=("Fatal", "Bad"),
    )


def test_one_retry_option_is_enough(calls: list[Any]) -> None:
    assert cli.main([*START, "--retry-max-attempts", "3"]) == 0
    (_, _, options), = calls
    assert options["retry_policy"] == {"maximum_attempts": 3}


@pytest.mark.parametrize(("argv", "message"), [
    (["--delay-start", "-5"], "--delay-start cannot be negative"),
    (["--cron", "0 0 30 2 *"], "never matches"),
    (["--cron", "61 * * * *"], "61 is out of range 0-59"),
    (["--retry-backoff", "0.5"], "backoff_coefficient must be a number >= 1"),
    (["--retry-max-attempts", "-1"], "maximum_attempts must be an integer >= 0"),
])
def test_bad_start_options_are_reported_with_exit_code_2(
    calls: list[Any], capsys: pytest.CaptureFixture[str], argv: list[str], message: str,
) -> None:
    assert cli.main([*START, *argv, "--json"]) == 2
    answer = json.loads(capsys.readouterr().out)
    assert answer["error"] == "BadRequestError"
    assert message in answer["message"]
    assert calls == []


def test_reset_prints_the_new_run_id(calls: list[Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["workflow", "reset", "--workflow-id", "wf-1", "--run-id", "run-1",
                     "--event-id", "4", "--reason", "bad deploy"]) == 0
    assert capsys.readouterr().out.strip() == "run-new"
    assert calls == [("reset_workflow", ("wf-1", "run-1"),
                      {"decision_finish_event_id": 4, "reason": "bad deploy"})]


def test_reset_takes_the_workflow_id_as_an_argument_too(
    calls: list[Any], capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["workflow", "reset", "wf-1", "--event-id", "7", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"workflow_id": "wf-1", "run_id": "run-new"}
    (_, (workflow_id, run_id), options), = calls
    assert (workflow_id, run_id, options["decision_finish_event_id"]) == ("wf-1", "", 7)


@pytest.mark.parametrize("argv", [
    ["workflow", "reset", "--event-id", "4"],
    ["workflow", "reset", "wf-1", "--workflow-id", "wf-2", "--event-id", "4"],
])
def test_reset_needs_one_workflow_id(calls: list[Any], capsys: pytest.CaptureFixture[str],
                                     argv: list[str]) -> None:
    assert cli.main([*argv, "--json"]) == 2
    assert "workflow id" in json.loads(capsys.readouterr().out)["message"]
    assert calls == []


@pytest.mark.parametrize("argv", [
    ["workflow", "reset", "--workflow-id", "wf-1"],
    ["workflow", "reset", "--workflow-id", "wf-1", "--event-id", "four"],
])
def test_reset_needs_an_integer_event_id(calls: list[Any], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 2
    assert calls == []
