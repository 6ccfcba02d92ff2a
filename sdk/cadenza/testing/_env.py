"""TestWorkflowEnvironment: the real engine in memory, in virtual time.

Nothing here reimplements the engine. ``env.client`` is a real :class:`~cadenza.Client` whose
transport calls the HTTP API's routes (``cadenza.service.routes``) in-process; behind them runs
the real :class:`~cadenza.service.WorkflowService` over in-memory adapters of its ports
(``_memory.py``); tasks are run by the same code polling and Lambda workers use
(``cadenza._tasks``); the history stream's consumer (``WorkflowService.on_committed``) sees
every commit as it lands. So a history written here is the history the stack would write.

Time is virtual. It moves when the test says so (``await env.sleep(...)``), and, while a client
call waits for a run to close and nothing but timers can move any run, it skips to the next
timer. It never moves while an activity is running (activities are real code in real time)
unless the test sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from .. import _tasks
from .._activity_definition import ActivityDefinition
from .._fn_signature import FnSignature
from ..client import Client
from ..core import TaskKind, TimerTask
from ..core.records import (
    ActivityStart,
    EagerActivity,
    HandedDecision,
    OutgoingMessage,
    StoredBatch,
    TaskMessage,
)
from ..data_converter import DataConverter, DefaultDataConverter
from ..error import (
    EntityNotExistsError,
    InternalServiceError,
    ServiceError,
    WorkflowFailure,
    error_from_wire,
)
from ..service import routes
from ..service.engine import WorkflowService
from ..service.routes import ApiRequest
from ..service.tokens import TaskTokens
from ._memory import (
    InMemoryHistoryStore,
    InMemoryQueryAnswers,
    InMemoryTaskQueues,
    InMemoryVisibility,
    VirtualClock,
)

__all__ = ["TestWorkflowEnvironment"]

#: Whether the waiting call in this context lets time skip (a result wait does, a query not).
_SKIPS_TIME: contextvars.ContextVar[bool] = contextvars.ContextVar("cadenza_skips_time",
                                                                    default=False)
#: How long (real seconds) the environment waits for running activities before it treats them
#: as busy and lets an explicit sleep move time anyway.
_ACTIVITY_GRACE = 0.005


class _InProcessTransport:
    """The client's transport: the API's routes called directly, errors as over the wire."""

    def __init__(self, env: TestWorkflowEnvironment) -> None:
        self._env = env

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        env = self._env
        env._ensure_pump()
        found = routes.match(method, path)
        if found is None:
            raise InternalServiceError(f"{method} {path} answered 404: no route", status=404)
        route, path_params = found
        query = {k: _query_text(v) for k, v in (params or {}).items() if v not in (None, "")}
        request = ApiRequest(path_params=path_params, query=query, body=json)
        try:
            if route.handler is routes.get_result:
                response = await env._wait_for_result(request)
            elif route.waits:
                context = contextvars.copy_context()
                context.run(_SKIPS_TIME.set, route.path.endswith(("/result", "/history")))
                response = await asyncio.to_thread(
                    context.run, route.handler, env._service, request
                )
            else:
                response = route.handler(env._service, request)
        except ServiceError as error:
            raise error_from_wire(error.to_wire()) from None
        return response.body

    async def close(self) -> None:
        return None


def _query_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Registry:
    """The environment's view of the user's registry: mocked activities win."""

    def __init__(self, base: Any, mocks: dict[str, ActivityDefinition[Any, Any]]) -> None:
        self._base = base
        self._mocks = mocks

    def get_workflow(self, name: str) -> Any:
        return self._base.get_workflow(name)

    def get_activity(self, name: str) -> Any:
        mock = self._mocks.get(name)
        return mock if mock is not None else self._base.get_activity(name)

    @property
    def workflows(self) -> Any:
        return self._base.workflows

    @property
    def activities(self) -> Any:
        return {**dict(self._base.activities), **self._mocks}


class TestWorkflowEnvironment:
    """Run workflows on the real engine in memory, with time under the test's control.

    ``with TestWorkflowEnvironment(registry) as env:`` (or ``async with``), then use
    ``env.client`` as you would a client of a deployed stack. The registry's workflows and
    activities serve every task list; :meth:`on_activity` replaces an activity by a mock,
    :meth:`stop_worker` takes a task list's worker away (its tasks wait in the queue).
    """

    __test__ = False  # not a pytest test class despite its name

    def __init__(
        self,
        registry: Any,
        *,
        domain: str = "default",
        task_list: str = "default",
        start_time: datetime | None = None,
        data_converter: DataConverter | None = None,
        identity: str = "test-worker",
    ) -> None:
        self._registry_base = registry
        self._mocks: dict[str, ActivityDefinition[Any, Any]] = {}
        self._registry = _Registry(registry, self._mocks)
        self.domain = domain
        self.task_list = task_list
        self._identity = identity
        self._converter = data_converter or DefaultDataConverter()
        self._clock = VirtualClock(start_time)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._queues = InMemoryTaskQueues(self._clock, self._notify)
        self._store = InMemoryHistoryStore(on_commit=self._committed)
        self._service = WorkflowService(
            store=self._store,
            queues=self._queues,
            visibility=InMemoryVisibility(),
            answers=InMemoryQueryAnswers(),
            tokens=TaskTokens("cadenza-testing"),
            clock=self._clock.now,
            sleep=self._wait_for_progress,
        )
        #: The runs the environment's worker keeps between decision tasks (sticky
        #: execution, as a deployed worker does).
        self.workflow_cache = _tasks.WorkflowCache()
        self._stopped: set[str] = set()
        self._running: set[asyncio.Task[None]] = set()
        # Progress made by the pump, for client calls waiting in threads.
        self._progress = threading.Condition()
        self._generation = 0
        #: Waiting calls that let time skip, by the progress generation they last saw: time
        #: skips only for one that has looked at the newest state and still waits.
        self._skipping: dict[int, int] = {}
        self._sleeps: list[tuple[int, asyncio.Future[None]]] = []
        #: Set by the pump whenever it moves, for result waits on the event loop.
        self._moved: asyncio.Event | None = None
        self._closed = False
        self.client = Client(domain=domain, transport=_InProcessTransport(self),
                             data_converter=self._converter, identity="test-client")

    # -- context managers ----------------------------------------------------------------------

    def __enter__(self) -> TestWorkflowEnvironment:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    async def __aenter__(self) -> TestWorkflowEnvironment:
        self._ensure_pump()
        return self

    async def __aexit__(self, *_: object) -> None:
        pump = self._pump_task
        self.close()
        if pump is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump

    def close(self) -> None:
        self._closed = True
        for task in list(self._running):
            task.cancel()
        if self._pump_task is not None:
            self._pump_task.cancel()
        with self._progress:
            self._generation += 1
            self._progress.notify_all()
        self.workflow_cache.clear()

    # -- what tests use ------------------------------------------------------------------------

    @property
    def service(self) -> WorkflowService:
        """The engine's service behind the client (for tests that look underneath)."""
        return self._service

    def now(self) -> datetime:
        """The environment's current (virtual) time."""
        return self._clock.now()

    async def sleep(self, duration: timedelta | float) -> None:
        """Move time forward by exactly ``duration``, firing what falls due in order and
        letting the work it causes run in between."""
        seconds = duration.total_seconds() if isinstance(duration, timedelta) else duration
        if seconds < 0:
            raise ValueError("cannot sleep a negative duration")
        self._ensure_pump()
        assert self._loop is not None
        done: asyncio.Future[None] = self._loop.create_future()
        self._sleeps.append((self._clock.ms + round(seconds * 1000), done))
        self._notify()
        await done

    def on_activity(
        self,
        activity: str | ActivityDefinition[Any, Any] | Callable[..., Any],
        *,
        result: Any = None,
        fn: Callable[..., Any] | None = None,
    ) -> None:
        """Replace an activity: it returns ``result``, or runs ``fn`` (sync or async) with the
        activity's arguments. Unmocked activities run their real code."""
        name, original = self._activity_of(activity)
        if fn is None:
            value = result

            def fixed(*_: Any, **__: Any) -> Any:
                return value

            target: Callable[..., Any] = fixed
        else:
            target = fn
        signature = original.signature if original is not None else FnSignature.of(target)
        self._mocks[name] = ActivityDefinition(
            target, name=name, signature=signature, is_async=inspect.iscoroutinefunction(target)
        )

    def stop_worker(self, task_list: str) -> None:
        """No worker polls ``task_list`` any more: its tasks wait (schedule-to-start runs)."""
        self._stopped.add(task_list)

    def start_worker(self, task_list: str) -> None:
        self._stopped.discard(task_list)
        self._notify()

    async def get_workflow_result(
        self, result_type: Any = None, workflow_id: str = "", run_id: str = ""
    ) -> Any:
        return await self.client.get_workflow_result(
            self._workflow_id(workflow_id), run_id, result_type
        )

    async def get_workflow_error(self, workflow_id: str = "", run_id: str = "") -> WorkflowFailure:
        """The error the run closed with; AssertionError if it completed."""
        try:
            await self.client.get_workflow_result(self._workflow_id(workflow_id), run_id)
        except WorkflowFailure as failure:
            return failure
        raise AssertionError("the workflow completed without an error")

    def is_workflow_completed(self, workflow_id: str = "", run_id: str = "") -> bool:
        batch = self._store.latest(self.domain, self._workflow_id(workflow_id), run_id)
        return batch is not None and not batch.state.is_open

    # -- internals -----------------------------------------------------------------------------

    def _workflow_id(self, workflow_id: str) -> str:
        if workflow_id:
            return workflow_id
        latest = self._store.newest_workflow_id(self.domain)
        if latest is None:
            raise EntityNotExistsError("no workflow was started in this environment")
        return latest

    def _activity_of(
        self, activity: str | ActivityDefinition[Any, Any] | Callable[..., Any]
    ) -> tuple[str, ActivityDefinition[Any, Any] | None]:
        if isinstance(activity, str):
            try:
                return activity, self._registry_base.get_activity(activity)
            except KeyError:
                return activity, None
        definition = ActivityDefinition.wrap(activity)
        return definition.name, definition

    def _committed(self, batch: StoredBatch) -> None:
        # The history stream's consumer, run as the commit lands (the stream is instant here,
        # so listings are never behind): redrive of the outbox, visibility.
        self._service.on_committed(batch)

    def _notify(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            wake.set()
        else:
            loop.call_soon_threadsafe(wake.set)

    def _ensure_pump(self) -> None:
        loop = asyncio.get_running_loop()
        if self._pump_task is not None and self._loop is loop and not self._pump_task.done():
            return
        if self._closed:
            raise RuntimeError("this TestWorkflowEnvironment is closed")
        self._loop = loop
        self._wake = asyncio.Event()
        self._pump_task = loop.create_task(self._pump(), name="cadenza-test-environment")

    def _wait_for_progress(self, seconds: float) -> None:
        """The service's sleep while a call waits (in a thread): until the pump moves."""
        skips = _SKIPS_TIME.get()
        with self._progress:
            generation = self._generation
            if skips:
                self._skipping[generation] = self._skipping.get(generation, 0) + 1
            self._notify()
            try:
                self._progress.wait_for(
                    lambda: self._generation != generation or self._closed,
                    timeout=max(seconds, 0.001),
                )
            finally:
                if skips:
                    left = self._skipping[generation] - 1
                    if left:
                        self._skipping[generation] = left
                    else:
                        del self._skipping[generation]

    def _progressed(self) -> None:
        with self._progress:
            self._generation += 1
            self._progress.notify_all()
        if self._moved is not None:
            self._moved.set()

    async def _wait_for_result(self, request: ApiRequest) -> routes.ApiResponse:
        """A result call's long poll, on the event loop: read, and while the run is open wait
        for the pump to move (letting time skip), up to the call's wait in real seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(max(request.number("wait_seconds", 0), 0.0), 25.0)
        now_request = ApiRequest(request.path_params, {**request.query, "wait_seconds": "0"},
                                 request.body)
        while True:
            response = routes.get_result(self._service, now_request)
            remaining = deadline - loop.time()
            if response.body.get("status") != "OPEN" or remaining <= 0 or self._closed:
                return response
            if self._moved is None:
                self._moved = asyncio.Event()
            moved = self._moved
            moved.clear()
            generation = self._generation
            self._skipping[generation] = self._skipping.get(generation, 0) + 1
            self._notify()
            try:
                await asyncio.wait_for(moved.wait(), timeout=remaining)
            except TimeoutError:
                pass
            finally:
                left = self._skipping.get(generation, 1) - 1
                if left:
                    self._skipping[generation] = left
                else:
                    self._skipping.pop(generation, None)

    def _served(self, task_list: str) -> bool:
        return task_list not in self._stopped

    async def _pump(self) -> None:
        assert self._wake is not None
        wake = self._wake
        while not self._closed:
            if await self._step():
                self._progressed()
                continue
            if self._sleeps:
                if self._running:
                    await asyncio.wait(self._running, timeout=_ACTIVITY_GRACE)
                    if await self._step():
                        self._progressed()
                        continue
                self._advance_for_sleep()
                self._progressed()
                continue
            if self._skipping.get(self._generation) and not self._running:
                due = self._queues.next_due()
                if due is not None:
                    self._clock.advance_to(due)
                    self._progressed()
                    continue
            wake.clear()
            if self._has_work():
                continue
            await wake.wait()

    def _has_work(self) -> bool:
        return self._queues.has_ready(self._served)

    def _advance_for_sleep(self) -> None:
        target, done = min(self._sleeps, key=lambda item: item[0])
        due = self._queues.next_due()
        if due is not None and due <= target:
            self._clock.advance_to(due)
            return
        self._clock.advance_to(target)
        self._sleeps.remove((target, done))
        if not done.done():
            done.set_result(None)

    async def _step(self) -> bool:
        """Do one unit of ready work; False when nothing is ready."""
        timers = self._queues.pop_due()
        for timer in timers:
            task = timer.task
            assert isinstance(task, TimerTask)
            self._service.fire_timer(task)
        if timers:
            return True
        ready = self._queues.take(self._served)
        if ready is None:
            return False
        if ready.task.kind is TaskKind.ACTIVITY:
            runner = asyncio.get_running_loop().create_task(self._run(ready))
            self._running.add(runner)
            runner.add_done_callback(self._activity_done)
        else:
            await self._run(ready)
        return True

    def _activity_done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        # A runner may have decided too (a decision task handed back with its activity's
        # result): that is progress a result wait must see, with no queue to show it.
        self._progressed()
        self._notify()

    def _slots(self, task_list: str) -> _EagerSlots | None:
        """The worker's slots for eager tasks of ``task_list`` (none while it is stopped)."""
        return _EagerSlots(task_list) if self._served(task_list) else None

    async def _run_activity(self, message: TaskMessage,
                            started: ActivityStart | None = None) -> _tasks.Outcome:
        return await _tasks.process_activity(
            self.client, self._registry, message, converter=self._converter,
            identity=self._identity, heartbeat_throttle=timedelta(0), started=started,
            hand_back=self._slots(message.task.task_list),
        )

    async def _decide(self, message: TaskMessage,
                      handed: HandedDecision | None = None) -> _tasks.Outcome:
        return await _tasks.process_decision(
            self.client, self._registry, message, converter=self._converter,
            identity=self._identity, offload=False, clock=self._clock.now,
            local_activity_sleep=lambda _seconds: None, cache=self.workflow_cache,
            eager=self._slots(message.task.task_list), handed=handed,
        )

    async def _follow(self, outcome: _tasks.Outcome) -> None:
        """Run what an answer handed to the worker, as a worker does: the activities a
        decision started eagerly (at once, each on its own), the decision task an activity's
        result scheduled (right away, before the pump takes the redrive's copy from the
        queue: this stream is instant, a real one reads the commit that consumed it too)."""
        loop = asyncio.get_running_loop()
        for eager in outcome.eager:
            runner = loop.create_task(self._run_eager(eager))
            self._running.add(runner)
            runner.add_done_callback(self._activity_done)
        if outcome.handed is not None:
            # No message to redeliver: the redrive sent the task to its queue.
            with contextlib.suppress(Exception):
                await self._follow(await self._decide(outcome.handed.message, outcome.handed))

    async def _run_eager(self, eager: EagerActivity) -> None:
        # No message to redeliver: a failure here is retried by the attempt's deadline.
        with contextlib.suppress(Exception):
            await self._follow(await self._run_activity(eager.message, eager.start))

    async def _run(self, message: OutgoingMessage) -> None:
        parsed = TaskMessage.parse(message.body)
        assert parsed is not None
        task = parsed.task
        try:
            if task.kind is TaskKind.QUERY:
                outcome = await _tasks.process_query(
                    self.client, self._registry, parsed, converter=self._converter,
                    clock=self._clock.now, cache=self.workflow_cache)
            elif task.kind is TaskKind.DECISION:
                outcome = await self._decide(parsed)
            else:
                outcome = await self._run_activity(parsed)
            await self._follow(outcome)
        except asyncio.CancelledError:
            raise
        except Exception:
            # As on SQS: a task whose processing failed comes back after the visibility timeout.
            self._queues.retry_later(message, 30)
            return
        if not outcome.done:
            self._queues.retry_later(message, outcome.retry_after)


class _EagerSlots:
    """The environment's worker serves every task list with unbounded slots."""

    def __init__(self, task_list: str) -> None:
        self.task_list = task_list

    def reserve(self, most: int) -> int:
        return most

    def release(self, count: int) -> None:
        """Nothing to give back: slots are unbounded."""
