"""The calls workflow code makes, and the context object that answers them.

Workflow code never talks to the engine: it calls the functions below, which delegate to the
:class:`WorkflowContext` of the run being replayed (a context variable set by the replayer).
The replayer turns those calls into decisions and matches them against history, which is how
the same code is both executed for the first time and replayed deterministically.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, NoReturn, TypedDict, TypeVar, Unpack, cast

from cadenza._workflow_definition import WorkflowDefinition
from cadenza.core.retry import RetryPolicy
from cadenza.data_converter import DataConverter
from cadenza.error import ContinueAsNewError

__all__ = [
    "DEFAULT_VERSION",
    "ActivityOptions",
    "ChildWorkflowFuture",
    "ChildWorkflowOptions",
    "LocalActivityOptions",
    "WorkflowContext",
    "WorkflowInfo",
    "continue_as_new",
    "execute_activity",
    "execute_child_workflow",
    "execute_local_activity",
    "get_version",
    "in_workflow",
    "info",
    "is_cancel_requested",
    "is_replaying",
    "mutable_side_effect",
    "now",
    "request_cancel_external_workflow",
    "side_effect",
    "signal_external_workflow",
    "sleep",
    "start_child_workflow",
    "upsert_search_attributes",
    "wait_condition",
]

ResultType = TypeVar("ResultType")

#: What ``get_version`` returns for code paths that ran before the change was introduced.
DEFAULT_VERSION = -1


class ActivityOptions(TypedDict, total=False):
    """Options of one activity invocation (all but ``retry_policy`` are ``timedelta``).

    At least one of ``schedule_to_close_timeout`` and ``start_to_close_timeout`` is required
    (with only the latter, the attempt may wait for a worker as long as the run lives).
    An empty ``task_list`` means the workflow's own task list. ``activity_id`` overrides the
    default id (``"0"``, ``"1"``, ... in scheduling order) and must be unique in the run.
    ``wait_for_cancellation=True`` makes a cancelled activity's caller wait until the activity
    acknowledges the cancellation (or finishes anyway) instead of returning at once.
    """

    task_list: str
    schedule_to_close_timeout: timedelta
    schedule_to_start_timeout: timedelta
    start_to_close_timeout: timedelta
    heartbeat_timeout: timedelta
    retry_policy: RetryPolicy | Mapping[str, Any]
    activity_id: str
    wait_for_cancellation: bool


class LocalActivityOptions(TypedDict, total=False):
    """Options of a local activity: it runs in the decision worker, within the decision task."""

    schedule_to_close_timeout: timedelta
    retry_policy: RetryPolicy | Mapping[str, Any]


class ChildWorkflowOptions(TypedDict, total=False):
    workflow_id: str
    domain: str
    task_list: str
    execution_start_to_close_timeout: timedelta
    task_start_to_close_timeout: timedelta
    parent_close_policy: str
    workflow_id_reuse_policy: str
    retry_policy: RetryPolicy | Mapping[str, Any]
    cron_schedule: str
    memo: Mapping[str, Any]
    search_attributes: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class WorkflowInfo:
    """Facts about the running workflow, all taken from its history (never from the clock)."""

    workflow_id: str
    run_id: str
    workflow_type: str
    task_list: str
    domain: str
    attempt: int = 0
    memo: Mapping[str, Any] = field(default_factory=dict)
    search_attributes: Mapping[str, Any] = field(default_factory=dict)
    execution_start_to_close_timeout: timedelta | None = None
    task_start_to_close_timeout: timedelta | None = None
    cron_schedule: str | None = None
    continued_execution_run_id: str | None = None
    parent_workflow_id: str | None = None
    parent_run_id: str | None = None
    parent_domain: str | None = None
    #: The run id of the first run of this chain of runs (retries, cron, continue-as-new).
    first_execution_run_id: str | None = None
    started_time: datetime | None = None
    data_converter: DataConverter | None = field(default=None, compare=False, repr=False)

    # Names used by the Cadence Python client, kept so code written for it keeps working.
    @property
    def workflow_run_id(self) -> str:
        """``run_id`` under the Cadence Python client's name."""
        return self.run_id

    @property
    def workflow_task_list(self) -> str:
        """``task_list`` under the Cadence Python client's name."""
        return self.task_list

    @property
    def workflow_domain(self) -> str:
        """``domain`` under the Cadence Python client's name."""
        return self.domain


class WorkflowContext(ABC):
    """What the replayer provides to workflow code; one instance per workflow run."""

    _var: ContextVar[WorkflowContext] = ContextVar("cadenza_workflow_context")

    @staticmethod
    def current() -> WorkflowContext:
        context = WorkflowContext._var.get(None)
        if context is None:
            raise RuntimeError(
                "this function can only be called from workflow code "
                "(inside a @workflow.run method, signal handler or query handler)"
            )
        return context

    @staticmethod
    def is_set() -> bool:
        return WorkflowContext._var.get(None) is not None

    @abstractmethod
    def info(self) -> WorkflowInfo: ...

    @abstractmethod
    def now(self) -> datetime: ...

    @abstractmethod
    def is_replaying(self) -> bool: ...

    @abstractmethod
    def data_converter(self) -> DataConverter: ...

    @abstractmethod
    def schedule_activity(
        self,
        activity_type: str,
        result_type: Any,
        args: Sequence[Any],
        options: Mapping[str, Any],
    ) -> Awaitable[Any]: ...

    @abstractmethod
    def execute_local_activity(
        self,
        activity_type: str,
        definition: Any,
        result_type: Any,
        args: Sequence[Any],
        options: Mapping[str, Any],
    ) -> Awaitable[Any]: ...

    @abstractmethod
    def start_timer(self, duration: timedelta) -> Awaitable[None]: ...

    @abstractmethod
    def wait_condition(
        self, predicate: Callable[[], bool], timeout: timedelta | None
    ) -> Awaitable[bool]: ...

    @abstractmethod
    def side_effect(self, fn: Callable[[], Any], result_type: Any) -> Any: ...

    @abstractmethod
    def mutable_side_effect(
        self,
        id: str,
        fn: Callable[[], Any],
        result_type: Any,
        equals: Callable[[Any, Any], bool] | None,
    ) -> Any: ...

    @abstractmethod
    def get_version(self, change_id: str, min_supported: int, max_supported: int) -> int: ...

    @abstractmethod
    def upsert_search_attributes(self, attributes: Mapping[str, Any]) -> None: ...

    @abstractmethod
    def is_cancel_requested(self) -> bool: ...

    @abstractmethod
    def start_child_workflow(
        self,
        workflow_type: str,
        result_type: Any,
        args: Sequence[Any],
        options: Mapping[str, Any],
    ) -> Awaitable[ChildWorkflowFuture[Any]]: ...

    @abstractmethod
    def signal_external_workflow(
        self,
        workflow_id: str,
        run_id: str,
        signal_name: str,
        args: Sequence[Any],
        *,
        domain: str,
        child_workflow_only: bool,
    ) -> Awaitable[None]: ...

    @abstractmethod
    def request_cancel_external_workflow(
        self,
        workflow_id: str,
        run_id: str,
        *,
        domain: str,
        child_workflow_only: bool,
    ) -> Awaitable[None]: ...


class ChildWorkflowFuture(Generic[ResultType]):
    """A started child workflow: its ids now, its result when awaited."""

    def __init__(
        self,
        workflow_id: str,
        run_id: str,
        result: Awaitable[ResultType],
        cancel: Callable[[], bool] | None = None,
        *,
        domain: str = "",
    ) -> None:
        self._workflow_id = workflow_id
        self._run_id = run_id
        self._result = result
        self._cancel = cancel
        self._domain = domain

    def cancel(self) -> bool:
        """Request cancellation of the child run (a durable cancel request)."""
        return self._cancel() if self._cancel is not None else False

    @property
    def workflow_id(self) -> str:
        """The child's workflow id."""
        return self._workflow_id

    @property
    def run_id(self) -> str:
        """The run id of the child's first run."""
        return self._run_id

    async def signal(self, signal_name: str, *args: Any) -> None:
        """Signal this child (and only it: the engine refuses if it is not our child)."""
        context = WorkflowContext.current()
        await context.signal_external_workflow(
            self._workflow_id,
            self._run_id,
            signal_name,
            args,
            domain=self._domain,
            child_workflow_only=True,
        )

    def __await__(self) -> Generator[Any, None, ResultType]:
        return self._result.__await__()


# --- functions called by workflow code ---------------------------------------------------------


def in_workflow() -> bool:
    """Whether the caller runs as workflow code."""
    return WorkflowContext.is_set()


def info() -> WorkflowInfo:
    """The running workflow's ids, type, task list, attempt and start options."""
    return WorkflowContext.current().info()


def now() -> datetime:
    """The workflow's current time: the start time of the decision task being processed.

    It comes from history, so it is the same on every replay.
    """
    return WorkflowContext.current().now()


def is_replaying() -> bool:
    """Whether the code runs to rebuild state from history (decisions already recorded)."""
    return WorkflowContext.current().is_replaying()


def _activity_name_and_options(activity: Any) -> tuple[str, Mapping[str, Any]]:
    if isinstance(activity, str):
        return activity, {}
    name = getattr(activity, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(
            f"execute_activity expects an activity name or an activity definition, not {activity!r}"
        )
    options = getattr(activity, "options", None) or {}
    return name, options


async def execute_activity(
    activity: Any,
    result_type: type[ResultType] | Any,
    *args: Any,
    **options: Unpack[ActivityOptions],
) -> ResultType:
    """Schedule an activity and wait for its result, decoded as ``result_type``.

    ``activity`` is the activity type name or an activity definition (whose options, set with
    ``with_options``, are the defaults here). A failure or timeout raises
    :class:`~cadenza.error.ActivityFailure`; cancelling the awaiting task cancels the activity.
    """
    name, defaults = _activity_name_and_options(activity)
    merged: dict[str, Any] = {**defaults, **options}
    awaitable = WorkflowContext.current().schedule_activity(name, result_type, args, merged)
    return cast(ResultType, await awaitable)


async def execute_local_activity(
    activity: Any,
    result_type: type[ResultType] | Any,
    *args: Any,
    **options: Unpack[LocalActivityOptions],
) -> ResultType:
    """Run a short activity in the decision worker and record its result as a marker.

    ``activity`` is an activity definition, a plain function, or the name of a registered
    activity. It runs once (retried per ``retry_policy`` within ``schedule_to_close_timeout``)
    while the decision task is processed; replays read the recorded result and never run it
    again. Use it for quick calls that do not need their own task list or heartbeats.
    """
    from cadenza._activity_definition import ActivityDefinition

    if isinstance(activity, str):
        name, definition = activity, None
    else:
        definition = ActivityDefinition.wrap(activity)
        name = definition.name
        if result_type is None:
            result_type = definition.result_type
    awaitable = WorkflowContext.current().execute_local_activity(
        name, definition, result_type, args, dict(options)
    )
    return cast(ResultType, await awaitable)


async def sleep(duration: timedelta | float) -> None:
    """Durable timer: wait ``duration`` (whole seconds, rounded up) of workflow time."""
    if not isinstance(duration, timedelta):
        duration = timedelta(seconds=duration)
    await WorkflowContext.current().start_timer(duration)


async def wait_condition(
    predicate: Callable[[], bool], timeout: timedelta | float | None = None
) -> None:
    """Wait until ``predicate()`` is true; ``TimeoutError`` if ``timeout`` (a durable timer)
    passes first, as Temporal's does. The timer is cancelled when the predicate wins.

    The predicate is re-evaluated whenever the workflow's state may have changed (an activity
    result, a timer, a signal), so it must only read workflow state.
    """
    if timeout is not None and not isinstance(timeout, timedelta):
        timeout = timedelta(seconds=timeout)
    if not await WorkflowContext.current().wait_condition(predicate, timeout):
        raise TimeoutError(f"wait_condition timed out after {timeout}")


def side_effect(fn: Callable[[], ResultType], result_type: Any = None) -> ResultType:
    """Run non-deterministic ``fn`` once and record its result; replays return the record."""
    return cast(ResultType, WorkflowContext.current().side_effect(fn, result_type))


def mutable_side_effect(
    id: str,
    fn: Callable[[], ResultType],
    result_type: Any = None,
    equals: Callable[[ResultType, ResultType], bool] | None = None,
    *,
    updated: Callable[[ResultType, ResultType], bool] | None = None,
) -> ResultType:
    """Like :func:`side_effect`, but re-evaluated on each call and recorded only on change.

    ``equals(old, new)`` (default ``==``) says whether the new value is the same as the last
    recorded one; a different value is recorded and returned. ``updated=`` is the Cadence
    Python client's spelling of the opposite question (True: record the new value), accepted
    as a keyword so that workflows written for that client keep their meaning.
    """
    if updated is not None:
        if equals is not None:
            raise TypeError("mutable_side_effect takes equals or updated, not both")
        changed = updated

        def equals(old: ResultType, new: ResultType) -> bool:
            return not changed(old, new)
    return cast(
        ResultType, WorkflowContext.current().mutable_side_effect(id, fn, result_type, equals)
    )


def get_version(change_id: str, min_supported: int, max_supported: int) -> int:
    """Version of the code path ``change_id`` this run follows (recorded on first use).

    New runs get ``max_supported``; runs whose history predates the change get
    ``DEFAULT_VERSION``. A recorded version outside ``[min_supported, max_supported]`` means
    the code no longer supports this run: the decision task fails instead of corrupting it.
    """
    return WorkflowContext.current().get_version(change_id, min_supported, max_supported)


def upsert_search_attributes(attributes: Mapping[str, Any]) -> None:
    """Add or change the run's search attributes (recorded in history, queryable by list)."""
    WorkflowContext.current().upsert_search_attributes(attributes)


def is_cancel_requested() -> bool:
    """Whether cancellation of this run was requested (``client.cancel_workflow``)."""
    return WorkflowContext.current().is_cancel_requested()


def continue_as_new(
    *args: Any,
    workflow_type: str | None = None,
    task_list: str | None = None,
    execution_start_to_close_timeout: timedelta | None = None,
    task_start_to_close_timeout: timedelta | None = None,
) -> NoReturn:
    """End this run and start a new one of the same workflow id with ``args`` (never returns)."""
    raise ContinueAsNewError(
        *args,
        workflow_type=workflow_type,
        task_list=task_list,
        execution_start_to_close_timeout=execution_start_to_close_timeout,
        task_start_to_close_timeout=task_start_to_close_timeout,
    )


def _workflow_type_name(workflow_type: Any) -> str:
    if isinstance(workflow_type, str):
        return workflow_type
    return WorkflowDefinition.of(workflow_type).name


async def start_child_workflow(
    workflow_type: Any,
    result_type: type[ResultType] | Any,
    *args: Any,
    **options: Unpack[ChildWorkflowOptions],
) -> ChildWorkflowFuture[ResultType]:
    """Start a child workflow; returns once it has started, with its ids."""
    context = WorkflowContext.current()
    future = await context.start_child_workflow(
        _workflow_type_name(workflow_type), result_type, args, dict(options)
    )
    return cast(ChildWorkflowFuture[ResultType], future)


async def execute_child_workflow(
    workflow_type: Any,
    result_type: type[ResultType] | Any,
    *args: Any,
    **options: Unpack[ChildWorkflowOptions],
) -> ResultType:
    """Start a child workflow and wait for its result."""
    future: ChildWorkflowFuture[ResultType] = await start_child_workflow(
        workflow_type, result_type, *args, **options
    )
    return await future


async def signal_external_workflow(
    workflow_id: str,
    signal_name: str,
    *args: Any,
    run_id: str = "",
    domain: str = "",
) -> None:
    """Signal another workflow run (the current run of ``workflow_id`` when ``run_id`` is "")."""
    if not workflow_id:
        raise ValueError("workflow_id must not be empty")
    if not signal_name:
        raise ValueError("signal_name must not be empty")
    await WorkflowContext.current().signal_external_workflow(
        workflow_id, run_id, signal_name, args, domain=domain, child_workflow_only=False
    )


async def request_cancel_external_workflow(
    workflow_id: str,
    run_id: str = "",
    *,
    domain: str = "",
) -> None:
    """Ask for the cancellation of another workflow run (the current run of ``workflow_id``
    when ``run_id`` is "", in this workflow's domain when ``domain`` is "").

    A RequestCancelExternalWorkflowExecution decision: returns once the target's history
    recorded the request (ExternalWorkflowExecutionCancelRequested here; how and when the
    target stops is up to its code), raises :class:`~cadenza.error.WorkflowFailure` whose
    ``reason`` is Cadence's cause (``UNKNOWN_EXTERNAL_WORKFLOW_EXECUTION`` ...) when it could
    not be delivered. Cancelling the awaiting task before the decision was sent drops it.
    (The Cadence Python client has no such call yet; the name is its Go client's
    ``RequestCancelExternalWorkflow``. To cancel a child, cancel its future instead.)
    """
    if not workflow_id:
        raise ValueError("workflow_id must not be empty")
    await WorkflowContext.current().request_cancel_external_workflow(
        workflow_id, run_id, domain=domain, child_workflow_only=False
    )


def duration_seconds(value: timedelta | None) -> int | None:
    """Cadence durations are whole seconds; round up so a timeout is never shortened."""
    if value is None:
        return None
    return math.ceil(value.total_seconds())
