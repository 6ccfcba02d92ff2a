"""What the service needs from the outside world; AWS adapters in cadenza.aws provide it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..core import HistoryEvent, RunState, Transition
from ..core.records import OutgoingMessage, QueryAnswer, StoredBatch, VisibilityRecord
from ..core.visibility import VisibilityQuery


class HistoryStore(Protocol):
    def latest(self, domain: str, workflow_id: str, run_id: str = "") -> StoredBatch | None: ...

    def history_pages(
        self, domain: str, workflow_id: str, run_id: str, *, page_size: int = 1000,
        page_token: str | None = None,
    ) -> tuple[list[HistoryEvent], str | None]: ...

    def events_after(
        self, domain: str, workflow_id: str, run_id: str, version: int, *,
        page_size: int = 1000,
    ) -> tuple[list[HistoryEvent], int, bool]:
        """Events of the run's commits after ``version``: (events, last version read, more)."""

    def read_batch(
        self, domain: str, workflow_id: str, run_id: str, version: int
    ) -> StoredBatch | None: ...

    def append(self, transition: Transition, *, committed_at: int) -> StoredBatch: ...

    def append_together(
        self, transitions: Sequence[Transition], *, committed_at: int
    ) -> list[StoredBatch]: ...


class TaskQueues(Protocol):
    def send(self, messages: Sequence[OutgoingMessage]) -> None: ...

    def retire_timers(self, prefixes: Sequence[str]) -> None:
        """Drop what is kept outside the queue for timers whose keys start with ``prefixes``
        (core.tasks.moot_timer_prefixes: their run or activity closed). Best effort: a moot
        timer that fires anyway is stale and dropped."""


class QueryAnswers(Protocol):
    def put(self, query_id: str, *, answer: str | None, error: str | None, now: float) -> bool: ...

    def get(self, query_id: str) -> QueryAnswer | None: ...


class VisibilityStore(Protocol):
    def record(self, state: RunState) -> None:
        """Write the run's visibility record as of ``state`` (at its start, after a search
        attribute upsert, at its close). Order-independent: a state older (by version) than
        the one recorded changes nothing, so an open record never overwrites a closed one."""

    def list(
        self, domain: str, query: VisibilityQuery, *, page_size: int = 100,
        page_token: str | None = None,
    ) -> tuple[list[VisibilityRecord], str | None]:
        """One page of the runs matching ``query``, newest first, and the token of the next
        page (None after the last). A page may be short, even empty, when predicates filter;
        the token continues. BadRequestError for a query no index serves or a token this
        listing did not hand out."""
