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

DynamoDB queries: AWS reads only the partition a Query names. moto (5.2) builds a list of every
item of the table and sorts it by primary key (``Table.all_items``) on each Query, then keeps
the items of the partition: the cost of a Query grows with the table (O(n log n) Python
comparisons), which made the local stack slower with every workflow it ran (a start -> result
went from 0.26 s to 5.6 s with 2,000 runs stored). The patch gives moto's own ``Table.query``
only the candidates of the partition instead (the items under the partition's hash key, or for
a global secondary index the items whose index hash key has the value asked for, without
sorting the table first); moto then sorts, pages, limits and filters those exactly as before.
moto's sort keys are total (a table's partition by range key; an index by its keys and then the
table's), so results and their order are the stock ones.

SQS receives: moto checks each message it hands out against the queue's retention period by
building the queue's whole attribute dictionary three times, and each build counts the queue's
messages three times over: receiving cost grew with the queue (thousands of delayed timer
messages wait in the timer queue). The patch reads the retention period itself.

SQS queue scans: moto finds a queue's visible messages, on every receive and again each time a
long poll is woken by a send, by asking each message the time twice, and finds the message a
receipt handle deletes by building a list of its handles for each message of the queue: both
grew with the messages waiting in the queue (a delete from a timer queue holding 2,000 delayed
timers cost 10 ms). Worse, its delete rebuilds the message list outside the queue's lock and
puts the copy in place: a message sent to the queue meanwhile was lost (a task lost, and its
redrive copy then deduplicated away). The patch reads the clock once per scan, compares handles
without building lists, and deletes in place under the queue's lock. A send also builds the
queue's attribute dictionary (for one flag), which counts the messages three ways; the counts
read the clock once each. And a long poll only looked again once a second, or when a message
was sent: a delayed message (a timer) or one whose visibility timeout ran out was received up
to a second after it became visible (timers fired up to 1.7 s late). The patch's long poll also
wakes when the next message becomes visible. A FIFO receive lists the message groups in flight
by iterating a set another request may change meanwhile (it then failed with a 500): the patch
lists them from a copy.

moto's request dispatch: every request lists the methods of its service's response class with
``inspect.getmembers``; the patch remembers the list per class (classes do not change).

moto's backend registry: every request looks its account's backends up several times, and each
look-up takes a process-wide lock and scans the list of services in use. The patch answers a
look-up of a backend that exists, and is registered, without them.

DynamoDB responses: moto (5.2) serializes every DynamoDB answer by walking the operation's
output shape in botocore's model, attribute by attribute: a third of the embedded moto's CPU
under load went into serializing Query results. A result that is already plain data in the
wire's form (strings, numbers, booleans, lists and maps, with binary values as bytes) is written
with ``json.dumps`` instead, binary values base64-encoded as the wire has them; anything else
(a timestamp, an error) takes moto's own serializer. The answers parse the same in botocore.

DynamoDB stream iterators: moto keeps every shard iterator it hands out, and a stream poller
asks for one several times a second; the patch forgets an iterator once the one GetRecords gave
out after it is used (a retried GetRecords of the newest iterator still works), so memory stays
flat in a long ``cadenza dev`` session.
"""

from __future__ import annotations

import base64
import functools
import inspect
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

DEDUPLICATION_INTERVAL_SECONDS = 300

_lock = threading.Lock()
#: The candidates of the Query this thread is running: (table, items) while moto's query runs.
_query_scope = threading.local()
#: Every DynamoDB write of the embedded moto (and each transaction as a whole) holds it.
_dynamodb_writes = threading.RLock()
#: 20-digit numbers like AWS's, increasing across restarts of this process as well.
_sequence = itertools.count(int(time.time() * 1_000_000) * 10_000)


def _once(patch: Callable[[], None]) -> Callable[[], None]:
    """``patch`` applied at most once per process (each correction is idempotent)."""
    done = False

    @functools.wraps(patch)
    def apply() -> None:
        nonlocal done
        with _lock:
            if not done:
                patch()
                done = True

    return apply


def apply_embedded_moto_patches() -> None:
    """Every correction of this module, in this process's moto (the embedded emulator's)."""
    apply_sqs_fifo_deduplication()
    apply_dynamodb_transactions()
    apply_dynamodb_queries()
    apply_dynamodb_stream_iterators()
    apply_sqs_receive_retention()
    apply_sqs_queue_scans()
    apply_backend_lookups()
    apply_action_lookups()
    apply_dynamodb_fast_responses()


@_once
def apply_sqs_fifo_deduplication() -> None:
    """Patch this process's moto: FIFO deduplication over five minutes, and sequence numbers
    (idempotent). Only for the embedded moto; an external emulator is used as it is."""
    from moto.sqs.models import Queue

    original = Queue.add_message

    def add_message(self: Any, message: Any) -> None:
        dedup_id = getattr(message, "deduplication_id", None)
        if getattr(self, "fifo_queue", False) and dedup_id:
            now = time.monotonic()
            with _lock:
                # Ids in acceptance order beside their times: expired ones leave from the
                # front, so a send costs O(1) however many ids the interval holds.
                seen: dict[str, float] = self.__dict__.setdefault("_cadenza_dedup", {})
                order: deque[tuple[float, str]] = self.__dict__.setdefault(
                    "_cadenza_dedup_order", deque())
                while order and now - order[0][0] >= DEDUPLICATION_INTERVAL_SECONDS:
                    accepted, key = order.popleft()
                    if seen.get(key) == accepted:
                        del seen[key]
                if dedup_id in seen:
                    return
                seen[dedup_id] = now
                order.append((now, dedup_id))
        if getattr(self, "fifo_queue", False):
            with _lock:
                message.sequence_number = str(next(_sequence))
        original(self, message)

    Queue.add_message = add_message  # type: ignore[method-assign]


@_once
def apply_dynamodb_transactions() -> None:
    """Patch this process's moto: atomic, isolated TransactWriteItems without table copies
    (idempotent). Only for the embedded moto."""
    from moto.dynamodb import models

    backend = models.DynamoDBBackend
    for name in ("put_item", "update_item", "delete_item"):
        setattr(backend, name, _serialized(getattr(backend, name)))
    backend.transact_write_items = _transact_write_items  # type: ignore[method-assign]


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


@_once
def apply_dynamodb_queries() -> None:
    """Patch this process's moto: a Query examines the items of its partition, not the whole
    table (idempotent). Only for the embedded moto."""
    from moto.dynamodb.models.table import Table

    stock_query = Table.query
    stock_all_items = Table.all_items
    signature = inspect.signature(stock_query)

    @functools.wraps(stock_query)
    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        arguments = signature.bind(self, *args, **kwargs).arguments
        candidates = _query_candidates(
            self, arguments.get("hash_key"), arguments.get("index_name"),
            arguments.get("hash_key_conditions"))
        if candidates is None:
            return stock_query(self, *args, **kwargs)
        outer = getattr(_query_scope, "current", None)
        _query_scope.current = (self, candidates)
        try:
            return stock_query(self, *args, **kwargs)
        finally:
            _query_scope.current = outer

    @functools.wraps(stock_all_items)
    def all_items(self: Any) -> Any:
        current = getattr(_query_scope, "current", None)
        if current is not None and current[0] is self:
            return list(current[1])
        return stock_all_items(self)

    Table.query = query  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]


def _partition_items(table: Any, hash_value: Any) -> list[Any]:
    """The items stored under ``hash_value`` (a DynamoType; dict lookup matches as ``==``)."""
    partition = table.items.get(hash_value)
    if partition is None:
        return []
    return _stored(partition)


def _stored(partition: Any) -> list[Any]:
    """A partition's items: a dict of them by range key, or the item itself (hash key only)."""
    return list(partition.values()) if isinstance(partition, dict) else [partition]


def _query_candidates(
    table: Any, hash_key: Any, index_name: str | None, hash_conditions: Any
) -> list[Any] | None:
    """A superset of the items moto's query would keep, drawn from one partition where the key
    allows (None: let moto look at every item, as it does unpatched).

    moto keeps, of the items ``all_items`` returns, those matching the key condition and sorts
    them by a key that orders them completely, so any superset of the matches, in any order,
    gives the same answer. No ``all_items`` sort of the whole table happens either way."""
    if not index_name:
        return None if hash_key is None else _partition_items(table, hash_key)
    conditions = list(hash_conditions or ())
    if not conditions:
        return None
    for name, value in conditions:
        if name == table.hash_key_attr:
            # A local secondary index (or a global one on the table's own hash key).
            return _partition_items(table, value)
    name, value = conditions[0]
    matches = []
    for partition in list(table.items.values()):
        for item in _stored(partition):
            attribute = item.attrs.get(name)
            if attribute is not None and attribute == value:
                matches.append(item)
    return matches


class _IteratorLink(str):
    """A used stream iterator's ARN, with the ARNs GetRecords gave out after it (one per call:
    more when the call was retried)."""

    successors: list[str]

    def __new__(cls, arn: str) -> _IteratorLink:
        link = super().__new__(cls, arn)
        link.successors = []
        return link


@_once
def apply_dynamodb_stream_iterators() -> None:
    """Patch this process's moto: a stream iterator is forgotten once its successor is used
    (idempotent). Only for the embedded moto."""
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    stock_get_records = DynamoDBStreamsBackend.get_records

    @functools.wraps(stock_get_records)
    def get_records(self: Any, iterator_arn: str, limit: int) -> Any:
        iterators: dict[str, Any] = self.shard_iterators
        current: Any = iterators.get(iterator_arn)
        previous = getattr(current, "_cadenza_previous", None)
        if previous is not None:
            # The iterator this one followed, and what retries of it gave out.
            for arn in [previous, *previous.successors]:
                if arn != iterator_arn:
                    iterators.pop(arn, None)
            current._cadenza_previous = None
        result = stock_get_records(self, iterator_arn, limit)
        following = iterators.get(result.get("NextShardIterator", ""))
        if following is not None:
            link = getattr(current, "_cadenza_link", None)
            if link is None:
                link = _IteratorLink(iterator_arn)
                if current is not None:
                    current._cadenza_link = link
            link.successors.append(following.arn)
            following._cadenza_previous = link
        return result

    DynamoDBStreamsBackend.get_records = get_records  # type: ignore[method-assign]


@_once
def apply_sqs_receive_retention() -> None:
    """Patch this process's moto: the retention check of a received message reads the queue's
    retention period, not all its attributes (idempotent). Only for the embedded moto."""
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    def is_message_valid_based_on_retention_period(
        self: Any, queue_name: str, message: Any
    ) -> bool:
        retention = int(self.get_queue(queue_name).message_retention_period)
        return bool(retention + message.sent_timestamp / 1000 > unix_time())

    SQSBackend.is_message_valid_based_on_retention_period = (  # type: ignore[method-assign]
        is_message_valid_based_on_retention_period)


@_once
def apply_backend_lookups() -> None:
    """Patch this process's moto: looking up an account's backends that exist takes no lock
    (idempotent). Only for the embedded moto."""
    from moto.core.base_backend import BackendDict

    stock_getitem = BackendDict.__getitem__
    registry: list[Any] = BackendDict._instances  # type: ignore[misc]

    @functools.wraps(stock_getitem)
    def getitem(self: Any, account_id: str) -> Any:
        if dict.__contains__(self, account_id) and any(
                registered is self for registered in registry):
            return dict.__getitem__(self, account_id)
        return stock_getitem(self, account_id)

    BackendDict.__getitem__ = getitem  # type: ignore[method-assign,assignment]


@_once
def apply_sqs_queue_scans() -> None:
    """Patch this process's moto: one clock reading per scan of a queue, handle comparisons
    without lists, and deletes that never lose a concurrent send (idempotent). Only for the
    embedded moto."""
    from moto.core.utils import unix_time_millis
    from moto.sqs.exceptions import ReceiptHandleIsInvalid
    from moto.sqs.models import Message, Queue

    def messages(self: Any) -> list[Any]:
        now = unix_time_millis()
        return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]

    def had_receipt_handle(self: Any, receipt_handle: str) -> bool:
        return bool(receipt_handle == self.receipt_handle
                    or receipt_handle in self._old_receipt_handles)

    def delete_message(self: Any, receipt_handle: str) -> None:
        if receipt_handle in self.deleted_messages:
            return  # already deleted: AWS accepts the repeat
        with self._messages_lock:
            found = [m for m in self._messages if m.had_receipt_handle(receipt_handle)]
            if not found:
                raise ReceiptHandleIsInvalid()
            for message in found:
                self.pending_messages.discard(message)
                self.deleted_messages.update(message.all_receipt_handles)
            # In place, under the lock add_message takes: no send is lost.
            self._messages[:] = [m for m in self._messages if not any(
                m is gone for gone in found)]

    def delayed(self: Any) -> int:
        now = unix_time_millis()
        return sum(1 for m in self._messages if now < m.delayed_until)

    def not_visible(self: Any) -> int:
        now = unix_time_millis()
        return sum(1 for m in self._messages if not now > m.visible_at)

    def visible(self: Any) -> int:
        return len(self.messages)

    def pending_message_groups(self: Any) -> set[str]:
        # From a snapshot (list() of a set copies it without letting another thread in):
        # moto iterates the live set, which a concurrent receive or delete may change
        # ("Set changed size during iteration": the receive failed with a 500).
        return {m.group_id for m in list(self._pending_messages) if m.group_id is not None}

    def wait_for_messages(self: Any, timeout: int) -> None:
        with self._messages_lock:
            now = unix_time_millis()
            soonest = min((moment for m in self._messages
                           for moment in (m.delayed_until, m.visible_at) if moment > now),
                          default=None)
            if soonest is not None:
                # Just after the moment (visible means strictly later than visible_at).
                timeout = min(timeout, (soonest - now) / 1000 + 0.002)  # type: ignore
            self._messages_lock.wait_for(lambda: self.messages, timeout=timeout)

    delete_message.__wrapped__ = Queue.delete_message  # type: ignore[attr-defined]
    Queue.wait_for_messages = wait_for_messages  # type: ignore[method-assign]
    Queue.messages = property(messages)  # type: ignore[method-assign,assignment]
    for name, count in (("approximate_number_of_messages_delayed", delayed),
                        ("approximate_number_of_messages_not_visible", not_visible),
                        ("approximate_number_of_messages", visible)):
        setattr(Queue, name, property(count))
    Queue.pending_message_groups = property(  # type: ignore[method-assign,assignment]
        pending_message_groups)
    Message.had_receipt_handle = had_receipt_handle  # type: ignore[method-assign]
    Queue.delete_message = delete_message  # type: ignore[method-assign]


@_once
def apply_action_lookups() -> None:
    """Patch this process's moto: the methods of a response class are listed once per class
    (idempotent). Only for the embedded moto."""
    from moto.core import responses

    listed: dict[Any, list[str]] = {}
    stock = responses.method_names_from_class

    @functools.wraps(stock)
    def method_names_from_class(clazz: Any) -> list[str]:
        names = listed.get(clazz)
        if names is None:
            names = listed[clazz] = stock(clazz)
        return list(names)

    responses.method_names_from_class = method_names_from_class  # type: ignore


class _NotPlainJsonError(TypeError):
    """A value ``json.dumps`` cannot write the way the wire needs it (moto's serializer can)."""


def _wire_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    raise _NotPlainJsonError(type(value).__name__)


def dynamodb_wire_body(result: Any) -> str | None:
    """The JSON body of a DynamoDB answer written straight from moto's plain result, or None
    when the result holds something only moto's shape-driven serializer knows how to write."""
    try:
        return json.dumps(result, separators=(",", ":"), default=_wire_default,
                          allow_nan=False)
    except (_NotPlainJsonError, ValueError):
        return None


@_once
def apply_dynamodb_fast_responses() -> None:
    """Patch this process's moto: a DynamoDB answer that is plain data is written with
    ``json.dumps`` (idempotent). Only for the embedded moto."""
    from moto.dynamodb.responses import DynamoResult

    stock = DynamoResult.execute_result

    @functools.wraps(stock)
    def execute_result(self: Any, context: Any) -> Any:
        body = dynamodb_wire_body(self.result)
        if body is None:
            return stock(self, context)
        return 200, {"Content-Type": "application/x-amz-json-1.0"}, body

    DynamoResult.execute_result = execute_result  # type: ignore[method-assign]
