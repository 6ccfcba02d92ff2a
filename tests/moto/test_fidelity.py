"""The local stack's corrections of moto (cadenza.local.fidelity), tested against moto itself.

DynamoDB transactions: a failed TransactWriteItems writes nothing and undoes nothing another
request wrote meanwhile (moto alone restores whole-table copies, losing concurrent writes).

DynamoDB queries: a Query does the same work however many other partitions the table holds
(moto alone sorts the whole table on every Query), and answers exactly as stock moto does.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from cadenza.aws.settings import AwsSettings

TABLE_KEYS = {
    "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                             {"AttributeName": "sk", "AttributeType": "S"}],
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"},
                  {"AttributeName": "sk", "KeyType": "RANGE"}],
    "BillingMode": "PAY_PER_REQUEST",
}


@pytest.fixture
def table(moto_endpoint: str) -> tuple[object, str]:
    client = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")
    name = f"fidelity-{uuid.uuid4().hex[:8]}"
    client.create_table(TableName=name, **TABLE_KEYS, StreamSpecification={
        "StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
    return client, name


def item(pk: str, sk: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def put(name: str, key: dict[str, dict[str, str]], *, new: bool = True) -> dict[str, object]:
    op: dict[str, object] = {"TableName": name, "Item": key}
    if new:
        op["ConditionExpression"] = "attribute_not_exists(pk)"
    return {"Put": op}


def test_a_failed_transaction_writes_nothing_and_streams_nothing(table: tuple[object, str]) -> None:
    client, name = table
    client.put_item(TableName=name, Item=item("a", "1"))  # type: ignore[attr-defined]
    with pytest.raises(ClientError) as refused:
        client.transact_write_items(TransactItems=[  # type: ignore[attr-defined]
            put(name, item("b", "1"), new=False), put(name, item("a", "1"))])
    reasons = refused.value.response["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None", "ConditionalCheckFailed"]
    assert "Item" not in client.get_item(  # type: ignore[attr-defined]
        TableName=name, Key=item("b", "1"))
    stream = client.describe_table(TableName=name)["Table"]["LatestStreamArn"]  # type: ignore
    streams = boto3.client("dynamodbstreams", endpoint_url=client.meta.endpoint_url,  # type: ignore
                           region_name="us-east-1")
    shard = streams.describe_stream(StreamArn=stream)["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(StreamArn=stream, ShardId=shard["ShardId"],
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    keys = [r["dynamodb"]["Keys"]["pk"]["S"] for r in
            streams.get_records(ShardIterator=iterator)["Records"]]
    assert keys == ["a"]


def test_failed_transactions_never_undo_concurrent_writes(table: tuple[object, str]) -> None:
    client, name = table
    client.put_item(TableName=name, Item=item("taken", "1"))  # type: ignore[attr-defined]
    for index in range(300):  # a table big enough that copying it takes a while
        client.put_item(TableName=name, Item=item("filler", f"{index:04d}"))  # type: ignore
    written: list[str] = []

    def writer() -> None:
        for index in range(150):
            client.put_item(TableName=name, Item=item("w", f"{index:04d}"))  # type: ignore
            written.append(f"{index:04d}")

    thread = threading.Thread(target=writer)
    thread.start()
    while thread.is_alive():
        with pytest.raises(ClientError):
            client.transact_write_items(TransactItems=[  # type: ignore[attr-defined]
                put(name, item("t", uuid.uuid4().hex)), put(name, item("taken", "1"))])
    thread.join()
    found = client.query(  # type: ignore[attr-defined]
        TableName=name, KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "w"}})["Count"]
    assert found == len(written) == 150
    assert client.query(  # type: ignore[attr-defined]
        TableName=name, KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "t"}})["Count"] == 0


# --------------------------------------------------------------------------------------------
# Queries read their partition (cadenza.local.fidelity.apply_dynamodb_queries)

ACCOUNT = "123456789012"
COMPARISONS = ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__")


def _backend() -> Any:
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[ACCOUNT]["us-east-1"]


def _store_runs(table: str, first: int, last: int) -> None:
    """History batches of runs ``first``..``last - 1``, three per run, as the engine writes them
    (written into moto directly: 30,000 PutItems over HTTP would take a minute)."""
    backend = _backend()
    for index in range(first, last):
        for batch in (1, 4, 9):
            backend.put_item(table, {
                "pk": {"S": f"default#wf-{index:05d}"},
                "sk": {"S": f"run-{index:05d}#{batch:010d}"},
                "first_event_id": {"N": str(batch)},
                "body": {"B": b"x" * 40},
            })


@pytest.fixture
def comparisons(monkeypatch: pytest.MonkeyPatch) -> Callable[[], int]:
    """Counts the comparisons of DynamoDB values moto makes inside its Query (in whatever thread
    serves it, and only there): how many items it looked at, sorted and paged through."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType

    scope = threading.local()
    count = [0]
    for name in COMPARISONS:
        def counting(self: Any, other: Any, _compare: Any = getattr(DynamoType, name)) -> Any:
            if getattr(scope, "querying", False):
                count[0] += 1
            return _compare(self, other)

        monkeypatch.setattr(DynamoType, name, counting)
    stock_query = DynamoDBBackend.query

    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        scope.querying = True
        try:
            return stock_query(self, *args, **kwargs)
        finally:
            scope.querying = False

    monkeypatch.setattr(DynamoDBBackend, "query", query)

    def taken() -> int:
        value, count[0] = count[0], 0
        return value

    return taken


def _hot_path_queries(client: Any, table: str) -> list[dict[str, Any]]:
    """The engine's Queries of one run: its newest batch, then its history a page at a time."""
    pk = {":pk": {"S": "default#wf-00003"}}
    answers = [client.query(
        TableName=table, KeyConditionExpression="pk = :pk AND begins_with(sk, :run)",
        ExpressionAttributeValues={**pk, ":run": {"S": "run-00003#"}},
        ScanIndexForward=False, Limit=1, ConsistentRead=True)]
    start: dict[str, Any] | None = None
    while True:
        page = client.query(TableName=table, KeyConditionExpression="pk = :pk",
                            ExpressionAttributeValues=pk, Limit=2, ConsistentRead=True,
                            **({"ExclusiveStartKey": start} if start else {}))
        answers.append(page)
        start = page.get("LastEvaluatedKey")
        if start is None:
            return answers


def test_a_query_costs_the_same_with_10_and_10000_runs_stored(
    aws_settings: AwsSettings, comparisons: Callable[[], int]
) -> None:
    from cadenza.local.fidelity import apply_dynamodb_queries

    apply_dynamodb_queries()  # as the local stack and the moto_endpoint fixture do
    client = boto3.client("dynamodb", endpoint_url=aws_settings.endpoint_url,
                          region_name="us-east-1")
    table = aws_settings.history_table
    _store_runs(table, 0, 10)
    comparisons()
    few = _hot_path_queries(client, table)
    work_with_few = comparisons()
    _store_runs(table, 10, 10_000)
    many = _hot_path_queries(client, table)
    work_with_many = comparisons()
    assert [page["Items"] for page in many] == [page["Items"] for page in few]
    assert [len(page["Items"]) for page in few] == [1, 2, 1]
    assert 0 < work_with_many == work_with_few  # stock moto 5.2.5: sorts all 30,000 items


def _visibility_items(table: str) -> None:
    """Records and index items in every index, with ties on start_time and partitions of all
    sizes, plus items outside every index."""
    backend = _backend()
    for index in range(60):
        status = "OPEN" if index % 3 else "CLOSED"
        item: dict[str, Any] = {
            "pk": {"S": f"default#wf-{index % 17:02d}"}, "sk": {"S": f"run-{index:03d}"},
            "list_pk": {"S": f"default#{status}"},
            "type_pk": {"S": f"default#T{index % 4}#{status}"},
            "start_time": {"N": str(1000 + index // 3)},  # three runs per start time
            "domain": {"S": "default"},
        }
        if status == "CLOSED":
            item["close_pk"] = {"S": f"default#{'FAILED' if index % 2 else 'COMPLETED'}"}
        backend.put_item(table, item)
        if index % 5 == 0:
            backend.put_item(table, {
                "pk": {"S": f"sa:default#wf-{index % 17:02d}"},
                "sk": {"S": f"run-{index:03d}#digest"},
                "attr_pk": {"S": "default#CustomKeywordField"},
                "start_time": {"N": str(1000 + index // 3)}, "domain": {"S": "default"},
            })
    backend.put_item(table, {"pk": {"S": "query#q1"}, "sk": {"S": "answer"},
                             "expires_at": {"N": "5"}})


def _all_pages(client: Any, **request: Any) -> list[dict[str, Any]]:
    pages = []
    while True:
        page = client.query(**request)
        page.pop("ResponseMetadata", None)
        pages.append(page)
        if "LastEvaluatedKey" not in page:
            return pages
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _query_shapes(history: str, visibility: str) -> list[dict[str, Any]]:
    def key(table: str, condition: str, index: str | None = None, **values: Any) -> dict[str, Any]:
        request: dict[str, Any] = {
            "TableName": table, "KeyConditionExpression": condition,
            "ExpressionAttributeValues": {f":{k}": v for k, v in values.items()}}
        if index:
            request["IndexName"] = index
        return request

    run = key(history, "pk = :pk", pk={"S": "default#wf-00004"})
    latest = key(history, "pk = :pk AND begins_with(sk, :run)", pk={"S": "default#wf-00004"},
                 run={"S": "run-00004#"})
    after = key(history, "pk = :pk AND sk > :sk", pk={"S": "default#wf-00004"},
                sk={"S": "run-00004#0000000001"})
    closed = key(visibility, "list_pk = :p", "by_start", p={"S": "default#CLOSED"})
    window = key(visibility, "type_pk = :p AND start_time BETWEEN :a AND :b", "by_type",
                 p={"S": "default#T1#OPEN"}, a={"N": "1003"}, b={"N": "1015"})
    failed = key(visibility, "close_pk = :p", "by_close_status", p={"S": "default#FAILED"})
    attribute = key(visibility, "attr_pk = :p AND start_time >= :a", "by_attribute",
                    p={"S": "default#CustomKeywordField"}, a={"N": "1004"})
    runs_of_id = key(visibility, "pk = :pk", pk={"S": "default#wf-03"})
    return [
        run, {**run, "ScanIndexForward": False}, {**run, "Limit": 2},
        {**run, "Limit": 1, "ScanIndexForward": False}, {**latest, "Limit": 1,
                                                          "ScanIndexForward": False},
        after, {**after, "Limit": 1},
        {**run, "FilterExpression": "first_event_id > :f", "Limit": 2,
         "ExpressionAttributeValues": {**run["ExpressionAttributeValues"],
                                       ":f": {"N": "1"}}},
        key(history, "pk = :pk", pk={"S": "default#nobody"}),
        closed, {**closed, "ScanIndexForward": False}, {**closed, "Limit": 4},
        {**closed, "Limit": 3, "ScanIndexForward": False},
        window, {**window, "Limit": 2, "ScanIndexForward": False},
        failed, {**failed, "Limit": 2}, {**failed, "Select": "COUNT"},
        attribute, {**attribute, "Limit": 1},
        {**closed, "FilterExpression": "begins_with(pk, :w)", "Limit": 5,
         "ExpressionAttributeValues": {**closed["ExpressionAttributeValues"],
                                       ":w": {"S": "default#wf-1"}}},
        runs_of_id, {**runs_of_id, "Limit": 2, "ScanIndexForward": False},
        key(visibility, "list_pk = :p", "by_start", p={"S": "other#OPEN"}),
    ]


def test_queries_answer_as_stock_moto_does(
    aws_settings: AwsSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every page of every shape of Query, patched and unpatched: identical."""
    from moto.dynamodb.models.table import Table

    from cadenza.local.fidelity import apply_dynamodb_queries

    apply_dynamodb_queries()
    client = boto3.client("dynamodb", endpoint_url=aws_settings.endpoint_url,
                          region_name="us-east-1")
    _store_runs(aws_settings.history_table, 0, 40)
    _visibility_items(aws_settings.visibility_table)
    shapes = _query_shapes(aws_settings.history_table, aws_settings.visibility_table)
    patched = [_all_pages(client, **dict(shape)) for shape in shapes]
    with monkeypatch.context() as stock:
        stock.setattr(Table, "query", Table.query.__wrapped__)  # type: ignore[attr-defined]
        stock.setattr(Table, "all_items", Table.all_items.__wrapped__)  # type: ignore
        unpatched = [_all_pages(client, **dict(shape)) for shape in shapes]
    assert patched == unpatched
    assert all(pages[0].get("Count", 0) > 0 for pages in patched[:8])
    assert sum(len(pages) > 1 for pages in patched) >= 8  # paging was exercised


# --------------------------------------------------------------------------------------------
# SQS scans, stream iterators (apply_embedded_moto_patches)


@pytest.fixture
def patched_sqs(moto_endpoint: str) -> Any:
    from cadenza.local.fidelity import apply_embedded_moto_patches

    apply_embedded_moto_patches()  # as the local stack does
    return boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")


def test_queue_counts_and_deletes_answer_as_sqs_does(patched_sqs: Any) -> None:
    url = patched_sqs.create_queue(QueueName=f"scan-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    patched_sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": str(i), "MessageBody": f"m{i}", **({"DelaySeconds": 900} if i < 2 else {})}
        for i in range(5)])
    received = patched_sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1,
                                           VisibilityTimeout=60)["Messages"]
    counts = patched_sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (counts["ApproximateNumberOfMessages"], counts["ApproximateNumberOfMessagesDelayed"],
            counts["ApproximateNumberOfMessagesNotVisible"]) == ("2", "2", "1")
    handle = received[0]["ReceiptHandle"]
    patched_sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)
    patched_sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)  # a repeat is accepted
    with pytest.raises(ClientError, match="ReceiptHandleIsInvalid"):
        patched_sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")
    rest = patched_sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted([received[0]["Body"], *(m["Body"] for m in rest)]) == ["m2", "m3", "m4"]


def test_sends_during_deletes_are_all_delivered_once(patched_sqs: Any) -> None:
    url = patched_sqs.create_queue(QueueName=f"race-{uuid.uuid4().hex[:8]}.fifo", Attributes={
        "FifoQueue": "true"})["QueueUrl"]
    sent = [f"m{i}" for i in range(300)]

    def sender() -> None:
        for start in range(0, len(sent), 10):
            patched_sqs.send_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "MessageBody": body, "MessageGroupId": body,
                 "MessageDeduplicationId": body}
                for i, body in enumerate(sent[start:start + 10])])

    thread = threading.Thread(target=sender)
    thread.start()
    got: list[str] = []
    while True:
        messages = patched_sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                               VisibilityTimeout=60).get("Messages", [])
        for message in messages:
            got.append(message["Body"])
            patched_sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        if not messages and not thread.is_alive():
            break
    assert sorted(got) == sorted(sent)


def test_a_message_past_its_retention_is_not_delivered(patched_sqs: Any) -> None:
    from moto.sqs.models import sqs_backends

    name = f"old-{uuid.uuid4().hex[:8]}"
    url = patched_sqs.create_queue(QueueName=name, Attributes={
        "MessageRetentionPeriod": "60"})["QueueUrl"]
    patched_sqs.send_message(QueueUrl=url, MessageBody="fresh")
    backend = sqs_backends[ACCOUNT]["us-east-1"]
    message = backend.get_queue(name)._messages[0]
    assert backend.is_message_valid_based_on_retention_period(name, message)
    message.sent_timestamp -= 61_000
    assert not backend.is_message_valid_based_on_retention_period(name, message)


def test_stream_iterators_are_forgotten_once_followed(table: tuple[object, str]) -> None:
    from moto.dynamodbstreams.models import dynamodbstreams_backends

    from cadenza.local.fidelity import apply_embedded_moto_patches

    apply_embedded_moto_patches()
    client, name = table
    stream = client.describe_table(TableName=name)["Table"]["LatestStreamArn"]  # type: ignore
    streams = boto3.client("dynamodbstreams", endpoint_url=client.meta.endpoint_url,  # type: ignore
                           region_name="us-east-1")
    shard = streams.describe_stream(StreamArn=stream)["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(StreamArn=stream, ShardId=shard["ShardId"],
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    held = dynamodbstreams_backends[ACCOUNT]["us-east-1"].shard_iterators
    seen = []
    for index in range(30):
        client.put_item(TableName=name, Item=item("k", f"{index:03d}"))  # type: ignore
        page = streams.get_records(ShardIterator=iterator)
        again = streams.get_records(ShardIterator=iterator)  # a retried call still works
        assert again["Records"] == page["Records"]
        seen += [r["dynamodb"]["Keys"]["sk"]["S"] for r in page["Records"]]
        iterator = page["NextShardIterator"]
        assert len([key for key in held if key.startswith(stream)]) <= 3  # stock: 2 per round
    assert seen == [f"{index:03d}" for index in range(30)]


def test_a_long_poll_wakes_when_a_delayed_message_becomes_visible(patched_sqs: Any) -> None:
    """Not a second later (timers): the wait ends at the message's moment, not the poll's."""
    from moto.sqs.models import sqs_backends

    name = f"wake-{uuid.uuid4().hex[:8]}"
    url = patched_sqs.create_queue(QueueName=name)["QueueUrl"]
    patched_sqs.send_message(QueueUrl=url, MessageBody="timer", DelaySeconds=2)
    queue = sqs_backends[ACCOUNT]["us-east-1"].get_queue(name)
    waits: list[float] = []

    class Recording(threading.Condition):
        def wait_for(self, predicate: Any, timeout: float | None = None) -> Any:
            waits.append(float(timeout or 0))
            return predicate()

    queue._messages_lock = Recording()
    queue.wait_for_messages(1)
    queue.wait_for_messages(20)
    assert waits[0] == 1  # nothing visible sooner than the poll's own second
    assert 0 < waits[1] <= 2.01  # the delayed message's moment, not the 20 s


# --------------------------------------------------------------------------------------------
# DynamoDB answers written with json.dumps (cadenza.local.fidelity.apply_dynamodb_fast_responses)


@pytest.fixture
def stock_and_fast(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, Any]]:
    """Every DynamoDB answer of the test serialized both ways: (stock moto's, the patch's)."""
    from moto.dynamodb.responses import DynamoResult

    from cadenza.local.fidelity import apply_dynamodb_fast_responses

    apply_dynamodb_fast_responses()
    fast = DynamoResult.execute_result
    stock = fast.__wrapped__  # type: ignore[attr-defined]
    pairs: list[tuple[Any, Any]] = []

    def both(self: Any, context: Any) -> Any:
        answer = fast(self, context)
        pairs.append((stock(self, context), answer))
        return answer

    monkeypatch.setattr(DynamoResult, "execute_result", both)
    return pairs


def test_dynamodb_answers_are_the_ones_stock_moto_writes(
    table: tuple[object, str], stock_and_fast: list[tuple[Any, Any]]
) -> None:
    import json

    client: Any
    client, name = table
    rich = {"b": {"B": b"\x00\xff"}, "m": {"M": {"l": {"L": [{"N": "1.5"}, {"BOOL": True},
                                                            {"NULL": True}]}}},
            "ss": {"SS": ["a", "b"]}, "bs": {"BS": [b"q", b"r"]}, "ns": {"NS": ["1", "2"]}}
    for sk in ("1", "2", "3"):
        client.put_item(TableName=name, Item={**item("a", sk), **rich})
    answer = client.query(TableName=name, KeyConditionExpression="pk = :pk",
                          ExpressionAttributeValues={":pk": {"S": "a"}}, Limit=2,
                          ReturnConsumedCapacity="TOTAL")
    assert answer["Items"][0]["b"] == {"B": b"\x00\xff"}
    assert answer["Items"][0]["bs"] == {"BS": [b"q", b"r"]}
    client.get_item(TableName=name, Key=item("a", "1"))
    client.get_item(TableName=name, Key=item("nobody", "1"))
    client.update_item(TableName=name, Key=item("a", "1"), UpdateExpression="SET z = :z",
                       ExpressionAttributeValues={":z": {"S": "q"}}, ReturnValues="ALL_NEW")
    client.put_item(TableName=name, Item=item("a", "2"), ReturnValues="ALL_OLD")
    client.batch_get_item(RequestItems={name: {"Keys": [item("a", "3")]}})
    client.scan(TableName=name, Limit=1)
    client.describe_table(TableName=name)  # a timestamp: stock moto's serializer writes it
    with pytest.raises(ClientError):
        client.put_item(TableName=name, Item=item("a", "1"),
                        ConditionExpression="attribute_not_exists(pk)")
    assert len(stock_and_fast) >= 8
    for stock, fast in stock_and_fast:
        assert fast[0] == stock[0]
        assert json.loads(fast[2]) == json.loads(stock[2])


def test_fifo_groups_in_flight_hold_back_their_next_message_under_concurrent_receives(
    patched_sqs: Any,
) -> None:
    url = patched_sqs.create_queue(QueueName=f"groups-{uuid.uuid4().hex[:8]}.fifo", Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    for group in range(20):
        for order in range(2):
            patched_sqs.send_message(QueueUrl=url, MessageBody=f"{group}-{order}",
                                     MessageGroupId=f"g{group}")
    received: list[str] = []
    failures: list[BaseException] = []

    def receive() -> None:
        try:
            for _ in range(5):
                answer = patched_sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1,
                                                     VisibilityTimeout=60)
                received.extend(m["Body"] for m in answer.get("Messages", []))
        except BaseException as error:  # reported below
            failures.append(error)

    threads = [threading.Thread(target=receive) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    # A group's second message waits while its first is in flight: only first messages came.
    assert sorted(received) == sorted(f"{group}-0" for group in range(20))
