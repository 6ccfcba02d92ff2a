"""Where moto differs from AWS in a way the engine relies on, the local stack makes it agree.

SQS FIFO deduplication: AWS drops a message whose MessageDeduplicationId was accepted in the
last five minutes, even if that message was already received and deleted. moto (5.2) compares
only against messages still in the queue, so a redrive copy sent after the original was consumed
is delivered again. The engine stays correct either way (duplicates are recognised as stale),
but locally an activity would then run twice. This patch keeps accepted ids per queue for the
deduplication interval, as AWS does.

DynamoDB transactions: AWS applies a TransactWriteItems all or nothing and isolated from other
writes. moto (5.2) deep-copies every table the transaction touches, writes item by item, and on
a failed condition puts the copies back in place of the live tables: every write another request
made meanwhile is lost, stream records included. (Seen in
the suite: a reset's committed run vanished when another test's transaction lost a race.) The
patch checks every condition first and writes only when all hold, under one lock that every
DynamoDB write of the process takes, so nothing is copied and nothing else is undone.

SQS FIFO sequence numbers: AWS gives every FIFO message a SequenceNumber that grows within its
group, and Lambda passes it on in the event's record attributes. moto draws a random one, and
none at all under content-based deduplication; the patch numbers FIFO messages in send order.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

DEDUPLICATION_INTERVAL_SECONDS = 300

_lock = threading.Lock()
_patched = False
_dynamodb_patched = False
#: Every DynamoDB write of the embedded moto (and each transaction as a whole) holds it.
_dynamodb_writes = threading.RLock()
#: 20-digit numbers like AWS's, increasing across restarts of this process as well.
_sequence = itertools.count(int(time.time() * 1_000_000) * 10_000)


def apply_sqs_fifo_deduplication() -> None:
    """Patch this process's moto: FIFO deduplication over five minutes, and sequence numbers
    (idempotent). Only for the embedded moto; an external emulator is used as it is."""
    global _patched
    with _lock:
        if _patched:
            return
        from moto.sqs.models import Queue

        original = Queue.add_message

        def add_message(self: Any, message: Any) -> None:
            dedup_id = getattr(message, "deduplication_id", None)
            if getattr(self, "fifo_queue", False) and dedup_id:
                now = time.monotonic()
                with _lock:
                    seen: dict[str, float] = self.__dict__.setdefault("_cadenza_dedup", {})
                    for key in [k for k, t in seen.items()
                                if now - t >= DEDUPLICATION_INTERVAL_SECONDS]:
                        del seen[key]
                    if dedup_id in seen:
                        return
                    seen[dedup_id] = now
            if getattr(self, "fifo_queue", False):
                with _lock:
                    message.sequence_number = str(next(_sequence))
            original(self, message)

        Queue.add_message = add_message  # type: ignore[method-assign]
        _patched = True


def apply_dynamodb_transactions() -> None:
    """Patch this process's moto: atomic, isolated TransactWriteItems without table copies
    (idempotent). Only for the embedded moto."""
    global _dynamodb_patched
    with _lock:
        if _dynamodb_patched:
            return
        from moto.dynamodb import models

        backend = models.DynamoDBBackend
        for name in ("put_item", "update_item", "delete_item"):
            setattr(backend, name, _serialized(getattr(backend, name)))
        backend.transact_write_items = _transact_write_items  # type: ignore[method-assign]
        _dynamodb_patched = True


def _serialized(method: Any) -> Any:
    def write(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _dynamodb_writes:
            return method(self, *args, **kwargs)

    write.__name__ = method.__name__
    write.__doc__ = method.__doc__
    return write


def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    """All conditions first, then the writes; nothing is written when one fails."""
    from moto.dynamodb import models
    from moto.dynamodb.comparisons import get_filter_expression

    if len(transact_items) > 100:
        raise models.TooManyTransactionsException()
    with _dynamodb_writes:
        seen: set[tuple[str, str]] = set()
        planned: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        errors: list[tuple[Any, Any, Any]] = []
        for item in transact_items:
            if len(item) > 1:
                raise models.TransactWriteSingleOpException
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise models.MockValidationException("Unsupported transaction operation")
            table_name = op["TableName"]
            if op_type == "Put":
                table = self.get_table(table_name)
                attrs = op["Item"]
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            marker = (str(table_name), str(dict(sorted(key.items()))))
            if marker in seen:
                raise models.MultipleTransactionsException()
            seen.add(marker)
            current = self.get_item(table_name, key)
            condition = op.get("ConditionExpression")
            original: Any = None
            if condition is not None and not get_filter_expression(
                    condition, op.get("ExpressionAttributeNames"),
                    op.get("ExpressionAttributeValues")).expr(current):
                if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                    original = current.to_json()["Attributes"]
                errors.append(("ConditionalCheckFailed", "The conditional request failed",
                               original))
                continue
            errors.append((None, None, None))
            planned.append((op_type, op, key))
        if any(code is not None for code, _, _ in errors):
            raise models.TransactionCanceledException(errors)
        for op_type, op, key in planned:
            names = op.get("ExpressionAttributeNames")
            values = op.get("ExpressionAttributeValues")
            if op_type == "Put":
                self.put_item(op["TableName"], op["Item"], expression_attribute_names=names,
                              expression_attribute_values=values)
            elif op_type == "Delete":
                self.delete_item(op["TableName"], key, expression_attribute_names=names,
                                 expression_attribute_values=values)
            elif op_type == "Update":
                self.update_item(op["TableName"], key,
                                 update_expression=op["UpdateExpression"],
                                 expression_attribute_names=names,
                                 expression_attribute_values=values)
