"""pynamodb models of the engine's two tables.

History table, one item per commit ("history batch"):
  pk = "<domain>#<workflow id>", sk = "<run id>#<first event id, 10 digits>".
  ``body`` holds the commit's events and the run's state after them, as zlib-compressed JSON
  (a commit then fits in one 1 KB write unit); the tasks the commit created are derived from
  its events, so the item is its own outbox. A commit is one PutItem conditioned on its key not
  existing: two writers that read the same state compute the same key and exactly one wins. The
  latest item of a run is its state.

Visibility table, written from the history stream (eventually consistent, as Cadence's
visibility is): a record per run, pk = "<domain>#<workflow id>", sk = run id, and an index item
per search attribute value, pk = "sa:<domain>#<workflow id>"; sparse GSIs by_start, by_type,
by_close_status and by_attribute, each ranged by start_time (:class:`VisibilityModel`;
aws/visibility.py reads and writes them). Query answers live there too, under
pk = "query#<query id>" (outside every index: they have none of the index keys).
"""

from __future__ import annotations

import threading
from typing import Any

from pynamodb.attributes import (
    BinaryAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.exceptions import PutError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from .tasklists import MAX_POOL_CONNECTIONS


class HistoryBatchModel(Model):
    class Meta:
        table_name = "cadenza-history"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    run_id = UnicodeAttribute()
    first_event_id = NumberAttribute()
    last_event_id = NumberAttribute()
    committed_at = NumberAttribute()
    body = BinaryAttribute(legacy_encoding=False)
    #: Random per write: tells a retry of this very write from another writer's equal commit.
    commit_id = UnicodeAttribute(null=True)
    #: Epoch seconds after which DynamoDB's TTL may delete the item (store.expires_at).
    expires_at = NumberAttribute(null=True)


class ByStartIndex(GlobalSecondaryIndex["VisibilityModel"]):
    """Open runs, or closed runs, of a domain: list_pk = "<domain>#OPEN" | "<domain>#CLOSED"."""

    class Meta:
        index_name = "by_start"
        projection = AllProjection()

    list_pk = UnicodeAttribute(hash_key=True)
    start_time = NumberAttribute(range_key=True)


class ByTypeIndex(GlobalSecondaryIndex["VisibilityModel"]):
    """Runs of a workflow type by status: type_pk = "<domain>#<type>#OPEN" | "...#CLOSED"."""

    class Meta:
        index_name = "by_type"
        projection = AllProjection()

    type_pk = UnicodeAttribute(hash_key=True)
    start_time = NumberAttribute(range_key=True)


class ByCloseStatusIndex(GlobalSecondaryIndex["VisibilityModel"]):
    """Closed runs by close status: close_pk = "<domain>#<close status>"."""

    class Meta:
        index_name = "by_close_status"
        projection = AllProjection()

    close_pk = UnicodeAttribute(hash_key=True)
    start_time = NumberAttribute(range_key=True)


class ByAttributeIndex(GlobalSecondaryIndex["VisibilityModel"]):
    """Search attribute index items: attr_pk = "<domain>#<attribute key>"."""

    class Meta:
        index_name = "by_attribute"
        projection = AllProjection()

    attr_pk = UnicodeAttribute(hash_key=True)
    start_time = NumberAttribute(range_key=True)


class VisibilityModel(Model):
    """A run's visibility record (its search attribute index items copy it, with attr_pk and
    without the other index keys; a tombstone keeps only pk, sk and version)."""

    class Meta:
        table_name = "cadenza-visibility"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    list_pk = UnicodeAttribute(null=True)
    type_pk = UnicodeAttribute(null=True)
    close_pk = UnicodeAttribute(null=True)  # closed runs only
    attr_pk = UnicodeAttribute(null=True)  # index items only
    start_time = NumberAttribute()
    close_time = NumberAttribute(null=True)
    domain = UnicodeAttribute()
    workflow_id = UnicodeAttribute()
    run_id = UnicodeAttribute()
    workflow_type = UnicodeAttribute()
    task_list = UnicodeAttribute()
    status = UnicodeAttribute()
    close_status = UnicodeAttribute(null=True)
    history_length = NumberAttribute(null=True)
    #: The run's version (one per commit): a record older than the stored one changes nothing.
    version = NumberAttribute(null=True)
    search_attributes = UnicodeAttribute(null=True)  # JSON
    memo = UnicodeAttribute(null=True)  # JSON
    #: Keys of the run's search attribute values, and of values it had and no longer has.
    sa_keys = UnicodeSetAttribute(null=True)
    stale_keys = UnicodeSetAttribute(null=True)
    by_start = ByStartIndex()
    by_type = ByTypeIndex()
    by_close_status = ByCloseStatusIndex()
    by_attribute = ByAttributeIndex()


class QueryAnswerModel(Model):
    """An answer to a query (see queries.py), in the visibility table under ``query#<id>``."""

    class Meta:
        table_name = "cadenza-visibility"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    answer = UnicodeAttribute(null=True)
    error = UnicodeAttribute(null=True)
    expires_at = NumberAttribute()



def is_condition_failure(error: Exception) -> bool:
    """A conditional write (or a transaction with one) that lost to an existing item."""
    code = getattr(error, "cause_response_code", None)
    return code in {"ConditionalCheckFailedException", "TransactionCanceledException"}


def create(item: HistoryBatchModel | VisibilityModel | QueryAnswerModel) -> bool:
    """Write ``item`` only if its key is new: the one conditional write every commit, visibility
    record and query answer is; False when an item with that key exists."""
    try:
        item.save(condition=type(item).pk.does_not_exist())
    except PutError as error:
        if is_condition_failure(error):
            return False
        raise
    return True


_connections = threading.Lock()
#: The one botocore DynamoDB client of this process per (region, endpoint), shared by every
#: bound model (botocore clients are thread-safe once made; making one takes 100-200 ms).
_clients: dict[tuple[str | None, str | None], Any] = {}


def bind(model: type[Model], *, table_name: str, region: str, host: str | None) -> Any:
    """A subclass of ``model`` bound to a physical table (names differ per stack), connected.

    pynamodb makes a model's client on its first request, and every thread that asks before the
    first one is made makes another (20 concurrent first requests made 20, 171 ms each); here
    the client is made now, once per process and endpoint, and shared by all bound models."""
    meta: dict[str, Any] = {"table_name": table_name, "region": region,
                            "max_pool_connections": MAX_POOL_CONNECTIONS}
    if host:
        meta["host"] = host
    namespace: dict[str, Any] = {"Meta": type("Meta", (), meta)}
    if issubclass(model, VisibilityModel):
        # An index object belongs to one model class.
        namespace.update(by_start=ByStartIndex(), by_type=ByTypeIndex(),
                         by_close_status=ByCloseStatusIndex(), by_attribute=ByAttributeIndex())
    bound: Any = type(f"Bound{model.__name__}", (model,), namespace)
    with _connections:
        connection = bound._get_connection().connection
        key = (connection.region, connection.host)
        client = _clients.get(key)
        if client is None:
            _clients[key] = connection.client  # made here, with pynamodb's own settings
        else:
            connection._client = client
    return bound
