"""template.yaml is a valid SAM template and declares what the engine relies on.

cfn-lint no longer expands SAM by itself, so the template is first translated offline with the
SAM translator (placeholder S3 code locations, a managed-policy loader that needs no IAM call),
then the CloudFormation it produces is linted. The structural assertions pin the contract
between template.yaml and the engine (table keys, the history stream, the event sources) and
what makes the stack fit for production: least-privilege roles, a dead-letter queue behind
every queue, encryption, retention, IAM authorization and throttling on the API.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from cadenza.aws.models import VisibilityModel
from cadenza.aws.tasklists import MAX_RECEIVE_COUNT, SqsTaskLists, queue_name
from cadenza.aws.visibility import INDEXES
from cadenza.core import TaskKind

from .conftest import REPO_ROOT, grants, of_type, role_statements

ENGINE_FUNCTIONS = ("ApiFunction", "StreamFunction", "TimerFunction")
FUNCTIONS = (*ENGINE_FUNCTIONS, "OrdersWorkerFunction")
#: Where AWS has no resource-level permission, so "*" is the only resource it accepts.
STAR_ONLY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "dynamodb:ListStreams",
                     "scheduler:ListSchedules"}
TASK_LIST_QUEUES = ("arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:"
                    "${AWS::StackName}-*.fifo")


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


@pytest.mark.parametrize("name", ["HistoryTable", "VisibilityTable"])
def test_tables_are_encrypted_recoverable_and_expire_closed_runs(
    sam: dict[str, Any], name: str
) -> None:
    props = sam["Resources"][name]["Properties"]
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}
    # aws/store.py writes `expires_at` (epoch seconds) on history items, aws/queries.py on
    # query answers in the visibility table.
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert sam["Resources"][name]["DeletionPolicy"] == "Retain"
    assert sam["Resources"][name]["UpdateReplacePolicy"] == "Retain"


def test_retention_is_a_parameter_in_days(sam: dict[str, Any]) -> None:
    parameter = sam["Parameters"]["RetentionDays"]
    assert parameter["Type"] == "Number" and parameter["MinValue"] >= 1
    variables = sam["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["CADENZA_RETENTION_DAYS"] == {"Ref": "RetentionDays"}


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


def test_globals_give_every_function_the_engine_environment(sam: dict[str, Any]) -> None:
    function = sam["Globals"]["Function"]
    assert (function["Runtime"], function["Timeout"], function["MemorySize"]) == (
        "python3.12", 30, 512)
    variables = function["Environment"]["Variables"]
    assert variables["CADENZA_HISTORY_TABLE"] == {"Ref": "HistoryTable"}
    assert variables["CADENZA_VISIBILITY_TABLE"] == {"Ref": "VisibilityTable"}
    assert variables["CADENZA_QUEUE_PREFIX"] == {"Fn::Sub": "${AWS::StackName}"}
    assert variables["CADENZA_TIMER_QUEUE_URL"] == {"Ref": "TimerQueue"}
    assert variables["CADENZA_TIMER_QUEUE_ARN"] == {"Fn::GetAtt": ["TimerQueue", "Arn"]}
    assert variables["CADENZA_SCHEDULE_GROUP"] == {"Ref": "TimerScheduleGroup"}
    assert variables["CADENZA_SCHEDULER_ROLE_ARN"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}
    assert variables["CADENZA_TASK_LIST_DLQ_ARN"] == {
        "Fn::GetAtt": ["TaskListDeadLetterQueue", "Arn"]}
    role = sam["Resources"]["SchedulerRole"]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "scheduler.amazonaws.com"}
    assert variables["POWERTOOLS_SERVICE_NAME"]
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "Cadenza"


def test_the_task_token_key_is_a_generated_secret_not_a_parameter(sam: dict[str, Any]) -> None:
    variables = sam["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["CADENZA_TASK_TOKEN_SECRET_ARN"] == {"Ref": "TaskTokenSecret"}
    assert "CADENZA_TASK_TOKEN_SECRET" not in variables
    secret = sam["Resources"]["TaskTokenSecret"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32
    assert not any(p.get("NoEcho") for p in sam.get("Parameters", {}).values())


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


def test_the_layer_is_built_from_the_package(sam: dict[str, Any]) -> None:
    layer = sam["Resources"]["CadenzaLayer"]
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    content = REPO_ROOT / layer["Properties"]["ContentUri"]
    makefile = (content / "Makefile").read_text()
    assert "build-CadenzaLayer:" in makefile
    assert (content / "..").resolve() == REPO_ROOT  # the Makefile installs ".." (the package)
    assert "REPO := .." in makefile and "$(REPO)/pyproject.toml" in makefile
    assert "pip wheel" in makefile and "--target" in makefile
    assert "requirements" not in makefile  # no second list of dependencies to keep in step


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
    timer_queue = resources["TimerQueue"]["Properties"]
    assert "FifoQueue" not in timer_queue  # per-message delays need a standard queue
    assert timer_queue["RedrivePolicy"]["deadLetterTargetArn"] == {
        "Fn::GetAtt": ["TimerDeadLetterQueue", "Arn"]}

    for name, mapping in mappings.items():  # every event source reports partial failures
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"], name

    for name in FUNCTIONS:
        function = resources[name]
        assert function["Type"] == "AWS::Lambda::Function"
        assert function["Properties"]["Runtime"] == "python3.12"
        assert function["Properties"]["TracingConfig"] == {"Mode": "Active"}


def test_every_route_needs_iam_authorization_and_the_stage_throttles(
    translated: dict[str, Any]
) -> None:
    resources = translated["Resources"]
    api = resources["ServerlessHttpApi"]
    assert api["Type"] == "AWS::ApiGatewayV2::Api"
    paths = api["Properties"]["Body"]["paths"]
    assert set(paths) == {"/{proxy+}", "/"}
    for path, methods in paths.items():
        for method, operation in methods.items():
            assert operation["security"] == [{"AWS_IAM": []}], (path, method)
            integration = operation["x-amazon-apigateway-integration"]
            assert integration["payloadFormatVersion"] == "2.0"
            assert "ApiFunction.Arn" in integration["uri"]["Fn::Sub"]
    (stage,) = of_type(translated, "AWS::ApiGatewayV2::Stage").values()
    settings = stage["Properties"]["DefaultRouteSettings"]
    assert settings == {"ThrottlingRateLimit": {"Ref": "ApiThrottleRateLimit"},
                        "ThrottlingBurstLimit": {"Ref": "ApiThrottleBurstLimit"}}


def test_every_queue_has_a_dead_letter_queue_and_is_encrypted(
    translated: dict[str, Any]
) -> None:
    queues = of_type(translated, "AWS::SQS::Queue")
    targets = {q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
               for q in queues.values() if "RedrivePolicy" in q["Properties"]}
    # The stream's failure destination is its dead-letter queue (an on-failure destination).
    targets.add("StreamFailureQueue")
    for name, queue in queues.items():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True, name
        assert name in targets or "RedrivePolicy" in queue["Properties"], name
    alarmed = {alarm["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
               for alarm in of_type(translated, "AWS::CloudWatch::Alarm").values()
               if alarm["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"}
    assert alarmed == targets == {"TimerDeadLetterQueue", "TaskListDeadLetterQueue",
                                  "StreamFailureQueue"}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_least_privilege(translated: dict[str, Any], function: str) -> None:
    """No wildcard action, "*" only where AWS has no resource-level permission, no AWS managed
    policy (SAM adds some with "*" resources when it makes the role), task-list queues only by
    the stack's FIFO prefix, logs only to the function's own log group."""
    resources = translated["Resources"]
    granted = grants(role_statements(translated, function))
    for action, resource in granted:
        assert "*" not in action, action
        if resource == '"*"':
            assert action in STAR_ONLY_ACTIONS, action
    actions = {action for action, _ in granted}
    sqs_anywhere = {a for a, r in granted if a.startswith("sqs:") and "${AWS::StackName}-*" in r}
    assert sqs_anywhere == {"sqs:GetQueueUrl", "sqs:CreateQueue", "sqs:SendMessage"}
    assert all(r == json.dumps({"Fn::Sub": TASK_LIST_QUEUES}) for a, r in granted
               if a in sqs_anywhere and "StackName" in r)
    log_group = resources[function]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    assert {r for a, r in granted if a.startswith("logs:")} == {
        json.dumps({"Fn::GetAtt": [log_group, "Arn"]})}
    assert "secretsmanager:GetSecretValue" in actions
    assert "dynamodb:DeleteItem" not in actions and "dynamodb:Scan" not in actions


def test_only_the_api_lists_runs_and_only_consumers_poll(translated: dict[str, Any]) -> None:
    def actions(function: str) -> set[str]:
        return {a for a, _ in grants(role_statements(translated, function))}

    assert "dynamodb:Query" in actions("ApiFunction")
    api_queries = {r for a, r in grants(role_statements(translated, "ApiFunction"))
                   if a == "dynamodb:Query"}
    assert any("VisibilityTable.Arn}/index/*" in r for r in api_queries)
    for function in ("StreamFunction", "TimerFunction", "OrdersWorkerFunction"):
        queries = {r for a, r in grants(role_statements(translated, function))
                   if a == "dynamodb:Query"}
        assert all("HistoryTable" in r for r in queries), function
    assert "sqs:ReceiveMessage" not in actions("ApiFunction")
    assert "sqs:ReceiveMessage" not in actions("StreamFunction")
    assert "dynamodb:GetRecords" in actions("StreamFunction")
    assert "dynamodb:GetRecords" not in actions("TimerFunction")


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
    SqsTaskLists(client=recorder, prefix="STACK", dead_letter_arn="DLQ-ARN").queue_url(
        "default", "orders", kind)
    (request,) = recorder.requests
    props = sam["Resources"][logical_id]["Properties"]
    assert props["QueueName"] == {"Fn::Sub": request["QueueName"].replace(
        "STACK", "${AWS::StackName}")}
    assert request["QueueName"] == queue_name("STACK", "default", "orders", kind)
    declared = {k: str(v).lower() if isinstance(v, bool) else str(v)
                for k, v in props.items() if k not in ("QueueName", "RedrivePolicy")}
    expected = dict(request["Attributes"])
    assert json.loads(expected.pop("RedrivePolicy")) == {
        "deadLetterTargetArn": "DLQ-ARN", "maxReceiveCount": MAX_RECEIVE_COUNT}
    assert props["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["TaskListDeadLetterQueue", "Arn"]},
        "maxReceiveCount": MAX_RECEIVE_COUNT}
    timeout = sam["Resources"]["OrdersWorkerFunction"]["Properties"].get(
        "Timeout", sam["Globals"]["Function"]["Timeout"])
    expected["VisibilityTimeout"] = str(6 * timeout)
    assert declared == expected


def test_the_task_list_dead_letter_queue_is_outside_the_functions_pattern(
    sam: dict[str, Any]
) -> None:
    """FIFO like the queues it serves, named so that `${AWS::StackName}-*.fifo` misses it."""
    props = sam["Resources"]["TaskListDeadLetterQueue"]["Properties"]
    assert props["FifoQueue"] is True
    name = props["QueueName"]["Fn::Sub"]
    assert name.startswith("${AWS::StackName}_") and name.endswith(".fifo")


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
    polled = {r for a, r in grants(role_statements(translated, "OrdersWorkerFunction"))
              if a == "sqs:ReceiveMessage"}
    assert polled == {json.dumps({"Fn::GetAtt": [q, "Arn"]}, sort_keys=True)
                      for q in ORDERS_QUEUES}


def test_outputs(sam: dict[str, Any]) -> None:
    outputs = sam["Outputs"]
    assert outputs["ApiUrl"]["Value"] == {
        "Fn::Sub": "https://${ServerlessHttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/"
    }
    assert outputs["HistoryTableName"]["Value"] == {"Ref": "HistoryTable"}
    assert outputs["VisibilityTableName"]["Value"] == {"Ref": "VisibilityTable"}
    assert outputs["QueuePrefix"]["Value"] == {"Fn::Sub": "${AWS::StackName}"}
    assert outputs["EnginePolicyArn"]["Value"] == {"Ref": "EnginePolicy"}


def test_the_polling_worker_policy_reaches_only_worker_routes_and_task_lists(
    translated: dict[str, Any]
) -> None:
    policy = translated["Resources"]["PollingWorkerPolicy"]["Properties"]["PolicyDocument"]
    granted = grants(policy["Statement"])
    routes = [json.loads(r)["Fn::Sub"] for a, r in granted if a == "execute-api:Invoke"]
    assert routes and all(
        r.startswith("arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:"
                     "${ServerlessHttpApi}/$default/") for r in routes)
    assert {r.split("/$default/", 1)[1] for r in routes} == {
        "GET/api/v1/cluster", "GET/api/v1/domains/*/workflows/*/history",
        "GET/api/v1/domains/*/workflows/*/events", "POST/api/v1/tasks/*"}
    queues = {r for a, r in granted if a.startswith("sqs:")}
    assert queues == {json.dumps({"Fn::Sub": TASK_LIST_QUEUES})}
    assert "sqs:SendMessage" not in {a for a, _ in granted}  # tasks come from the engine


def test_server_errors_of_the_api_raise_an_alarm(sam: dict[str, Any]) -> None:
    """functions/api/app.py counts ServerErrors; powertools' EMF adds the service dimension."""
    alarm = sam["Resources"]["ApiServerErrorsAlarm"]["Properties"]
    variables = sam["Globals"]["Function"]["Environment"]["Variables"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (
        variables["POWERTOOLS_METRICS_NAMESPACE"], "ServerErrors")
    assert alarm["Dimensions"] == [
        {"Name": "service", "Value": variables["POWERTOOLS_SERVICE_NAME"]}]
