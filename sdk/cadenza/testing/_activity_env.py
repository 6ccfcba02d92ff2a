"""Run one activity in a test, through the real executor, without a service or a worker.

:class:`TestActivityEnvironment` follows the Cadence Python client's ``cadence.testing`` class
of the same name. Arguments are encoded and decoded with the data converter as they would be
over the wire, and the activity runs through
:func:`~cadenza._activity_executor.execute_activity_task`, the code every worker uses: sync
activities in a thread, the same ``activity.*`` context, heartbeats and cancellation. Only the
transport is replaced: heartbeats are recorded here (never throttled), and :meth:`cancel` is
what a heartbeat response carrying a cancellation request would do.

The executor reports only a failure's class name and traceback, as a worker does. To raise the
activity's own exception here, the definition is run through a thin wrapper that keeps a
reference to what the user function raised; the wrapper also gives the environment the
attempt's context (to cancel it at once, even when the activity never heartbeats) and counts
every ``activity.heartbeat()`` call (the executor coalesces heartbeats sent in quick
succession, so counting requests would depend on timing).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

from cadenza._activity_context import ActivityContext, ActivityInfo
from cadenza._activity_definition import ActivityDefinition
from cadenza._activity_executor import ActivityTaskInput, _Context, execute_activity_task
from cadenza.core.ids import run_id_for
from cadenza.data_converter import DataConverter, DefaultDataConverter
from cadenza.error import ActivityCancelledError, ActivityFailure
from cadenza.registry import Registry

__all__ = ["TestActivityEnvironment"]

#: Signs the fake task tokens: they have the shape of real ones but no stack accepts them.
_TOKEN_KEY = b"cadenza-test-activity-environment"


class TestActivityEnvironment:
    """In-memory environment for unit testing a single activity.

    Example::

        env = TestActivityEnvironment()
        assert await env.execute_activity(greet, "world") == "hello world"

    ``registry`` lets activities be executed by name. The keyword options are what
    ``activity.info()`` reports (defaults: workflow id ``"test-workflow"``, attempt 0, a
    60 second heartbeat timeout, a well-formed but fake task token); timeouts are reported,
    not enforced (see :meth:`set_test_timeout`).
    """

    # Not a test case, whatever pytest thinks of the name.
    __test__ = False

    def __init__(
        self,
        registry: Registry | None = None,
        *,
        converter: DataConverter | None = None,
        data_converter: DataConverter | None = None,
        domain: str = "test-domain",
        task_list: str = "test-task-list",
        workflow_type: str = "test-workflow-type",
        workflow_id: str = "test-workflow",
        run_id: str | None = None,
        activity_id: str = "0",
        task_token: str | None = None,
        attempt: int = 0,
        heartbeat_timeout: timedelta | None = timedelta(seconds=60),
        start_to_close_timeout: timedelta | None = timedelta(seconds=10),
        schedule_to_close_timeout: timedelta | None = None,
        schedule_to_start_timeout: timedelta | None = None,
    ) -> None:
        if converter is not None and data_converter is not None and converter is not data_converter:
            raise TypeError("pass converter= or data_converter= (the Cadence spelling), not both")
        self._registry = registry if registry is not None else Registry()
        self._converter: DataConverter = converter or data_converter or DefaultDataConverter()
        self._domain = domain
        self._task_list = task_list
        self._workflow_type = workflow_type
        self._workflow_id = workflow_id
        self._run_id = run_id or run_id_for(domain, workflow_id, 1)
        self._activity_id = activity_id
        self._task_token = task_token
        self._attempt = attempt
        self._timeouts = {
            "heartbeat_timeout": heartbeat_timeout,
            "start_to_close_timeout": start_to_close_timeout,
            "schedule_to_close_timeout": schedule_to_close_timeout,
            "schedule_to_start_timeout": schedule_to_start_timeout,
        }
        self._seeded_details: str | None = None
        self._test_timeout: timedelta | None = None
        # Guards what the activity's thread and the test's code both touch.
        self._lock = threading.Lock()
        self._heartbeats: list[str | None] = []
        self._cancel_requested = False
        self._running: _Context | None = None
        self._running_async = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._raised: Exception | None = None
        self._completed_async = False
        self._last_info: ActivityInfo | None = None

    # -- setup -------------------------------------------------------------------------------

    @property
    def registry(self) -> Registry:
        return self._registry

    def register_activity(self, definition: ActivityDefinition[Any, Any]) -> None:
        """Register an activity so it can be executed by name."""
        self._registry.register_activity(definition)

    def register_activities(self, obj: object) -> None:
        """Register every ``@activity.method`` of ``obj`` (an instance)."""
        self._registry.register_activities(obj)

    def set_heartbeat_details(self, *details: Any) -> None:
        """What ``activity.heartbeat_details()`` returns: a previous attempt's last details.

        Kept for every later execution, as a retried attempt would receive them.
        """
        self._seeded_details = self._converter.to_data(list(details))

    def set_test_timeout(self, timeout: timedelta) -> TestActivityEnvironment:
        """Bound :meth:`execute_activity` in wall-clock time; it then raises ``TimeoutError``.

        The attempt is cancelled first (a sync activity's thread only stops if it checks
        ``activity.is_cancelled()``: Python cannot interrupt it).
        """
        self._test_timeout = timeout
        return self

    # -- during and after an execution --------------------------------------------------------

    def cancel(self) -> None:
        """Request cancellation of the running activity, as a heartbeat response would.

        Takes effect at once, whether or not the activity heartbeats: an async activity gets
        ``asyncio.CancelledError`` at its current ``await``, a sync one sees
        ``activity.is_cancelled()`` turn true (and ``wait_for_cancelled`` return). Its next
        heartbeats are answered with "cancel" too. Called while nothing runs, it applies to
        the next execution; it is used up when the execution it applied to ends.
        """
        with self._lock:
            self._cancel_requested = True
            context, loop, is_async = self._running, self._loop, self._running_async
        if context is not None and loop is not None:
            _request_cancel(context, loop, is_async)

    @property
    def heartbeat_count(self) -> int:
        """How many times the activity of the last execution called ``activity.heartbeat``."""
        with self._lock:
            return len(self._heartbeats)

    def get_heartbeat_details(self, *types: Any) -> list[Any]:
        """The details of the last execution's last heartbeat, decoded as ``types`` if given.

        Without types every value is returned as plain JSON; ``[]`` if there was no heartbeat.
        """
        with self._lock:
            if not self._heartbeats:
                return []
            payload = self._heartbeats[-1]
        if types:
            return self._converter.from_data(payload, list(types))
        counter = getattr(self._converter, "count", None)
        count = int(counter(payload)) if callable(counter) else 1
        return self._converter.from_data(payload, [None] * count) if count else []

    @property
    def completed_async(self) -> bool:
        """Whether the last execution called ``activity.complete_async()``."""
        return self._completed_async

    @property
    def last_info(self) -> ActivityInfo | None:
        """What ``activity.info()`` returned during the last execution."""
        return self._last_info

    # -- execution -----------------------------------------------------------------------------

    async def execute_activity(
        self,
        activity: ActivityDefinition[Any, Any] | str | Callable[..., Any],
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """Run ``activity`` (a definition, a registered name or a plain function) and return
        its result, decoded as its return annotation says.

        Raises what the activity raised (or :class:`~cadenza.error.ActivityFailure` when the
        executor itself failed it: undecodable arguments, an unencodable result), and
        :class:`~cadenza.error.ActivityCancelledError` when it was cancelled. An activity that
        called ``activity.complete_async()`` returns ``None`` (see :attr:`completed_async`).
        """
        definition = self._resolve(activity)
        payload = self._converter.to_data(definition.signature.bind(args, kwargs))
        task = self._task(definition, payload)
        with self._lock:
            self._heartbeats = []
            self._raised = None
            self._completed_async = False
            self._loop = asyncio.get_running_loop()
        self._last_info = None
        execution = asyncio.ensure_future(
            execute_activity_task(
                self._instrumented(definition),
                task,
                converter=self._converter,
                heartbeat=self._heartbeat_response,
                heartbeat_throttle=timedelta(0),
            )
        )
        try:
            if self._test_timeout is None:
                outcome = await execution
            else:
                outcome = await self._within_test_timeout(execution, definition.name)
        finally:
            with self._lock:
                self._running = None
                self._cancel_requested = False
                raised, self._raised = self._raised, None
        if outcome.kind == "completed":
            return self._converter.from_data(outcome.result, [definition.result_type])[0]
        if outcome.kind == "async":
            self._completed_async = True
            return None
        if outcome.kind == "cancelled":
            if isinstance(raised, ActivityCancelledError):
                raise raised
            raise ActivityCancelledError(*self._all_values(outcome.details))
        if raised is not None and not isinstance(raised, ActivityCancelledError):
            raise raised
        raise ActivityFailure(
            f"activity {definition.name!r} failed: {outcome.reason}",
            outcome.details,
            reason=outcome.reason or "",
        )

    def close(self) -> None:
        """Nothing to release (sync activities use the loop's default executor); for ``with``."""

    def __enter__(self) -> TestActivityEnvironment:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> TestActivityEnvironment:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------------

    def _resolve(
        self, activity: ActivityDefinition[Any, Any] | str | Callable[..., Any]
    ) -> ActivityDefinition[Any, Any]:
        if isinstance(activity, str):
            return self._registry.get_activity(activity)
        return ActivityDefinition.wrap(activity)

    def _task(
        self, definition: ActivityDefinition[Any, Any], payload: str | None
    ) -> ActivityTaskInput:
        now = datetime.now(UTC)
        return ActivityTaskInput(
            task_token=self._task_token
            or _fake_task_token(self._domain, self._workflow_id, self._run_id, self._attempt),
            activity_id=self._activity_id,
            activity_type=definition.name,
            input=payload,
            workflow_id=self._workflow_id,
            run_id=self._run_id,
            workflow_type=self._workflow_type,
            domain=self._domain,
            task_list=self._task_list,
            attempt=self._attempt,
            scheduled_timestamp=now,
            started_timestamp=now,
            heartbeat_details=self._seeded_details,
            **self._timeouts,
        )

    def _instrumented(
        self, definition: ActivityDefinition[Any, Any]
    ) -> ActivityDefinition[Any, Any]:
        """``definition`` behind a wrapper reporting to this environment (see the module doc).

        Name, signature and kind (async or sync) are the original's, so the executor decodes,
        runs and cancels it exactly as it would the original.
        """
        fn: Callable[..., Any]
        if definition.is_async:

            async def run_async(*args: Any) -> Any:
                self._attach(definition)
                try:
                    return await definition.invoke(list(args))
                except Exception as error:
                    self._raised = error
                    raise

            fn = run_async
        else:

            def run_sync(*args: Any) -> Any:
                self._attach(definition)
                try:
                    return definition.invoke(list(args))
                except Exception as error:
                    self._raised = error
                    raise

            fn = run_sync
        return ActivityDefinition(
            fn, name=definition.name, signature=definition.signature, is_async=definition.is_async
        )

    def _attach(self, definition: ActivityDefinition[Any, Any]) -> None:
        """Runs first in the attempt's context: hook the environment into it."""
        context = ActivityContext.current()
        self._last_info = context.info()
        ActivityContext._var.set(_RecordingContext(context, self))
        if not isinstance(context, _Context):  # the executor's own: nothing else runs here
            return
        with self._lock:
            self._running = context
            self._running_async = definition.is_async
            cancel_now, loop = self._cancel_requested, self._loop
        if cancel_now and loop is not None:
            _request_cancel(context, loop, definition.is_async)

    def _record_heartbeat(self, details: tuple[Any, ...]) -> None:
        payload = self._converter.to_data(list(details))
        with self._lock:
            self._heartbeats.append(payload)

    async def _heartbeat_response(self, payload: str | None) -> bool:
        """The executor's heartbeat transport: ``True`` asks the activity to stop."""
        with self._lock:
            return self._cancel_requested

    async def _within_test_timeout(self, execution: asyncio.Future[Any], name: str) -> Any:
        assert self._test_timeout is not None
        try:
            return await asyncio.wait_for(
                asyncio.shield(execution), self._test_timeout.total_seconds()
            )
        except TimeoutError:
            self.cancel()
            execution.cancel()
            with contextlib.suppress(BaseException):
                await execution
            raise TimeoutError(
                f"activity {name!r} did not finish within {self._test_timeout}"
            ) from None

    def _all_values(self, payload: str | None) -> list[Any]:
        if not payload:
            return []
        counter = getattr(self._converter, "count", None)
        count = int(counter(payload)) if callable(counter) else 1
        return self._converter.from_data(payload, [None] * count)


class _RecordingContext(ActivityContext):
    """The attempt's context as activity code sees it: the executor's, heartbeats counted."""

    def __init__(self, inner: ActivityContext, env: TestActivityEnvironment) -> None:
        self._inner = inner
        self._env = env

    def info(self) -> ActivityInfo:
        return self._inner.info()

    def heartbeat(self, *details: Any) -> None:
        self._env._record_heartbeat(details)
        self._inner.heartbeat(*details)

    def heartbeat_details(self, *types: Any) -> list[Any]:
        return self._inner.heartbeat_details(*types)

    def is_cancelled(self) -> bool:
        return self._inner.is_cancelled()

    def wait_for_cancelled(self, timeout: timedelta | None) -> bool:
        return self._inner.wait_for_cancelled(timeout)

    def complete_async(self) -> None:
        self._inner.complete_async()


def _request_cancel(context: _Context, loop: asyncio.AbstractEventLoop, is_async: bool) -> None:
    """What the executor does when a heartbeat response asks for cancellation.

    For a sync activity that only sets a thread-safe event; an async one's task must be
    cancelled on its own loop.
    """
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if not is_async or running is loop:
        context._request_cancel()
    else:
        loop.call_soon_threadsafe(context._request_cancel)


def _fake_task_token(domain: str, workflow_id: str, run_id: str, attempt: int) -> str:
    """A token shaped like the service's (signed JSON of the task's coordinates)."""
    body = json.dumps(
        [domain, workflow_id, run_id, "activity", 5, attempt], separators=(",", ":")
    ).encode()
    signature = hmac.new(_TOKEN_KEY, body, hashlib.sha256).digest()[:20]
    return f"{_b64(body)}.{_b64(signature)}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
