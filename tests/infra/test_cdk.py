"""The CDK app in infra/ synthesizes the same stack as template.yaml.

aws-cdk-lib is an optional extra (``cadenza[cdk]``) that needs node; without it these tests
skip. Asset bundling is switched off (``aws:cdk:bundling-stacks``) so synthesis needs neither
Docker nor pip downloads.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
cdk = pytest.importorskip("aws_cdk")
assertions = pytest.importorskip("aws_cdk.assertions")

from cadenza.local.template import load_template  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def synthesized() -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(REPO_ROOT / "infra"))
        from cadenza_stack import CadenzaStack

        app = cdk.App(context={"aws:cdk:bundling-stacks": []})
        stack = CadenzaStack(app, "cadenza-test")
        template: dict[str, Any] = assertions.Template.from_stack(stack).to_json()
    return template


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def test_tables_match_the_sam_template(synthesized: dict[str, Any]) -> None:
    sam = load_template(REPO_ROOT / "template.yaml")["Resources"]
    tables = _resources(synthesized, "AWS::DynamoDB::Table")
    assert set(tables) == {"HistoryTable", "VisibilityTable"}
    for name, table in tables.items():
        expected = sam[name]["Properties"]
        props = table["Properties"]
        assert props["KeySchema"] == expected["KeySchema"]
        assert sorted(props["AttributeDefinitions"], key=str) == sorted(
            expected["AttributeDefinitions"], key=str)
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == expected[
            "PointInTimeRecoverySpecification"]
        assert props.get("TimeToLiveSpecification") == expected.get("TimeToLiveSpecification")
        assert table["DeletionPolicy"] == sam[name]["DeletionPolicy"] == "Retain"
    assert tables["HistoryTable"]["Properties"]["StreamSpecification"] == {
        "StreamViewType": "NEW_IMAGE"}
    indexes = tables["VisibilityTable"]["Properties"]["GlobalSecondaryIndexes"]
    assert indexes == sam["VisibilityTable"]["Properties"]["GlobalSecondaryIndexes"]


def _sam_resources(kind: str) -> dict[str, dict[str, Any]]:
    resources = load_template(REPO_ROOT / "template.yaml")["Resources"]
    return {k: v for k, v in resources.items() if v["Type"] == kind}


def test_same_logical_resources_as_the_sam_template(synthesized: dict[str, Any]) -> None:
    """Stateful and engine-facing resources keep template.yaml's logical ids."""
    for sam_kind, cfn_kind in (
        ("AWS::DynamoDB::Table", "AWS::DynamoDB::Table"),
        ("AWS::SQS::Queue", "AWS::SQS::Queue"),
        ("AWS::Serverless::Function", "AWS::Lambda::Function"),
    ):
        assert set(_resources(synthesized, cfn_kind)) == set(_sam_resources(sam_kind)), sam_kind


def test_functions_and_environment_match_the_sam_template(synthesized: dict[str, Any]) -> None:
    sam = load_template(REPO_ROOT / "template.yaml")
    sam_env = set(sam["Globals"]["Function"]["Environment"]["Variables"])
    functions = _resources(synthesized, "AWS::Lambda::Function")
    handlers = {name: f["Properties"]["Handler"] for name, f in functions.items()}
    assert handlers == {
        name: resource["Properties"]["Handler"]
        for name, resource in _sam_resources("AWS::Serverless::Function").items()
    }
    for function in functions.values():
        props = function["Properties"]
        assert props["Runtime"] == "python3.12"
        assert (props["Timeout"], props["MemorySize"]) == (30, 512)
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert set(props["Environment"]["Variables"]) == sam_env
        service = props["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        assert service == sam["Globals"]["Function"]["Environment"]["Variables"][
            "POWERTOOLS_SERVICE_NAME"]
        assert len(props["Layers"]) == 1


def test_event_sources(synthesized: dict[str, Any]) -> None:
    mappings = list(_resources(synthesized, "AWS::Lambda::EventSourceMapping").values())
    by_function = {m["Properties"]["FunctionName"]["Ref"]: m["Properties"] for m in mappings}
    stream = by_function["StreamFunction"]
    assert stream["EventSourceArn"] == {"Fn::GetAtt": ["HistoryTable", "StreamArn"]}
    assert stream["StartingPosition"] == "TRIM_HORIZON"
    assert stream["BatchSize"] == 100
    assert stream["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert stream["MaximumRetryAttempts"] == 10
    assert stream["BisectBatchOnFunctionError"] is True
    assert stream["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["StreamFailureQueue", "Arn"]}
    assert set(by_function) == {"StreamFunction", "TimerFunction", "OrdersWorkerFunction"}
    timers = by_function["TimerFunction"]
    assert timers["EventSourceArn"] == {"Fn::GetAtt": ["TimerQueue", "Arn"]}
    assert timers["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    orders = {m["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]: m["Properties"]
              for m in mappings
              if m["Properties"]["FunctionName"]["Ref"] == "OrdersWorkerFunction"}
    assert set(orders) == {"OrdersDecisionQueue", "OrdersActivityQueue"}
    for mapping in orders.values():
        assert mapping["BatchSize"] == 10
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_example_worker_queues_match_the_sam_template(synthesized: dict[str, Any]) -> None:
    sam = load_template(REPO_ROOT / "template.yaml")["Resources"]
    queues = _resources(synthesized, "AWS::SQS::Queue")
    for name in ("OrdersDecisionQueue", "OrdersActivityQueue"):
        expected = dict(sam[name]["Properties"])
        props = dict(queues[name]["Properties"])
        kind = "decision" if name == "OrdersDecisionQueue" else "activity"
        assert expected.pop("QueueName") == {
            "Fn::Sub": f"${{AWS::StackName}}-default-orders-{kind}.fifo"}
        assert props.pop("QueueName") == f"cadenza-test-default-orders-{kind}.fifo"
        assert props == expected


def test_http_api_routes_every_path_to_the_api_function(synthesized: dict[str, Any]) -> None:
    assert set(_resources(synthesized, "AWS::ApiGatewayV2::Api")) == {"ServerlessHttpApi"}
    routes = {r["Properties"]["RouteKey"]
              for r in _resources(synthesized, "AWS::ApiGatewayV2::Route").values()}
    assert routes == {"ANY /{proxy+}", "ANY /"}
    (integration,) = _resources(synthesized, "AWS::ApiGatewayV2::Integration").values()
    assert integration["Properties"]["PayloadFormatVersion"] == "2.0"
    assert integration["Properties"]["IntegrationUri"] == {"Fn::GetAtt": ["ApiFunction", "Arn"]}


def test_outputs_and_parameter(synthesized: dict[str, Any]) -> None:
    sam_outputs = set(load_template(REPO_ROOT / "template.yaml")["Outputs"])
    assert sam_outputs <= set(synthesized["Outputs"])
    parameter = synthesized["Parameters"]["TaskTokenSecret"]
    assert parameter["NoEcho"] is True and parameter["MinLength"] == 32
