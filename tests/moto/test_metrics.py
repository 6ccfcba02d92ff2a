"""The engine's metrics on moto: the service built with the powertools adapter prints one
CloudWatch EMF line per flush, with what was committed and sent."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from aws_lambda_powertools import Metrics

from cadenza.aws.metrics import PowertoolsMetrics
from cadenza.aws.settings import AwsSettings
from cadenza.core import Decision, DecisionType, TaskKind
from cadenza.service import StartWorkflowRequest, service_from_settings


def _total(value: Any) -> float:
    """A metric's sum in an EMF line (one value, or the list of values added)."""
    return float(sum(value) if isinstance(value, list) else value)


def _emf(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


def test_a_run_measured_through_the_adapter(
    aws_settings: AwsSettings, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    metrics = PowertoolsMetrics(Metrics(namespace="CadenzaTest", service="test"))
    service = service_from_settings(aws_settings, metrics=metrics)
    service.start_workflow(StartWorkflowRequest.from_dict("default", {
        "workflow_id": "m", "workflow_type": "T", "task_list": "tl", "input": None,
        "execution_start_to_close_timeout_seconds": 60}))
    (received,) = service.queues.receive(  # type: ignore[attr-defined]
        "default", "tl", TaskKind.DECISION, wait_seconds=0)
    service.complete_decision_task(
        received.message.task_token, history_length=received.message.task.scheduled_event_id + 1,
        started_at=datetime.now(UTC),
        decisions=[Decision(DecisionType.CompleteWorkflowExecution, {"result": None})])
    capsys.readouterr()
    metrics.flush()
    (line,) = _emf(capsys.readouterr().out)
    declared = {m["Name"]: m["Unit"] for m in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "CadenzaTest"
    # The dimension template.yaml's ApiServerErrorsAlarm selects on (POWERTOOLS_SERVICE_NAME).
    assert line["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert line["service"] == "test"
    assert declared["Decisions"] == "Count" and declared["WorkflowLatency"] == "Milliseconds"
    assert _total(line["Decisions"]) == 1 and _total(line["WorkflowsClosed"]) == 1
    assert _total(line["TasksSent"]) >= 1  # at least the first decision task
    metrics.flush()  # nothing measured since: no line (and no powertools warning)
    assert _emf(capsys.readouterr().out) == []


def test_instances_keep_their_own_metrics_and_decide_once_whether_they_print(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The local stack runs every function in one process: one function's flush must print
    only its own metrics, and a function started with metrics disabled stays silent when the
    variable changes later (a test, another stack)."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    silent = PowertoolsMetrics()
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    first, second = PowertoolsMetrics(), PowertoolsMetrics()
    capsys.readouterr()
    first.count("Decisions", 2)
    second.count("Redrives")
    silent.count("Decisions", 5)
    silent.flush()
    assert _emf(capsys.readouterr().out) == []
    first.flush()
    (line,) = _emf(capsys.readouterr().out)
    assert _total(line["Decisions"]) == 2 and "Redrives" not in line
    second.flush()
    (line,) = _emf(capsys.readouterr().out)
    assert _total(line["Redrives"]) == 1 and "Decisions" not in line
