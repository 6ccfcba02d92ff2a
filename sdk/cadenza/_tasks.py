"""Processing one task-list message: the code path shared by polling workers and Lambda workers.

A decision message -> load history, drop it if the task is no longer pending, replay the
workflow, complete (or fail) the decision task. An activity message -> run the activity,
complete or fail it. The answer says whether the message is finished (delete it) or should come
back later (a retry with backoff).
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import traceback
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol, TypeVar

from ._activity_executor import ActivityTaskInput, execute_activity_task, run_local_activity
from .core import (
    CLOSE_EVENTS,
    Decision,
    DecisionType,
    EventType,
    HistoryEvent,
    from_millis,
    to_millis,
)
from .core.records import (
    ActivityCompletion,
    ActivityStart,
    DecisionCompletion,
    EagerActivity,
    HandedDecision,
    HistorySince,
    TaskMessage,
)
from .core.tasks import ActivityTask, DecisionTask, QueryTask
from .data_converter import DataConverter
from .error import (
    CadenzaError,
    HistoryChangedError,
    InternalServiceError,
    ServiceBusyError,
    StaleTaskError,
    WorkflowExecutionAlreadyCompletedError,
)
from .replay import LocalActivityRequest, StickyInstance, run_query, run_sticky_decision_task

T = TypeVar("T")

logger = logging.getLogger("cadenza.worker")

#: Cause recorded when the worker cannot run the workflow code (Cadence's name).
WORKER_FAILURE = "WORKFLOW_WORKER_UNHANDLED_FAILURE"
#: Longest backoff between retries of a failing decision task.
MAX_DECISION_BACKOFF_SECONDS = 60
#: How often a task's answer is sent while the engine reports it is busy (about half a minute
#: in all): an activity's result cannot be produced again once its attempt is recorded started,
#: so giving up early would lose finished work to a timeout.
ANSWER_ATTEMPTS = 14
#: How often a decision is re-made when new events keep arriving while it is made.
MAX_REDECIDE = 20
#: Pause before the n-th re-decision (jittered, doubling, capped): a run in a burst (a fan-out
#: finishing, a flood of signals) is decided again once the burst thins, instead of replaying
#: its whole history for every event that lands meanwhile.
REDECIDE_FIRST_PAUSE = 0.025
REDECIDE_LONGEST_PAUSE = 1.0


class WorkerBackend(Protocol):
    """What a worker needs from the engine: the HTTP client or the in-process service."""

    async def read_history_since(
        self, workflow_id: str, run_id: str, *, after_version: int = 0, page_size: int = 1000,
    ) -> HistorySince: ...

    async def complete_decision_task(
        self, task_token: str, decisions: Sequence[Decision], *, history_length: int,
        started_at: datetime, identity: str | None = None, request_id: str | None = None,
        eager_activities: int = 0, eager_task_list: str = "",
    ) -> DecisionCompletion: ...

    async def fail_decision_task(
        self, task_token: str, *, cause: str, details: str | None, started_at: datetime,
        identity: str | None = None,
    ) -> bool: ...

    async def complete_activity_task(
        self, task_token: str, result: str | None, *, identity: str | None = None,
        request_id: str | None = None, hand_back_task_list: str = "",
    ) -> ActivityCompletion: ...

    async def answer_query_task(
        self, task_token: str, *, answer: str | None, error: str | None
    ) -> bool: ...

    async def fail_activity_task(
        self, task_token: str, reason: str, details: str | None, *, identity: str | None = None
    ) -> None: ...

    async def start_activity_task(
        self, task_token: str, *, identity: str | None = None, request_id: str | None = None
    ) -> ActivityStart: ...

    async def record_activity_heartbeat_task(
        self, task_token: str, details: str | None, *, identity: str | None = None
    ) -> bool: ...

    async def cancel_activity_task(
        self, task_token: str, details: str | None, *, identity: str | None = None
    ) -> None: ...


async def _answer(call: Callable[[], Awaitable[T]]) -> T:
    """Send a task's answer, retrying while the engine is busy or failing (a 5xx: a throttle
    that outlasted botocore's retries, a crashed handler): the work is done and must not be
    redone just because the answer could not be recorded at once. Safe to repeat: an answer
    recorded already is stale, or known by its request id."""
    for attempt in range(ANSWER_ATTEMPTS):
        try:
            return await call()
        except (ServiceBusyError, InternalServiceError):
            if attempt == ANSWER_ATTEMPTS - 1:
                raise
            await asyncio.sleep(random.uniform(0.5, 1.0) * min(0.1 * 2**attempt, 3.0))
    raise AssertionError("unreachable")


#: Runs a worker keeps by default (sticky execution; WorkerOptions.max_cached_workflows).
DEFAULT_CACHED_WORKFLOWS = 600

RunKey = tuple[str, str, str]


@dataclass(slots=True)
class CachedRun:
    """What a worker holds of a run: its history up to commit ``version`` and, when the
    worker decided its latest task, the instance that did (sticky execution)."""

    history: tuple[HistoryEvent, ...]
    version: int
    sticky: StickyInstance | None = None

    def drop_instance(self) -> CachedRun:
        if self.sticky is not None:
            self.sticky.close()
            self.sticky = None
        return self


class WorkflowCache:
    """Recently used runs of a worker, least recently used evicted first (thread-safe).

    A decision task takes its run out (:meth:`take`) and puts it back when its completion was
    recorded, so two tasks of one run never share an instance: the second one finds nothing
    and reads the whole history, which is always correct, only dearer."""

    def __init__(self, size: int = DEFAULT_CACHED_WORKFLOWS) -> None:
        if size < 0:
            raise ValueError("the workflow cache size cannot be negative")
        self.size = size
        self._runs: OrderedDict[RunKey, CachedRun] = OrderedDict()
        self._lock = threading.Lock()
        #: Decision tasks decided by a kept instance / by a replay from the first event.
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._runs)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._runs

    def take(self, key: RunKey) -> CachedRun | None:
        with self._lock:
            return self._runs.pop(key, None)

    def peek_history(self, key: RunKey) -> tuple[tuple[HistoryEvent, ...], int] | None:
        """The history held for a run (for a query's read), leaving the entry in place."""
        with self._lock:
            run = self._runs.get(key)
            return (run.history, run.version) if run is not None else None

    def put(self, key: RunKey, run: CachedRun) -> None:
        if self.size == 0:
            run.drop_instance()
            return
        evicted: list[CachedRun] = []
        with self._lock:
            previous = self._runs.pop(key, None)
            if previous is not None and previous is not run:
                evicted.append(previous)
            self._runs[key] = run
            while len(self._runs) > self.size:
                evicted.append(self._runs.popitem(last=False)[1])
        for old in evicted:
            old.drop_instance()

    def discard(self, key: RunKey) -> None:
        run = self.take(key)
        if run is not None:
            run.drop_instance()

    def clear(self) -> None:
        with self._lock:
            runs, self._runs = list(self._runs.values()), OrderedDict()
        for run in runs:
            run.drop_instance()


def continued(run: CachedRun | None, events: Sequence[HistoryEvent], version: int) \
        -> CachedRun | None:
    """``run`` followed by a commit's ``events`` (an answer carried them), when they start
    right after its last event; None when they do not (something between is unknown)."""
    if run is None or not run.history or not events \
            or events[0].event_id != run.history[-1].event_id + 1:
        return None
    return CachedRun(run.history + tuple(events), max(version, run.version), run.sticky)


async def read_history(
    backend: WorkerBackend, workflow_id: str, run_id: str, held: CachedRun | None,
) -> CachedRun:
    """The run's whole history: only the commits after the ones ``held`` has when it has
    some (one request), all of it otherwise or when what comes back does not follow on
    from what is held (a gap: read again from the first event)."""
    if held is not None and held.history:
        since = await backend.read_history_since(workflow_id, run_id,
                                                 after_version=held.version)
        last = held.history[-1].event_id
        new = tuple(event for event in since.events if event.event_id > last)
        if not new or new[0].event_id == last + 1:
            return CachedRun(held.history + new, max(since.version, held.version),
                             held.sticky)
        held.drop_instance()
    since = await backend.read_history_since(workflow_id, run_id, after_version=0)
    return CachedRun(since.events, since.version)


@dataclass(frozen=True, slots=True)
class Outcome:
    """Delete the message (done), or make it visible again after ``retry_after`` seconds."""

    done: bool
    retry_after: int = 0
    note: str = ""
    #: Activities the decision's completion started for this worker (eager execution): run
    #: them now (each holds one of the slots the worker reserved), answer by their tokens.
    eager: tuple[EagerActivity, ...] = ()
    #: The decision task the activity's result scheduled, handed to this worker (decision
    #: hand-back): decide it now, in the decision slot reserved for it.
    handed: HandedDecision | None = None


DONE = Outcome(True)
#: Most activities one decision completion asks to start eagerly.
MAX_EAGER_ACTIVITIES = 10


class EagerSlots(Protocol):
    """Free activity slots of a worker that also serves ``task_list``'s activities."""

    @property
    def task_list(self) -> str: ...

    def reserve(self, most: int) -> int:
        """Take up to ``most`` free slots without waiting; how many were taken."""

    def release(self, count: int) -> None:
        """Give back slots reserved and not used."""


def _now() -> datetime:
    # Millisecond precision: the time the workflow sees is exactly the time history stores.
    return from_millis(to_millis(datetime.now(UTC)))


def _pending_decision(history: Sequence[HistoryEvent], scheduled_event_id: int) -> bool:
    for event in reversed(history):
        if event.event_type in (EventType.DecisionTaskStarted, EventType.DecisionTaskTimedOut) \
                and event.get("scheduled_event_id") == scheduled_event_id:
            return False
        if event.event_id == scheduled_event_id:
            return event.event_type is EventType.DecisionTaskScheduled
    return False


def _done_in(history: Sequence[HistoryEvent], scheduled_event_id: int) -> bool:
    """Whether ``history`` shows the decision task of ``scheduled_event_id`` over: started
    (completed or failed with it) or timed out, or the run closed. Only a positive proof:
    a history that ends before the task was scheduled proves nothing."""
    if _closed(history):
        return True
    return any(event.event_type in (EventType.DecisionTaskStarted, EventType.DecisionTaskTimedOut)
               and event.get("scheduled_event_id") == scheduled_event_id
               for event in reversed(history))


def _closed(history: Sequence[HistoryEvent]) -> bool:
    return bool(history) and history[-1].event_type in CLOSE_EVENTS


async def process_decision(
    backend: WorkerBackend,
    registry: Any,
    message: TaskMessage,
    *,
    converter: DataConverter,
    receive_count: int = 1,
    identity: str | None = None,
    local_activity_sleep: Callable[[float], None] | None = None,
    offload: bool = True,
    clock: Callable[[], datetime] | None = None,
    cache: WorkflowCache | None = None,
    eager: EagerSlots | None = None,
    handed: HandedDecision | None = None,
) -> Outcome:
    """Replay the run and complete (or fail) its decision task.

    ``offload`` runs the replay in a thread (local activities run inside it and may take a
    while); the in-memory test environment replays inline. ``local_activity_sleep`` is how a
    local activity waits between its retries (virtual time in the test environment).
    ``cache`` keeps the run after the task (sticky execution): the next task of the run reads
    only the new events and continues the instance instead of replaying from the start.
    ``eager`` is the worker's free activity slots: activities the decisions schedule on its
    task list are asked for in the completion and come back in the outcome, started.
    ``handed``: the task came in an activity completion's answer with its commit's events; a
    run held up to the events before them is decided without reading anything.
    """
    task = message.task
    assert isinstance(task, DecisionTask)
    token = message.task_token
    key = (task.domain, task.workflow_id, task.run_id)
    held = cache.take(key) if cache is not None else None
    current = continued(held, handed.events, handed.version) if handed is not None else None

    def run_local(request: LocalActivityRequest) -> Any:
        if local_activity_sleep is None:
            return run_local_activity(request, converter=converter)
        return run_local_activity(request, converter=converter, sleep=local_activity_sleep)

    def keep(run: CachedRun) -> None:
        # A closed run is held too, without an instance: copies of its tasks still in a queue
        # (the redrive's) are then dropped without a read.
        if cache is not None:
            cache.put(key, run.drop_instance() if _closed(run.history) else run)
        else:
            run.drop_instance()

    if current is None and held is not None and _done_in(held.history, task.scheduled_event_id):
        # A copy of a task this worker has seen completed (the redrive's copy of one handed
        # back, a redelivery): the history held proves it stale without a read.
        keep(held)
        return Outcome(True, note="stale decision task dropped")
    for attempt in range(MAX_REDECIDE):
        if attempt:
            pause = min(REDECIDE_LONGEST_PAUSE, REDECIDE_FIRST_PAUSE * 2 ** (attempt - 1))
            await asyncio.sleep(random.uniform(pause / 2, pause))
        run = current or await read_history(backend, task.workflow_id, task.run_id, held)
        held = current = None
        history = run.history
        if _closed(history) or not _pending_decision(history, task.scheduled_event_id):
            keep(run)
            return Outcome(True, note="stale decision task dropped")
        started_at = from_millis(to_millis(clock())) if clock is not None else _now()
        try:
            definition = registry.get_workflow(task.workflow_type)
        except KeyError:
            definition = None
        previous, run.sticky = run.sticky, None
        try:
            if definition is None:
                if previous is not None:
                    previous.close()
                known = ", ".join(sorted(registry.workflows)) or "none"
                raise LookupError(
                    f"workflow type {task.workflow_type!r} is not registered on this worker "
                    f"(registered: {known})"
                )
            replay = partial(
                run_sticky_decision_task,
                definition,
                history,
                previous=previous,
                started_at=started_at,
                registry_lookup_activity=registry.get_activity,
                converter=converter,
                domain=task.domain,
                workflow_id=task.workflow_id,
                run_id=task.run_id,
                local_activity_runner=run_local,
            )
            result = await asyncio.to_thread(replay) if offload else replay()
        except Exception as error:  # the workflow code or its history: fail the decision task
            keep(run)
            details = "".join(traceback.format_exception(error))
            logger.warning("decision task of %s failed: %s", task.workflow_id, error)
            try:
                recorded = await _answer(partial(
                    backend.fail_decision_task, token, cause=WORKER_FAILURE, details=details,
                    started_at=started_at, identity=identity,
                ))
            except StaleTaskError:
                return Outcome(True, note="stale decision task dropped")
            if recorded:
                return Outcome(True, note="decision task failure recorded")
            backoff = min(2 ** min(receive_count, 6), MAX_DECISION_BACKOFF_SECONDS)
            return Outcome(False, retry_after=backoff, note="decision task failed again")
        if cache is not None:
            if result.hit:
                cache.hits += 1
            else:
                cache.misses += 1
        reserved = eager.reserve(_eager_wanted(result.decisions, task.task_list, eager)) \
            if eager is not None else 0
        try:
            # One request id for every try of this completion: a retry after a lost answer
            # is recognised, and answers with the activities the first one started.
            completion = await _answer(partial(
                backend.complete_decision_task, token, result.decisions,
                history_length=history[-1].event_id + 1, started_at=started_at,
                identity=identity, request_id=uuid.uuid4().hex,
                eager_activities=reserved,
                eager_task_list=eager.task_list if eager is not None and reserved else "",
            ))
        except HistoryChangedError:
            _give_back(eager, reserved)
            # New events arrived while deciding: decide again on fresh history. The instance
            # made decisions history will never record: only the history is worth keeping.
            if result.sticky is not None:
                result.sticky.close()
            held = run
            continue
        except (StaleTaskError, WorkflowExecutionAlreadyCompletedError):
            # Decided elsewhere meanwhile (a copy from the queue), or the run closed.
            _give_back(eager, reserved)
            if result.sticky is not None:
                result.sticky.close()
            keep(run)
            return Outcome(True, note="stale decision task dropped")
        except BaseException:
            _give_back(eager, reserved)
            if result.sticky is not None:
                result.sticky.close()
            raise
        _give_back(eager, reserved - len(completion.activities))
        if result.sticky is not None:
            # The start history recorded for the task (the engine keeps a worker's clock from
            # running ahead of its own): the instance continues from that one.
            recorded_start = next((event for event in completion.events
                                   if event.event_type is EventType.DecisionTaskStarted), None)
            if recorded_start is not None:
                result.sticky.live_time = recorded_start.timestamp
        run.sticky = result.sticky  # None: the run closes with these decisions
        keep(continued(run, completion.events, completion.version) or run)
        return Outcome(True, eager=completion.activities)
    if held is not None:
        keep(held)
    return Outcome(False, retry_after=1, note="history kept changing; retrying")


def _eager_wanted(decisions: Sequence[Decision], default_task_list: str,
                  eager: EagerSlots) -> int:
    """How many of ``decisions``' new activities this worker could run itself."""
    scheduled = sum(
        1 for decision in decisions
        if decision.decision_type is DecisionType.ScheduleActivityTask
        and (decision.get("task_list") or default_task_list) == eager.task_list)
    return min(scheduled, MAX_EAGER_ACTIVITIES)


def _give_back(eager: EagerSlots | None, count: int) -> None:
    if eager is not None and count > 0:
        eager.release(count)


async def process_query(
    backend: WorkerBackend,
    registry: Any,
    message: TaskMessage,
    *,
    converter: DataConverter,
    clock: Callable[[], datetime] | None = None,
    cache: WorkflowCache | None = None,
) -> Outcome:
    """Replay the run and send the query's answer (or why it cannot be answered).

    ``clock`` is the time the query's expiry is checked against: the service's (virtual in
    the test environment)."""
    task = message.task
    assert isinstance(task, QueryTask)
    if to_millis(clock() if clock is not None else _now()) > task.expires_at:
        return Outcome(True, note="expired query dropped: nobody waits for its answer")
    try:
        definition = registry.get_workflow(task.workflow_type)
    except KeyError:
        # Another worker of the task list may know the type: let the query go back to the queue.
        return Outcome(False, retry_after=1, note="query of a workflow type unknown here")
    held = cache.peek_history((task.domain, task.workflow_id, task.run_id)) \
        if cache is not None else None
    # A fresh replay on the history held plus what is new: the kept instance stays untouched.
    history = (await read_history(
        backend, task.workflow_id, task.run_id,
        CachedRun(*held) if held is not None else None,
    )).history
    answer: str | None = None
    error: str | None = None
    try:
        answer = await asyncio.to_thread(
            run_query,
            definition,
            history,
            task.query_type,
            task.query_args,
            registry_lookup_activity=registry.get_activity,
            converter=converter,
            domain=task.domain,
            workflow_id=task.workflow_id,
            run_id=task.run_id,
        )
    except Exception as failure:  # the workflow's refusal is the answer
        error = f"{type(failure).__name__}: {failure}"
    await _answer(partial(backend.answer_query_task, message.task_token, answer=answer,
                          error=error))
    return DONE


async def process_activity(
    backend: WorkerBackend,
    registry: Any,
    message: TaskMessage,
    *,
    converter: DataConverter,
    identity: str | None = None,
    heartbeat_throttle: timedelta | None = None,
    started: ActivityStart | None = None,
    hand_back: EagerSlots | None = None,
) -> Outcome:
    """Take the attempt (a copy of one already running is dropped), run it with heartbeats
    that carry progress and cancellation, and report how it ended. ``started``: the attempt
    was recorded started for this worker already (eager execution: no start to send).
    ``hand_back`` is the worker's free decision slots: a decision task the result schedules on
    their task list comes back in the outcome, to decide at once."""
    task = message.task
    assert isinstance(task, ActivityTask)
    token = message.task_token
    try:
        definition = registry.get_activity(task.activity_type)
    except KeyError:
        definition = None
    try:
        # One id for every try of this start: a try whose answer was lost is recognised.
        if started is not None:
            start = started
        else:
            start = await _answer(partial(backend.start_activity_task, token,
                                          identity=identity, request_id=uuid.uuid4().hex))
        if definition is None:
            known = ", ".join(sorted(registry.activities)) or "none"
            await _answer(partial(
                backend.fail_activity_task, token, "ActivityNotRegisteredError",
                f"activity type {task.activity_type!r} is not registered on this worker "
                f"(registered: {known})",
                identity=identity,
            ))
            return DONE

        async def heartbeat(details: str | None) -> bool:
            return await backend.record_activity_heartbeat_task(token, details, identity=identity)

        outcome = await execute_activity_task(
            definition,
            ActivityTaskInput(
                task_token=token,
                activity_id=task.activity_id,
                activity_type=task.activity_type,
                input=task.input,
                workflow_id=task.workflow_id,
                run_id=task.run_id,
                workflow_type=task.workflow_type,
                domain=task.domain,
                task_list=task.task_list,
                attempt=start.attempt,
                scheduled_timestamp=from_millis(task.scheduled_time),
                started_timestamp=from_millis(start.started_time),
                schedule_to_close_timeout=_delta(task.schedule_to_close_timeout_seconds),
                schedule_to_start_timeout=_delta(task.schedule_to_start_timeout_seconds),
                start_to_close_timeout=_delta(task.start_to_close_timeout_seconds),
                heartbeat_timeout=_delta(task.heartbeat_timeout_seconds),
                heartbeat_details=start.heartbeat_details,
            ),
            converter=converter,
            heartbeat=heartbeat,
            heartbeat_throttle=heartbeat_throttle,
        )
        if outcome.kind == "completed":
            slot = hand_back.reserve(1) if hand_back is not None else 0
            try:
                answer = await _answer(partial(
                    backend.complete_activity_task, token, outcome.result, identity=identity,
                    request_id=uuid.uuid4().hex,
                    hand_back_task_list=hand_back.task_list if hand_back and slot else "",
                ))
            except BaseException:
                _give_back(hand_back, slot)
                raise
            if answer.decision is None:
                _give_back(hand_back, slot)
            return Outcome(True, handed=answer.decision)
        elif outcome.kind == "failed":
            await _answer(partial(
                backend.fail_activity_task, token, outcome.reason or "error", outcome.details,
                identity=identity,
            ))
        elif outcome.kind == "cancelled":
            await _answer(partial(
                backend.cancel_activity_task, token, outcome.details, identity=identity
            ))
        # "async": the activity is completed later through the client with its task token.
    except StaleTaskError as error:
        return Outcome(True, note=f"stale activity task dropped: {error}")
    except CadenzaError as error:
        if getattr(error, "status", 500) < 500:
            logger.warning("activity %s answer refused: %s", task.activity_id, error)
            return Outcome(True, note=str(error))
        raise
    return DONE


def _delta(seconds: int | None) -> timedelta | None:
    return timedelta(seconds=seconds) if seconds else None
