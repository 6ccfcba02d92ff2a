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
import traceback
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol, TypeVar

from ._activity_executor import ActivityTaskInput, execute_activity_task, run_local_activity
from .core import CLOSE_EVENTS, Decision, EventType, HistoryEvent, from_millis, to_millis
from .core.records import ActivityStart, TaskMessage
from .core.tasks import ActivityTask, DecisionTask, QueryTask
from .data_converter import DataConverter
from .error import (
    CadenzaError,
    HistoryChangedError,
    InternalServiceError,
    ServiceBusyError,
    StaleTaskError,
)
from .replay import LocalActivityRequest, run_decision_task, run_query

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

    async def get_workflow_history(
        self, workflow_id: str, run_id: str = "", wait_for_close: bool = False
    ) -> list[HistoryEvent]: ...

    async def complete_decision_task(
        self, task_token: str, decisions: Sequence[Decision], *, history_length: int,
        started_at: datetime, identity: str | None = None,
    ) -> None: ...

    async def fail_decision_task(
        self, task_token: str, *, cause: str, details: str | None, started_at: datetime,
        identity: str | None = None,
    ) -> bool: ...

    async def complete_activity_task(
        self, task_token: str, result: str | None, *, identity: str | None = None
    ) -> None: ...

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


@dataclass(frozen=True, slots=True)
class Outcome:
    """Delete the message (done), or make it visible again after ``retry_after`` seconds."""

    done: bool
    retry_after: int = 0
    note: str = ""


DONE = Outcome(True)


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
) -> Outcome:
    """Replay the run and complete (or fail) its decision task.

    ``offload`` runs the replay in a thread (local activities run inside it and may take a
    while); the in-memory test environment replays inline. ``local_activity_sleep`` is how a
    local activity waits between its retries (virtual time in the test environment).
    """
    task = message.task
    assert isinstance(task, DecisionTask)
    token = message.task_token

    def run_local(request: LocalActivityRequest) -> Any:
        if local_activity_sleep is None:
            return run_local_activity(request, converter=converter)
        return run_local_activity(request, converter=converter, sleep=local_activity_sleep)

    for attempt in range(MAX_REDECIDE):
        if attempt:
            pause = min(REDECIDE_LONGEST_PAUSE, REDECIDE_FIRST_PAUSE * 2 ** (attempt - 1))
            await asyncio.sleep(random.uniform(pause / 2, pause))
        history = await backend.get_workflow_history(task.workflow_id, task.run_id)
        if _closed(history) or not _pending_decision(history, task.scheduled_event_id):
            return Outcome(True, note="stale decision task dropped")
        started_at = from_millis(to_millis(clock())) if clock is not None else _now()
        try:
            definition = registry.get_workflow(task.workflow_type)
        except KeyError:
            definition = None
        try:
            if definition is None:
                known = ", ".join(sorted(registry.workflows)) or "none"
                raise LookupError(
                    f"workflow type {task.workflow_type!r} is not registered on this worker "
                    f"(registered: {known})"
                )
            replay = partial(
                run_decision_task,
                definition,
                history,
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
        try:
            await _answer(partial(
                backend.complete_decision_task, token, result.decisions,
                history_length=history[-1].event_id + 1, started_at=started_at,
                identity=identity,
            ))
        except HistoryChangedError:
            continue  # new events arrived while deciding: decide again on fresh history
        except StaleTaskError:
            return Outcome(True, note="stale decision task dropped")
        return DONE
    return Outcome(False, retry_after=1, note="history kept changing; retrying")


async def process_query(
    backend: WorkerBackend,
    registry: Any,
    message: TaskMessage,
    *,
    converter: DataConverter,
    clock: Callable[[], datetime] | None = None,
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
    history = await backend.get_workflow_history(task.workflow_id, task.run_id)
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
) -> Outcome:
    """Take the attempt (a copy of one already running is dropped), run it with heartbeats
    that carry progress and cancellation, and report how it ended."""
    task = message.task
    assert isinstance(task, ActivityTask)
    token = message.task_token
    try:
        definition = registry.get_activity(task.activity_type)
    except KeyError:
        definition = None
    try:
        # One id for every try of this start: a try whose answer was lost is recognised.
        start = await _answer(partial(backend.start_activity_task, token, identity=identity,
                                      request_id=uuid.uuid4().hex))
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
            await _answer(partial(
                backend.complete_activity_task, token, outcome.result, identity=identity
            ))
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
