"""In-memory adapters for the service's ports, with the semantics of the AWS ones.

The history store refuses a second commit of the same version exactly as the DynamoDB store's
conditional PutItem does (so concurrent writers race as they would on DynamoDB); task lists
deliver at least once and drop a duplicate of a task they accepted in the last five minutes, as
SQS FIFO queues do; timers wait on the virtual clock. The environment (``_env.py``) moves them.
"""

from __future__ import annotations

import base64
import heapq
import itertools
import json
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..core import HistoryEvent, RunState, TaskKind, Transition, from_millis, to_millis
from ..core.records import OutgoingMessage, QueryAnswer, StoredBatch, VisibilityRecord
from ..core.visibility import VisibilityQuery, choose_index
from ..error import BadRequestError, CommitConflictError

#: How long a FIFO queue remembers a task's deduplication id (SQS: five minutes).
DEDUP_WINDOW_MS = 5 * 60 * 1000


class VirtualClock:
    """The environment's time: moves only when the environment says so."""

    def __init__(self, start: datetime | None = None) -> None:
        moment = start or datetime.now(UTC)
        if moment.tzinfo is None:
            raise ValueError("start_time must be timezone-aware")
        self._ms = to_millis(moment)
        self._lock = threading.Lock()

    @property
    def ms(self) -> int:
        return self._ms

    def now(self) -> datetime:
        return from_millis(self._ms)

    def advance_to(self, ms: int) -> None:
        with self._lock:
            self._ms = max(self._ms, ms)


class InMemoryHistoryStore:
    """Commits per run in version order; a commit at a taken version is a conflict."""

    def __init__(self, on_commit: Callable[[StoredBatch], None] | None = None) -> None:
        self._runs: dict[tuple[str, str], dict[str, list[StoredBatch]]] = {}
        self._lock = threading.Lock()
        self._on_commit = on_commit

    def latest(self, domain: str, workflow_id: str, run_id: str = "") -> StoredBatch | None:
        with self._lock:
            runs = self._runs.get((domain, workflow_id))
            if not runs:
                return None
            batches = runs.get(run_id) if run_id else runs[max(runs)]
            return batches[-1] if batches else None

    def newest_workflow_id(self, domain: str) -> str | None:
        """The workflow id of the run started last in ``domain``."""
        with self._lock:
            starts = [(batches[0].state.start_time, batches[0].state.version, workflow_id)
                      for (d, workflow_id), runs in self._runs.items() if d == domain
                      for batches in runs.values() if batches]
        return max(starts)[2] if starts else None

    def read_batch(
        self, domain: str, workflow_id: str, run_id: str, version: int
    ) -> StoredBatch | None:
        with self._lock:
            batches = (self._runs.get((domain, workflow_id)) or {}).get(run_id) or []
            return batches[version - 1] if 0 < version <= len(batches) else None

    def history_pages(
        self, domain: str, workflow_id: str, run_id: str, *, page_size: int = 1000,
        page_token: str | None = None,
    ) -> tuple[list[HistoryEvent], str | None]:
        with self._lock:
            batches = list((self._runs.get((domain, workflow_id)) or {}).get(run_id) or [])
        start = _page_start(page_token, len(batches))
        events: list[HistoryEvent] = []
        for index in range(start, len(batches)):
            events.extend(batches[index].events)
            if len(events) >= page_size and index + 1 < len(batches):
                return events, str(index + 1)
        return events, None

    def events_after(
        self, domain: str, workflow_id: str, run_id: str, version: int, *,
        page_size: int = 1000,
    ) -> tuple[list[HistoryEvent], int, bool]:
        with self._lock:
            batches = list((self._runs.get((domain, workflow_id)) or {}).get(run_id) or [])
        events: list[HistoryEvent] = []
        for index in range(max(version, 0), len(batches)):
            events.extend(batches[index].events)
            if len(events) >= page_size and index + 1 < len(batches):
                return events, index + 1, True
        return events, max(version, len(batches)), False

    def append(self, transition: Transition, *, committed_at: int) -> StoredBatch:
        return self.append_together([transition], committed_at=committed_at)[0]

    def append_together(
        self, transitions: Sequence[Transition], *, committed_at: int
    ) -> list[StoredBatch]:
        stored = []
        with self._lock:
            for transition in transitions:
                state = transition.state
                batches = self._runs.get((state.domain, state.workflow_id), {}).get(
                    state.run_id, [])
                if state.version != len(batches) + 1:
                    raise CommitConflictError("the run changed since it was read")
            for transition in transitions:
                state = transition.state
                batch = StoredBatch(run_id=state.run_id, events=transition.events, state=state,
                                    tasks=transition.tasks, committed_at=committed_at)
                runs = self._runs.setdefault((state.domain, state.workflow_id), {})
                runs.setdefault(state.run_id, []).append(batch)
                stored.append(batch)
        if self._on_commit is not None:
            for batch in stored:
                self._on_commit(batch)
        return stored


def _page_start(token: str | None, count: int) -> int:
    if not token:
        return 0
    if not token.isdigit() or int(token) > count:
        raise BadRequestError("next_page_token is not valid", field="next_page_token")
    return int(token)


@dataclass(order=True)
class _Due:
    at: int
    seq: int
    message: OutgoingMessage = field(compare=False)
    #: Where a delayed task-list message goes back to; None for a timer.
    queue: tuple[str, str, TaskKind] | None = field(compare=False, default=None)


class InMemoryTaskQueues:
    """Task-list queues and the timer queue, in memory.

    ``notify`` is called (from any thread) whenever something becomes deliverable, so the
    environment wakes up.
    """

    def __init__(self, clock: VirtualClock, notify: Callable[[], None]) -> None:
        self._clock = clock
        self._notify = notify
        self._lock = threading.Lock()
        self._queues: dict[tuple[str, str, TaskKind], deque[OutgoingMessage]] = {}
        self._accepted: dict[str, int] = {}
        self._due: list[_Due] = []
        self._pending_timers: set[tuple[str, int]] = set()
        self._seq = itertools.count()

    # -- the port ------------------------------------------------------------------------------

    def retire_timers(self, prefixes: Sequence[str]) -> None:
        """Nothing to delete: virtual-time timers are heap entries; a moot one fires stale."""

    def send(self, messages: Sequence[OutgoingMessage]) -> None:
        now = self._clock.ms
        with self._lock:
            for message in messages:
                task = message.task
                if task.kind is TaskKind.TIMER:
                    fire_at = int(getattr(task, "fire_at", 0))
                    marker = (task.key, fire_at)
                    if marker in self._pending_timers:  # the redrive copy of a pending timer
                        continue
                    self._pending_timers.add(marker)
                    heapq.heappush(self._due, _Due(fire_at, next(self._seq), message))
                    continue
                seen = self._accepted.get(task.key)
                if seen is not None and now - seen < DEDUP_WINDOW_MS:
                    continue
                self._accepted[task.key] = now
                self._queue(task.domain, task.task_list, task.kind).append(message)
        self._notify()

    # -- the environment's side ----------------------------------------------------------------

    def _queue(self, domain: str, task_list: str, kind: TaskKind) -> deque[OutgoingMessage]:
        if kind is TaskKind.QUERY:
            kind = TaskKind.DECISION  # queries ride on the decision queue, as on SQS
        return self._queues.setdefault((domain, task_list, kind), deque())

    def take(self, served: Callable[[str], bool]) -> OutgoingMessage | None:
        """The next deliverable task-list message of a task list that has a worker."""
        with self._lock:
            for (_, task_list, _), queue in self._queues.items():
                if queue and served(task_list):
                    return queue.popleft()
        return None

    def retry_later(self, message: OutgoingMessage, delay_seconds: float) -> None:
        """Deliver a received message again after ``delay_seconds`` of virtual time."""
        task = message.task
        key = (task.domain, task.task_list,
               TaskKind.DECISION if task.kind is TaskKind.QUERY else task.kind)
        with self._lock:
            at = self._clock.ms + int(delay_seconds * 1000)
            heapq.heappush(self._due, _Due(at, next(self._seq), message, key))
        self._notify()

    def next_due(self) -> int | None:
        with self._lock:
            return self._due[0].at if self._due else None

    def pop_due(self) -> list[OutgoingMessage]:
        """Timers due now (in order) to fire; delayed messages due now go back to their queue."""
        now = self._clock.ms
        timers = []
        with self._lock:
            while self._due and self._due[0].at <= now:
                due = heapq.heappop(self._due)
                if due.queue is not None:
                    self._queues.setdefault(due.queue, deque()).append(due.message)
                else:
                    self._pending_timers.discard((due.message.task.key, due.at))
                    timers.append(due.message)
        return timers

    def has_ready(self, served: Callable[[str], bool]) -> bool:
        with self._lock:
            ready = any(queue and served(task_list)
                        for (_, task_list, _), queue in self._queues.items())
            return ready or bool(self._due and self._due[0].at <= self._clock.ms)



class InMemoryVisibility:
    """Visibility records by run, listed with the DynamoDB adapter's semantics: the same index
    choice refuses the same queries, a record older (by version) than the one kept changes
    nothing, listings are newest first and pages continue from a position (runs started
    between two pages do not shift the next one)."""

    def __init__(self) -> None:
        self._records: dict[tuple[str, str, str], tuple[int, VisibilityRecord]] = {}
        self._lock = threading.Lock()

    def record(self, state: RunState) -> None:
        record = VisibilityRecord(
            domain=state.domain, workflow_id=state.workflow_id, run_id=state.run_id,
            workflow_type=state.workflow_type, task_list=state.task_list,
            status=str(state.status), start_time=state.start_time, close_time=state.close_time,
            history_length=state.next_event_id - 1,
            close_status=None if state.is_open else str(state.status),
            search_attributes=dict(state.search_attributes) if state.search_attributes else None,
            memo=dict(state.memo) if state.memo else None,
        )
        key = (state.domain, state.workflow_id, state.run_id)
        with self._lock:
            kept = self._records.get(key)
            if kept is None or kept[0] <= state.version:
                self._records[key] = (state.version, record)

    def list(
        self, domain: str, query: VisibilityQuery, *, page_size: int = 100,
        page_token: str | None = None,
    ) -> tuple[list[VisibilityRecord], str | None]:
        choose_index(query)  # refuses what the DynamoDB indexes cannot serve
        digest = query.digest(domain)
        after = _visibility_position(page_token, digest)
        with self._lock:
            records = [r for _, r in self._records.values()
                       if r.domain == domain and query.matches(r)]
        records.sort(key=_newest_first, reverse=True)
        if after is not None:
            records = [r for r in records if _newest_first(r) < after]
        page = records[:page_size]
        if len(records) <= page_size:
            return page, None
        last = _newest_first(page[-1])
        token = base64.urlsafe_b64encode(json.dumps([digest, *last]).encode()).decode()
        return page, token


def _newest_first(record: VisibilityRecord) -> tuple[int, str, str]:
    return record.start_time, record.workflow_id, record.run_id


def _visibility_position(token: str | None, digest: str) -> tuple[int, str, str] | None:
    """The position a listing's page token continues after, if this listing handed it out."""
    if not token:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(token.encode()))
        if not (isinstance(value, list) and len(value) == 4 and value[0] == digest
                and type(value[1]) is int and isinstance(value[2], str)
                and isinstance(value[3], str)):
            raise ValueError
    except ValueError as error:  # binascii.Error and JSONDecodeError are ValueErrors
        raise BadRequestError("next_page_token is not valid for this listing",
                              field="next_page_token") from error
    return value[1], value[2], value[3]


class InMemoryQueryAnswers:
    def __init__(self) -> None:
        self._answers: dict[str, QueryAnswer] = {}
        self._lock = threading.Lock()

    def put(self, query_id: str, *, answer: str | None, error: str | None, now: float) -> bool:
        with self._lock:
            if query_id in self._answers:
                return False
            self._answers[query_id] = QueryAnswer(answer, error)
            return True

    def get(self, query_id: str) -> QueryAnswer | None:
        with self._lock:
            return self._answers.get(query_id)


__all__ = [
    "InMemoryHistoryStore",
    "InMemoryQueryAnswers",
    "InMemoryTaskQueues",
    "InMemoryVisibility",
    "VirtualClock",
]
