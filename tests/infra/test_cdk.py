"""cadenza.cdk: the engine and worker constructs, and infra/app.py built from them.

aws_cdk.assertions on the synthesized template, then parity with template.yaml as the SAM
translator expands it: tables and keys, queues and their dead-letter queues, functions and
handlers, environment variable names, the authorizer and throttling, and the IAM actions each
function holds. Asset bundling is switched off (``aws:cdk:bundling-stacks``) so synthesis
needs neither Docker nor pip downloads; test_app_synthesizes_without_the_cli runs the real
thing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "1")
cdk = pytest.importorskip("aws_cdk")
assertions = pytest.importorskip("aws_cdk.assertions")

from cadenza.aws.tasklists import MAX_RECEIVE_COUNT  # noqa: E402

from .conftest import REPO_ROOT, grants, of_type, role_statements  # noqa: E402

FUNCTIONS = ("ApiFunction", "StreamFunction", "TimerFunction", "OrdersWorkerFunction")
NO_BUNDLING = {"aws:cdk:bundling-stacks": []}


@pytest.fixture(scope="module")
def app_stack() -> Any:
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(REPO_ROOT / "infra"))
        from app import CadenzaStack

        return CadenzaStack(cdk.App(context=NO_BUNDLING), "cadenza-test")


@pytest.fixture(scope="module")
def synthesized(app_stack: Any) -> dict[str, Any]:
    template: dict[str, Any] = assertions.Template.from_stack(app_stack).to_json()
    return template


# --- the constructs on their own ------------------------------------------------------------


def test_a_worker_on_its_own_task_list() -> None:
    """What a user writes: an engine, and a worker with their code on their task list."""
    from cadenza.cdk import CadenzaEngine, CadenzaWorker

    stack = cdk.Stack(cdk.App(context=NO_BUNDLING), "shop")
    engine = CadenzaEngine(stack, "Engine", retention_days=7, api_throttle_rate_limit=50)
    worker = CadenzaWorker(
        stack, "Billing", engine=engine, task_list="billing", domain="payments",
        code=cdk.aws_lambda.Code.from_asset(str(REPO_ROOT / "examples")),
        handler="orders/lambda_app.handler", timeout=cdk.Duration.seconds(60))
    template = assertions.Template.from_stack(stack)
    template.has_resource_properties("AWS::SQS::Queue", {
        "QueueName": "shop-payments-billing-decision.fifo", "FifoQueue": True,
        "VisibilityTimeout": 360, "SqsManagedSseEnabled": True,
        "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": [
            "TaskListDeadLetterQueue", "Arn"]}, "maxReceiveCount": MAX_RECEIVE_COUNT}})
    template.has_resource_properties("AWS::SQS::Queue", {
        "QueueName": "shop-payments-billing-activity.fifo"})
    template.has_resource_properties("AWS::Lambda::Function", {
        "Handler": "orders/lambda_app.handler", "Timeout": 60,
        "Role": {"Fn::GetAtt": ["BillingWorkerFunctionRole", "Arn"]},
        "Environment": {"Variables": assertions.Match.object_like({
            "CADENZA_QUEUE_PREFIX": "shop", "CADENZA_RETENTION_DAYS": "7"})}})
    template.resource_properties_count_is("AWS::Lambda::EventSourceMapping", {
        "FunctionName": {"Ref": "BillingWorkerFunction"},
        "FunctionResponseTypes": ["ReportBatchItemFailures"]}, 2)
    template.has_resource_properties("AWS::ApiGatewayV2::Stage", {
        "DefaultRouteSettings": {"ThrottlingRateLimit": 50, "ThrottlingBurstLimit": 400}})
    assert worker.function.node.id == "BillingWorkerFunction"
    role = template.to_json()["Resources"]["BillingWorkerFunctionRole"]["Properties"]
    assert role["ManagedPolicyArns"] == [{"Ref": "EnginePolicy"}]


def test_the_engine_refuses_a_retention_under_a_day() -> None:
    from cadenza.cdk import CadenzaEngine

    with pytest.raises(ValueError, match="retention_days"):
        CadenzaEngine(cdk.Stack(cdk.App(context=NO_BUNDLING), "s"), "Engine", retention_days=0)


def test_every_route_is_iam_authorized(synthesized: dict[str, Any]) -> None:
    routes = of_type(synthesized, "AWS::ApiGatewayV2::Route")
    assert {r["Properties"]["RouteKey"] for r in routes.values()} == {"ANY /{proxy+}", "ANY /"}
    for route in routes.values():
        assert route["Properties"]["AuthorizationType"] == "AWS_IAM"
    (integration,) = of_type(synthesized, "AWS::ApiGatewayV2::Integration").values()
    assert integration["Properties"]["PayloadFormatVersion"] == "2.0"
    assert integration["Properties"]["IntegrationUri"] == {"Fn::GetAtt": ["ApiFunction", "Arn"]}


# --- parity with template.yaml ----------------------------------------------------------------


def test_same_logical_resources_as_the_sam_template(
    synthesized: dict[str, Any], translated: dict[str, Any]
) -> None:
    """Stateful and engine-facing resources keep template.yaml's logical ids."""
    for kind in ("AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::Lambda::Function",
                 "AWS::Lambda::EventSourceMapping", "AWS::IAM::Role", "AWS::IAM::ManagedPolicy",
                 "AWS::Logs::LogGroup", "AWS::CloudWatch::Alarm", "AWS::SecretsManager::Secret",
                 "AWS::Scheduler::ScheduleGroup", "AWS::ApiGatewayV2::Api", "AWS::S3::Bucket"):
        assert set(of_type(synthesized, kind)) == set(of_type(translated, kind)), kind


def test_tables_match_the_sam_template(
    synthesized: dict[str, Any], translated: dict[str, Any]
) -> None:
    expected = of_type(translated, "AWS::DynamoDB::Table")
    for name, table in of_type(synthesized, "AWS::DynamoDB::Table").items():
        props, sam = table["Properties"], expected[name]["Properties"]
        for key in ("KeySchema", "BillingMode", "PointInTimeRecoverySpecification",
                    "SSESpecification", "TimeToLiveSpecification", "StreamSpecification",
                    "GlobalSecondaryIndexes"):
            assert props.get(key) == sam.get(key), (name, key)
        assert sorted(props["AttributeDefinitions"], key=str) == sorted(
            sam["AttributeDefinitions"], key=str)
        assert table["DeletionPolicy"] == expected[name]["DeletionPolicy"] == "Retain"


def test_queues_and_dead_letter_queues_match(
    synthesized: dict[str, Any], translated: dict[str, Any]
) -> None:
    expected = of_type(translated, "AWS::SQS::Queue")
    for name, queue in of_type(synthesized, "AWS::SQS::Queue").items():
        props, sam = dict(queue["Properties"]), dict(expected[name]["Properties"])
        if "QueueName" in sam:  # ${AWS::StackName}-... there, the stack's name here
            assert sam.pop("QueueName")["Fn::Sub"].replace(
                "${AWS::StackName}", "cadenza-test") == props.pop("QueueName")
        assert props == sam, name


def test_functions_handlers_and_environment_match(
    synthesized: dict[str, Any], translated: dict[str, Any], sam: dict[str, Any]
) -> None:
    names = set(sam["Globals"]["Function"]["Environment"]["Variables"])
    expected = of_type(translated, "AWS::Lambda::Function")
    for name, function in of_type(synthesized, "AWS::Lambda::Function").items():
        props, sam_props = function["Properties"], expected[name]["Properties"]
        for key in ("Handler", "Runtime", "Timeout", "MemorySize", "TracingConfig",
                    "Architectures", "Role", "LoggingConfig"):
            assert props.get(key) == sam_props.get(key), (name, key)
        # the globals, and a function's own (the API function's CADENZA_API_AUTH)
        assert set(props["Environment"]["Variables"]) == set(
            sam_props["Environment"]["Variables"]), name
        assert names <= set(props["Environment"]["Variables"]), name
        assert len(props["Layers"]) == 1


def test_event_sources_match(synthesized: dict[str, Any], translated: dict[str, Any]) -> None:
    expected = of_type(translated, "AWS::Lambda::EventSourceMapping")
    for name, mapping in of_type(synthesized, "AWS::Lambda::EventSourceMapping").items():
        props, sam = mapping["Properties"], expected[name]["Properties"]
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        for key in ("EventSourceArn", "FunctionName", "BatchSize", "StartingPosition",
                    "MaximumRetryAttempts", "BisectBatchOnFunctionError", "DestinationConfig",
                    "MaximumBatchingWindowInSeconds"):
            assert props.get(key) == sam.get(key), (name, key)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_function_holds_the_same_iam_actions(
    synthesized: dict[str, Any], translated: dict[str, Any], function: str
) -> None:
    def actions(template: dict[str, Any]) -> set[str]:
        return {action for action, _ in grants(role_statements(template, function))}

    assert actions(synthesized) == actions(translated)
    assert {"secretsmanager:GetSecretValue", "sqs:SendMessage"} <= actions(synthesized)


def test_alarms_watch_the_same_dead_letter_queues(
    synthesized: dict[str, Any], translated: dict[str, Any]
) -> None:
    def watched(template: dict[str, Any]) -> set[str]:
        return {json.dumps(a["Properties"]["Dimensions"], sort_keys=True)
                for a in of_type(template, "AWS::CloudWatch::Alarm").values()}

    assert watched(synthesized) == watched(translated)


def test_outputs(synthesized: dict[str, Any], sam: dict[str, Any]) -> None:
    assert set(sam["Outputs"]) == set(synthesized["Outputs"])
    assert "Parameters" not in synthesized or not any(
        p.get("NoEcho") for p in synthesized["Parameters"].values())


@pytest.mark.timeout(600)
def test_app_synthesizes_without_the_cli(tmp_path: Path) -> None:
    """`python infra/app.py`: the real synthesis, the layer built by this machine's pip."""
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "infra" / "app.py")], cwd=tmp_path,
        env={**os.environ, "CDK_OUTDIR": str(tmp_path / "cdk.out")},
        capture_output=True, text=True, timeout=550,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    template = json.loads((tmp_path / "cdk.out" / "cadenza.template.json").read_text())
    assert "ServerlessHttpApi" in template["Resources"]
    manifest = json.loads((tmp_path / "cdk.out" / "cadenza.assets.json").read_text())
    layers = [a for a in manifest["files"].values()
              if (tmp_path / "cdk.out" / a["source"]["path"] / "python" / "cadenza").is_dir()]
    assert len(layers) == 1
    site = tmp_path / "cdk.out" / layers[0]["source"]["path"] / "python"
    assert (site / "pynamodb").is_dir() and not (site / "moto").exists()
    assert not (site / "rich").exists() and not (site / "yaml").exists()


def test_the_managed_policies_grant_the_same_actions(
    synthesized: dict[str, Any], translated: dict[str, Any]
) -> None:
    for name in ("EnginePolicy", "PollingWorkerPolicy"):
        def actions(template: dict[str, Any], name: str = name) -> set[str]:
            document = template["Resources"][name]["Properties"]["PolicyDocument"]
            return {a for a, _ in grants(document["Statement"])}

        assert actions(synthesized) == actions(translated), name
