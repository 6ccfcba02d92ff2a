"""Workers: poll a task list's queues and run decision and activity tasks.

``async with Worker(client, "orders", registry):`` polls the task list's decision and activity
queues (SQS long polling, straight to the queue whose endpoint the API reports), runs tasks with
bounded concurrency and, on exit, stops polling and lets the tasks in hand finish. The same
processing code serves Lambda: ``lambda_handler(registry)`` turns SQS batches into tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack

import boto3
import botocore.exceptions
from botocore.config import Config

from ._tasks import (
    DEFAULT_CACHED_WORKFLOWS,
    Outcome,
    WorkflowCache,
    process_activity,
    process_decision,
    process_query,
)
from .aws.tasklists import ReceivedMessage, SqsTaskLists
from .client import Client
from .core import DecisionTask, QueryTask, TaskKind
from .core.records import EagerActivity, HandedDecision
from .error import ApiUnreachableError

__all__ = ["Worker", "WorkerOptions", "WorkerOptionsDict"]

logger = logging.getLogger("cadenza.worker")

#: Cadence's default decision task timeout (task_start_to_close_timeout).
DEFAULT_DECISION_TASK_TIMEOUT = 10

#: What a task in hand meets when the stack cannot be reached (a stopped ``cadenza dev``, a
#: network outage): no connection to the API (the client's retries spent), or to SQS
#: (botocore's, spent). An outage, reported in one line; anything else is a bug, with its
#: traceback.
UNREACHABLE: tuple[type[Exception], ...] = (
    ApiUnreachableError,
    botocore.exceptions.ConnectionError,  # EndpointConnectionError, ConnectTimeoutError, ...
    botocore.exceptions.HTTPClientError,  # ConnectionClosedError, ReadTimeoutError, ...
)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerOptions:
    """Options of a worker; the names are the Cadence Python client's where it has them."""

    max_concurrent_activity_execution_size: int = 1000
    max_concurrent_decision_task_execution_size: int = 1000
    #: Most activity starts per second for this worker (0: no limit).
    task_list_activities_per_second: float = 0.0
    #: Concurrent long polls per kind. One is the cheapest (every empty poll is billed).
    activity_task_pollers: int = 1
    decision_task_pollers: int = 1
    disable_workflow_worker: bool = False
    disable_activity_worker: bool = False
    #: Recorded in history as who ran each task (default: the client's identity).
    identity: str | None = None
    #: SQS long-poll wait; longer is cheaper (fewer empty receives), shorter stops faster
    #: (exit waits for the receive in progress so no task is left hidden). Default: 20 s in
    #: AWS, 1 s against an emulator.
    poll_wait_seconds: int | None = None
    #: How long exit waits for tasks in hand before abandoning them (SQS redelivers them).
    shutdown_timeout_seconds: float = 30.0
    #: Visibility of a received task; running activities extend it while they work.
    visibility_timeout_seconds: int = 30
    #: Runs kept in memory between their decision tasks (sticky execution): a task of a run
    #: held reads only the events since the last one and continues its instance instead of
    #: replaying the whole history. Least recently used runs are evicted; 0 keeps none.
    max_cached_workflows: int = DEFAULT_CACHED_WORKFLOWS
    #: Eager execution: a decision that schedules activities of this task list takes them
    #: in its completion's answer (when activity slots are free), and an activity's result
    #: that schedules a decision task here gets it back (when a decision slot is free),
    #: instead of a round trip through the queue each. True sends every task through its queue.
    disable_eager_execution: bool = False

    def __post_init__(self) -> None:
        for name in ("max_concurrent_activity_execution_size",
                     "max_concurrent_decision_task_execution_size",
                     "activity_task_pollers", "decision_task_pollers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_cached_workflows < 0:
            raise ValueError("max_cached_workflows cannot be negative")
        if self.task_list_activities_per_second < 0:
            raise ValueError("task_list_activities_per_second cannot be negative")


class WorkerOptionsDict(TypedDict, total=False):
    """The keyword options of ``Worker(...)``: :class:`WorkerOptions`' fields, typed so that a
    misspelled option is a type error in an IDE or mypy (and a ``TypeError`` at run time).
    tests/unit/test_typing.py keeps the two lists equal."""

    max_concurrent_activity_execution_size: int
    max_concurrent_decision_task_execution_size: int
    task_list_activities_per_second: float
    activity_task_pollers: int
    decision_task_pollers: int
    disable_workflow_worker: bool
    disable_activity_worker: bool
    identity: str | None
    poll_wait_seconds: int | None
    shutdown_timeout_seconds: float
    visibility_timeout_seconds: int
    max_cached_workflows: int
    disable_eager_execution: bool


class Worker:
    """Polls one task list's decision and activity queues and runs the tasks with the workflows
    and activities of ``registry``: ``async with Worker(client, "orders", registry):`` runs it
    until the block ends, ``await worker.run()`` until :meth:`close`.

    Options are :class:`WorkerOptions`' fields as keywords. When its queues cannot be polled
    (a restarted ``cadenza dev``, a network outage), the worker asks the API again where they
    are, backs off, and logs one line when the outage begins and one when it ends.
    """

    def __init__(
        self,
        client: Client,
        task_list: str,
        registry: Any,
        **options: Unpack[WorkerOptionsDict],
    ) -> None:
        if not task_list:
            raise ValueError("task_list is required")
        self._client = client
        self._task_list = task_list
        self._registry = registry
        known = set(WorkerOptions.__dataclass_fields__)
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(f"unknown worker option(s) {unknown}; known: {sorted(known)}")
        self._options = WorkerOptions(**options)
        self._identity = self._options.identity or client.identity
        self._stopping = asyncio.Event()
        self._reconnect = _Reconnect()
        self._runner: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._queues: SqsTaskLists | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._poll_wait: int | None = None
        self._cache = WorkflowCache(self._options.max_cached_workflows)
        #: The activity slots decision completions may fill at once (eager activities).
        self._eager: _EagerSlots | None = None
        #: The decision slots an activity's result may fill at once (decision hand-back).
        self._hand_back: _EagerSlots | None = None

    @property
    def client(self) -> Client:
        """The client whose API this worker completes its tasks through."""
        return self._client

    @property
    def task_list(self) -> str:
        """The task list this worker polls."""
        return self._task_list

    @property
    def registry(self) -> Any:
        """The workflows and activities this worker runs."""
        return self._registry

    @property
    def cache(self) -> WorkflowCache:
        """The runs this worker keeps between their decision tasks (sticky execution)."""
        return self._cache

    async def __aenter__(self) -> Worker:
        await self._connect()
        self._runner = asyncio.create_task(self.run())
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def _connect(self) -> None:
        if self._queues is not None:
            return
        self._reconnect = _Reconnect()
        self._queues = await self._discover(refresh=False)
        pollers = self._options.activity_task_pollers + self._options.decision_task_pollers
        self._executor = ThreadPoolExecutor(
            max_workers=pollers + 8, thread_name_prefix="cadenza-poll"
        )
        # Create the queues now, so tasks sent before the first poll have a home.
        for kind in self._kinds():
            await self._blocking(self._queues.queue_url, self._client.domain, self._task_list, kind)

    async def _discover(self, *, refresh: bool) -> SqsTaskLists:
        """The task-list queues where the API says they are now (asked again with ``refresh``:
        a restarted local stack may serve them from another endpoint, under another prefix)."""
        info = await self._client.cluster_info(refresh=refresh)
        session = boto3.session.Session()
        if info.get("emulated") and session.get_credentials() is None:
            # An emulator takes any credentials; a laptop may have none configured.
            session = boto3.session.Session(
                aws_access_key_id="local", aws_secret_access_key="local"
            )
        sqs = session.client(
            "sqs",
            region_name=info["region"],
            endpoint_url=info.get("sqs_endpoint_url"),
            config=Config(
                retries={"max_attempts": 5, "mode": "standard"},
                read_timeout=30,
                max_pool_connections=20,
            ),
        )
        self._poll_wait = self._options.poll_wait_seconds
        if self._poll_wait is None:
            self._poll_wait = 1 if info.get("emulated") else 20
        return SqsTaskLists(client=sqs, prefix=info["queue_prefix"],
                            dead_letter_arn=info.get("task_list_dlq_arn") or "")

    async def _recover(self, failed: SqsTaskLists, error: Exception) -> SqsTaskLists:
        """After a failed poll of ``failed``: find the stack again through the API, create this
        task list's queues there, and return them; between attempts, back off (capped
        exponential, full jitter). The outage is logged once, as one warning line, when it
        begins, and ends (one info line, :meth:`_Reconnect.polled`) with the first poll that
        works, however many pollers and attempts saw it: a stack that answers the API but
        still refuses polls keeps backing off, silently. Returns ``failed`` if the worker is
        stopped meanwhile."""
        state = self._reconnect
        async with state.lock:
            if self._queues is not failed and self._queues is not None:
                return self._queues  # another poller already reconnected
            if state.began is None:
                state.began = time.monotonic()
                logger.warning(
                    "worker of task list %r cannot poll its queues (%s); finding the stack "
                    "again through %s, retrying with backoff", self._task_list,
                    _one_line(error), self._client.target)
            else:
                logger.debug("worker of task list %r: poll failed again (%s)",
                             self._task_list, _one_line(error))
            while not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), state.next_pause())
                if self._stopping.is_set():
                    break
                try:
                    queues = await self._discover(refresh=True)
                    for kind in self._kinds():
                        await self._blocking(queues.queue_url, self._client.domain,
                                             self._task_list, kind)
                except asyncio.CancelledError:
                    raise
                except Exception as again:  # still down: one debug line, never a traceback
                    logger.debug("worker of task list %r: stack still unreachable (%s)",
                                 self._task_list, _one_line(again))
                    continue
                self._queues = queues
                return queues
            return failed

    def _kinds(self) -> list[TaskKind]:
        kinds = []
        if not self._options.disable_workflow_worker:
            kinds.append(TaskKind.DECISION)
        if not self._options.disable_activity_worker:
            kinds.append(TaskKind.ACTIVITY)
        return kinds

    async def _blocking(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: function(*args, **kwargs))

    async def run(self) -> None:
        """Poll until close() (or the end of ``async with``)."""
        await self._connect()
        pollers = []
        for kind in self._kinds():
            if kind is TaskKind.DECISION:
                count = self._options.decision_task_pollers
                capacity = _Capacity(self._options.max_concurrent_decision_task_execution_size)
                pace = None
                if not self._options.disable_eager_execution:
                    self._hand_back = _EagerSlots(self._task_list, capacity)
            else:
                count = self._options.activity_task_pollers
                capacity = _Capacity(self._options.max_concurrent_activity_execution_size)
                rate = self._options.task_list_activities_per_second
                pace = _Pace(rate) if rate > 0 else None
                # A paced worker takes every activity through its pace.
                if pace is None and not self._options.disable_eager_execution:
                    self._eager = _EagerSlots(self._task_list, capacity)
            pollers += [asyncio.create_task(self._poll(kind, capacity, pace))
                        for _ in range(count)]
        try:
            await self._stopping.wait()
            # Let each poller finish the receive in progress and hand back what it got: a task
            # received by an abandoned poll would stay hidden for the visibility timeout.
            await asyncio.wait(pollers, timeout=(self._poll_wait or 0) + 5)
        finally:
            for poller in pollers:
                poller.cancel()
            await asyncio.gather(*pollers, return_exceptions=True)

    async def close(self) -> None:
        """Stop polling, let the tasks in hand finish (up to ``shutdown_timeout_seconds``;
        SQS redelivers any abandoned), and release the worker's threads."""
        self._stopping.set()
        if self._runner is not None:
            await asyncio.gather(self._runner, return_exceptions=True)
            self._runner = None
        if self._in_flight:
            _, pending = await asyncio.wait(
                self._in_flight, timeout=self._options.shutdown_timeout_seconds
            )
            for task in pending:
                task.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self._queues = None
        self._reconnect.closed(self._task_list)

    async def _poll(self, kind: TaskKind, capacity: _Capacity, pace: _Pace | None) -> None:
        assert self._queues is not None
        queues = self._queues
        while not self._stopping.is_set():
            if pace is not None:
                await pace.wait()
            # One SQS receive returns at most 10; a paced poller takes one at a time.
            free = await capacity.take_up_to(1 if pace is not None else 10)
            # A decision task is held for its task timeout only, so the task of a worker that
            # died or hangs goes to another worker once that passes; an activity's message is
            # kept invisible while it runs (its own timeouts are the engine's).
            visibility = (DEFAULT_DECISION_TASK_TIMEOUT if kind is TaskKind.DECISION
                          else self._options.visibility_timeout_seconds)
            try:
                messages = await self._blocking(
                    queues.receive,
                    self._client.domain,
                    self._task_list,
                    kind,
                    max_messages=free,
                    wait_seconds=self._poll_wait,
                    visibility_timeout=visibility,
                )
            except asyncio.CancelledError:
                raise
            except Exception as error:
                capacity.give_back(free)
                queues = await self._recover(queues, error)
                continue
            else:
                self._reconnect.polled(self._task_list)
            capacity.give_back(free - len(messages))
            if self._stopping.is_set():
                # Received while stopping: hand them straight back instead of hiding them.
                for message in messages:
                    with contextlib.suppress(Exception):
                        await self._blocking(queues.retry_later, message, 0)
                capacity.give_back(len(messages))
                return
            for message in messages:
                task = asyncio.create_task(self._handle(kind, message, capacity))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)

    async def _handle(self, kind: TaskKind, message: ReceivedMessage, capacity: _Capacity) \
            -> None:
        assert self._queues is not None
        queues = self._queues
        keeper = None
        task = message.message.task
        try:
            if isinstance(task, QueryTask):
                outcome = await process_query(
                    self._client, self._registry, message.message,
                    converter=self._client.data_converter, cache=self._cache,
                )
            elif isinstance(task, DecisionTask):
                if task.start_to_close_timeout_seconds != DEFAULT_DECISION_TASK_TIMEOUT:
                    await self._blocking(queues.retry_later, message,
                                         task.start_to_close_timeout_seconds)
                outcome = await process_decision(
                    self._client, self._registry, message.message,
                    converter=self._client.data_converter, receive_count=message.receive_count,
                    identity=self._identity, cache=self._cache, eager=self._eager,
                )
            else:
                keeper = asyncio.create_task(self._keep_invisible(message))
                outcome = await process_activity(
                    self._client, self._registry, message.message,
                    converter=self._client.data_converter, identity=self._identity,
                    hand_back=self._hand_back,
                )
            self._follow(outcome)
            await self._finish(queues, message, outcome)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                queues.retry_later(message, 0)
            raise
        except UNREACHABLE as error:
            # The stack went away while this task ran (or its answer was being sent). Nothing
            # is lost: its message is neither deleted nor handed back (SQS is likely out of
            # reach too), so it stays hidden until its visibility timeout ends and SQS delivers
            # it again, to this worker or another. An answer the engine did record makes that
            # copy stale (dropped); one it did not is worked again (an activity runs again:
            # at least once, as after a crash); a message gone with the stack leaves the run
            # to the engine's own timeouts. An outage, not a bug: a line, no traceback.
            self._reconnect.unanswered(
                self._task_list, f"{kind} task of workflow {task.workflow_id!r}", error,
                fate="its message stays in its queue, which delivers it again")
        except Exception:
            # The engine refused unexpectedly, or a bug: SQS redelivers the task.
            logger.exception("%s task failed; it will be redelivered", kind)
        finally:
            if keeper is not None:
                keeper.cancel()
            capacity.give_back(1)

    def _track(self, task: asyncio.Task[None]) -> None:
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    def _follow(self, outcome: Outcome) -> None:
        """Run what a task's answer handed to this worker: the activities a decision started
        eagerly, the decision task an activity's result scheduled (each holds its slot)."""
        for eager in outcome.eager:
            self._track(asyncio.create_task(self._run_eager(eager)))
        if outcome.handed is not None:
            self._track(asyncio.create_task(self._run_handed(outcome.handed)))

    async def _run_eager(self, eager: EagerActivity) -> None:
        """Run an activity the decision completion started for this worker (no message to
        delete or keep hidden: if this worker dies, its start-to-close deadline retries it)."""
        assert self._eager is not None
        try:
            outcome = await process_activity(
                self._client, self._registry, eager.message,
                converter=self._client.data_converter, identity=self._identity,
                started=eager.start, hand_back=self._hand_back,
            )
            if outcome.note:
                logger.info("%s", outcome.note)
            self._follow(outcome)
        except UNREACHABLE as error:  # an outage: no message to keep; its deadline retries it
            self._reconnect.unanswered(
                self._task_list, f"eager activity task of workflow "
                f"{eager.message.task.workflow_id!r}", error,
                fate="its start-to-close timeout retries it")
        except Exception:
            logger.exception("eager activity %s failed; its timeout will retry it",
                             eager.message.task.scheduled_event_id)
        finally:
            self._eager.release(1)

    async def _run_handed(self, handed: HandedDecision) -> None:
        """Decide a task handed back with an activity's result (no message: if this worker
        fails or dies with it, the stream's redrive has sent it to its queue)."""
        assert self._hand_back is not None
        try:
            outcome = await process_decision(
                self._client, self._registry, handed.message,
                converter=self._client.data_converter, identity=self._identity,
                cache=self._cache, eager=self._eager, handed=handed,
            )
            if outcome.note:
                logger.info("%s", outcome.note)
            self._follow(outcome)
        except UNREACHABLE as error:  # an outage: the stream's redrive queued the task too
            self._reconnect.unanswered(
                self._task_list, f"handed-back decision task of workflow "
                f"{handed.message.task.workflow_id!r}", error, fate="its queue has it")
        except Exception:
            logger.exception("handed-back decision task of %s failed; its queue has it",
                             handed.message.task.workflow_id)
        finally:
            self._hand_back.release(1)

    async def _finish(self, queues: SqsTaskLists, message: ReceivedMessage, outcome: Outcome) \
            -> None:
        if outcome.note:
            logger.info("%s", outcome.note)
        if outcome.done:
            await self._blocking(queues.delete, message)
        else:
            await self._blocking(queues.retry_later, message, outcome.retry_after)

    async def _keep_invisible(self, message: ReceivedMessage) -> None:
        """Extend a running activity's message so SQS does not hand it to another worker."""
        assert self._queues is not None
        period = max(1, self._options.visibility_timeout_seconds // 2)
        while True:
            await asyncio.sleep(period)
            with contextlib.suppress(Exception):
                await self._blocking(
                    self._queues.retry_later, message, self._options.visibility_timeout_seconds
                )


class _Reconnect:
    """A worker's outage: its pollers reconnect one at a time, the backoff grows from one
    attempt to the next (and across reconnections that did not make polls work again), and
    the outage ends with the first poll that works."""

    #: The backoff's first and longest pause, in seconds (each pause is drawn from 0 to it).
    FIRST_PAUSE = 0.5
    LONGEST_PAUSE = 10.0

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        #: When the current outage began (monotonic seconds); None while polls work.
        self.began: float | None = None
        #: Tasks in hand the outage kept from being answered (told with its end).
        self.unanswered_tasks = 0
        self._ceiling = self.FIRST_PAUSE

    def next_pause(self) -> float:
        """The pause before the next attempt: full jitter under a doubling, capped ceiling."""
        pause = random.uniform(0, self._ceiling)
        self._ceiling = min(self.LONGEST_PAUSE, self._ceiling * 2)
        return pause

    def polled(self, task_list: str) -> None:
        """A poll worked: an outage, if there was one, is over (logged once)."""
        if self.began is None:
            return
        logger.info("worker of task list %r reconnected after %.1f s%s", task_list,
                    time.monotonic() - self.began, self._unanswered_note())
        self.began = None
        self._ceiling = self.FIRST_PAUSE

    def unanswered(self, task_list: str, task: str, error: BaseException, *, fate: str) \
            -> None:
        """A task in hand could not be finished because the stack is out of reach: counted
        into the outage under way (its end tells how many), else one warning line (the
        pollers have not noticed yet, or only the API is down). Never a traceback."""
        if self.began is not None:
            self.unanswered_tasks += 1
            logger.debug("worker of task list %r: %s not finished (%s); %s", task_list,
                         task, _one_line(error), fate)
            return
        logger.warning("worker of task list %r: %s not finished, the stack is out of reach "
                       "(%s); %s", task_list, task, _one_line(error), fate)

    def closed(self, task_list: str) -> None:
        """The worker stopped during an outage: tell the tasks it counted (one line)."""
        if self.began is not None and self.unanswered_tasks:
            logger.info("worker of task list %r stopped while the stack was out of reach%s",
                        task_list, self._unanswered_note())
            self.unanswered_tasks = 0

    def _unanswered_note(self) -> str:
        count, self.unanswered_tasks = self.unanswered_tasks, 0
        if not count:
            return ""
        return (f"; {count} task{'s' if count != 1 else ''} in hand could not be finished "
                "meanwhile (their queues, or timeouts, deliver them again)")


def _one_line(error: BaseException) -> str:
    """An error as one short line: its type and the first line of its message."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:200]}" if text else type(error).__name__


class _Capacity:
    """How many more tasks a poller may hold; polling waits while there is no room."""

    def __init__(self, limit: int) -> None:
        self._free = limit
        self._room = asyncio.Event()
        self._room.set()

    async def take_up_to(self, most: int) -> int:
        while self._free <= 0:
            self._room.clear()
            await self._room.wait()
        taken = min(most, self._free)
        self._free -= taken
        return taken

    def take_now(self, most: int) -> int:
        """Take up to ``most`` without waiting (an eager task only runs if there is room)."""
        taken = max(0, min(most, self._free))
        self._free -= taken
        return taken

    def give_back(self, count: int) -> None:
        if count > 0:
            self._free += count
            self._room.set()


class _EagerSlots:
    """The activity slots of a worker, as decision completions reserve them (eager tasks)."""

    def __init__(self, task_list: str, capacity: _Capacity) -> None:
        self.task_list = task_list
        self._capacity = capacity

    def reserve(self, most: int) -> int:
        return self._capacity.take_now(most)

    def release(self, count: int) -> None:
        self._capacity.give_back(count)


class _Pace:
    """Spaces task starts ``1 / rate`` seconds apart (task_list_activities_per_second)."""

    def __init__(self, rate: float, *, clock: Callable[[], float] | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._interval = 1.0 / rate
        self._next = 0.0
        self._clock = clock
        self._sleep = sleep

    async def wait(self) -> None:
        now = self._clock() if self._clock else asyncio.get_running_loop().time()
        start = max(now, self._next)
        self._next = start + self._interval
        if start > now:
            await self._sleep(start - now)
