"""What a visibility listing asks for, and the rules every visibility adapter shares.

A listing query (parsed from the query language by :mod:`cadenza.service.visibility_query`) is a
:class:`VisibilityQuery`: equalities on a run's identity and type, a status, start and close
time ranges and search attribute equalities, all joined by AND. An adapter serves it from the
index :func:`choose_index` names (the same choice, and the same refusals, in DynamoDB and in
memory) and compares search attribute values through :func:`attribute_key`, so that ``5``
matches ``5.0`` and two spellings of one instant match.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from ..error import BadRequestError
from .records import VisibilityRecord

OPEN = "OPEN"
#: Any closed run, whatever its close status.
CLOSED = "CLOSED"
CLOSE_STATUSES = (
    "COMPLETED", "FAILED", "CANCELED", "TERMINATED", "CONTINUED_AS_NEW", "TIMED_OUT",
)

#: What a search attribute is compared with: a keyword or string (an ISO time is a string),
#: an int, a float or a bool.
SearchValue = str | int | float | bool

#: Values longer than this (encoded) are indexed by their digest: a DynamoDB key holds 2 KB.
_LONGEST_KEY = 512
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Epoch milliseconds from ``earliest`` to ``latest``, both included; None is unbounded."""

    earliest: int | None = None
    latest: int | None = None

    @property
    def bounded(self) -> bool:
        return self.earliest is not None or self.latest is not None

    @property
    def empty(self) -> bool:
        return (self.earliest is not None and self.latest is not None
                and self.earliest > self.latest)

    def contains(self, millis: int | None) -> bool:
        if millis is None:
            return not self.bounded
        return ((self.earliest is None or millis >= self.earliest)
                and (self.latest is None or millis <= self.latest))

    def intersect(self, other: TimeRange) -> TimeRange:
        earliest = [v for v in (self.earliest, other.earliest) if v is not None]
        latest = [v for v in (self.latest, other.latest) if v is not None]
        return TimeRange(max(earliest) if earliest else None, min(latest) if latest else None)


@dataclass(frozen=True, slots=True)
class VisibilityQuery:
    """Runs of a domain that satisfy every field set here (an empty query lists them all)."""

    workflow_type: str | None = None
    workflow_id: str | None = None
    run_id: str | None = None
    #: OPEN, CLOSED (any close status) or one close status; None for any run.
    status: str | None = None
    start_time: TimeRange = TimeRange()
    #: A bounded close time range only matches closed runs.
    close_time: TimeRange = TimeRange()
    #: (name, value) equalities; a run whose attribute is a list matches each of its elements.
    search_attributes: tuple[tuple[str, SearchValue], ...] = ()

    def __post_init__(self) -> None:
        if self.status is not None and self.status not in (OPEN, CLOSED, *CLOSE_STATUSES):
            raise ValueError(f"unknown status {self.status!r}")

    @property
    def effective_status(self) -> str | None:
        """The status, CLOSED when only a close time range says so."""
        if self.status is None and self.close_time.bounded:
            return CLOSED
        return self.status

    @property
    def nothing_matches(self) -> bool:
        """Whether the time ranges exclude every run (no index needs reading)."""
        return self.start_time.empty or self.close_time.empty

    def admits_status(self, status: str) -> bool:
        wanted = self.effective_status
        if wanted is None:
            return True
        if wanted == CLOSED:
            return status != OPEN
        return status == wanted

    def matches(self, record: VisibilityRecord) -> bool:
        if self.workflow_type is not None and record.workflow_type != self.workflow_type:
            return False
        if self.workflow_id is not None and record.workflow_id != self.workflow_id:
            return False
        if self.run_id is not None and record.run_id != self.run_id:
            return False
        if not self.admits_status(record.status):
            return False
        if not self.start_time.contains(record.start_time):
            return False
        if self.close_time.bounded and not self.close_time.contains(record.close_time):
            return False
        if self.search_attributes:
            keys = attribute_keys(record.search_attributes)
            return all(attribute_key(name, value) in keys
                       for name, value in self.search_attributes)
        return True

    def digest(self, domain: str) -> str:
        """Names this query of this domain: a page token is only valid for the listing that
        handed it out."""
        return hashlib.sha256(f"{domain}\x00{self!r}".encode()).hexdigest()[:16]


class IndexKind(StrEnum):
    """Where a listing is read from, most selective first."""

    #: The runs of one workflow id (the visibility table's own partition).
    WORKFLOW_ID = "workflow_id"
    #: Runs carrying one search attribute value.
    SEARCH_ATTRIBUTE = "search_attribute"
    #: Runs of one workflow type, open or closed.
    WORKFLOW_TYPE = "workflow_type"
    #: Closed runs of one close status.
    CLOSE_STATUS = "close_status"
    #: Open runs, or closed runs.
    STATUS = "status"
    #: Every run of the domain (open and closed merged by start time): time ranges only.
    DOMAIN = "domain"


@dataclass(frozen=True, slots=True)
class IndexChoice:
    kind: IndexKind
    #: For SEARCH_ATTRIBUTE: the equality whose value is the key.
    attribute: tuple[str, SearchValue] | None = None


def choose_index(query: VisibilityQuery) -> IndexChoice:
    """The index that serves ``query`` with the fewest reads; the other predicates filter.

    Order: workflow id, a search attribute value (not a bool), workflow type, close status, a
    bool search attribute, open/closed, the whole domain. A query whose only predicate besides
    times is a run id is refused: no index has run ids, and the domain would be read whole.
    """
    if query.workflow_id is not None:
        return IndexChoice(IndexKind.WORKFLOW_ID)
    indexable = [(n, v) for n, v in query.search_attributes if attribute_key(n, v) is not None]
    if len(indexable) != len(query.search_attributes):
        name = next(n for n, v in query.search_attributes if attribute_key(n, v) is None)
        raise BadRequestError(f"search attribute {name} cannot be compared with that value",
                              field="query")
    selective = [(n, v) for n, v in indexable if not isinstance(v, bool)]
    if selective:
        return IndexChoice(IndexKind.SEARCH_ATTRIBUTE, selective[0])
    if query.workflow_type is not None:
        return IndexChoice(IndexKind.WORKFLOW_TYPE)
    status = query.effective_status
    if status is not None and status not in (OPEN, CLOSED):
        return IndexChoice(IndexKind.CLOSE_STATUS)
    if indexable:
        return IndexChoice(IndexKind.SEARCH_ATTRIBUTE, indexable[0])
    if query.run_id is not None:
        raise BadRequestError(
            "RunID alone cannot be served by an index (no index has run ids): add "
            "WorkflowID = '...', or another indexed field (WorkflowType, a search attribute)",
            field="query")
    if status is not None:
        return IndexChoice(IndexKind.STATUS)
    return IndexChoice(IndexKind.DOMAIN)


# --- search attribute values ---------------------------------------------------------------


def iso_micros(text: str) -> int | None:
    """Microseconds since the epoch of an ISO 8601 time (UTC when it has no offset)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)


def attribute_key(name: str, value: Any) -> str | None:
    """The text a search attribute value is indexed and compared by; None if not indexable.

    Numbers compare by value (``5 == 5.0``), a string that is an ISO date and time by its
    instant, anything else exactly. Long values are named by their digest.
    """
    tagged: tuple[str, str | bool]
    if isinstance(value, bool):
        tagged = ("b", value)
    elif isinstance(value, int):
        tagged = ("n", str(value))
    elif isinstance(value, float):
        if not math.isfinite(value):
            return None
        integral = value.is_integer() and abs(value) < 2**63
        tagged = ("n", str(int(value)) if integral else repr(value))
    elif isinstance(value, str):
        micros = iso_micros(value) if _DATETIME.match(value) else None
        tagged = ("t", str(micros)) if micros is not None else ("s", value)
    else:
        return None
    text = json.dumps([name, *tagged], ensure_ascii=False, separators=(",", ":"))
    if len(text.encode()) > _LONGEST_KEY:
        return "#" + hashlib.sha256(text.encode()).hexdigest()
    return text


def attribute_keys(search_attributes: Mapping[str, Any] | None) -> frozenset[str]:
    """Every key a run's search attributes are found by (a list: one per element)."""
    keys: set[str] = set()
    for name, value in (search_attributes or {}).items():
        values: Iterable[Any] = value if isinstance(value, list | tuple) else (value,)
        for element in values:
            key = attribute_key(name, element)
            if key is not None:
                keys.add(key)
    return frozenset(keys)


__all__ = [
    "CLOSED",
    "CLOSE_STATUSES",
    "OPEN",
    "IndexChoice",
    "IndexKind",
    "SearchValue",
    "TimeRange",
    "VisibilityQuery",
    "attribute_key",
    "attribute_keys",
    "choose_index",
    "iso_micros",
]
