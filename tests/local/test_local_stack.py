"""The embedded local stack, against moto in server mode, with the fixture template.

tests/local/fixtures/template.yaml declares a table with a stream and a GSI, a queue with a
dead-letter queue, a FIFO queue and one function per event source kind; the fixture handlers
record the events they get so the tests can check their exact AWS shape.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from cadenza.error import CadenzaError
from cadenza.local import (
    DynamoStreamSource,
    HttpApiSource,
    LocalStack,
    LocalStackError,
    PortInUseError,
    SqsSource,
    TemplateError,
    describe_stack,
    load_template,
    merged_environment,
    resolve_parameters,
)
from cadenza.local.runtime import (
    _Route,
    http_api_event,
    http_api_response,
    match_route,
)

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_TEMPLATE = FIXTURES / "template.yaml"
REPO_ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll until ``predicate`` returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(api_port=0, template_path=FIXTURE_TEMPLATE, ui=False,
                    stack_name="fixture") as running:
        yield running


@pytest.fixture
def http(stack: LocalStack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.api_url, timeout=10) as client:
        yield client


# --------------------------------------------------------------------------------------------
# template.py: pure


def test_short_tags_become_long_form_and_dates_stay_strings() -> None:
    document = load_template(FIXTURE_TEMPLATE)
    assert document["AWSTemplateFormatVersion"] == "2010-09-09"
    variables = document["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["FIXTURE_TABLE"] == {"Ref": "Table"}
    assert variables["FIXTURE_PREFIX"] == {"Fn::Sub": "${AWS::StackName}"}
    events = document["Resources"]["SqsFunction"]["Properties"]["Events"]
    assert events["Work"]["Properties"]["Queue"] == {"Fn::GetAtt": ["WorkQueue", "Arn"]}


def test_describe_resolves_intrinsics_names_and_event_sources() -> None:
    described = describe_stack(
        FIXTURE_TEMPLATE, stack_name="s1", parameters={"Secret": "x" * 32}
    )
    assert described.table("Table").name == "s1-Table"
    assert described.table("Table").stream_view_type == "NEW_IMAGE"
    assert [i.name for i in described.table("Table").global_indexes] == ["by_start"]
    work = described.queue("WorkQueue")
    assert work.redrive is not None
    assert work.redrive.dead_letter_queue == "WorkDeadLetterQueue"
    assert work.redrive.max_receive_count == 5
    assert described.queue("OrderedQueue").name == "s1-OrderedQueue.fifo"

    function = described.function("HttpFunction")
    assert function.handler_file == FIXTURES / "handlers" / "http" / "app.py"
    assert function.handler_function == "handler"
    assert function.timeout == 10
    assert function.environment["FIXTURE_PREFIX"] == "s1"
    assert function.environment["FIXTURE_SECRET"] == "x" * 32
    assert function.environment["FIXTURE_GREETING"] == "hello-a"
    assert function.environment["FIXTURE_LITERAL"] == "${NotAVariable}"
    assert {s.route_key for s in function.sources(HttpApiSource)} == {"ANY /{proxy+}", "ANY /"}

    # As the SAM translator writes them: one event source mapping per SAM event.
    ordered, sqs = sorted(described.function("SqsFunction").events, key=lambda e: e.name)
    assert sqs == SqsSource(name="Work", queue="WorkQueue", batch_size=10,
                            report_batch_item_failures=True)
    assert ordered == SqsSource(name="Ordered", queue="OrderedQueue", batch_size=10,
                                report_batch_item_failures=True)
    (stream,) = described.function("StreamFunction").events
    assert isinstance(stream, DynamoStreamSource)
    assert (stream.table, stream.maximum_retry_attempts, stream.bisect_batch_on_function_error) == (
        "Table", 3, True)
    assert described.outputs["ApiUrl"] == "https://local.execute-api.us-east-1.amazonaws.com/"


def test_no_echo_parameters_get_a_fresh_secret_and_others_are_checked() -> None:
    document = load_template(FIXTURE_TEMPLATE)
    first, second = resolve_parameters(document), resolve_parameters(document)
    assert len(first["Secret"]) >= 32 and first["Secret"] != second["Secret"]
    assert first["Greeting"] == "hello"
    with pytest.raises(TemplateError, match="at least 32"):
        resolve_parameters(document, {"Secret": "short"})
    with pytest.raises(TemplateError, match="Nope"):
        resolve_parameters(document, {"Nope": "1"})
    with pytest.raises(TemplateError, match="Secret"):
        resolve_parameters(document, generate_secrets=False)


def test_functions_must_agree_on_shared_environment() -> None:
    described = describe_stack(FIXTURE_TEMPLATE, parameters={"Secret": "y" * 32})
    assert merged_environment(described.functions)["FIXTURE_TABLE"] == "cadenza-local-Table"
    from dataclasses import replace

    clash = replace(described.functions[0], environment={"FIXTURE_TABLE": "other"})
    with pytest.raises(LocalStackError, match="FIXTURE_TABLE"):
        merged_environment([*described.functions, clash])


def test_the_real_template_describes_the_engine_stack() -> None:
    described = describe_stack(REPO_ROOT / "template.yaml")
    assert {t.logical_id for t in described.tables} == {"HistoryTable", "VisibilityTable"}
    assert {"ApiFunction", "StreamFunction"} <= {f.logical_id for f in described.functions}
    env = merged_environment(described.functions)  # one process locally: must agree
    assert env["CADENZA_HISTORY_TABLE"] == "cadenza-local-HistoryTable"
    assert env["CADENZA_VISIBILITY_TABLE"] == "cadenza-local-VisibilityTable"
    assert env["CADENZA_QUEUE_PREFIX"] == "cadenza-local"
    # The task-token key is a generated secret read by its ARN, never a parameter.
    assert "CADENZA_TASK_TOKEN_SECRET" not in env and env["CADENZA_TASK_TOKEN_SECRET_ARN"]
    (stream,) = described.function("StreamFunction").events
    assert isinstance(stream, DynamoStreamSource) and stream.table == "HistoryTable"
    assert stream.on_failure_queue == "StreamFailureQueue"
    assert described.function("ApiFunction").handler_file == REPO_ROOT / "functions/api/app.py"
    # The layer is built from the package (layer/Makefile); locally cadenza is installed.
    assert REPO_ROOT / "layer" in described.function("ApiFunction").layer_paths
    # Read through the SAM translator: its CloudFormation, not SAM, is what is described.
    (secret,) = described.secrets
    assert (secret.logical_id, secret.length, secret.exclude_punctuation) == (
        "TaskTokenSecret", 64, True)
    assert env["CADENZA_TASK_TOKEN_SECRET_ARN"] == described.attributes["TaskTokenSecret"]["Ref"]
    assert "ApiFunctionRole" in described.unmanaged  # IAM is not enforced locally
    assert {s.route_key for s in described.function("ApiFunction").sources(HttpApiSource)} == {
        "ANY /{proxy+}", "ANY /"}

    # The example worker in Lambda mode and the "orders" queues it is fed from: created with
    # the attributes the service itself would use (tests/infra checks the template's side).
    worker = described.function("OrdersWorkerFunction")
    assert worker.handler_file == REPO_ROOT / "examples/orders/lambda_app.py"
    assert worker.code_root == REPO_ROOT / "examples"
    assert {(s.queue, s.batch_size, s.report_batch_item_failures) for s in worker.events} == {
        ("OrdersDecisionQueue", 10, True), ("OrdersActivityQueue", 10, True)}
    decisions = described.queue("OrdersDecisionQueue")
    assert decisions.name == "cadenza-local-default-orders-decision.fifo"
    attributes = decisions.create_queue_attributes()
    redrive = json.loads(attributes.pop("RedrivePolicy"))  # to the task lists' dead letters
    assert redrive["deadLetterTargetArn"].endswith(":cadenza-local_task-list-dead-letters.fifo")
    assert int(redrive["maxReceiveCount"]) == 50
    assert attributes == {
        "FifoQueue": "true", "ContentBasedDeduplication": "false",
        "DeduplicationScope": "messageGroup", "FifoThroughputLimit": "perMessageGroupId",
        "VisibilityTimeout": "180", "MessageRetentionPeriod": "1209600"}
    assert described.queue("OrdersActivityQueue").name == (
        "cadenza-local-default-orders-activity.fifo")


def test_route_matching_prefers_the_most_specific_route() -> None:
    routes = [
        _Route("Proxy", HttpApiSource("p", "/{proxy+}")),
        _Route("Root", HttpApiSource("r", "/")),
        _Route("Item", HttpApiSource("i", "/items/{id}", "GET")),
        _Route("Literal", HttpApiSource("l", "/items/special", "ANY")),
        _Route("Default", HttpApiSource("d", None)),
    ]

    def pick(method: str, path: str) -> tuple[str, dict[str, str]]:
        matched = match_route(routes, method, path)
        assert matched is not None
        return matched[0].function, matched[1]

    assert pick("GET", "/") == ("Root", {})
    assert pick("GET", "/items/42") == ("Item", {"id": "42"})
    assert pick("POST", "/items/42") == ("Proxy", {"proxy": "items/42"})
    assert pick("GET", "/items/special") == ("Literal", {})
    assert pick("GET", "/a/b%20c") == ("Proxy", {"proxy": "a/b c"})
    assert match_route(routes[2:4], "GET", "/other") is None
    assert pick("DELETE", "/x") == ("Proxy", {"proxy": "x"})


def test_http_event_and_response_shapes() -> None:
    event = http_api_event(
        method="post",
        target="/a?x=1&x=2&y=",
        headers=[("Content-Type", "image/png"), ("X-A", "1"), ("x-a", "2"), ("Cookie", "k=v")],
        body=b"\x89PNG",
        source_ip="10.0.0.1",
        route_key="ANY /{proxy+}",
        path_parameters={"proxy": "a"},
        now=0,
    )
    assert event["headers"]["x-a"] == "1,2" and "cookie" not in event["headers"]
    assert event["cookies"] == ["k=v"]
    assert event["queryStringParameters"] == {"x": "1,2", "y": ""}
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x89PNG"
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["time"] == "01/Jan/1970:00:00:00 +0000"
    no_body = http_api_event(method="GET", target="/", headers=[], body=b"", source_ip="1.1.1.1")
    assert "body" not in no_body and no_body["isBase64Encoded"] is False
    assert "queryStringParameters" not in no_body and "pathParameters" not in no_body

    assert http_api_response({"x": 1}) == (200, [("Content-Type", "application/json")], b'{"x": 1}')
    status, headers, body = http_api_response(
        {"statusCode": 204, "headers": {"a": "b"}, "cookies": ["c=d"]}
    )
    assert (status, headers, body) == (204, [("a", "b"), ("Set-Cookie", "c=d")], b"")


# --------------------------------------------------------------------------------------------
# the running stack


def test_tables_and_queues_are_created_as_declared(stack: LocalStack) -> None:
    dynamodb = stack.client("dynamodb")
    table = dynamodb.describe_table(TableName="fixture-Table")["Table"]
    assert {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]} == {
        "pk": "HASH", "sk": "RANGE"}
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "by_start"
    assert [k["AttributeName"] for k in index["KeySchema"]] == ["list_pk", "start_time"]

    sqs = stack.client("sqs")
    work = sqs.get_queue_attributes(QueueUrl=stack.queue_url("WorkQueue"),
                                    AttributeNames=["All"])["Attributes"]
    assert work["VisibilityTimeout"] == "1"
    redrive = json.loads(work["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(":fixture-WorkDeadLetterQueue")
    assert int(redrive["maxReceiveCount"]) == 5
    fifo = sqs.get_queue_attributes(QueueUrl=stack.queue_url("OrderedQueue"),
                                    AttributeNames=["All"])["Attributes"]
    assert fifo["FifoQueue"] == "true" and fifo["ContentBasedDeduplication"] == "true"
    assert stack.function_names == ("SqsFunction", "StreamFunction", "HttpFunction")


def test_environment_is_set_for_handlers_and_other_processes(stack: LocalStack) -> None:
    env = stack.environment
    assert env["AWS_ENDPOINT_URL"] == stack.emulator_endpoint
    assert env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"]
    assert env["CADENZA_API_URL"] == stack.api_url
    assert env["FIXTURE_TABLE"] == "fixture-Table"
    assert env["FIXTURE_QUEUE_URL"] == stack.queue_url("WorkQueue")
    for key, value in env.items():
        assert os.environ[key] == value


def _queue_is_empty(stack: LocalStack, logical_id: str) -> bool:
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.queue_url(logical_id),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return all(value == "0" for value in attributes.values())


def _sqs_records(stack: LocalStack, body: str) -> list[dict[str, Any]]:
    events = stack.function("SqsFunction").module.EVENTS
    return [r for event in list(events) for r in event["Records"] if r["body"] == body]


def test_sqs_message_reaches_handler_as_an_sqs_event_and_is_deleted(stack: LocalStack) -> None:
    sent = stack.client("sqs").send_message(
        QueueUrl=stack.queue_url("WorkQueue"),
        MessageBody="hello sqs",
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "greeting"}},
    )
    (record,) = wait_for(lambda: _sqs_records(stack, "hello sqs"))
    assert record["messageId"] == sent["MessageId"]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:fixture-WorkQueue"
    assert record["awsRegion"] == "us-east-1"
    assert record["md5OfBody"] == sent["MD5OfMessageBody"]
    assert record["receiptHandle"]
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(
        record["attributes"])
    assert record["messageAttributes"]["kind"] == {
        "stringValue": "greeting", "stringListValues": [], "binaryListValues": [],
        "dataType": "String"}
    wait_for(lambda: _queue_is_empty(stack, "WorkQueue"))
    time.sleep(1.3)  # past the 1 s visibility timeout: a deleted message never comes back
    assert len(_sqs_records(stack, "hello sqs")) == 1


def test_fifo_messages_reach_handler_in_group_order_with_fifo_attributes(
    stack: LocalStack,
) -> None:
    """As Lambda delivers FIFO records: in group order, with the group, deduplication id and
    sequence number that FIFO batch processors (powertools) rely on."""
    sqs = stack.client("sqs")
    bodies = [f"fifo-{i}" for i in range(3)]
    for body in bodies:
        sqs.send_message(QueueUrl=stack.queue_url("OrderedQueue"), MessageBody=body,
                         MessageGroupId="group-a")
    records = wait_for(lambda: [r for b in bodies for r in _sqs_records(stack, b)]
                       if all(_sqs_records(stack, b) for b in bodies) else None)
    assert [r["body"] for r in records] == bodies
    arrival = [r["body"] for e in list(stack.function("SqsFunction").module.EVENTS)
               for r in e["Records"] if r["body"] in bodies]
    assert arrival == bodies
    sequence_numbers = []
    for record in records:
        assert record["eventSourceARN"].endswith(":fixture-OrderedQueue.fifo")
        attributes = record["attributes"]
        assert attributes["MessageGroupId"] == "group-a"
        assert attributes["MessageDeduplicationId"]  # content-based: a hash of the body
        assert attributes["ApproximateReceiveCount"] == "1"
        sequence_numbers.append(int(attributes["SequenceNumber"]))
    assert sequence_numbers == sorted(sequence_numbers)
    wait_for(lambda: _queue_is_empty(stack, "OrderedQueue"))


@pytest.mark.parametrize("body", ["fail-once", "raise-once"])
def test_failed_messages_are_not_deleted_and_come_back(stack: LocalStack, body: str) -> None:
    """A reported batch item failure (or a raising handler) leaves the message on the queue."""
    sqs = stack.client("sqs")
    sqs.send_message_batch(
        QueueUrl=stack.queue_url("WorkQueue"),
        Entries=[{"Id": "bad", "MessageBody": body}, {"Id": "good", "MessageBody": f"ok {body}"}],
    )
    first, second = wait_for(lambda: len(_sqs_records(stack, body)) >= 2 and
                             _sqs_records(stack, body))
    assert first["messageId"] == second["messageId"]
    assert first["attributes"]["ApproximateReceiveCount"] == "1"
    assert second["attributes"]["ApproximateReceiveCount"] == "2"
    wait_for(lambda: _queue_is_empty(stack, "WorkQueue"))
    good = _sqs_records(stack, f"ok {body}")
    if body == "fail-once":  # only the reported item was kept; its batch mate was deleted
        assert len(good) == 1
    else:  # a raising handler fails the whole batch, as in AWS
        assert good and good[-1]["attributes"]["ApproximateReceiveCount"] in ("1", "2")


def _stream_records(stack: LocalStack, pk: str) -> list[dict[str, Any]]:
    events = stack.function("StreamFunction").module.EVENTS
    return [r for event in list(events) for r in event["Records"]
            if r["dynamodb"]["Keys"]["pk"]["S"] == pk]


def test_put_item_reaches_stream_handler_as_insert_record(stack: LocalStack) -> None:
    table_arn = stack.description.attributes["Table"]["StreamArn"]
    stack.client("dynamodb").put_item(
        TableName="fixture-Table",
        Item={"pk": {"S": "run-1"}, "sk": {"S": "0001"}, "n": {"N": "7"}, "b": {"B": b"\x00\x01"}},
    )
    (record,) = wait_for(lambda: _stream_records(stack, "run-1"))
    assert record["eventName"] == "INSERT"
    assert record["eventSource"] == "aws:dynamodb"
    assert record["eventSourceARN"] == table_arn
    assert record["awsRegion"] == "us-east-1"
    assert record["eventID"]
    ddb = record["dynamodb"]
    assert ddb["Keys"] == {"pk": {"S": "run-1"}, "sk": {"S": "0001"}}
    assert ddb["NewImage"] == {"pk": {"S": "run-1"}, "sk": {"S": "0001"}, "n": {"N": "7"},
                               "b": {"B": base64.b64encode(b"\x00\x01").decode()}}
    assert "OldImage" not in ddb
    assert ddb["StreamViewType"] == "NEW_IMAGE"
    assert ddb["SequenceNumber"].isdigit() and ddb["SizeBytes"] > 0
    assert isinstance(ddb["ApproximateCreationDateTime"], int)

    stack.client("dynamodb").delete_item(
        TableName="fixture-Table", Key={"pk": {"S": "run-1"}, "sk": {"S": "0001"}})
    wait_for(lambda: any(r["eventName"] == "REMOVE" for r in _stream_records(stack, "run-1")))


def test_imported_items_are_stored_without_stream_records(stack: LocalStack) -> None:
    dynamodb = stack.client("dynamodb")
    dynamodb.put_item(TableName="fixture-Table", Item={"pk": {"S": "before"}, "sk": {"S": "1"}})
    imported = [{"pk": {"S": "imported"}, "sk": {"S": f"{index:03d}"}} for index in range(60)]
    assert stack.import_items("Table", imported) == 60
    dynamodb.put_item(TableName="fixture-Table", Item={"pk": {"S": "after"}, "sk": {"S": "1"}})
    # What was written before the import is delivered, what comes after too, in order.
    wait_for(lambda: _stream_records(stack, "after"))
    assert len(_stream_records(stack, "before")) == 1
    assert _stream_records(stack, "imported") == []
    stored = dynamodb.query(TableName="fixture-Table", KeyConditionExpression="pk = :pk",
                            ExpressionAttributeValues={":pk": {"S": "imported"}})
    assert [item["sk"]["S"] for item in stored["Items"]] == [f"{i:03d}" for i in range(60)]


def test_stream_batch_item_failure_is_retried_from_the_failed_record(stack: LocalStack) -> None:
    dynamodb = stack.client("dynamodb")
    dynamodb.put_item(TableName="fixture-Table",
                      Item={"pk": {"S": "run-2"}, "sk": {"S": "a"}, "fail_once": {"BOOL": True}})
    dynamodb.put_item(TableName="fixture-Table", Item={"pk": {"S": "run-2"}, "sk": {"S": "b"}})
    records = wait_for(lambda: len(_stream_records(stack, "run-2")) >= 3 and
                       _stream_records(stack, "run-2"))
    sequence = [(r["dynamodb"]["Keys"]["sk"]["S"], r["dynamodb"]["SequenceNumber"])
                for r in records]
    failed = sequence[0]
    assert failed[0] == "a"
    # The retry starts again at the failed record, and later records follow it in order.
    retry_start = sequence.index(failed, 1)
    assert [sk for sk, _ in sequence[retry_start:]][:2] == ["a", "b"]


def test_http_request_reaches_handler_as_v2_event_and_response_comes_back(
    stack: LocalStack, http: httpx.Client
) -> None:
    response = http.post("/workflows/wf-1/signal?x=1&x=2", json={"signal": "go"},
                         headers={"X-Custom": "v", "Cookie": "session=abc"})
    assert response.status_code == 201
    assert response.headers["x-fixture"] == "yes"
    assert response.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2"]
    assert response.headers["apigw-requestid"]
    payload = response.json()
    event = payload["event"]
    assert event["version"] == "2.0"
    assert event["routeKey"] == "ANY /{proxy+}"
    assert event["rawPath"] == "/workflows/wf-1/signal"
    assert event["rawQueryString"] == "x=1&x=2"
    assert event["queryStringParameters"] == {"x": "1,2"}
    assert event["pathParameters"] == {"proxy": "workflows/wf-1/signal"}
    assert event["headers"]["x-custom"] == "v"
    assert all(name == name.lower() for name in event["headers"])
    assert event["cookies"] == ["session=abc"]
    assert json.loads(event["body"]) == {"signal": "go"} and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["http"]["method"] == "POST"
    assert context["http"]["path"] == "/workflows/wf-1/signal"
    assert context["http"]["sourceIp"] == "127.0.0.1"
    assert context["http"]["protocol"] == "HTTP/1.1"
    assert context["http"]["userAgent"].startswith("python-httpx")
    assert context["stage"] == "$default" and context["requestId"]
    assert abs(context["timeEpoch"] / 1000 - time.time()) < 60
    assert payload["context"]["function_name"] == "fixture-HttpFunction"
    assert 0 < payload["context"]["remaining"] <= 10_000
    assert payload["env"]["FIXTURE_TABLE"] == "fixture-Table"

    root = http.get("/").json()["event"]
    assert root["routeKey"] == "ANY /" and "pathParameters" not in root


def test_http_binary_inferred_and_failing_responses(http: httpx.Client) -> None:
    binary = http.put("/binary", content=b"\xff\xfe", headers={"content-type": "image/png"})
    assert binary.status_code == 200 and binary.content == b"\x00\x01\xff"
    plain = http.get("/plain")
    assert plain.status_code == 200
    assert plain.headers["content-type"] == "application/json"
    assert plain.json() == {"hello": "world"}
    boom = http.get("/boom")
    assert boom.status_code == 500 and boom.json() == {"message": "Internal Server Error"}


def test_http_requests_are_served_concurrently(stack: LocalStack) -> None:
    """Long-poll requests must not queue behind each other."""
    results: list[int] = []

    def call() -> None:
        with httpx.Client(base_url=stack.api_url, timeout=10) as client:
            results.append(client.get("/sleep").status_code)

    started = time.monotonic()
    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [201] * 8
    assert time.monotonic() - started < 2.5  # 8 x 0.5 s in sequence would be 4 s


def test_invoke_calls_a_function_in_process(stack: LocalStack) -> None:
    result = stack.invoke("SqsFunction", {"Records": []})
    assert result == {"batchItemFailures": []}
    with pytest.raises(LocalStackError):
        stack.invoke("NoSuchFunction", {})


# --------------------------------------------------------------------------------------------
# errors and lifecycle


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


def test_api_port_already_taken_gives_a_clear_error(taken_port: int) -> None:
    before = dict(os.environ)
    local = LocalStack(api_port=taken_port, template_path=FIXTURE_TEMPLATE, ui=False,
                       stack_name="taken-1")
    with pytest.raises(PortInUseError, match=f"HTTP API server on 127.0.0.1:{taken_port}") as info:
        local.start()
    assert isinstance(info.value, CadenzaError) and info.value.port == taken_port
    assert not local.running
    assert dict(os.environ) == before
    # Everything it had started was stopped: the same stack starts on a free port.
    with LocalStack(api_port=0, template_path=FIXTURE_TEMPLATE, ui=False, stack_name="taken-1"):
        pass


def test_emulator_port_already_taken_gives_a_clear_error(taken_port: int) -> None:
    local = LocalStack(api_port=0, emulator_port=taken_port, template_path=FIXTURE_TEMPLATE,
                       ui=False, stack_name="taken-2")
    with pytest.raises(PortInUseError, match="AWS emulator"):
        local.start()
    assert not local.running


def test_stop_restores_environment_and_releases_ports() -> None:
    os.environ.pop("FIXTURE_TABLE", None)
    local = LocalStack(api_port=0, template_path=FIXTURE_TEMPLATE, ui=False, stack_name="restart")
    with local:
        port = int(local.api_url.rsplit(":", 1)[1])
        assert os.environ["FIXTURE_TABLE"] == "restart-Table"
    assert "FIXTURE_TABLE" not in os.environ
    with pytest.raises(LocalStackError):
        _ = local.api_url
    # The port is free again and the tables were removed: the same stack starts again there.
    with LocalStack(api_port=port, template_path=FIXTURE_TEMPLATE, ui=False,
                    stack_name="restart") as again:
        assert again.api_url.endswith(f":{port}")
        # The emulator's port comes from the API's: a restarted stack is found where it was.
        assert again.emulator_endpoint.endswith(f":{port + 1}")


def test_the_emulator_port_follows_the_api_port_unless_given() -> None:
    assert LocalStack(api_port=7933, template_path=FIXTURE_TEMPLATE).emulator_port == 7934
    assert LocalStack(api_port=7933, emulator_port=9000,
                      template_path=FIXTURE_TEMPLATE).emulator_port == 9000
    assert LocalStack(api_port=0, template_path=FIXTURE_TEMPLATE).emulator_port is None


def test_a_mounted_app_answers_outside_api_and_the_routes_inside() -> None:
    def page(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"page {environ['PATH_INFO']}".encode()]

    urls: list[str] = []
    log: list[tuple[str, str, int, float]] = []

    def mount(api_url: str) -> Any:
        urls.append(api_url)
        return page

    stack = LocalStack(api_port=0, template_path=FIXTURE_TEMPLATE, ui=mount,
                       request_log=lambda *entry: log.append(entry), stack_name="mount")
    with stack:
        assert urls == [stack.api_url]  # made once the port is bound, as cadenza.ui's is
        with httpx.Client(base_url=stack.api_url) as http:
            assert http.get("/runs").text == "page /runs"
            routed = http.get("/api/v1/anything")
            assert routed.status_code == 201
            assert routed.json()["event"]["rawPath"] == "/api/v1/anything"
    assert [(method, code) for method, _, code, _ in log] == [("GET", 200), ("GET", 201)]
    assert log[1][1] == "/api/v1/anything" and log[1][3] >= 0


def test_the_engine_stack_serves_the_web_ui_and_generates_its_secret() -> None:
    pytest.importorskip("cadenza.ui")
    with LocalStack(api_port=0, stack_name="ui") as stack, \
            httpx.Client(base_url=stack.api_url) as http:
        root = http.get("/")
        assert root.status_code == 200 and "text/html" in root.headers["content-type"]
        assert http.get("/api/v1/cluster").status_code == 200
        # The template's generated secret exists in the emulator, under the ARN the functions'
        # environment names, generated as the template asks (64 characters, no punctuation).
        arn = stack.environment["CADENZA_TASK_TOKEN_SECRET_ARN"]
        value = stack.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
        assert len(value) == 64 and value.isalnum()


def test_missing_handler_is_a_clear_error(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(
        "Transform: AWS::Serverless-2016-10-31\n"
        "Resources:\n"
        "  Fn:\n"
        "    Type: AWS::Serverless::Function\n"
        "    Properties: {Handler: nope/app.handler, CodeUri: src/, Runtime: python3.12}\n"
    )
    with pytest.raises(LocalStackError, match=r"nope/app\.handler"):
        LocalStack(api_port=0, template_path=template, stack_name="missing").start()


def test_auth_iam_refuses_unsigned_requests_and_serves_signed_ones() -> None:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    with LocalStack(api_port=0, template_path=FIXTURE_TEMPLATE, ui=False, auth="iam",
                    stack_name="iam") as stack, httpx.Client(base_url=stack.api_url) as http:
        calls = stack.function("HttpFunction").invocations
        unsigned = http.post("/api/v1/echo", content=b"{}")
        assert unsigned.status_code == 403
        assert unsigned.json()["code"] == "UnsignedRequestError"
        wrong = AWSRequest(method="POST", url=f"{stack.api_url}/api/v1/echo", data=b"{}")
        SigV4Auth(Credentials("testing", "not-the-secret"), "execute-api",
                  "us-east-1").add_auth(wrong)
        refused = http.post("/api/v1/echo", content=b"{}", headers=dict(wrong.headers))
        assert refused.status_code == 403
        assert refused.json()["code"] == "SignatureMismatchError"
        assert stack.function("HttpFunction").invocations == calls  # nothing reached it
        right = AWSRequest(method="POST", url=f"{stack.api_url}/api/v1/echo", data=b"{}")
        SigV4Auth(Credentials("testing", "testing"), "execute-api", "us-east-1").add_auth(right)
        served = http.post("/api/v1/echo", content=b"{}", headers=dict(right.headers))
        assert served.status_code == 201 and served.json()["event"]["body"] == "{}"


def test_an_unknown_auth_mode_is_refused() -> None:
    with pytest.raises(LocalStackError, match="auth must be one of none, iam"):
        LocalStack(api_port=0, template_path=FIXTURE_TEMPLATE, auth="basic")


def test_the_schedule_firer_survives_a_listing_cut_short_by_a_deletion() -> None:
    """moto's ListSchedules page token names a schedule; deleted between two pages (the engine
    deletes deadlines all the time), the next page is refused with InvalidToken."""
    from botocore.exceptions import ClientError

    from cadenza.local.runtime import _OneTimeScheduleFirer

    class Pages:
        def paginate(self, **request: Any) -> Any:
            yield {"Schedules": [{"Name": "kept", "CreationDate": 1}]}
            raise ClientError({"Error": {"Code": "InvalidToken", "Message": "gone"}},
                              "ListSchedules")

    class Endpoint:
        def new_client(self, service: str) -> Any:
            client = type("Client", (), {})()
            client.get_paginator = lambda name: Pages()  # type: ignore[attr-defined]
            return client

    stop = threading.Event()
    firer = _OneTimeScheduleFirer(["g"], endpoint=Endpoint(), stop=stop)  # type: ignore[arg-type]
    far = datetime.now(UTC) + timedelta(days=1)
    firer._due = {("g", "kept", 1): far, ("g", "unlisted", 2): far}
    stop.set()  # poll_once waits a second at its end; not here
    firer.poll_once()
    # Nothing forgotten on an incomplete listing: a schedule on a later page is still known.
    assert firer._due == {("g", "kept", 1): far, ("g", "unlisted", 2): far}
