"""A deterministic asyncio event loop for workflow code.

Workflow code is ordinary asyncio code (``await``, ``asyncio.gather``, ``asyncio.create_task``,
``task.cancel()``, ``asyncio.Event`` ...), but it must run the same way on every replay. This
loop has no clock, no I/O and no threads: it runs ready callbacks strictly first-in first-out
until none is left ("idle"), then hands control back to the replayer, which feeds the next
history events. The only other source of progress is :meth:`DeterministicEventLoop.poll_conditions`
for ``workflow.wait_condition`` predicates, evaluated in registration order when idle.

Anything that needs real time or I/O raises at once with a message naming the workflow API
to use instead, rather than hanging or behaving differently on replay.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import logging
from asyncio import events
from collections.abc import Callable, Coroutine, Generator
from typing import Any, TypeVar

__all__ = ["DeterministicEventLoop", "WorkflowStuckError"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Callbacks one ``run_until_idle`` may run before the workflow is declared stuck in a loop.
_MAX_STEPS = 1_000_000

_TIME_MESSAGE = (
    "workflow code cannot use real time: {what} is not deterministic. Use "
    "`await workflow.sleep(timedelta(...))` for durable timers, "
    "`await workflow.wait_condition(predicate, timeout=...)` to wait with a timeout, and "
    "`workflow.now()` for the current time"
)
_IO_MESSAGE = "workflow code cannot do I/O or use threads ({what}); move it into an activity"


class WorkflowStuckError(RuntimeError):
    """Workflow code keeps the loop busy without ever waiting on history (a busy loop)."""


class _Condition:
    __slots__ = ("future", "predicate")

    def __init__(self, predicate: Callable[[], bool], future: asyncio.Future[None]) -> None:
        self.predicate = predicate
        self.future = future


class DeterministicEventLoop(asyncio.AbstractEventLoop):
    """FIFO event loop without time or I/O; see the module docstring."""

    def __init__(self) -> None:
        self._ready: collections.deque[asyncio.Handle] = collections.deque()
        self._conditions: list[_Condition] = []
        self._running = False
        self._closed = False
        self._debug = False
        self._callback_errors: list[BaseException] = []
        self._tasks: list[asyncio.Task[Any]] = []

    # -- running -----------------------------------------------------------------------------

    def run_until_idle(self) -> None:
        """Run ready callbacks (and satisfied conditions) until nothing can make progress.

        An exception escaping a callback (not a task: tasks keep theirs) is re-raised here,
        because it means the replayer itself hit an error while resuming workflow code.
        """
        self._check_closed()
        if self._running:
            raise RuntimeError("the workflow event loop is already running")
        previous = events._get_running_loop()
        events._set_running_loop(self)
        self._running = True
        steps = 0
        try:
            while True:
                while self._ready:
                    handle = self._ready.popleft()
                    if handle.cancelled():
                        continue
                    handle._run()
                    if self._callback_errors:
                        error = self._callback_errors[0]
                        self._callback_errors.clear()
                        raise error
                    steps += 1
                    if steps > _MAX_STEPS:
                        raise WorkflowStuckError(
                            f"workflow code ran {_MAX_STEPS} steps without waiting for an "
                            "activity, timer, signal or condition; is it busy-looping?"
                        )
                if not self.poll_conditions():
                    return
        finally:
            self._running = False
            events._set_running_loop(previous)

    def poll_conditions(self) -> bool:
        """Resolve the first waiting condition whose predicate holds; True if one did.

        One at a time, in registration order, so that the code it resumes runs (and may change
        state) before the next predicate is evaluated.
        """
        index = 0
        while index < len(self._conditions):
            condition = self._conditions[index]
            if condition.future.done():
                del self._conditions[index]
                continue
            try:
                satisfied = bool(condition.predicate())
            except Exception as error:
                del self._conditions[index]
                condition.future.set_exception(error)
                return True
            if satisfied:
                del self._conditions[index]
                condition.future.set_result(None)
                return True
            index += 1
        return False

    def create_condition(self, predicate: Callable[[], bool]) -> asyncio.Future[None]:
        """A future resolved when ``predicate()`` becomes true (checked when the loop is idle)."""
        future: asyncio.Future[None] = self.create_future()
        self._conditions.append(_Condition(predicate, future))
        return future

    def is_running(self) -> bool:
        return self._running

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._running:
            raise RuntimeError("cannot close a running event loop")
        self._closed = True
        self._ready.clear()
        self._conditions.clear()

    def _check_closed(self) -> None:
        if self._closed:
            raise RuntimeError("the workflow event loop is closed")

    def run_forever(self) -> None:
        raise RuntimeError("the workflow event loop is driven by the replayer (run_until_idle)")

    def run_until_complete(self, future: Any) -> Any:
        raise RuntimeError("the workflow event loop is driven by the replayer (run_until_idle)")

    def stop(self) -> None:
        """Nothing to stop: the loop returns by itself when idle."""

    async def shutdown_asyncgens(self) -> None:
        return None

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        return None

    # -- scheduling ----------------------------------------------------------------------------

    def call_soon(  # type: ignore[override]
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        self._check_closed()
        handle = asyncio.Handle(callback, args, self, context)
        self._ready.append(handle)
        return handle

    def call_later(  # type: ignore[override]
        self,
        delay: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        # asyncio.sleep(0) never gets here; any real delay needs a clock.
        raise RuntimeError(
            _TIME_MESSAGE.format(
                what=f"a {delay}s asyncio delay (asyncio.sleep, wait_for with a timeout, ...)"
            )
        )

    def call_at(  # type: ignore[override]
        self,
        when: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        raise RuntimeError(_TIME_MESSAGE.format(what="loop.call_at"))

    def time(self) -> float:
        raise RuntimeError(_TIME_MESSAGE.format(what="loop.time() (asyncio.timeout, ...)"))

    def create_future(self) -> asyncio.Future[Any]:
        return asyncio.Future(loop=self)

    def create_task(  # type: ignore[override]
        self,
        coro: Coroutine[Any, Any, T] | Generator[Any, None, T],
        *,
        name: str | None = None,
        context: contextvars.Context | None = None,
    ) -> asyncio.Task[T]:
        self._check_closed()
        task: asyncio.Task[T] = asyncio.Task(coro, loop=self, name=name, context=context)
        # Pending tasks are dropped on purpose when a decision task ends.
        if hasattr(task, "_log_destroy_pending"):
            task._log_destroy_pending = False
        self._tasks.append(task)
        return task

    def tasks(self) -> list[asyncio.Task[Any]]:
        """Every task created on this loop, in creation order (deterministic, unlike a set)."""
        return list(self._tasks)

    def get_task_factory(self) -> None:  # type: ignore[override]
        return None

    def set_task_factory(self, factory: Any) -> None:
        raise RuntimeError("workflow code cannot replace the task factory")

    def call_soon_threadsafe(  # type: ignore[override]
        self, callback: Callable[..., object], *args: Any, context: Any = None
    ) -> asyncio.Handle:
        raise RuntimeError(_IO_MESSAGE.format(what="call_soon_threadsafe"))

    def run_in_executor(  # type: ignore[override]
        self, executor: Any, func: Callable[..., T], *args: Any
    ) -> Any:
        raise RuntimeError(_IO_MESSAGE.format(what="run_in_executor / asyncio.to_thread"))

    def set_default_executor(self, executor: Any) -> None:
        raise RuntimeError(_IO_MESSAGE.format(what="set_default_executor"))

    # -- errors and debugging --------------------------------------------------------------------

    def get_debug(self) -> bool:
        return self._debug

    def set_debug(self, enabled: bool) -> None:
        self._debug = enabled

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        error = context.get("exception")
        if context.get("handle") is not None and isinstance(error, BaseException):
            # A callback failed while the loop was running: surface it to the replayer.
            self._callback_errors.append(error)
            return
        # "Future exception was never retrieved" and the like: worth a debug line only.
        logger.debug("workflow event loop: %s", context.get("message"), exc_info=error)

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        self.call_exception_handler(context)

    def set_exception_handler(self, handler: Any) -> None:
        raise RuntimeError("workflow code cannot replace the exception handler")

    def get_exception_handler(self) -> None:  # type: ignore[override]
        return None

    # Everything else AbstractEventLoop declares (sockets, pipes, subprocesses, signals, DNS)
    # raises NotImplementedError by inheritance; the messages above cover the usual traps.
