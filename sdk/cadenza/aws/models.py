"""pynamodb models of the engine's two tables.

History table, one item per commit ("history batch"):
  pk = "<domain>#<workflow id>", sk = "<run id>#<first event id, 10 digits>".
  ``body`` holds the commit's events and the run's state after them, as zlib-compressed JSON
  (a commit then fits in one 1 KB write unit); the tasks the commit created are derived from
  its events, so the item is its own outbox. A commit is one PutItem conditioned on its key not
  existing: two writers that read the same state compute the same key and exactly one wins. The
  latest item of a run is its state.

Visibility table, one item per run, written from the history stream (eventually consistent, as
Cadence's visibility is): pk = "<domain>#<workflow id>", sk = run id; GSI ``by_start`` on
(list_pk = "<domain>#OPEN" | "<domain>#CLOSED", start_time). Query answers live there too,
under pk = "query#<query id>" (outside the index: they have no list_pk).
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import BinaryAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model


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


class ByStartIndex(GlobalSecondaryIndex["VisibilityModel"]):
    class Meta:
        index_name = "by_start"
        projection = AllProjection()

    list_pk = UnicodeAttribute(hash_key=True)
    start_time = NumberAttribute(range_key=True)


class VisibilityModel(Model):
    class Meta:
        table_name = "cadenza-visibility"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    list_pk = UnicodeAttribute()
    start_time = NumberAttribute()
    close_time = NumberAttribute(null=True)
    domain = UnicodeAttribute()
    workflow_id = UnicodeAttribute()
    run_id = UnicodeAttribute()
    workflow_type = UnicodeAttribute()
    task_list = UnicodeAttribute()
    status = UnicodeAttribute()
    history_length = NumberAttribute(null=True)
    by_start = ByStartIndex()


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


def bind(model: type[Model], *, table_name: str, region: str, host: str | None) -> Any:
    """A subclass of ``model`` bound to a physical table (names differ per stack)."""
    meta: dict[str, Any] = {"table_name": table_name, "region": region}
    if host:
        meta["host"] = host
    namespace: dict[str, Any] = {"Meta": type("Meta", (), meta)}
    if issubclass(model, VisibilityModel):
        namespace["by_start"] = ByStartIndex()  # an index object belongs to one model class
    return type(f"Bound{model.__name__}", (model,), namespace)
