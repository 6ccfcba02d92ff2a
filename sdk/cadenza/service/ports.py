"""What the service needs from the outside world; AWS adapters in cadenza.aws provide it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..core import HistoryEvent, RunState, Transition
from ..core.records import OutgoingMessage, QueryAnswer, StoredBatch, VisibilityRecord


class HistoryStore(Protocol):
    def latest(self, domain: str, workflow_id: str, run_id: str = "") -> StoredBatch | None: ...

    def history_pages(
        self, domain: str, workflow_id: str, run_id: str, *, page_size: int = 1000,
        page_token: str | None = None,
    ) -> tuple[list[HistoryEvent], str | None]: ...

    def read_batch(
        self, domain: str, workflow_id: str, run_id: str, version: int
    ) -> StoredBatch | None: ...

    def append(self, transition: Transition, *, committed_at: int) -> StoredBatch: ...

    def append_together(
        self, transitions: Sequence[Transition], *, committed_at: int
    ) -> list[StoredBatch]: ...


class TaskQueues(Protocol):
    def send(self, messages: Sequence[OutgoingMessage]) -> None: ...


class QueryAnswers(Protocol):
    def put(self, query_id: str, *, answer: str | None, error: str | None, now: float) -> bool: ...

    def get(self, query_id: str) -> QueryAnswer | None: ...


class VisibilityStore(Protocol):
    def record(self, state: RunState) -> None: ...

    def list(
        self, domain: str, *, open_runs: bool, workflow_type: str | None = None,
        workflow_id: str | None = None, page_size: int = 100, page_token: str | None = None,
    ) -> tuple[list[VisibilityRecord], str | None]: ...
