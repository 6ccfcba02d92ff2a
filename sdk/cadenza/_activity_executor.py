"""Run one activity task and describe how it ended, without touching any transport.

The worker (a poller or a Lambda handler) turns the task it received into an
:class:`ActivityTaskInput`, calls :func:`execute_activity_task`, and reports the returned
:class:`ActivityOutcome` (complete, fail, acknowledge cancellation, or nothing for an
activity completed asynchronously). Keeping transport out of here lets the same code serve
every worker kind and be tested without AWS.

Sync activities run in a thread (``asyncio.to_thread``) so the worker's event loop keeps
serving heartbeats and other tasks. A failure is reported with ``reason`` = the exception's
class name, which is what ``RetryPolicy.non_retryable_error_reasons`` lists, and ``details`` =
its message and formatted traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import threading
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from cadenza._activity_context import ActivityContext, ActivityInfo
from cadenza._activity_definition import ActivityDefinition
from cadenza.core.retry import next_retry_delay
from cadenza.data_converter import DataConverter, DefaultDataConverter
from cadenza.error import ActivityCancelledError, EntityNotExistsError, StaleTaskError
from cadenza.replay.instance import LocalActivityRequest

__all__ = [
    "ActivityOutcome",
    "ActivityTaskInput",
    "execute_activity_task",
    "run_local_activity",
]

logger = logging.getLogger(__name__)

#: Heartbeats are sent at most once per this fraction of the heartbeat timeout (as Cadence).
_HEARTBEAT_THROTTLE_FACTOR = 0.8
#: Throttle interval when the activity has no heartbeat timeout.
_DEFAULT_HEARTBEAT_THROTTLE = timedelta(seconds=30)

OutcomeKind = Literal["completed", "failed", "cancelled", "async"]
HeartbeatSender = Callable[[str | None], Awaitable[Any]]


@dataclass(frozen=True, kw_only=True)
class ActivityTaskInput:
    """An activity task as the worker received it (payloads still encoded)."""

    task_token: str
    activity_id: str
    activity_type: str
    input: str | None
    workflow_id: str
    run_id: str
    workflow_type: str
    domain: str
    task_list: str
    attempt: int = 0
    scheduled_timestamp: datetime | None = None
    started_timestamp: datetime | None = None
    schedule_to_close_timeout: timedelta | None = None
    schedule_to_start_timeout: timedelta | None = None
    start_to_close_timeout: timedelta | None = None
    heartbeat_timeout: timedelta | None = None
    heartbeat_details: str | None = None


@dataclass(frozen=True, kw_only=True)
class ActivityOutcome:
    """How an activity attempt ended; what the worker reports to the engine.

    ``completed``: ``result`` is the encoded return value. ``failed``: ``reason`` is the
    exception class name, ``details`` its message and traceback. ``cancelled``: ``details``
    are the encoded ``ActivityCancelledError`` details. ``async``: nothing to report now.
    """

    kind: OutcomeKind
    result: str | None = None
    reason: str | None = None
    details: str | None = None
    #: Set when a local activity ran out of time (``SCHEDULE_TO_CLOSE``).
    timeout_type: str | None = None

    @staticmethod
    def failure(error: BaseException) -> ActivityOutcome:
        return ActivityOutcome(
            kind="failed", reason=type(error).__name__, details=failure_details(error)
        )


def failure_details(error: BaseException) -> str:
    """Message then traceback: readable in history, and enough to debug from it."""
    trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return f"{error}\n{trace}"


async def execute_activity_task(
    definition: ActivityDefinition[Any, Any],
    task: ActivityTaskInput,
    *,
    converter: DataConverter | None = None,
    heartbeat: HeartbeatSender | None = None,
    heartbeat_throttle: timedelta | None = None,
) -> ActivityOutcome:
    """Run ``definition`` for ``task`` and return its outcome; never raises for user errors.

    ``heartbeat(details_payload)`` sends one heartbeat; if it returns ``True`` (or raises
    :class:`~cadenza.error.StaleTaskError` / ``EntityNotExistsError``: the task is gone),
    cancellation is requested: ``activity.is_cancelled()`` turns true and an async activity
    receives ``asyncio.CancelledError`` at its current ``await``. ``heartbeat_throttle``
    overrides the minimum interval between two heartbeat requests (80% of the heartbeat
    timeout by default). Cancelling the call itself (worker shutdown) propagates.
    """
    converter = converter or DefaultDataConverter()
    loop = asyncio.get_running_loop()
    context = _Context(
        definition=definition,
        task=task,
        converter=converter,
        loop=loop,
        sender=heartbeat,
        throttle=_throttle_interval(task, heartbeat_throttle),
    )
    try:
        args = definition.signature.decode(converter, task.input)
    except Exception as error:
        return ActivityOutcome.failure(error)

    run_context = contextvars.copy_context()
    run_context.run(ActivityContext._var.set, context)
    if definition.is_async:
        runner = loop.create_task(_run_async(definition, args), context=run_context)
    else:
        runner = loop.create_task(asyncio.to_thread(definition.invoke, args), context=run_context)
    context.attach(runner)
    try:
        try:
            result = await asyncio.shield(runner)
        except asyncio.CancelledError:
            if not runner.done():
                # The worker itself is being cancelled: stop the activity and propagate.
                runner.cancel()
                raise
            if context.cancel_requested:
                return ActivityOutcome(kind="cancelled", details=None)
            return ActivityOutcome.failure(
                RuntimeError("the activity was cancelled without a cancellation request")
            )
        except ActivityCancelledError as error:
            details = converter.to_data(error.details) if error.details else None
            return ActivityOutcome(kind="cancelled", details=details)
        except Exception as error:
            return ActivityOutcome.failure(error)
        if context.is_async_completion:
            return ActivityOutcome(kind="async")
        try:
            payload = converter.to_data([result])
        except Exception as error:
            return ActivityOutcome.failure(
                TypeError(f"cannot encode the result of activity {definition.name!r}: {error}")
            )
        return ActivityOutcome(kind="completed", result=payload)
    finally:
        await context.close()


async def _run_async(definition: ActivityDefinition[Any, Any], args: list[Any]) -> Any:
    return await definition.invoke(args)


def _throttle_interval(task: ActivityTaskInput, override: timedelta | None) -> float:
    if override is not None:
        return max(override.total_seconds(), 0.0)
    if task.heartbeat_timeout:
        return task.heartbeat_timeout.total_seconds() * _HEARTBEAT_THROTTLE_FACTOR
    return _DEFAULT_HEARTBEAT_THROTTLE.total_seconds()


class _Context(ActivityContext):
    """Context of one attempt; heartbeats are marshalled onto the worker's event loop."""

    def __init__(
        self,
        *,
        definition: ActivityDefinition[Any, Any],
        task: ActivityTaskInput,
        converter: DataConverter,
        loop: asyncio.AbstractEventLoop,
        sender: HeartbeatSender | None,
        throttle: float,
    ) -> None:
        self._definition = definition
        self._task = task
        self._converter = converter
        self._loop = loop
        self._sender = sender
        self._throttle = throttle
        self._info = ActivityInfo(
            task_token=task.task_token,
            workflow_id=task.workflow_id,
            run_id=task.run_id,
            workflow_type=task.workflow_type,
            domain=task.domain,
            activity_id=task.activity_id,
            activity_type=task.activity_type,
            task_list=task.task_list,
            attempt=task.attempt,
            heartbeat_timeout=task.heartbeat_timeout,
            scheduled_timestamp=task.scheduled_timestamp,
            started_timestamp=task.started_timestamp,
            start_to_close_timeout=task.start_to_close_timeout,
            schedule_to_close_timeout=task.schedule_to_close_timeout,
        )
        self._cancelled = threading.Event()
        self._async_completion = False
        self._runner: asyncio.Task[Any] | None = None
        self._latest: str | None = None
        self._pending = False
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False

    # -- executor side -------------------------------------------------------------------

    def attach(self, runner: asyncio.Task[Any]) -> None:
        self._runner = runner

    @property
    def cancel_requested(self) -> bool:
        return self._cancelled.is_set()

    @property
    def is_async_completion(self) -> bool:
        return self._async_completion

    async def close(self) -> None:
        """Stop sending heartbeats: the outcome supersedes any pending details."""
        self._closed = True
        flusher, self._flusher = self._flusher, None
        if flusher is not None and not flusher.done():
            flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await flusher

    def _request_cancel(self) -> None:
        if self._cancelled.is_set():
            return
        self._cancelled.set()
        runner = self._runner
        if self._definition.is_async and runner is not None and not runner.done():
            runner.cancel()

    # -- heartbeats ----------------------------------------------------------------------

    def _record(self, payload: str | None) -> None:
        """Runs on the loop: keep the latest details and make sure a flush is under way."""
        if self._closed or self._sender is None:
            return
        self._latest = payload
        self._pending = True
        if self._flusher is None or self._flusher.done():
            self._flusher = self._loop.create_task(self._flush())

    async def _flush(self) -> None:
        while self._pending and not self._closed:
            payload, self._pending = self._latest, False
            await self._send(payload)
            # Throttle window: details recorded meanwhile go out together at its end.
            await asyncio.sleep(self._throttle)

    async def _send(self, payload: str | None) -> None:
        assert self._sender is not None
        try:
            response = await self._sender(payload)
        except (StaleTaskError, EntityNotExistsError):
            self._request_cancel()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.warning(
                "heartbeat of activity %s (%s) failed",
                self._task.activity_id,
                self._task.activity_type,
                exc_info=True,
            )
            return
        if response is True:
            self._request_cancel()

    # -- activity side -------------------------------------------------------------------

    def info(self) -> ActivityInfo:
        return self._info

    def heartbeat(self, *details: Any) -> None:
        payload = self._converter.to_data(list(details))
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._record(payload)
        else:  # a sync activity's thread
            self._loop.call_soon_threadsafe(self._record, payload)

    def heartbeat_details(self, *types: Any) -> list[Any]:
        payload = self._task.heartbeat_details
        if not payload:
            return []
        if types:
            return self._converter.from_data(payload, list(types))
        counter = getattr(self._converter, "count", None)
        count = int(counter(payload)) if callable(counter) else 1
        return self._converter.from_data(payload, [None] * count)

    def is_cancelled(self) -> bool:
        return self._cancelled.is_set()

    def wait_for_cancelled(self, timeout: timedelta | None) -> bool:
        if self._definition.is_async:
            raise RuntimeError(
                "wait_for_cancelled() blocks and is only for sync activities; an async "
                "activity receives asyncio.CancelledError at its current await instead"
            )
        return self._cancelled.wait(None if timeout is None else timeout.total_seconds())

    def complete_async(self) -> None:
        self._async_completion = True


# --- local activities ----------------------------------------------------------------------------


def run_local_activity(
    request: LocalActivityRequest,
    *,
    converter: DataConverter | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> ActivityOutcome:
    """Run a local activity to its final outcome, retrying per its policy (blocking).

    Called by the replayer while it processes a decision task. Each attempt runs on a fresh
    event loop in a helper thread, so this works whether or not the caller's thread runs an
    event loop. ``schedule_to_close_timeout`` bounds all attempts and backoffs together; a sync
    activity that overruns it is reported as timed out, but its thread is only joined once it
    returns (Python cannot interrupt it).
    """
    converter = converter or DefaultDataConverter()
    timeout = request.schedule_to_close_timeout
    started = time.monotonic()
    attempt = 0
    while True:
        remaining = None if timeout is None else timeout.total_seconds() - _since(started)
        if remaining is not None and remaining <= 0:
            return _local_timeout(request)
        outcome = _in_thread(
            functools.partial(_run_attempt, request, attempt, remaining, converter)
        )
        if outcome.kind != "failed" or outcome.timeout_type:
            return outcome
        delay = next_retry_delay(
            request.retry_policy,
            attempt,
            timedelta(seconds=_since(started)),
            outcome.reason,
            default_expiration=timeout,
        )
        if delay is None:
            return outcome
        sleep(delay.total_seconds())
        attempt += 1


def _since(started: float) -> float:
    return time.monotonic() - started


def _local_timeout(request: LocalActivityRequest) -> ActivityOutcome:
    return ActivityOutcome(
        kind="failed",
        reason="cadenceInternal:Timeout SCHEDULE_TO_CLOSE",
        details=f"local activity {request.activity_type!r} did not finish within "
        f"{request.schedule_to_close_timeout}",
        timeout_type="SCHEDULE_TO_CLOSE",
    )


def _run_attempt(
    request: LocalActivityRequest,
    attempt: int,
    remaining: float | None,
    converter: DataConverter,
) -> ActivityOutcome:
    return asyncio.run(_local_attempt(request, attempt, remaining, converter))


async def _local_attempt(
    request: LocalActivityRequest,
    attempt: int,
    remaining: float | None,
    converter: DataConverter,
) -> ActivityOutcome:
    task = ActivityTaskInput(
        task_token="",
        activity_id=request.activity_id,
        activity_type=request.activity_type,
        input=request.input,
        workflow_id=request.workflow_id,
        run_id=request.run_id,
        workflow_type=request.workflow_type,
        domain=request.domain,
        task_list=request.task_list,
        attempt=attempt,
        schedule_to_close_timeout=request.schedule_to_close_timeout,
    )
    try:
        return await asyncio.wait_for(
            execute_activity_task(request.definition, task, converter=converter), remaining
        )
    except TimeoutError:
        return _local_timeout(request)


def _in_thread(fn: Callable[[], ActivityOutcome]) -> ActivityOutcome:
    results: list[ActivityOutcome] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            results.append(fn())
        except BaseException as error:  # re-raised in the calling thread
            errors.append(error)

    thread = threading.Thread(target=target, name="cadenza-local-activity", daemon=True)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0]
