"""The local stack's corrections of moto (cadenza.local.fidelity), tested against moto itself.

DynamoDB transactions: a failed TransactWriteItems writes nothing and undoes nothing another
request wrote meanwhile (moto alone restores whole-table copies, losing concurrent writes).
"""

from __future__ import annotations

import threading
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

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
