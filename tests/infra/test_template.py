"""template.yaml is a valid SAM template and declares what the engine relies on.

cfn-lint no longer expands SAM by itself, so the template is first translated offline with the
SAM translator (placeholder S3 code locations, a managed-policy loader that needs no IAM call),
then the CloudFormation it produces is linted. The structural assertions pin the contract
between template.yaml and the engine: table keys, the history stream, the event sources.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from cadenza.aws.models import VisibilityModel
from cadenza.aws.tasklists import SqsTaskLists, queue_name
from cadenza.aws.visibility import INDEXES
from cadenza.core import TaskKind
from cadenza.local.template import load_template

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "template.yaml"


class _NoManagedPolicies:
    """Stands in for samtranslator's ManagedPolicyLoader, which would call IAM."""

    def load(self) -> dict[str, str]:
        return {}


@pytest.fixture(scope="module")
def sam() -> dict[str, Any]:
    return load_template(TEMPLATE)


@pytest.fixture(scope="module")
def translated(sam: dict[str, Any]) -> dict[str, Any]:
    from samtranslator.translator.transform import transform

    document = copy.deepcopy(sam)
    # The translator only accepts S3 code locations; `sam build` puts real ones there.
    document["Globals"]["Function"]["CodeUri"] = "s3://placeholder-bucket/functions.zip"
    for resource in document["Resources"].values():
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            resource["Properties"]["ContentUri"] = "s3://placeholder-bucket/layer.zip"
        if resource["Type"] == "AWS::Serverless::Function" and "CodeUri" in resource["Properties"]:
            resource["Properties"]["CodeUri"] = "s3://placeholder-bucket/code.zip"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # the translator's pseudo parameters
        result: dict[str, Any] = transform(document, {}, _NoManagedPolicies())  # type: ignore[arg-type]
    return result


def test_translated_template_passes_cfn_lint(translated: dict[str, Any]) -> None:
    from cfnlint.api import lint

    matches = lint(json.dumps(translated), regions=["us-east-1"])
    errors = [m for m in matches if m.rule.id.startswith("E")]
    assert not errors, "\n".join(str(m) for m in errors)
    warnings = [m for m in matches if m.rule.id.startswith("W")]
    assert not warnings, "\n".join(str(m) for m in warnings)


def test_history_table_keys_and_stream(sam: dict[str, Any]) -> None:
    table = sam["Resources"]["HistoryTable"]
    assert table["Type"] == "AWS::DynamoDB::Table"
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert {"AttributeName": "pk", "AttributeType": "S"} in props["AttributeDefinitions"]
    assert {"AttributeName": "sk", "AttributeType": "S"} in props["AttributeDefinitions"]
    assert props["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_visibility_table_keys_and_listing_index(sam: dict[str, Any]) -> None:
    props = sam["Resources"]["VisibilityTable"]["Properties"]
    assert [k["AttributeName"] for k in props["KeySchema"]] == ["pk", "sk"]
    types = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    assert types == {"pk": "S", "sk": "S", "list_pk": "S", "type_pk": "S", "close_pk": "S",
                     "attr_pk": "S", "start_time": "N"}
    # The listing indexes the adapter queries (aws/visibility.py), each newest first by start.
    indexes = {index["IndexName"]: index for index in props["GlobalSecondaryIndexes"]}
    assert set(indexes) == set(INDEXES)
    for name, partition in INDEXES.items():
        assert indexes[name]["KeySchema"] == [
            {"AttributeName": partition, "KeyType": "HASH"},
            {"AttributeName": "start_time", "KeyType": "RANGE"},
        ]
        assert indexes[name]["Projection"] == {"ProjectionType": "ALL"}
    # The pynamodb model declares the same indexes.
    declared = {
        name: {a.attr_name: "HASH" if a.is_hash_key else "RANGE"
               for a in index.Meta.attributes.values()}
        for name, index in VisibilityModel._indexes.items()
    }
    assert declared == {name: {partition: "HASH", "start_time": "RANGE"}
                        for name, partition in INDEXES.items()}


def test_tables_survive_stack_deletion(sam: dict[str, Any]) -> None:
    for name in ("HistoryTable", "VisibilityTable"):
        assert sam["Resources"][name]["DeletionPolicy"] == "Retain"
        assert sam["Resources"][name]["UpdateReplacePolicy"] == "Retain"


def test_globals_give_every_function_the_engine_environment(sam: dict[str, Any]) -> None:
    function = sam["Globals"]["Function"]
    assert (function["Runtime"], function["Timeout"], function["MemorySize"]) == (
        "python3.12", 30, 512)
    variables = function["Environment"]["Variables"]
    assert variables["CADENZA_HISTORY_TABLE"] == {"Ref": "HistoryTable"}
    assert variables["CADENZA_VISIBILITY_TABLE"] == {"Ref": "VisibilityTable"}
    assert variables["CADENZA_QUEUE_PREFIX"] == {"Fn::Sub": "${AWS::StackName}"}
    assert variables["CADENZA_TASK_TOKEN_SECRET"] == {"Ref": "TaskTokenSecret"}
    assert variables["CADENZA_TIMER_QUEUE_URL"] == {"Ref": "TimerQueue"}
    assert variables["CADENZA_TIMER_QUEUE_ARN"] == {"Fn::GetAtt": ["TimerQueue", "Arn"]}
    assert variables["CADENZA_SCHEDULE_GROUP"] == {"Ref": "TimerScheduleGroup"}
    assert variables["CADENZA_SCHEDULER_ROLE_ARN"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}
    role = sam["Resources"]["SchedulerRole"]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "scheduler.amazonaws.com"}
    assert variables["POWERTOOLS_SERVICE_NAME"]
    assert sam["Parameters"]["TaskTokenSecret"]["NoEcho"] is True


@pytest.mark.parametrize(
    ("function", "handler"),
    [("ApiFunction", "api/app.handler"), ("StreamFunction", "stream/app.handler"),
     ("TimerFunction", "timer/app.handler")],
)
def test_handlers_point_into_functions(sam: dict[str, Any], function: str, handler: str) -> None:
    props = sam["Resources"][function]["Properties"]
    assert props["Handler"] == handler
    code_uri = props.get("CodeUri", sam["Globals"]["Function"]["CodeUri"])
    assert (REPO_ROOT / code_uri).resolve() == REPO_ROOT / "functions"
    assert (REPO_ROOT / code_uri / handler.rsplit(".", 1)[0]).with_suffix(".py").is_file()


def test_event_sources_the_engine_relies_on(translated: dict[str, Any]) -> None:
    resources = translated["Resources"]
    mappings = {
        name: r["Properties"]
        for name, r in resources.items()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
    }
    stream = mappings["StreamFunctionHistoryStream"]
    assert stream["EventSourceArn"] == {"Fn::GetAtt": ["HistoryTable", "StreamArn"]}
    assert stream["FunctionName"] == {"Ref": "StreamFunction"}
    assert stream["StartingPosition"] == "TRIM_HORIZON"
    assert stream["BatchSize"] == 100
    assert stream["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert stream["MaximumRetryAttempts"] == 10
    assert stream["BisectBatchOnFunctionError"] is True
    assert stream["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["StreamFailureQueue", "Arn"]}

    timers = mappings["TimerFunctionTimers"]
    assert timers["EventSourceArn"] == {"Fn::GetAtt": ["TimerQueue", "Arn"]}
    assert timers["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    timer_queue = resources["TimerQueue"]["Properties"]
    assert "FifoQueue" not in timer_queue  # per-message delays need a standard queue
    assert timer_queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["TimerDeadLetterQueue", "Arn"]}

    api = resources["ServerlessHttpApi"]
    assert api["Type"] == "AWS::ApiGatewayV2::Api"
    paths = api["Properties"]["Body"]["paths"]
    for path in ("/{proxy+}", "/"):
        integration = paths[path]["x-amazon-apigateway-any-method"][
            "x-amazon-apigateway-integration"]
        assert integration["payloadFormatVersion"] == "2.0"
        assert "ApiFunction.Arn" in integration["uri"]["Fn::Sub"]

    for name in ("ApiFunction", "StreamFunction", "TimerFunction", "OrdersWorkerFunction"):
        function = resources[name]
        assert function["Type"] == "AWS::Lambda::Function"
        assert function["Properties"]["Runtime"] == "python3.12"
        assert function["Properties"]["TracingConfig"] == {"Mode": "Active"}


def test_functions_may_use_every_queue_of_the_stack(translated: dict[str, Any]) -> None:
    """Task-list queues are created at run time, so access is granted by name prefix."""
    for name in ("ApiFunctionRole", "StreamFunctionRole", "TimerFunctionRole",
                 "OrdersWorkerFunctionRole"):
        policies = json.dumps(translated["Resources"][name]["Properties"]["Policies"])
        assert "arn:aws:sqs:${AWS::Region}:${AWS::AccountId}:${AWS::StackName}-*" in policies
        assert "HistoryTable" in policies and "VisibilityTable" in policies


ORDERS_QUEUES = {"OrdersDecisionQueue": TaskKind.DECISION, "OrdersActivityQueue": TaskKind.ACTIVITY}


class _CreateQueueRecorder:
    """A stand-in SQS client that records the CreateQueue request SqsTaskLists makes."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def get_queue_url(self, QueueName: str) -> dict[str, str]:
        raise ClientError({"Error": {"Code": "AWS.SimpleQueueService.NonExistentQueue"}},
                          "GetQueueUrl")

    def create_queue(self, **request: Any) -> dict[str, str]:
        self.requests.append(request)
        return {"QueueUrl": f"https://sqs.local/{request['QueueName']}"}


@pytest.mark.parametrize(("logical_id", "kind"), ORDERS_QUEUES.items())
def test_example_worker_queues_are_the_ones_the_service_would_create(
    sam: dict[str, Any], logical_id: str, kind: TaskKind
) -> None:
    """Same name and attributes as SqsTaskLists gives the "orders" task list's queues, except
    the visibility timeout: six times the timeout of the function they feed."""
    recorder = _CreateQueueRecorder()
    SqsTaskLists(client=recorder, prefix="STACK").queue_url("default", "orders", kind)
    (request,) = recorder.requests
    props = sam["Resources"][logical_id]["Properties"]
    assert props["QueueName"] == {"Fn::Sub": request["QueueName"].replace(
        "STACK", "${AWS::StackName}")}
    assert request["QueueName"] == queue_name("STACK", "default", "orders", kind)
    declared = {k: str(v).lower() if isinstance(v, bool) else str(v)
                for k, v in props.items() if k != "QueueName"}
    expected = dict(request["Attributes"])
    timeout = sam["Resources"]["OrdersWorkerFunction"]["Properties"].get(
        "Timeout", sam["Globals"]["Function"]["Timeout"])
    expected["VisibilityTimeout"] = str(6 * timeout)
    assert declared == expected


def test_example_worker_function(sam: dict[str, Any], translated: dict[str, Any]) -> None:
    props = sam["Resources"]["OrdersWorkerFunction"]["Properties"]
    code = REPO_ROOT / props["CodeUri"]
    assert code.resolve() == REPO_ROOT / "examples"
    module = props["Handler"].rsplit(".", 1)[0]
    assert props["Handler"] == "orders/lambda_app.handler"
    assert (code / module).with_suffix(".py").is_file()
    assert "Layers" not in props  # the cadenza layer comes from Globals

    resources = translated["Resources"]
    mappings = {
        r["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]: r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
        and r["Properties"]["FunctionName"] == {"Ref": "OrdersWorkerFunction"}
    }
    assert set(mappings) == set(ORDERS_QUEUES)
    for mapping in mappings.values():
        assert mapping["BatchSize"] == 10
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    function = resources["OrdersWorkerFunction"]["Properties"]
    assert function["Handler"] == "orders/lambda_app.handler"
    assert len(function["Layers"]) == 1
    assert set(function["Environment"]["Variables"]) == set(
        sam["Globals"]["Function"]["Environment"]["Variables"])


def test_outputs(sam: dict[str, Any]) -> None:
    outputs = sam["Outputs"]
    assert outputs["ApiUrl"]["Value"] == {
        "Fn::Sub": "https://${ServerlessHttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/"
    }
    assert outputs["HistoryTableName"]["Value"] == {"Ref": "HistoryTable"}
    assert outputs["VisibilityTableName"]["Value"] == {"Ref": "VisibilityTable"}
    assert outputs["QueuePrefix"]["Value"] == {"Fn::Sub": "${AWS::StackName}"}
