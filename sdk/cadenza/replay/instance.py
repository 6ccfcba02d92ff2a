"""One workflow run being replayed: the workflow object, its event loop, its decisions.

:class:`WorkflowInstance` is the :class:`~cadenza._workflow_context.WorkflowContext` that
workflow code talks to. The replayer drives it one decision task at a time:
``begin_task`` (time, replay mode, markers recorded by the task), ``apply`` for each input
event, ``run`` until the loop is idle, then ``take_decisions`` or ``match`` against history.
Nothing here reads the clock, draws random numbers or does I/O.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
import math
import traceback
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

from cadenza._workflow_context import (
    DEFAULT_VERSION,
    ChildWorkflowFuture,
    WorkflowContext,
    WorkflowInfo,
)
from cadenza._workflow_definition import WorkflowDefinition
from cadenza.core.decisions import Decision, DecisionType
from cadenza.core.events import EventType, HistoryEvent
from cadenza.core.retry import RetryPolicy
from cadenza.data_converter import DataConverter
from cadenza.error import (
    ActivityFailure,
    ContinueAsNewError,
    NonDeterministicError,
    QueryFailedError,
)
from cadenza.replay.decisions import (
    LOCAL_ACTIVITY_MARKER,
    MUTABLE_SIDE_EFFECT_MARKER,
    SIDE_EFFECT_MARKER,
    VERSION_MARKER,
    ActivityMachine,
    CancelExternalMachine,
    ChildWorkflowMachine,
    DecisionManager,
    PendingDecision,
    SignalExternalMachine,
    TimerMachine,
    describe_event,
)
from cadenza.replay.history import DecisionBatch
from cadenza.replay.loop import DeterministicEventLoop
from cadenza.replay.stack import STACK_TRACE_QUERY, format_stacks, task_stacks

__all__ = ["LocalActivityRequest", "LocalActivityRunner", "WorkflowInstance"]

logger = logging.getLogger(__name__)
_Machine = TypeVar("_Machine")

_ACTIVITY_OPTIONS = frozenset(
    {
        "task_list",
        "schedule_to_close_timeout",
        "schedule_to_start_timeout",
        "start_to_close_timeout",
        "heartbeat_timeout",
        "retry_policy",
        "activity_id",
        "wait_for_cancellation",
    }
)
_LOCAL_ACTIVITY_OPTIONS = frozenset({"schedule_to_close_timeout", "retry_policy"})
_ACTIVITY_EVENTS: frozenset[EventType] = frozenset(
    {
        EventType.ActivityTaskStarted,
        EventType.ActivityTaskCompleted,
        EventType.ActivityTaskFailed,
        EventType.ActivityTaskTimedOut,
        EventType.ActivityTaskCanceled,
    }
)
_CHILD_EVENTS: frozenset[EventType] = frozenset(
    {
        EventType.StartChildWorkflowExecutionFailed,
        EventType.ChildWorkflowExecutionStarted,
        EventType.ChildWorkflowExecutionCompleted,
        EventType.ChildWorkflowExecutionFailed,
        EventType.ChildWorkflowExecutionCanceled,
        EventType.ChildWorkflowExecutionTimedOut,
        EventType.ChildWorkflowExecutionTerminated,
    }
)
_SIGNAL_EXTERNAL_EVENTS: frozenset[EventType] = frozenset(
    {EventType.ExternalWorkflowExecutionSignaled, EventType.SignalExternalWorkflowExecutionFailed}
)
_CANCEL_EXTERNAL_EVENTS: frozenset[EventType] = frozenset(
    {
        EventType.ExternalWorkflowExecutionCancelRequested,
        EventType.RequestCancelExternalWorkflowExecutionFailed,
    }
)
_BUILTIN_QUERY_TYPES = "__query_types"

#: Timeouts of an activity whose options give neither schedule_to_close nor start_to_close.
DEFAULT_ACTIVITY_TIMEOUTS: Mapping[str, timedelta] = {
    "schedule_to_close_timeout": timedelta(hours=1),
    "schedule_to_start_timeout": timedelta(seconds=10),
}


@dataclass(frozen=True, kw_only=True)
class LocalActivityRequest:
    """A local activity to run while the decision task is processed (first execution only).

    ``activity_id`` is its marker id (``"0"``, ``"1"``, ... in call order); ``definition`` is
    the activity definition when known (passed directly or found in the registry).
    """

    activity_id: str
    activity_type: str
    definition: Any
    input: str | None
    schedule_to_close_timeout: timedelta | None
    retry_policy: RetryPolicy | None
    workflow_id: str
    run_id: str
    workflow_type: str
    domain: str
    task_list: str


#: Runs a local activity and returns an outcome with ``kind`` ("completed", "failed", ...),
#: ``result``, ``reason`` and ``details`` (the executor's ``ActivityOutcome``).
LocalActivityRunner = Callable[[LocalActivityRequest], Any]


def failure_details(error: BaseException) -> str:
    trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return f"{error}\n{trace}"


def _seconds(value: timedelta | None, option: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, timedelta):
        raise TypeError(f"{option} must be a timedelta, not {type(value).__name__}")
    if value <= timedelta(0):
        raise ValueError(f"{option} must be greater than 0, not {value}")
    return math.ceil(value.total_seconds())


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


class _Decoded:
    """An awaitable payload future decoded as ``result_type`` (awaitable more than once)."""

    def __init__(
        self, future: asyncio.Future[str | None], converter: DataConverter, result_type: Any
    ) -> None:
        self._future = future
        self._converter = converter
        self._result_type = result_type

    def __await__(self) -> Generator[Any, None, Any]:
        payload = yield from self._future.__await__()
        return self._converter.from_data(payload, [self._result_type])[0]


class WorkflowInstance(WorkflowContext):
    def __init__(
        self,
        definition: WorkflowDefinition,
        *,
        info: WorkflowInfo,
        converter: DataConverter,
        lookup_activity: Callable[[str], Any] | None = None,
        local_activity_runner: LocalActivityRunner | None = None,
    ) -> None:
        self._definition = definition
        self._local_runner = local_activity_runner
        self._info = info
        self._converter = converter
        self._lookup_activity = lookup_activity
        # AbstractEventLoop declares I/O methods abstract for type checkers only; the loop
        # inherits their NotImplementedError bodies on purpose.
        self._loop = DeterministicEventLoop()  # type: ignore[abstract]
        self._decisions = DecisionManager()
        #: Decisions of the last live task, held until history recorded them (sticky).
        self._kept: list[PendingDecision] = []
        # Workflow code runs in this context (copied per root task), so the API functions
        # find this instance wherever the code runs.
        self._context = contextvars.Context()
        self._context.run(WorkflowContext._var.set, self)
        self._time: datetime | None = info.started_time
        self._replaying = True
        self._object: Any = None
        self._main: asyncio.Task[Any] | None = None
        self._roots: list[asyncio.Task[Any]] = []
        self._activities: dict[str, ActivityMachine] = {}
        self._activities_by_event: dict[int, ActivityMachine] = {}
        self._timers: dict[str, TimerMachine] = {}
        self._children: dict[str, ChildWorkflowMachine] = {}
        self._children_by_event: dict[int, ChildWorkflowMachine] = {}
        self._signals_by_event: dict[int, SignalExternalMachine] = {}
        self._cancels_by_event: dict[int, CancelExternalMachine] = {}
        self._activity_seq = 0
        self._timer_seq = 0
        self._child_seq = 0
        self._signal_seq = 0
        self._cancel_seq = 0
        self._side_effect_seq = 0
        self._local_seq = 0
        self._local_held = False
        self._quiet = False
        self._local_pending: list[tuple[LocalActivityRequest, asyncio.Future[str | None]]] = []
        self._markers: dict[tuple[str, str | None], str | None] = {}
        self._emitted_markers: set[tuple[str, str | None]] = set()
        self._versions: dict[str, int] = {}
        self._mutable_counts: dict[str, int] = {}
        self._mutable_last: dict[str, str | None] = {}
        self._cancel_requested = False
        self._fatal: BaseException | None = None
        self._completed = False
        self._closing = False
        self._in_query = False
        #: How each kind of input event reaches the workflow (see :meth:`apply`).
        self._routes: dict[EventType, Callable[[HistoryEvent], None]] = {
            EventType.WorkflowExecutionStarted: self._start,
            EventType.TimerFired: self._timer_fired,
            EventType.WorkflowExecutionSignaled: self._signal,
            EventType.WorkflowExecutionCancelRequested: self._cancel_requested_event,
        }
        for kinds, route in (
            (_ACTIVITY_EVENTS, self._activity_event),
            (_CHILD_EVENTS, self._child_event),
            (_SIGNAL_EXTERNAL_EVENTS, self._signal_external_event),
            (_CANCEL_EXTERNAL_EVENTS, self._cancel_external_event),
        ):
            self._routes.update(dict.fromkeys(kinds, route))

    # -- driving (called by the replayer) ----------------------------------------------------

    @property
    def completed(self) -> bool:
        """Whether the run produced its completion decision (nothing may follow)."""
        return self._completed

    def set_local_activity_runner(self, runner: LocalActivityRunner | None) -> None:
        self._local_runner = runner

    def hold_local_activities(self) -> None:
        """Never run local activities (queries): unrecorded ones simply stay pending."""
        self._local_held = True

    def prepare_query(self) -> None:
        """Replay for a query: no local activity runs and no warning about history is logged
        (the decision task that processes those events logs them)."""
        self._local_held = True
        self._quiet = True

    def begin_task(self, time: datetime, *, replaying: bool, batch: DecisionBatch | None) -> None:
        self._time = time
        self._replaying = replaying
        if batch is not None:
            # Markers this task recorded are known before its code runs: side_effect and
            # get_version read their values from them instead of recomputing.
            for event in batch.decision_events:
                if event.event_type == EventType.MarkerRecorded:
                    name = str(event.get("marker_name") or "")
                    details = event.get("details")
                    self._markers[(name, self._marker_id(details))] = details

    def apply(self, event: HistoryEvent) -> None:
        """Feed one non-decision event to the workflow (resolves futures, starts handlers)."""
        route = self._routes.get(event.event_type)
        # Anything else (ActivityTaskCancelRequested results, timeouts written by the engine,
        # search attribute updates ...) carries nothing the workflow code waits for.
        if route is not None:
            route(event)

    def _activity_event(self, event: HistoryEvent) -> None:
        machine = self._activities_by_event.get(event.get("scheduled_event_id"))
        if machine is None:
            raise NonDeterministicError(
                f"history {describe_event(event)} refers to scheduled event "
                f"{event.get('scheduled_event_id')}, which is not an activity the workflow "
                "code scheduled"
            )
        machine.handle(event)

    def _timer_fired(self, event: HistoryEvent) -> None:
        timer = self._timers.get(str(event.get("timer_id")))
        if timer is None:
            raise NonDeterministicError(
                f"history {describe_event(event)} fires a timer the workflow code never started"
            )
        timer.handle(event)

    def _cancel_requested_event(self, event: HistoryEvent) -> None:
        self._cancel_requested = True
        if self._main is not None and not self._main.done():
            self._main.cancel()

    def _child_event(self, event: HistoryEvent) -> None:
        self._initiated(self._children_by_event, event, "a child workflow the workflow code "
                        "started").handle(event)

    def _signal_external_event(self, event: HistoryEvent) -> None:
        self._initiated(self._signals_by_event, event, "a signal the workflow code sent"
                        ).handle(event)

    def _cancel_external_event(self, event: HistoryEvent) -> None:
        self._initiated(self._cancels_by_event, event, "a cancellation request the workflow "
                        "code made").handle(event)

    @staticmethod
    def _initiated(index: Mapping[int, _Machine], event: HistoryEvent, what: str) -> _Machine:
        """The machine of the initiated event an outcome event names."""
        machine = index.get(event.get("initiated_event_id"))
        if machine is None:
            raise NonDeterministicError(
                f"history {describe_event(event)} refers to initiated event "
                f"{event.get('initiated_event_id')}, which is not {what}"
            )
        return machine

    def run(self) -> None:
        """Run workflow code until it waits on history; add the completion decision if done."""
        if self._completed:
            return
        while True:
            self._loop.run_until_idle()
            if self._fatal is not None:
                raise self._fatal
            # Local activities requested meanwhile run now (or are read from their markers),
            # at the same point live and on replay, so their markers keep their order.
            if not self._resolve_local_activities():
                break
        main = self._main
        if main is not None and main.done():
            decision = self._completion_decision(main)
            self._decisions.add(PendingDecision(decision))
            self._decisions.frozen = True
            self._completed = True

    def take_decisions(self, *, keep: bool = False) -> list[Decision]:
        """The decisions made; with ``keep`` they are also held for :meth:`match_kept`, the
        check of a kept (sticky) instance against the history that recorded them."""
        taken = self._decisions.take()
        if keep:
            self._kept = taken
        return [pending.decision for pending in taken]

    def match(self, batch: DecisionBatch) -> None:
        self._decisions.match(batch.decision_events, batch.completed)

    def match_kept(self, batch: DecisionBatch) -> None:
        """Check the decisions kept by ``take_decisions(keep=True)`` against ``batch``, the
        decision task history recorded for them (their events' ids reach their machines)."""
        kept, self._kept = self._kept, []
        self._decisions.restore(kept)
        self.match(batch)

    def close(self) -> None:
        """End the run's code deterministically: close every pending coroutine, newest first.

        ``finally`` blocks run now (with workflow calls refused) instead of whenever the
        garbage collector gets to them.
        """
        self._closing = True
        self._decisions.frozen = True
        for task in reversed(self._loop.tasks()):
            if task.done():
                continue
            coroutine = task.get_coro()
            try:
                self._context.copy().run(coroutine.close)  # type: ignore[union-attr]
            except BaseException:
                logger.debug("workflow coroutine raised while being closed", exc_info=True)
        self._loop.close()

    def query(self, query_type: str, payload: str | None) -> str | None:
        """Answer a query against the current state (after replay)."""
        if query_type == _BUILTIN_QUERY_TYPES:
            return self._converter.to_data([sorted(self._definition.queries)])
        if query_type == STACK_TRACE_QUERY:  # built in, as in Cadence (replay/stack.py)
            return self._converter.to_data([format_stacks(task_stacks(self._loop.tasks()))])
        query = self._definition.queries.get(query_type)
        if query is None:
            raise QueryFailedError(
                f"workflow {self._definition.name!r} has no query {query_type!r} "
                f"(known: {sorted(self._definition.queries)})"
            )
        if self._object is None:
            raise QueryFailedError("the workflow has not started running yet")
        try:
            args = query.decode_args(self._converter, payload)
            self._in_query = True
            handler = getattr(self._object, query.method_name)
            result = self._context.copy().run(handler, *args)
            if asyncio.iscoroutine(result):
                result.close()
                raise TypeError(f"query handler {query_type!r} must not be async")
            return self._converter.to_data([result])
        except QueryFailedError:
            raise
        except Exception as error:
            raise QueryFailedError(
                f"query {query_type!r} failed: {type(error).__name__}: {error}"
            ) from error
        finally:
            self._in_query = False

    # -- events -------------------------------------------------------------------------------

    def _start(self, event: HistoryEvent) -> None:
        if self._main is not None:
            return
        self._main = self._spawn(self._run_main(event.get("input")))

    def _spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task = self._loop.create_task(coroutine, context=self._context.copy())
        self._roots.append(task)
        return task

    async def _run_main(self, payload: str | None) -> Any:
        args = self._definition.decode_input(self._converter, payload)
        self._object = self._definition.cls()
        run = self._definition.get_run_method(self._object)
        return await run(*args)

    def _signal(self, event: HistoryEvent) -> None:
        name = str(event.get("signal_name") or "")
        signal = self._definition.signals.get(name)
        if signal is None:
            self._warn(
                "workflow %s (%s) has no handler for signal %r; dropped",
                self._info.workflow_id,
                self._definition.name,
                name,
            )
            return
        try:
            args = signal.decode_args(self._converter, event.get("input"))
        except Exception as error:
            # Arguments that do not fit the handler would fail every later decision task and
            # wedge the run: the signal is dropped instead. Whether it fits depends on the
            # payload and the handler's signature only, so every replay drops it too.
            self._warn(
                "workflow %s (%s): signal %r (event %s) dropped, its arguments do not fit "
                "handler %s: %s: %s",
                self._info.workflow_id,
                self._definition.name,
                name,
                event.event_id,
                signal.method_name,
                type(error).__name__,
                error,
            )
            return
        task = self._spawn(self._run_signal(signal.method_name, args))
        task.add_done_callback(lambda done: self._signal_done(name, done))

    def _warn(self, message: str, *args: Any) -> None:
        """Log a warning about history once: when it is new, not on every replay or query."""
        if not self._replaying and not self._quiet:
            logger.warning(message, *args)

    async def _run_signal(self, method_name: str, args: list[Any]) -> None:
        if self._object is None:  # the run method failed before the object existed
            return
        result = getattr(self._object, method_name)(*args)
        if asyncio.iscoroutine(result):
            await result

    def _signal_done(self, name: str, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None and self._fatal is None and not self._closing:
            # As in the Cadence Python client: a failing signal handler fails the decision
            # task (retried after a fix) rather than the whole run.
            fatal = RuntimeError(f"signal handler {name!r} raised {type(error).__name__}: {error}")
            fatal.__cause__ = error
            self._fatal = fatal

    def _completion_decision(self, main: asyncio.Task[Any]) -> Decision:
        if main.cancelled():
            if self._cancel_requested:
                return Decision(DecisionType.CancelWorkflowExecution, {"details": None})
            error: BaseException | None = asyncio.CancelledError(
                "the workflow's run task was cancelled without a cancellation request"
            )
        else:
            error = main.exception()
        if error is None:
            return Decision(
                DecisionType.CompleteWorkflowExecution,
                {"result": self._converter.to_data([main.result()])},
            )
        if isinstance(error, NonDeterministicError):
            raise error
        if isinstance(error, ContinueAsNewError):
            info = self._info
            execution = (
                error.execution_start_to_close_timeout or info.execution_start_to_close_timeout
            )
            task = error.task_start_to_close_timeout or info.task_start_to_close_timeout
            return Decision(
                DecisionType.ContinueAsNewWorkflowExecution,
                {
                    "workflow_type": error.workflow_type or info.workflow_type,
                    "task_list": error.task_list or info.task_list,
                    "input": self._converter.to_data(list(error.workflow_args)),
                    "execution_start_to_close_timeout_seconds": _optional_seconds(execution),
                    "task_start_to_close_timeout_seconds": _optional_seconds(task),
                },
            )
        if isinstance(error, asyncio.CancelledError) and self._cancel_requested:
            return Decision(DecisionType.CancelWorkflowExecution, {"details": None})
        return Decision(
            DecisionType.FailWorkflowExecution,
            {"reason": type(error).__name__, "details": failure_details(error)},
        )

    # -- helpers ------------------------------------------------------------------------------

    def _check_usable(self, what: str) -> None:
        if self._closing:
            raise RuntimeError(f"{what}: the decision task of this workflow is over")
        if self._in_query:
            raise RuntimeError(f"{what}: query handlers must not change the workflow")

    def _fail_task(self, error: BaseException) -> BaseException:
        """Remember an error that must fail the decision task even if workflow code catches it."""
        if self._fatal is None:
            self._fatal = error
        return error

    def _marker_id(self, details: str | None) -> str | None:
        if not details:
            return None
        try:
            value = self._converter.from_data(details, [None])[0]
        except Exception:
            return None
        return None if value is None else str(value)

    def _record_marker(self, name: str, marker_id: str, details: str | None) -> None:
        def check(event: HistoryEvent) -> str | None:
            recorded = self._marker_id(event.get("details"))
            if recorded != marker_id:
                return f"marker id differs: history has {recorded!r}, the code has {marker_id!r}"
            return None

        self._emitted_markers.add((name, marker_id))
        self._decisions.add(
            PendingDecision(
                Decision(DecisionType.RecordMarker, {"marker_name": name, "details": details}),
                extra_check=check,
            )
        )

    def _marker_value(self, details: str | None, result_type: Any) -> Any:
        return self._converter.from_data(details, [None, result_type])[1]

    def _resolve_local_activities(self) -> bool:
        pending, self._local_pending = self._local_pending, []
        progressed = False
        for request, future in pending:
            if future.done():  # cancelled before it ran: nothing recorded, as live
                continue
            key = (LOCAL_ACTIVITY_MARKER, request.activity_id)
            if key in self._markers:
                details = self._markers[key]
            elif self._local_held:
                self._local_pending.append((request, future))
                continue
            elif self._replaying:
                raise self._fail_task(
                    NonDeterministicError(
                        f"local activity {request.activity_type!r} (#{request.activity_id}) has "
                        "no LocalActivity marker in history: the workflow code runs it where it "
                        "did not before"
                    )
                )
            else:
                details = self._converter.to_data(
                    [request.activity_id, self._run_local_activity(request)]
                )
            self._record_marker(LOCAL_ACTIVITY_MARKER, request.activity_id, details)
            record = self._marker_value(details, None) or {}
            if record.get("kind") == "completed":
                future.set_result(record.get("result"))
            else:
                reason = str(record.get("reason") or record.get("kind") or "")
                timeout_type = record.get("timeout_type")
                future.set_exception(
                    ActivityFailure(
                        f"local activity {request.activity_type!r} failed: {reason}",
                        record.get("details"),
                        reason=reason,
                        timeout_type=timeout_type,
                    )
                )
            progressed = True
        return progressed

    def _run_local_activity(self, request: LocalActivityRequest) -> dict[str, Any]:
        runner = self._local_runner
        if runner is None:
            # The replay package runs no user code of its own: the worker hands the runner in.
            raise self._fail_task(RuntimeError(
                f"local activity {request.activity_type!r} cannot run here: no local activity "
                "runner was given to the replayer"
            ))

        if request.definition is None:
            return {
                "kind": "failed",
                "reason": "ActivityNotRegisteredError",
                "details": f"local activity {request.activity_type!r} is not registered",
            }
        outcome = runner(request)
        kind = str(outcome.kind)
        record: dict[str, Any] = {"kind": kind, "activity_type": request.activity_type}
        if kind == "completed":
            record["result"] = outcome.result
        elif kind == "async":
            record.update(
                kind="failed",
                reason="LocalActivityError",
                details="a local activity cannot complete asynchronously",
            )
        else:
            record["reason"] = outcome.reason or ("CancelledError" if kind == "cancelled" else "")
            record["details"] = outcome.details
            timeout_type = getattr(outcome, "timeout_type", None)
            if timeout_type:
                record["timeout_type"] = timeout_type
        return record

    # -- WorkflowContext ----------------------------------------------------------------------

    def info(self) -> WorkflowInfo:
        return self._info

    def now(self) -> datetime:
        if self._time is None:
            raise RuntimeError("workflow time is not known before the first decision task")
        return self._time

    def is_replaying(self) -> bool:
        return self._replaying

    def data_converter(self) -> DataConverter:
        return self._converter

    def schedule_activity(
        self,
        activity_type: str,
        result_type: Any,
        args: Sequence[Any],
        options: Mapping[str, Any],
    ) -> Awaitable[Any]:
        self._check_usable(f"scheduling activity {activity_type!r}")
        unknown = sorted(set(options) - _ACTIVITY_OPTIONS)
        if unknown:
            raise TypeError(
                f"unknown activity options {unknown}; known: {sorted(_ACTIVITY_OPTIONS)}"
            )
        if not options.get("schedule_to_close_timeout") and not options.get(
            "start_to_close_timeout"
        ):
            # The Cadence Python client's defaults, so workflows written for it run unchanged.
            options = {**DEFAULT_ACTIVITY_TIMEOUTS, **options}
        elif not options.get("schedule_to_close_timeout") and not options.get(
            "schedule_to_start_timeout"
        ):
            # Only start_to_close: the attempt may wait for a worker as long as the run lives
            # (Cadence's rule wants schedule-to-close, or schedule-to-start as well).
            options = {
                **options,
                "schedule_to_close_timeout": self._info.execution_start_to_close_timeout
                or DEFAULT_ACTIVITY_TIMEOUTS["schedule_to_close_timeout"],
            }
        schedule_to_close = _seconds(
            options.get("schedule_to_close_timeout"), "schedule_to_close_timeout"
        )
        start_to_close = _seconds(options.get("start_to_close_timeout"), "start_to_close_timeout")
        retry_policy = RetryPolicy.from_value(options.get("retry_policy"))
        activity_id = options.get("activity_id")
        if not activity_id:
            activity_id = str(self._activity_seq)
            self._activity_seq += 1
        activity_id = str(activity_id)
        existing = self._activities.get(activity_id)
        if existing is not None and not existing.future.done():
            raise ValueError(f"activity id {activity_id!r} is already in use in this run")
        if result_type is None and self._lookup_activity is not None:
            definition = self._lookup_activity(activity_type)
            result_type = getattr(definition, "result_type", None)
        attributes = {
            "activity_id": activity_id,
            "activity_type": activity_type,
            "task_list": options.get("task_list") or self._info.task_list,
            "input": self._converter.to_data(list(args)),
            "schedule_to_close_timeout_seconds": schedule_to_close,
            "schedule_to_start_timeout_seconds": _seconds(
                options.get("schedule_to_start_timeout"), "schedule_to_start_timeout"
            ),
            "start_to_close_timeout_seconds": start_to_close,
            "heartbeat_timeout_seconds": _seconds(
                options.get("heartbeat_timeout"), "heartbeat_timeout"
            ),
            "retry_policy": retry_policy.to_attributes() if retry_policy else None,
        }
        wait = options.get("wait_for_cancellation", False)
        if not isinstance(wait, bool):
            raise TypeError("wait_for_cancellation must be True or False")
        if wait:
            attributes["wait_for_cancellation"] = True
        machine = ActivityMachine(manager=self._decisions, loop=self._loop, attributes=attributes)
        self._activities[activity_id] = machine
        self._index_on_record(machine, self._activities_by_event)
        if wait:
            waiting = self._loop.create_task(machine.wait_for_cancellation())
            return _Decoded(waiting, self._converter, result_type)
        return _Decoded(machine.future, self._converter, result_type)

    @staticmethod
    def _index_on_record(machine: Any, index: dict[int, Any]) -> None:
        """Index ``machine`` by the id of the event that records its decision, once known.

        Later events (ActivityTaskCompleted ...) refer to the machine by that event id.
        """
        pending: PendingDecision = machine.request
        original = pending.on_recorded

        def recorded(event: HistoryEvent) -> None:
            if original is not None:
                original(event)
            index[event.event_id] = machine

        pending.on_recorded = recorded

    def execute_local_activity(
        self,
        activity_type: str,
        definition: Any,
        result_type: Any,
        args: Sequence[Any],
        options: Mapping[str, Any],
    ) -> Awaitable[Any]:
        self._check_usable(f"running local activity {activity_type!r}")
        unknown = sorted(set(options) - _LOCAL_ACTIVITY_OPTIONS)
        if unknown:
            raise TypeError(
                f"unknown local activity options {unknown}; "
                f"known: {sorted(_LOCAL_ACTIVITY_OPTIONS)}"
            )
        timeout = options.get("schedule_to_close_timeout")
        _seconds(timeout, "schedule_to_close_timeout")  # validates
        retry_policy = RetryPolicy.from_value(options.get("retry_policy"))
        if definition is None and self._lookup_activity is not None:
            try:
                definition = self._lookup_activity(activity_type)
            except KeyError:
                definition = None
        if result_type is None and definition is not None:
            result_type = getattr(definition, "result_type", None)
        activity_id = str(self._local_seq)
        self._local_seq += 1
        info = self._info
        request = LocalActivityRequest(
            activity_id=activity_id,
            activity_type=activity_type,
            definition=definition,
            input=self._converter.to_data(list(args)),
            schedule_to_close_timeout=timeout,
            retry_policy=retry_policy,
            workflow_id=info.workflow_id,
            run_id=info.run_id,
            workflow_type=info.workflow_type,
            domain=info.domain,
            task_list=info.task_list,
        )
        future: asyncio.Future[str | None] = self._loop.create_future()
        self._local_pending.append((request, future))
        return _Decoded(future, self._converter, result_type)

    def start_timer(self, duration: timedelta) -> Awaitable[None]:
        self._check_usable("starting a timer")
        if not isinstance(duration, timedelta):
            raise TypeError(f"a timer duration must be a timedelta, not {type(duration).__name__}")
        if duration < timedelta(0):
            raise ValueError(f"a timer duration must not be negative, not {duration}")
        if duration == timedelta(0):
            done: asyncio.Future[None] = self._loop.create_future()
            done.set_result(None)
            return done
        timer_id = str(self._timer_seq)
        self._timer_seq += 1
        machine = TimerMachine(
            manager=self._decisions,
            loop=self._loop,
            timer_id=timer_id,
            seconds=math.ceil(duration.total_seconds()),
        )
        self._timers[timer_id] = machine
        return machine.future

    def wait_condition(
        self, predicate: Callable[[], bool], timeout: timedelta | None
    ) -> Awaitable[bool]:
        self._check_usable("waiting on a condition")
        return self._wait_condition(predicate, timeout)

    async def _wait_condition(
        self, predicate: Callable[[], bool], timeout: timedelta | None
    ) -> bool:
        if predicate():
            return True
        condition = self._loop.create_condition(predicate)
        if timeout is None:
            await condition
            return True
        timer = asyncio.ensure_future(self.start_timer(timeout), loop=self._loop)
        try:
            await asyncio.wait([condition, timer], return_when=asyncio.FIRST_COMPLETED)
        finally:
            # The loser is cancelled: a started timer becomes a CancelTimer decision.
            for future in (condition, timer):
                if not future.done():
                    future.cancel()
        if condition.done() and not condition.cancelled():
            condition.result()  # re-raise an error of the predicate
            return True
        return False

    def side_effect(self, fn: Callable[[], Any], result_type: Any) -> Any:
        self._check_usable("side_effect")
        marker_id = str(self._side_effect_seq)
        self._side_effect_seq += 1
        key = (SIDE_EFFECT_MARKER, marker_id)
        if key in self._markers:
            details = self._markers[key]
        elif self._replaying:
            raise self._fail_task(
                NonDeterministicError(
                    f"side_effect #{marker_id} has no SideEffect marker in history: the "
                    "workflow code calls side_effect where it did not before"
                )
            )
        else:
            details = self._converter.to_data([marker_id, fn()])
        self._record_marker(SIDE_EFFECT_MARKER, marker_id, details)
        return self._marker_value(details, result_type)

    def mutable_side_effect(
        self,
        id: str,
        fn: Callable[[], Any],
        result_type: Any,
        equals: Callable[[Any, Any], bool] | None,
    ) -> Any:
        self._check_usable("mutable_side_effect")
        if not id:
            raise ValueError("mutable_side_effect needs a non-empty id")
        count = self._mutable_counts.get(id, 0)
        self._mutable_counts[id] = count + 1
        marker_id = f"{id}#{count}"
        key = (MUTABLE_SIDE_EFFECT_MARKER, marker_id)
        if key in self._markers:
            details = self._markers[key]
            if key not in self._emitted_markers:
                self._record_marker(MUTABLE_SIDE_EFFECT_MARKER, marker_id, details)
        elif self._replaying:
            if id not in self._mutable_last:
                raise self._fail_task(
                    NonDeterministicError(
                        f"mutable_side_effect {id!r} has no recorded value in history"
                    )
                )
            details = self._mutable_last[id]
        else:
            new_details = self._converter.to_data([marker_id, fn()])
            new_value = self._marker_value(new_details, result_type)
            if id in self._mutable_last:
                old_value = self._marker_value(self._mutable_last[id], result_type)
                if equals is not None:
                    same = equals(old_value, new_value)
                else:
                    same = old_value == new_value
                if same:
                    return old_value
            details = new_details
            self._record_marker(MUTABLE_SIDE_EFFECT_MARKER, marker_id, details)
        self._mutable_last[id] = details
        return self._marker_value(details, result_type)

    def get_version(self, change_id: str, min_supported: int, max_supported: int) -> int:
        self._check_usable("get_version")
        if not isinstance(change_id, str) or not change_id:
            raise ValueError("get_version needs a non-empty change_id")
        if min_supported > max_supported:
            raise ValueError("min_supported must not be greater than max_supported")
        version = self._versions.get(change_id)
        if version is None:
            key = (VERSION_MARKER, change_id)
            if key in self._markers:
                details = self._markers[key]
                version = int(self._marker_value(details, int))
                if key not in self._emitted_markers:
                    self._record_marker(VERSION_MARKER, change_id, details)
            elif self._replaying:
                version = DEFAULT_VERSION
            else:
                version = max_supported
                if version != DEFAULT_VERSION:
                    self._record_marker(
                        VERSION_MARKER, change_id, self._converter.to_data([change_id, version])
                    )
            self._versions[change_id] = version
        if not min_supported <= version <= max_supported:
            raise self._fail_task(
                NonDeterministicError(
                    f"version {version} of change {change_id!r} recorded in history is outside "
                    f"the range the code supports [{min_supported}, {max_supported}]"
                )
            )
        return version

    def upsert_search_attributes(self, attributes: Mapping[str, Any]) -> None:
        self._check_usable("upsert_search_attributes")
        if not attributes:
            raise ValueError("upsert_search_attributes needs at least one attribute")
        self._decisions.add(
            PendingDecision(
                Decision(
                    DecisionType.UpsertWorkflowSearchAttributes,
                    {"search_attributes": {k: _jsonable(v) for k, v in attributes.items()}},
                )
            )
        )
        merged = {**self._info.search_attributes, **attributes}
        self._info = dataclasses.replace(self._info, search_attributes=merged)

    def is_cancel_requested(self) -> bool:
        return self._cancel_requested

    def start_child_workflow(
        self,
        workflow_type: str,
        result_type: Any,
        args: Sequence[Any],
        options: Mapping[str, Any],
    ) -> Awaitable[ChildWorkflowFuture[Any]]:
        self._check_usable(f"starting child workflow {workflow_type!r}")
        execution = options.get("execution_start_to_close_timeout")
        if execution is None:
            execution = self._info.execution_start_to_close_timeout
        if execution is None:
            raise ValueError("a child workflow needs an execution_start_to_close_timeout")
        workflow_id = options.get("workflow_id")
        if not workflow_id:
            workflow_id = f"{self._info.run_id}_{self._child_seq}"
            self._child_seq += 1
        existing = self._children.get(workflow_id)
        if existing is not None and not existing.result.done():
            raise ValueError(f"child workflow id {workflow_id!r} is already in use by this run")
        retry_policy = RetryPolicy.from_value(options.get("retry_policy"))
        attributes = {
            "domain": options.get("domain") or self._info.domain,
            "workflow_id": workflow_id,
            "workflow_type": workflow_type,
            "task_list": options.get("task_list") or self._info.task_list,
            "input": self._converter.to_data(list(args)),
            "execution_start_to_close_timeout_seconds": _seconds(
                execution, "execution_start_to_close_timeout"
            ),
            "task_start_to_close_timeout_seconds": _seconds(
                options.get("task_start_to_close_timeout") or timedelta(seconds=10),
                "task_start_to_close_timeout",
            ),
            "parent_close_policy": options.get("parent_close_policy") or "TERMINATE",
            "workflow_id_reuse_policy": options.get("workflow_id_reuse_policy"),
            "retry_policy": retry_policy.to_attributes() if retry_policy else None,
            "cron_schedule": options.get("cron_schedule"),
            "memo": dict(options.get("memo") or {}) or None,
            "search_attributes": {
                k: _jsonable(v) for k, v in (options.get("search_attributes") or {}).items()
            }
            or None,
        }
        machine = ChildWorkflowMachine(
            manager=self._decisions,
            loop=self._loop,
            attributes=attributes,
            request_cancel=lambda domain, child_id: self._cancel_external(
                domain, child_id, "", child_workflow_only=True
            ),
        )
        self._children[workflow_id] = machine
        self._index_on_record(machine, self._children_by_event)
        return self._await_child_start(machine, result_type)

    async def _await_child_start(
        self, machine: ChildWorkflowMachine, result_type: Any
    ) -> ChildWorkflowFuture[Any]:
        run_id = await machine.started
        return ChildWorkflowFuture(
            machine.workflow_id,
            run_id,
            _Decoded(machine.result, self._converter, result_type),
            cancel=machine.result.cancel,
            domain=machine.domain,
        )

    def signal_external_workflow(
        self,
        workflow_id: str,
        run_id: str,
        signal_name: str,
        args: Sequence[Any],
        *,
        domain: str,
        child_workflow_only: bool,
    ) -> Awaitable[None]:
        self._check_usable(f"signalling workflow {workflow_id!r}")
        control = str(self._signal_seq)
        self._signal_seq += 1
        attributes = {
            "domain": domain or self._info.domain,
            "workflow_id": workflow_id,
            "run_id": run_id,
            "signal_name": signal_name,
            "input": self._converter.to_data(list(args)),
            "control": control,
            "child_workflow_only": child_workflow_only,
        }
        machine = SignalExternalMachine(
            manager=self._decisions, loop=self._loop, attributes=attributes
        )
        self._index_on_record(machine, self._signals_by_event)
        return machine.future

    def request_cancel_external_workflow(
        self,
        workflow_id: str,
        run_id: str,
        *,
        domain: str,
        child_workflow_only: bool,
    ) -> Awaitable[None]:
        self._check_usable(f"requesting cancellation of workflow {workflow_id!r}")
        machine = self._cancel_external(
            domain, workflow_id, run_id, child_workflow_only=child_workflow_only
        )
        return machine.future

    def _cancel_external(
        self, domain: str, workflow_id: str, run_id: str, *, child_workflow_only: bool
    ) -> CancelExternalMachine:
        """A RequestCancelExternalWorkflowExecution decision, its outcome routed back to it
        by the id of its initiated event (``initiated_event_id`` of the outcome events)."""
        control = str(self._cancel_seq)
        self._cancel_seq += 1
        attributes = {
            "domain": domain or self._info.domain,
            "workflow_id": workflow_id,
            "run_id": run_id,
            "control": control,
            "child_workflow_only": child_workflow_only,
        }
        machine = CancelExternalMachine(
            manager=self._decisions, loop=self._loop, attributes=attributes
        )
        self._index_on_record(machine, self._cancels_by_event)
        return machine


def _optional_seconds(value: timedelta | None) -> int | None:
    return None if value is None else math.ceil(value.total_seconds())
