"""Visibility records (listing runs by a query), written from the history stream.

Written off the commit path on purpose: a commit stays one PutItem, and listing is eventually
consistent, as in Cadence. The layout (docs/design.md, "Visibility"; template.yaml):

* the run's record, pk = "<domain>#<workflow id>", sk = run id, in the sparse indexes
  ``by_start`` (list_pk = "<domain>#OPEN|CLOSED"), ``by_type``
  (type_pk = "<domain>#<type>#OPEN|CLOSED") and, once closed, ``by_close_status``
  (close_pk = "<domain>#<close status>"), all ranged by start_time;
* one index item per search attribute value (a list: per element), pk = "sa:<domain>#<workflow
  id>", sk = "<run id>#<digest of the value>": a copy of the record with attr_pk =
  "<domain>#<attribute key>", in ``by_attribute``.

A listing is one Query (two, merged by start time, for a workflow type or a domain with no
status) on the most selective key :func:`choose_index` names; the other predicates are a filter
expression. Pages continue from an opaque token bound to the domain and query. Never a Scan.

Writes are order-independent: every item carries the run's version (one per commit), and a
record older than the one stored changes nothing, so an open record never overwrites a closed
one and a late upsert never reopens it. Index items of values a run no longer has become
tombstones at the newer version, so a slow older writer cannot bring them back.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from ..core import RunState
from ..core.records import VisibilityRecord
from ..core.visibility import (
    CLOSED,
    OPEN,
    IndexChoice,
    IndexKind,
    TimeRange,
    VisibilityQuery,
    attribute_key,
    attribute_keys,
    choose_index,
)
from ..error import BadRequestError, CommitConflictError
from .settings import AwsSettings
from .store import run_key
from .tasklists import MAX_POOL_CONNECTIONS

#: Each listing index (all ordered by start_time) and the attribute it is partitioned by.
INDEXES = {
    "by_start": "list_pk",
    "by_type": "type_pk",
    "by_close_status": "close_pk",
    "by_attribute": "attr_pk",
}
#: Queries one page may send per stream it reads, at most (a filtered page may end short).
REQUESTS_PER_STREAM = 3
_TOKEN_VERSION = 1
#: Attributes of a record that its search attribute index items copy.
_RECORD_FIELDS = ("domain", "workflow_id", "run_id", "workflow_type", "task_list", "status",
                  "start_time", "close_time", "close_status", "history_length", "version",
                  "search_attributes", "memo", "sa_keys")


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _attribute_pk(domain: str, key: str) -> str:
    return f"{domain}#{key}"


def _index_item_key(domain: str, workflow_id: str, run_id: str, key: str) -> dict[str, Any]:
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return {"pk": _s(f"sa:{run_key(domain, workflow_id)}"), "sk": _s(f"{run_id}#{digest}")}


@dataclass(frozen=True, slots=True)
class _Stream:
    """One Query: a partition of an index (or of the table) and its start time range."""

    index: str | None  # None: the table itself (a workflow id's runs)
    partition: str  # attribute name
    value: str
    run_id: str | None = None  # with the table: one run

    @property
    def key_names(self) -> tuple[str, ...]:
        """What an ExclusiveStartKey of this stream holds."""
        if self.index is None:
            return ("pk", "sk")
        return (self.partition, "start_time", "pk", "sk")


@dataclass
class _Reading:
    """A stream while a page is read: what it fetched and where it stands."""

    stream: _Stream
    #: Start key of the next Query; None is the partition's beginning.
    position: dict[str, Any] | None
    exhausted: bool = False
    #: Matches fetched and not yet on the page, with the number of the fetch that got them.
    buffer: deque[tuple[dict[str, Any], int]] = field(default_factory=deque)
    #: The start key each fetch of this page began from.
    starts: list[dict[str, Any] | None] = field(default_factory=list)
    last_taken: tuple[dict[str, Any], int] | None = None

    def cursor(self) -> dict[str, Any] | bool | None:
        """Where the next page continues: a start key, None (the beginning) or False (done)."""
        if self.buffer:
            _, fetch = self.buffer[0]
            if self.last_taken is not None and self.last_taken[1] == fetch:
                return {name: self.last_taken[0][name] for name in self.stream.key_names}
            return self.starts[fetch]
        if self.exhausted:
            return False
        return self.position


class _Expression:
    """Placeholders of one request's expressions: every name and value goes through them."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def name(self, attribute: str) -> str:
        for placeholder, known in self.names.items():
            if known == attribute:
                return placeholder
        placeholder = f"#a{len(self.names)}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, typed: dict[str, Any]) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = typed
        return placeholder

    def range(self, attribute: str, bounds: TimeRange) -> str | None:
        if not bounds.bounded:
            return None
        name = self.name(attribute)
        if bounds.earliest is not None and bounds.latest is not None:
            return (f"{name} BETWEEN {self.value(_n(bounds.earliest))} "
                    f"AND {self.value(_n(bounds.latest))}")
        if bounds.earliest is not None:
            return f"{name} >= {self.value(_n(bounds.earliest))}"
        assert bounds.latest is not None
        return f"{name} <= {self.value(_n(bounds.latest))}"

    def request(self) -> dict[str, Any]:
        request: dict[str, Any] = {}
        if self.names:
            request["ExpressionAttributeNames"] = dict(self.names)
        if self.values:
            request["ExpressionAttributeValues"] = dict(self.values)
        return request


def dynamodb_client(settings: AwsSettings, *, session: boto3.Session | None = None) -> Any:
    """A DynamoDB client for ``settings`` (thread-safe once made; service/factory.py makes one
    per process and shares it)."""
    return (session.client if session is not None else boto3.client)(
        "dynamodb",
        region_name=settings.region,
        endpoint_url=settings.endpoint_url,
        config=Config(retries={"max_attempts": 5, "mode": "standard"},
                      max_pool_connections=MAX_POOL_CONNECTIONS),
    )


class DynamoVisibilityStore:
    def __init__(self, settings: AwsSettings, *, client: Any = None) -> None:
        self.table = settings.visibility_table
        self.client: Any = client or dynamodb_client(settings)
        #: A closed run's record and index items expire this long after its close (TTL).
        self.retention_seconds = (None if settings.retention_days is None
                                  else settings.retention_days * 86_400)

    # --- writes ---------------------------------------------------------------------------

    def record(self, state: RunState) -> None:
        """Write the run's record as of ``state``, and its search attribute index items.

        Reads the stored record first (half a read unit): a newer one wins and nothing is
        written; otherwise the record is put on the condition that it is still the one read,
        then each index item is put and each value the run no longer has is tombstoned, on the
        condition that the item is not newer. Safe to repeat (a stream retry is).
        """
        own = attribute_keys(state.search_attributes)
        key = {"pk": _s(run_key(state.domain, state.workflow_id)), "sk": _s(state.run_id)}
        record = _record_item(state, own)
        expiry = self._expiry(state)
        if expiry:
            record.update(expiry)
        for attempt in range(8):
            old = self.client.get_item(TableName=self.table, Key=key,
                                       ConsistentRead=attempt > 0).get("Item")
            if old is not None and _is_newer(old, state):
                return
            stale = (_string_set(old, "sa_keys") | _string_set(old, "stale_keys")) - own
            item = {**key, **record}
            if stale:
                item["stale_keys"] = {"SS": sorted(stale)}
            values: dict[str, Any] = {}
            if old is None:
                names = {"#pk": "pk"}
                condition = "attribute_not_exists(#pk)"
            elif "version" in old:
                names = {"#v": "version"}
                condition = "#v = :old"
                values[":old"] = old["version"]
            else:  # a record written before records had versions
                names = {"#pk": "pk", "#v": "version"}
                condition = "attribute_exists(#pk) AND attribute_not_exists(#v)"
            request: dict[str, Any] = {
                "TableName": self.table, "Item": item, "ConditionExpression": condition,
                "ExpressionAttributeNames": names,
            }
            if values:
                request["ExpressionAttributeValues"] = values
            try:
                self.client.put_item(**request)
            except ClientError as error:
                if _code(error) != "ConditionalCheckFailedException":
                    raise
                continue  # another writer came between the read and the put: read again
            break
        else:
            raise CommitConflictError("the visibility record kept changing; retry")
        copy = {name: record[name] for name in _RECORD_FIELDS if name in record}
        for value_key in sorted(own):
            self._put_index_item(state, value_key, {
                **copy, **expiry, "attr_pk": _s(_attribute_pk(state.domain, value_key)),
            })
        for value_key in sorted(stale):
            self._put_index_item(state, value_key, {"version": _n(state.version), **expiry})

    def _expiry(self, state: RunState) -> dict[str, Any]:
        """A closed run's TTL attribute (docs/design.md, "Retention"); nothing while open."""
        if self.retention_seconds is None or state.close_time is None:
            return {}
        return {"expires_at": _n(state.close_time // 1000 + self.retention_seconds)}

    def _put_index_item(self, state: RunState, value_key: str, body: dict[str, Any]) -> None:
        try:
            self.client.put_item(
                TableName=self.table,
                Item={**_index_item_key(state.domain, state.workflow_id, state.run_id,
                                        value_key), **body},
                ConditionExpression="attribute_not_exists(#pk) OR #v <= :v",
                ExpressionAttributeNames={"#pk": "pk", "#v": "version"},
                ExpressionAttributeValues={":v": _n(state.version)},
            )
        except ClientError as error:
            if _code(error) != "ConditionalCheckFailedException":
                raise
            # A newer record wrote this item: it stands.

    # --- reads ----------------------------------------------------------------------------

    def _merge(
        self, query: VisibilityQuery, choice: IndexChoice, readings: list[_Reading],
        page_size: int, *, had_token: bool,
    ) -> list[VisibilityRecord]:
        """Up to ``page_size`` matches, newest first across the streams (one stream: in its
        own order). A stream's next match is known once its buffer holds one or it is
        exhausted; the newest known head is taken only when every stream's is known."""
        page: list[VisibilityRecord] = []
        budget = REQUESTS_PER_STREAM * max(1, len(readings))
        while len(page) < page_size:
            unknown = [r for r in readings if not r.buffer and not r.exhausted]
            if unknown:
                if budget < len(unknown):
                    break
                for reading in unknown:
                    self._fetch(query, choice, reading, page_size - len(page),
                                had_token=had_token)
                    budget -= 1
                continue
            heads = [r for r in readings if r.buffer]
            if not heads:
                break
            best = max(heads, key=lambda r: int(r.buffer[0][0]["start_time"]["N"]))
            item, fetch = best.buffer.popleft()
            best.last_taken = (item, fetch)
            page.append(_record_of(item))
        return page

    def _fetch(
        self, query: VisibilityQuery, choice: IndexChoice, reading: _Reading, limit: int,
        *, had_token: bool,
    ) -> None:
        stream = reading.stream
        expression = _Expression()
        key = f"{expression.name(stream.partition)} = {expression.value(_s(stream.value))}"
        if stream.index is None:
            if stream.run_id is not None:
                key += f" AND {expression.name('sk')} = {expression.value(_s(stream.run_id))}"
        else:
            bounds = _start_bounds(query)
            ranged = expression.range("start_time", bounds)
            if ranged:
                key += f" AND {ranged}"
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": key,
            "ScanIndexForward": False,
            # One more than the page lacks: a partition that ends with the page says so (no
            # token for an empty last page); the extra match is read again by the next page.
            "Limit": max(1, limit) + 1,
        }
        if stream.index is not None:
            request["IndexName"] = stream.index
        condition = _filter(query, choice, stream, expression)
        if condition:
            request["FilterExpression"] = condition
        request.update(expression.request())
        if reading.position is not None:
            request["ExclusiveStartKey"] = reading.position
        try:
            answer = self.client.query(**request)
        except ClientError as error:
            if had_token and _code(error) == "ValidationException":
                raise BadRequestError("next_page_token is not valid for this listing",
                                      field="next_page_token") from error
            raise
        fetch = len(reading.starts)
        reading.starts.append(reading.position)
        reading.buffer.extend((item, fetch) for item in answer.get("Items", []))
        reading.position = answer.get("LastEvaluatedKey")
        reading.exhausted = reading.position is None

    # ``list`` comes last: below it, ``list[...]`` in an annotation would name the method.
    def list(
        self, domain: str, query: VisibilityQuery, *, page_size: int = 100,
        page_token: str | None = None,
    ) -> tuple[list[VisibilityRecord], str | None]:
        choice = choose_index(query)
        streams = _streams(domain, query, choice)
        digest = query.digest(domain)
        cursors = _decode_token(page_token, digest, streams, query)
        if query.nothing_matches:
            return [], None
        readings = [
            _Reading(stream, None, exhausted=True) if cursor is False
            else _Reading(stream, cursor if isinstance(cursor, dict) else None)
            for stream, cursor in zip(streams, cursors, strict=True)
        ]
        page = self._merge(query, choice, readings, page_size, had_token=bool(page_token))
        final = [reading.cursor() for reading in readings]
        if all(cursor is False for cursor in final):
            return page, None
        return page, _encode_token(digest, streams, final)

# --- building requests ------------------------------------------------------------------------


def _streams(domain: str, query: VisibilityQuery, choice: IndexChoice) -> list[_Stream]:
    status = query.effective_status
    closed = None if status is None else ("OPEN" if status == OPEN else "CLOSED")
    kind = choice.kind
    if kind is IndexKind.WORKFLOW_ID:
        assert query.workflow_id is not None
        return [_Stream(None, "pk", run_key(domain, query.workflow_id), query.run_id)]
    if kind is IndexKind.SEARCH_ATTRIBUTE:
        assert choice.attribute is not None
        value_key = attribute_key(*choice.attribute)
        assert value_key is not None
        return [_Stream("by_attribute", "attr_pk", _attribute_pk(domain, value_key))]
    if kind is IndexKind.WORKFLOW_TYPE:
        parts = [closed] if closed else ["OPEN", "CLOSED"]
        return [_Stream("by_type", "type_pk", f"{domain}#{query.workflow_type}#{part}")
                for part in parts]
    if kind is IndexKind.CLOSE_STATUS:
        return [_Stream("by_close_status", "close_pk", f"{domain}#{status}")]
    if kind is IndexKind.STATUS:
        return [_Stream("by_start", "list_pk", f"{domain}#{closed}")]
    return [_Stream("by_start", "list_pk", f"{domain}#{part}") for part in ("OPEN", "CLOSED")]


def _start_bounds(query: VisibilityQuery) -> TimeRange:
    """The start times a match can have: a run closes after it starts, so a close time bound
    from above bounds its start too."""
    return query.start_time.intersect(TimeRange(None, query.close_time.latest))


def _filter(
    query: VisibilityQuery, choice: IndexChoice, stream: _Stream, expression: _Expression
) -> str | None:
    """What the key of ``stream`` leaves to check."""
    kind = choice.kind
    parts: list[str] = []

    def equals(attribute: str, value: str) -> None:
        parts.append(f"{expression.name(attribute)} = {expression.value(_s(value))}")

    if stream.index is None:
        parts.append(f"attribute_exists({expression.name('list_pk')})")  # records only
    if query.workflow_type is not None and kind is not IndexKind.WORKFLOW_TYPE:
        equals("workflow_type", query.workflow_type)
    if query.workflow_id is not None and kind is not IndexKind.WORKFLOW_ID:
        equals("workflow_id", query.workflow_id)
    if query.run_id is not None and stream.run_id is None:
        equals("run_id", query.run_id)
    status = query.effective_status
    keyed = (kind in (IndexKind.CLOSE_STATUS, IndexKind.STATUS)
             or (kind is IndexKind.WORKFLOW_TYPE and status in (OPEN, CLOSED)))
    if status is not None and not keyed:
        if status == CLOSED:
            parts.append(f"{expression.name('status')} <> {expression.value(_s(OPEN))}")
        else:
            equals("status", status)
    if stream.index is None:
        ranged = expression.range("start_time", query.start_time)
        if ranged:
            parts.append(ranged)
    closing = expression.range("close_time", query.close_time)
    if closing:
        parts.append(closing)
    for name, value in query.search_attributes:
        if (name, value) == choice.attribute:
            continue
        value_key = attribute_key(name, value)
        assert value_key is not None
        parts.append(f"contains({expression.name('sa_keys')}, {expression.value(_s(value_key))})")
    return " AND ".join(parts) or None


# --- items ------------------------------------------------------------------------------------


def _record_item(state: RunState, own: frozenset[str]) -> dict[str, Any]:
    which = "OPEN" if state.is_open else "CLOSED"
    item: dict[str, Any] = {
        "domain": _s(state.domain),
        "workflow_id": _s(state.workflow_id),
        "run_id": _s(state.run_id),
        "workflow_type": _s(state.workflow_type),
        "task_list": _s(state.task_list),
        "status": _s(str(state.status)),
        "start_time": _n(state.start_time),
        "history_length": _n(state.next_event_id - 1),
        "version": _n(state.version),
        "list_pk": _s(f"{state.domain}#{which}"),
        "type_pk": _s(f"{state.domain}#{state.workflow_type}#{which}"),
    }
    if state.close_time is not None:
        item["close_time"] = _n(state.close_time)
    if not state.is_open:
        item["close_status"] = _s(str(state.status))
        item["close_pk"] = _s(f"{state.domain}#{state.status}")
    if state.search_attributes:
        item["search_attributes"] = _s(_json(state.search_attributes))
    if state.memo:
        item["memo"] = _s(_json(state.memo))
    if own:
        item["sa_keys"] = {"SS": sorted(own)}
    return item


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def _is_newer(old: dict[str, Any], state: RunState) -> bool:
    """Whether the stored record is newer than ``state``: then ``state`` changes nothing."""
    if "version" in old:
        return int(old["version"]["N"]) > state.version
    # Written before records had versions: a closed one is newer than any open state.
    return state.is_open and old.get("list_pk", {}).get("S", "").endswith("#CLOSED")


def _string_set(item: dict[str, Any] | None, name: str) -> frozenset[str]:
    if item is None or name not in item:
        return frozenset()
    return frozenset(item[name]["SS"])


def _record_of(item: dict[str, Any]) -> VisibilityRecord:
    def text(name: str) -> str | None:
        return item[name]["S"] if name in item else None

    def number(name: str) -> int | None:
        return int(item[name]["N"]) if name in item else None

    attributes, memo = text("search_attributes"), text("memo")
    start = number("start_time")
    assert start is not None
    return VisibilityRecord(
        domain=item["domain"]["S"],
        workflow_id=item["workflow_id"]["S"],
        run_id=item["run_id"]["S"],
        workflow_type=item["workflow_type"]["S"],
        task_list=item["task_list"]["S"],
        status=item["status"]["S"],
        start_time=start,
        close_time=number("close_time"),
        history_length=number("history_length"),
        close_status=text("close_status"),
        search_attributes=json.loads(attributes) if attributes else None,
        memo=json.loads(memo) if memo else None,
    )


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


# --- page tokens ------------------------------------------------------------------------------


def _encode_token(
    digest: str, streams: list[_Stream], cursors: list[dict[str, Any] | bool | None]
) -> str:
    """Per stream: null (from its start), 0 (done) or its start key without the parts the
    query fixes: [start_time, pk, sk] in an index, [sk] in the table."""
    encoded: list[Any] = []
    for stream, cursor in zip(streams, cursors, strict=True):
        if cursor is None:
            encoded.append(None)
        elif not isinstance(cursor, dict):
            encoded.append(0)
        elif stream.index is None:
            encoded.append([cursor["sk"]["S"]])
        else:
            encoded.append([int(cursor["start_time"]["N"]), cursor["pk"]["S"],
                            cursor["sk"]["S"]])
    body = json.dumps({"v": _TOKEN_VERSION, "q": digest, "c": encoded}, separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def _decode_token(
    token: str | None, digest: str, streams: list[_Stream], query: VisibilityQuery
) -> list[dict[str, Any] | bool | None]:
    """The start key of each stream a token names, if this very listing handed it out: the
    partition values come from the query, never from the token."""
    if not token:
        return [None] * len(streams)
    try:
        padded = token + "=" * (-len(token) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not (isinstance(value, dict) and set(value) == {"v", "q", "c"}
                and value["v"] == _TOKEN_VERSION and value["q"] == digest
                and isinstance(value["c"], list) and len(value["c"]) == len(streams)):
            raise ValueError
        cursors: list[dict[str, Any] | bool | None] = []
        bounds = _start_bounds(query)
        for stream, cursor in zip(streams, value["c"], strict=True):
            if cursor is None:
                cursors.append(None)
            elif cursor == 0 and type(cursor) is int:
                cursors.append(False)
            elif stream.index is None:
                if not (isinstance(cursor, list) and len(cursor) == 1
                        and isinstance(cursor[0], str) and cursor[0]):
                    raise ValueError
                cursors.append({"pk": _s(stream.value), "sk": _s(cursor[0])})
            else:
                if not (isinstance(cursor, list) and len(cursor) == 3
                        and type(cursor[0]) is int and bounds.contains(cursor[0])
                        and all(isinstance(part, str) and part for part in cursor[1:])):
                    raise ValueError
                cursors.append({stream.partition: _s(stream.value), "start_time": _n(cursor[0]),
                                "pk": _s(cursor[1]), "sk": _s(cursor[2])})
        if all(cursor is False for cursor in cursors):
            raise ValueError
    except ValueError as error:  # binascii.Error and JSONDecodeError are ValueErrors
        raise BadRequestError("next_page_token is not valid for this listing",
                              field="next_page_token") from error
    return cursors
