"""What activity code can ask about the task it runs (``activity.info()``, heartbeats, ...).

The executor sets an :class:`ActivityContext` in a context variable before calling the user
function; the module-level functions read it. Sync activities run in a worker thread that
inherits the context variable, so the same functions work there.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cadenza.error import ActivityCancelledError

__all__ = [
    "ActivityContext",
    "ActivityInfo",
    "complete_async",
    "heartbeat",
    "heartbeat_details",
    "in_activity",
    "info",
    "is_cancelled",
    "raise_if_cancelled",
    "wait_for_cancelled",
]


@dataclass(frozen=True, kw_only=True)
class ActivityInfo:
    """Facts about the activity task being executed."""

    task_token: str
    workflow_id: str
    run_id: str
    workflow_type: str
    domain: str
    activity_id: str
    activity_type: str
    task_list: str
    attempt: int = 0
    heartbeat_timeout: timedelta | None = None
    scheduled_timestamp: datetime | None = None
    started_timestamp: datetime | None = None
    start_to_close_timeout: timedelta | None = None
    schedule_to_close_timeout: timedelta | None = None

    # Names used by the Cadence Python client.
    @property
    def workflow_run_id(self) -> str:
        """``run_id`` under the Cadence Python client's name."""
        return self.run_id

    @property
    def workflow_domain(self) -> str:
        """``domain`` under the Cadence Python client's name."""
        return self.domain


class ActivityContext(ABC):
    """The executor's side of the activity functions."""

    _var: ContextVar[ActivityContext] = ContextVar("cadenza_activity_context")

    @staticmethod
    def current() -> ActivityContext:
        context = ActivityContext._var.get(None)
        if context is None:
            raise RuntimeError("this function can only be called from activity code")
        return context

    @staticmethod
    def is_set() -> bool:
        return ActivityContext._var.get(None) is not None

    @abstractmethod
    def info(self) -> ActivityInfo: ...

    @abstractmethod
    def heartbeat(self, *details: Any) -> None: ...

    @abstractmethod
    def heartbeat_details(self, *types: Any) -> list[Any]: ...

    @abstractmethod
    def is_cancelled(self) -> bool: ...

    @abstractmethod
    def wait_for_cancelled(self, timeout: timedelta | None) -> bool: ...

    @abstractmethod
    def complete_async(self) -> None: ...


def in_activity() -> bool:
    """Whether the caller runs as activity code."""
    return ActivityContext.is_set()


def info() -> ActivityInfo:
    """The running activity's task token, ids, type, task list, attempt and timeouts."""
    return ActivityContext.current().info()


def heartbeat(*details: Any) -> None:
    """Report progress; ``details`` are handed to the next attempt if this one fails.

    Heartbeats are throttled (at most one request per 80% of the heartbeat timeout, the
    latest details winning), so calling this often is cheap. The response may carry a
    cancellation request, seen through :func:`is_cancelled`.
    """
    ActivityContext.current().heartbeat(*details)


def heartbeat_details(*types: Any) -> list[Any]:
    """Details of the last heartbeat of a previous attempt, decoded as ``types`` if given."""
    return ActivityContext.current().heartbeat_details(*types)


def is_cancelled() -> bool:
    """Whether cancellation of this activity was requested (seen through a heartbeat)."""
    return ActivityContext.current().is_cancelled()


def wait_for_cancelled(timeout: timedelta | float | None = None) -> bool:
    """Block a sync activity until cancellation is requested; ``False`` after ``timeout``."""
    if timeout is not None and not isinstance(timeout, timedelta):
        timeout = timedelta(seconds=timeout)
    return ActivityContext.current().wait_for_cancelled(timeout)


def raise_if_cancelled() -> None:
    """Raise :class:`~cadenza.error.ActivityCancelledError` if cancellation was requested."""
    if ActivityContext.current().is_cancelled():
        raise ActivityCancelledError()


def complete_async() -> None:
    """Declare that the result will be reported later with the task token.

    Whatever the function then returns is ignored; someone calls
    ``client.complete_activity(info().task_token, result)`` (or ``fail_activity``) instead.
    """
    ActivityContext.current().complete_async()
