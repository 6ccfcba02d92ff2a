"""The async client: start workflows, wait for results, read histories, over the HTTP API.

``Client(domain="default", target="http://127.0.0.1:7933")`` speaks to the API of a local stack
(``cadenza dev``) or of a deployed stack (its API Gateway URL). Workers created from a client use
the same connection for history reads and task completions.
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Required, TypedDict, TypeVar, Unpack, overload

from ._http import ApiTransport, Transport, path_part
from .core import Decision, HistoryEvent, from_millis
from .core.cron import CronSchedule
from .core.policies import ReusePolicy
from .core.records import (
    ActivityCompletion,
    ActivityStart,
    DecisionCompletion,
    EagerActivity,
    HandedDecision,
    HistorySince,
    TaskMessage,
)
from .core.retry import RetryPolicy
from .data_converter import DataConverter, DefaultDataConverter
from .error import (
    BadRequestError,
    InternalServiceError,
    ServiceBusyError,
    WorkflowExecutionCanceledError,
    WorkflowExecutionFailedError,
    WorkflowExecutionTerminatedError,
    WorkflowExecutionTimedOutError,
    WorkflowFailure,
    WorkflowTimeoutError,
)

if TYPE_CHECKING:
    from ._workflow_definition import WorkflowDefinition

__all__ = ["Client", "StartWorkflowOptions", "WorkflowExecution", "WorkflowExecutionInfo"]

DEFAULT_TARGET = "http://127.0.0.1:7933"
T = TypeVar("T")
#: Longest single wait the API is asked for; longer waits repeat the call.
_WAIT_PER_CALL = 20.0


class StartWorkflowOptions(TypedDict, total=False):
    """The keyword options of :meth:`Client.start_workflow` and
    :meth:`Client.signal_with_start_workflow` (the Cadence Python client's names).

    Typed so that a misspelled option is a type error in an IDE or mypy, not only the
    ``BadRequestError`` the client raises at run time for an unknown name.
    """

    #: The task list whose workers run the decisions (required).
    task_list: Required[str]
    #: How long the whole run may take before it times out (required; more than 0).
    execution_start_to_close_timeout: Required[timedelta]
    #: The run's workflow id (default: a random UUID).
    workflow_id: str
    #: How long one decision task may take (default: 10 seconds).
    task_start_to_close_timeout: timedelta
    #: "AllowDuplicateFailedOnly" (default), "AllowDuplicate", "RejectDuplicate",
    #: "TerminateIfRunning", also in Cadence's proto spelling or as a ReusePolicy.
    workflow_id_reuse_policy: str | ReusePolicy
    #: Retry the whole run, as a new run, when it fails or times out.
    retry_policy: RetryPolicy | Mapping[str, Any]
    #: A five-field cron expression in UTC (or @daily, @hourly...): the run repeats on it.
    cron_schedule: str
    #: Wait this long before the first decision task.
    delay_start: timedelta
    #: Shown by describe and list; never read by the engine.
    memo: dict[str, Any]
    #: Indexed attributes the list query language can filter on.
    search_attributes: dict[str, Any]
    #: Accepted for the Cadence Python client's sake; not applied yet (the run starts at once).
    jitter_start: timedelta
    #: Accepted for the Cadence Python client's sake; not applied yet (use ``delay_start``).
    first_run_at: datetime


class CadenceClientOptions(TypedDict, total=False):
    """Options of the Cadence Python client's ``Client`` that mean nothing over an HTTP API
    (gRPC channel, metrics, interceptors): accepted so that code written for it runs, and
    ignored. Named, so that a misspelled option is a type error rather than silently ignored
    too."""

    service_name: str
    caller_name: str
    channel_arguments: dict[str, Any]
    credentials: Any
    compression: Any
    metrics_emitter: Any
    interceptors: list[Any]
    context_propagators: Sequence[Any]


@dataclass(frozen=True, slots=True)
class WorkflowExecution:
    """A started run: its workflow id and run id, what the other calls take."""

    workflow_id: str
    run_id: str


@dataclass(frozen=True, slots=True)
class WorkflowExecutionInfo:
    """A run as describe and list report it."""

    workflow_id: str
    run_id: str
    workflow_type: str
    task_list: str
    status: str
    start_time: datetime
    close_time: datetime | None
    history_length: int | None
    raw: dict[str, Any]
    #: COMPLETED, FAILED, ... once closed; None while open.
    close_status: str | None = None
    search_attributes: dict[str, Any] | None = None
    memo: dict[str, Any] | None = None

    @property
    def is_open(self) -> bool:
        """Whether the run is still running (no close status yet)."""
        return self.status == "OPEN"

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> WorkflowExecutionInfo:
        """Read a run as the API's describe and list answers carry it."""
        return cls(
            workflow_id=data["workflow_id"],
            run_id=data["run_id"],
            workflow_type=data["workflow_type"],
            task_list=data["task_list"],
            status=data["status"],
            start_time=from_millis(int(data["start_time"])),
            close_time=from_millis(int(data["close_time"])) if data.get("close_time") else None,
            history_length=data.get("history_length"),
            raw=data,
            close_status=data.get("close_status") or (
                None if data["status"] == "OPEN" else data["status"]),
            search_attributes=data.get("search_attributes"),
            memo=data.get("memo"),
        )


def workflow_type_name(workflow: Any) -> str:
    """The registered name of a workflow given as a name, a definition or a decorated class."""
    if isinstance(workflow, str):
        return workflow
    from ._workflow_definition import DEFINITION_ATTRIBUTE, WorkflowDefinition

    definition = (
        workflow
        if isinstance(workflow, WorkflowDefinition)
        else getattr(workflow, DEFINITION_ATTRIBUTE, None)
    )
    if not isinstance(definition, WorkflowDefinition):
        raise BadRequestError(
            f"{workflow!r} is not a workflow type name, definition or decorated class",
            field="workflow_type",
        )
    return definition.name


def _seconds(options: Mapping[str, Any], name: str) -> float | None:
    value = options.get(name)
    if value is None:
        return None
    if not isinstance(value, timedelta):
        raise BadRequestError(f"{name} must be a timedelta", field=name)
    if value <= timedelta(0):
        raise BadRequestError(f"{name} must be greater than 0", field=name)
    return value.total_seconds()


_START_OPTIONS = {
    "task_list", "execution_start_to_close_timeout", "workflow_id", "task_start_to_close_timeout",
    "workflow_id_reuse_policy", "retry_policy", "cron_schedule", "delay_start", "memo",
    "search_attributes", "jitter_start", "first_run_at",
}


class Client:
    """The async client of a Cadenza stack's HTTP API: start, signal, query, cancel, terminate,
    reset and list runs, wait for results, read histories, answer activities by task token.

    ``Client(domain="default", target="http://127.0.0.1:7933")`` for a local stack (``cadenza
    dev``), or a deployed stack's API Gateway URL as ``target``. Use it as ``async with`` (or
    call :meth:`close`) to release its connections; Workers made from it share them.
    """

    def __init__(
        self,
        domain: str = "default",
        target: str = DEFAULT_TARGET,
        *,
        data_converter: DataConverter | None = None,
        identity: str | None = None,
        transport: Transport | None = None,
        sign: bool | None = None,
        **_ignored: Unpack[CadenceClientOptions],
    ) -> None:
        known = CadenceClientOptions.__required_keys__ | CadenceClientOptions.__optional_keys__
        unknown = sorted(set(_ignored) - known)
        if unknown:
            raise TypeError(f"unknown Client option(s) {unknown}: the options are domain, "
                            f"target, data_converter, identity, transport, sign (and, ignored, the "
                            f"Cadence client's {sorted(known)})")
        self._domain = domain
        self._target = target
        self._converter: DataConverter = data_converter or DefaultDataConverter()
        self._identity = identity or f"{os.getpid()}@{socket.gethostname()}"
        #: HTTP by default; cadenza.testing hands in one that calls the routes in-process.
        self._transport: Transport | None = transport
        #: SigV4 signing of the HTTP API's requests: True always, False never, None (default)
        #: unless the target is a loopback address whose stack does not ask for it.
        self._sign = sign
        self._cluster: dict[str, Any] | None = None

    @property
    def domain(self) -> str:
        """The domain every call of this client is about."""
        return self._domain

    @property
    def target(self) -> str:
        """The API URL (or ``host:port``) this client calls."""
        return self._target

    @property
    def identity(self) -> str:
        """Recorded in history as who made each request (default: ``pid@hostname``)."""
        return self._identity

    @property
    def data_converter(self) -> DataConverter:
        """Turns arguments and results into payloads and back (JSON by default)."""
        return self._converter

    @property
    def transport(self) -> Transport:
        """How calls reach the API: kept-alive HTTP, retried with backoff while busy."""
        # Created lazily so a client can be built outside a running event loop.
        if self._transport is None:
            self._transport = ApiTransport(self._target, sign=self._sign)
        if not isinstance(self._transport, RetryingTransport):
            self._transport = RetryingTransport(self._transport)
        return self._transport

    async def ready(self) -> None:
        """Wait for nothing but one call: raises when the API cannot be reached."""
        await self.cluster_info()

    async def close(self) -> None:
        """Close the client's connections (``async with`` does it on exit)."""
        if self._transport is not None:
            await self._transport.close()
            self._transport = None

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    def _workflow_path(self, workflow_id: str, suffix: str = "") -> str:
        if not workflow_id:
            raise BadRequestError("workflow_id is required", field="workflow_id")
        return (
            f"/api/v1/domains/{path_part(self._domain)}/workflows/{path_part(workflow_id)}{suffix}"
        )

    async def cluster_info(self, *, refresh: bool = False) -> dict[str, Any]:
        """Where the stack's task-list queues are (region, SQS endpoint, queue prefix), as
        ``GET /api/v1/cluster`` answers; asked once and remembered, again with ``refresh``
        (a worker asks again after losing its queues: a restarted local stack may have moved
        them)."""
        if self._cluster is None or refresh:
            self._cluster = await self.transport.call("GET", "/api/v1/cluster")
        return self._cluster

    # --- workflows ------------------------------------------------------------------------

    async def start_workflow(
        self,
        workflow: str | type | WorkflowDefinition,
        *args: Any,
        **options: Unpack[StartWorkflowOptions],
    ) -> WorkflowExecution:
        """Start a run of ``workflow`` (its type name, decorated class or definition) with
        ``args`` as the run method's arguments; returns its workflow id and run id.

        ``task_list`` and ``execution_start_to_close_timeout`` are required; the other options
        are :class:`StartWorkflowOptions`'. Raises ``WorkflowExecutionAlreadyStartedError`` when
        the reuse policy refuses the workflow id, ``BadRequestError`` for a bad option (checked
        before any request is sent).
        """
        answer = await self.transport.call(
            "POST", f"/api/v1/domains/{path_part(self._domain)}/workflows",
            json=self._start_body(workflow, args, options),
        )
        return WorkflowExecution(workflow_id=answer["workflow_id"], run_id=answer["run_id"])

    async def signal_with_start_workflow(
        self,
        workflow: str | type | WorkflowDefinition,
        signal_name: str,
        signal_args: Sequence[Any],
        *workflow_args: Any,
        **options: Unpack[StartWorkflowOptions],
    ) -> WorkflowExecution:
        """Signal the running run of the workflow id, or start one with the signal.

        The options are :meth:`start_workflow`'s; the reuse policy defaults to
        "AllowDuplicate" here, so a closed run's id starts a new run with the signal.
        """
        body = self._start_body(workflow, workflow_args, options)
        body["signal_name"] = signal_name
        body["signal_input"] = self._converter.to_data(list(signal_args))
        if options.get("workflow_id_reuse_policy") is None:
            body["workflow_id_reuse_policy"] = "AllowDuplicate"
        answer = await self.transport.call(
            "POST", f"/api/v1/domains/{path_part(self._domain)}/signal-with-start", json=body
        )
        return WorkflowExecution(workflow_id=answer["workflow_id"], run_id=answer["run_id"])

    async def signal_workflow(
        self, workflow_id: str, run_id: str, signal_name: str, *signal_args: Any
    ) -> None:
        """Send a signal to a run (the current run when ``run_id`` is empty)."""
        await self.transport.call(
            "POST", self._workflow_path(workflow_id, "/signal"),
            json={
                "run_id": run_id,
                "signal_name": signal_name,
                "input": self._converter.to_data(list(signal_args)),
                "identity": self._identity,
                "request_id": str(uuid.uuid4()),
            },
        )

    def _start_body(self, workflow: Any, args: Sequence[Any], options: Mapping[str, Any]) \
            -> dict[str, Any]:
        unknown = set(options) - _START_OPTIONS
        if unknown:
            raise BadRequestError(
                f"unknown start option(s): {', '.join(sorted(unknown))}", field=sorted(unknown)[0]
            )
        if not options.get("task_list"):
            raise BadRequestError("task_list is required", field="task_list")
        execution = _seconds(options, "execution_start_to_close_timeout")
        if execution is None:
            raise BadRequestError(
                "execution_start_to_close_timeout is required",
                field="execution_start_to_close_timeout",
            )
        retry_policy = RetryPolicy.from_value(options.get("retry_policy"))
        delay = options.get("delay_start")
        if delay is not None and not isinstance(delay, timedelta):
            raise BadRequestError("delay_start must be a timedelta", field="delay_start")
        if delay is not None and delay < timedelta(0):
            raise BadRequestError("delay_start cannot be negative", field="delay_start")
        cron = options.get("cron_schedule") or None
        if cron is not None:
            cron = CronSchedule.parse(cron).text  # refused here, before any request
        policy = options.get("workflow_id_reuse_policy")
        body: dict[str, Any] = {
            "workflow_id": options.get("workflow_id") or str(uuid.uuid4()),
            "workflow_type": workflow_type_name(workflow),
            "task_list": options["task_list"],
            "input": self._converter.to_data(list(args)),
            "execution_start_to_close_timeout_seconds": execution,
            "task_start_to_close_timeout_seconds": _seconds(options, "task_start_to_close_timeout"),
            "workflow_id_reuse_policy": getattr(policy, "name", policy),
            "retry_policy": retry_policy.to_attributes() if retry_policy else None,
            "cron_schedule": cron,
            "delay_start_seconds": delay.total_seconds() if delay else None,
            "memo": options.get("memo"),
            "search_attributes": options.get("search_attributes"),
            "identity": self._identity,
            "request_id": str(uuid.uuid4()),
        }
        return body

    async def describe_workflow(self, workflow_id: str, run_id: str = "") -> WorkflowExecutionInfo:
        """A run's type, task list, status, times, history length, memo and search attributes
        (the current run when ``run_id`` is empty)."""
        answer = await self.transport.call(
            "GET", self._workflow_path(workflow_id), params={"run_id": run_id}
        )
        return WorkflowExecutionInfo.from_wire(answer)

    @overload
    async def get_workflow_result(
        self, workflow_id: str, run_id: str = "", result_type: None = None,
        timeout: timedelta | float | None = None,
    ) -> Any: ...

    @overload
    async def get_workflow_result(
        self, workflow_id: str, run_id: str, result_type: type[T],
        timeout: timedelta | float | None = None,
    ) -> T: ...

    @overload
    async def get_workflow_result(
        self, workflow_id: str, run_id: str = "", *, result_type: type[T],
        timeout: timedelta | float | None = None,
    ) -> T: ...

    async def get_workflow_result(
        self,
        workflow_id: str,
        run_id: str = "",
        result_type: Any = None,
        timeout: timedelta | float | None = None,
    ) -> Any:
        """Wait for the run to close; its result, or the matching WorkflowFailure subclass.

        With ``result_type`` (a class such as ``str`` or a dataclass) the result is decoded
        into it and typed as it; without, it is the JSON value as decoded.
        ``WorkflowTimeoutError`` when ``timeout`` (seconds or a timedelta) passes first.
        """
        limit = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
        deadline = None if limit is None else time.monotonic() + limit
        path = self._workflow_path(workflow_id, "/result")
        while True:
            wait = _WAIT_PER_CALL
            if deadline is not None:
                wait = max(0.0, min(wait, deadline - time.monotonic()))
            answer = await self.transport.call(
                "GET", path, params={"run_id": run_id, "wait_seconds": wait},
                timeout=wait + 15,
            )
            status = answer["status"]
            run_id = run_id or answer["run_id"]
            if status == "OPEN":
                if deadline is not None and time.monotonic() >= deadline:
                    raise WorkflowTimeoutError(
                        f"workflow {workflow_id!r} did not close within {limit} seconds"
                    )
                continue
            if status == "COMPLETED":
                return self._converter.from_data(answer.get("result"), [result_type])[0]
            raise _close_error(workflow_id, status, answer)

    async def get_workflow_history(
        self, workflow_id: str, run_id: str = "", wait_for_close: bool = False,
        *, page_size: int = 1000,
    ) -> list[HistoryEvent]:
        """A run's whole history, every page read, in event id order (after waiting for the
        close with ``wait_for_close``). What ``Replayer.replay`` reads."""
        path = self._workflow_path(workflow_id, "/history")
        if wait_for_close:
            answer = await self.get_workflow_result_raw(workflow_id, run_id)
            run_id = answer["run_id"]
        events: list[HistoryEvent] = []
        token: str | None = None
        while True:
            answer = await self.transport.call(
                "GET", path,
                params={"run_id": run_id, "next_page_token": token, "page_size": page_size},
            )
            run_id = answer["run_id"]
            events.extend(HistoryEvent.from_dict(e) for e in answer["events"])
            token = answer.get("next_page_token")
            if not token:
                return events

    async def read_history_since(
        self, workflow_id: str, run_id: str, *, after_version: int = 0, page_size: int = 1000,
    ) -> HistorySince:
        """The run's events committed after commit ``after_version`` (0: all), and the
        version of the last commit read: how a worker holding a run (sticky execution) reads
        only what is new, in one request when little is."""
        path = self._workflow_path(workflow_id, "/events")
        events: list[HistoryEvent] = []
        version = after_version
        while True:
            answer = await self.transport.call("GET", path, params={
                "run_id": run_id, "after_version": version, "page_size": page_size,
            })
            events.extend(HistoryEvent.from_dict(e) for e in answer["events"])
            version = int(answer["version"])
            if not answer.get("more"):
                return HistorySince(tuple(events), version)

    async def get_workflow_result_raw(self, workflow_id: str, run_id: str = "") -> dict[str, Any]:
        """The close status and attributes as the API sends them, after waiting for the close."""
        path = self._workflow_path(workflow_id, "/result")
        while True:
            answer = await self.transport.call(
                "GET", path, params={"run_id": run_id, "wait_seconds": _WAIT_PER_CALL},
                timeout=_WAIT_PER_CALL + 15,
            )
            if answer["status"] != "OPEN":
                return answer
            run_id = answer["run_id"]

    @overload
    async def query_workflow(
        self, workflow_id: str, run_id: str, query_type: str, *query_args: Any,
        timeout: timedelta | float | None = None,
    ) -> Any: ...

    @overload
    async def query_workflow(
        self, workflow_id: str, run_id: str, query_type: str, *query_args: Any,
        result_type: type[T], timeout: timedelta | float | None = None,
    ) -> T: ...

    async def query_workflow(
        self,
        workflow_id: str,
        run_id: str,
        query_type: str,
        *query_args: Any,
        result_type: Any = object,
        timeout: timedelta | float | None = None,
    ) -> Any:
        """Ask a worker to replay the run and answer ``query_type``; nothing is committed.

        Raises QueryFailedError when the workflow refuses (unknown query, failing handler) and
        QueryTimeoutError when no worker answers in time.
        """
        limit = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
        wait = min(limit, _WAIT_PER_CALL) if limit else _WAIT_PER_CALL
        answer = await self.transport.call(
            "POST", self._workflow_path(workflow_id, "/query"),
            json={"run_id": run_id, "query_type": query_type,
                  "query_args": self._converter.to_data(list(query_args)),
                  "wait_seconds": wait},
            timeout=wait + 15,
        )
        return self._converter.from_data(answer.get("result"), [result_type])[0]

    async def answer_query_task(
        self, task_token: str, *, answer: str | None, error: str | None
    ) -> bool:
        """Answer a query task (used by workers); False when the asker is gone."""
        reply = await self.transport.call("POST", "/api/v1/tasks/query/answer", json={
            "task_token": task_token, "answer": answer, "error": error,
        })
        return bool(reply.get("recorded"))

    async def cancel_workflow(self, workflow_id: str, run_id: str = "", cause: str = "") -> None:
        """Ask a run to cancel; its workflow code decides how (``CancelledError`` by default)."""
        await self.transport.call(
            "POST", self._workflow_path(workflow_id, "/cancel"),
            json={"run_id": run_id, "cause": cause, "identity": self._identity,
                  "request_id": str(uuid.uuid4())},
        )

    async def terminate_workflow(
        self, workflow_id: str, run_id: str = "", reason: str = "", details: Any = None
    ) -> None:
        """Close a run (the current one when ``run_id`` is empty) at once as TERMINATED; its
        workflow code gets no say. ``reason`` and ``details`` are recorded in history."""
        await self.transport.call(
            "POST", self._workflow_path(workflow_id, "/terminate"),
            json={
                "run_id": run_id,
                "reason": reason,
                "details": self._converter.to_data([details]) if details is not None else None,
                "identity": self._identity,
                "request_id": str(uuid.uuid4()),
            },
        )

    async def reset_workflow(
        self,
        workflow_id: str,
        run_id: str = "",
        *,
        decision_finish_event_id: int,
        reason: str = "",
        request_id: str | None = None,
    ) -> str:
        """Reset a run (the current one when ``run_id`` is empty) to a DecisionTaskCompleted
        event; returns the new run's id.

        The new run's history is the old one up to ``decision_finish_event_id`` and continues
        from there; the old run, if still open, is terminated. ``request_id`` makes a retried
        call answer as the first one did (a fresh one is drawn when not given).
        """
        if isinstance(decision_finish_event_id, bool) or not isinstance(
            decision_finish_event_id, int
        ) or decision_finish_event_id <= 0:
            raise BadRequestError(
                "decision_finish_event_id must be a positive integer",
                field="decision_finish_event_id",
            )
        answer = await self.transport.call(
            "POST", self._workflow_path(workflow_id, "/reset"),
            json={
                "run_id": run_id,
                "decision_finish_event_id": decision_finish_event_id,
                "reason": reason,
                "identity": self._identity,
                "request_id": request_id or str(uuid.uuid4()),
            },
        )
        return str(answer["run_id"])

    async def list_workflows(
        self,
        query: str | None = None,
        *,
        status: str | None = None,
        workflow_type: str | None = None,
        workflow_id: str | None = None,
        page_size: int | None = 100,
    ) -> list[WorkflowExecutionInfo]:
        """Runs of the domain that match the visibility ``query``, newest first: at most
        ``page_size`` of them, every one with ``page_size=None``.

        The server reads the query (API.md: ``WorkflowType``, ``WorkflowID``, ``RunID``,
        ``CloseStatus``, ``ExecutionStatus``, ``CloseTime = missing``, ``StartTime`` and
        ``CloseTime`` ranges, search attributes, joined by AND); ``status`` ("open", "closed"
        or a close status), ``workflow_type`` and ``workflow_id`` are conditions added to it.
        Pages are followed until enough runs came or none is left.
        """
        runs: list[WorkflowExecutionInfo] = []
        token: str | None = None
        while page_size is None or len(runs) < page_size:
            wanted = 1000 if page_size is None else min(page_size - len(runs), 1000)
            page, token = await self._list_page(
                query or "", wanted, token,
                status=status, workflow_type=workflow_type, workflow_id=workflow_id,
            )
            runs.extend(page)
            if not token:
                break
        return runs if page_size is None else runs[:page_size]

    async def list_workflows_page(
        self, query: str = "", page_size: int = 100, next_page_token: str | None = None, *,
        status: str | None = None, workflow_type: str | None = None,
        workflow_id: str | None = None,
    ) -> tuple[list[WorkflowExecutionInfo], str | None]:
        """One page of the runs matching ``query``, newest first, and the token of the next
        page (None after the last). A page may hold fewer than ``page_size`` runs, even none,
        when the query filters; the token continues. ``status``, ``workflow_type`` and
        ``workflow_id`` add conditions, as in :meth:`list_workflows`."""
        return await self._list_page(query, page_size, next_page_token, status=status,
                                     workflow_type=workflow_type, workflow_id=workflow_id)

    async def _list_page(
        self, query: str, page_size: int, token: str | None, *, status: str | None = None,
        workflow_type: str | None = None, workflow_id: str | None = None,
    ) -> tuple[list[WorkflowExecutionInfo], str | None]:
        answer = await self.transport.call(
            "GET", f"/api/v1/domains/{path_part(self._domain)}/workflows",
            params={"query": query, "status": status, "workflow_type": workflow_type,
                    "workflow_id": workflow_id, "page_size": page_size,
                    "next_page_token": token},
        )
        runs = [WorkflowExecutionInfo.from_wire(r) for r in answer["executions"]]
        return runs, answer.get("next_page_token") or None

    # --- activities completed outside their worker ----------------------------------------

    async def complete_activity(self, task_token: str | bytes, result: Any = None) -> None:
        """Complete an activity by its task token with ``result``, from any process (an
        activity that called ``activity.complete_async()``, say)."""
        await self.complete_activity_task(
            _token_text(task_token), self._converter.to_data([result])
        )

    async def record_activity_heartbeat(self, task_token: str | bytes, *details: Any) -> bool:
        """Heartbeat an activity by its task token (one completed asynchronously, say), from
        any process. True when it should stop: cancellation was requested, its run closed, or
        the attempt the token names is no longer current."""
        payload = self._converter.to_data(list(details)) if details else None
        return await self.record_activity_heartbeat_task(_token_text(task_token), payload)

    async def fail_activity(self, task_token: str | bytes, error: BaseException | str) -> None:
        """Fail an activity by its task token: an exception's class name is the reason and its
        text the details; a string is the reason. The activity's retry policy applies."""
        reason = error if isinstance(error, str) else type(error).__name__
        details = None if isinstance(error, str) else str(error)
        await self.fail_activity_task(_token_text(task_token), reason, details)

    # --- task completion (used by workers) ------------------------------------------------

    async def complete_decision_task(
        self, task_token: str, decisions: Sequence[Decision], *, history_length: int,
        started_at: datetime, identity: str | None = None, request_id: str | None = None,
        eager_activities: int = 0, eager_task_list: str = "",
    ) -> DecisionCompletion:
        """Complete a decision task with its decisions (used by workers). With
        ``eager_activities``, the answer carries up to that many of the activities they
        schedule on ``eager_task_list``, already recorded started for this worker."""
        answer = await self.transport.call("POST", "/api/v1/tasks/decision/complete", json={
            "task_token": task_token, "decisions": [d.to_dict() for d in decisions],
            "history_length": history_length, "started_at": started_at.isoformat(),
            "identity": identity or self._identity,
            "request_id": request_id or str(uuid.uuid4()),
            **({"eager_activities": eager_activities, "eager_task_list": eager_task_list}
               if eager_activities else {}),
        })
        return _completion(answer)

    async def fail_decision_task(
        self, task_token: str, *, cause: str, details: str | None, started_at: datetime,
        identity: str | None = None,
    ) -> bool:
        """Fail a decision task (used by workers); True when the failure was recorded."""
        answer = await self.transport.call("POST", "/api/v1/tasks/decision/fail", json={
            "task_token": task_token, "cause": cause, "details": details,
            "started_at": started_at.isoformat(), "identity": identity or self._identity,
        })
        return bool(answer.get("recorded"))

    async def complete_activity_task(
        self, task_token: str, result: str | None, *, identity: str | None = None,
        request_id: str | None = None, hand_back_task_list: str = "",
    ) -> ActivityCompletion:
        """Complete an activity task with an encoded result (used by workers). With
        ``hand_back_task_list``, a decision task the result schedules on that task list comes
        back in the answer (decision hand-back) instead of through its queue."""
        answer = await self.transport.call("POST", "/api/v1/tasks/activity/complete", json={
            "task_token": task_token, "result": result, "identity": identity or self._identity,
            "request_id": request_id or str(uuid.uuid4()),
            **({"hand_back_task_list": hand_back_task_list} if hand_back_task_list else {}),
        })
        return _activity_completion(answer)

    async def fail_activity_task(
        self, task_token: str, reason: str, details: str | None, *, identity: str | None = None
    ) -> None:
        """Fail an activity task by reason and details (workers; ``cadenza activity fail``)."""
        await self.transport.call("POST", "/api/v1/tasks/activity/fail", json={
            "task_token": task_token, "reason": reason, "details": details,
            "identity": identity or self._identity, "request_id": str(uuid.uuid4()),
        })

    async def start_activity_task(
        self, task_token: str, *, identity: str | None = None, request_id: str | None = None
    ) -> ActivityStart:
        """Record an activity attempt's start (used by workers): its attempt and details."""
        answer = await self.transport.call("POST", "/api/v1/tasks/activity/start", json={
            "task_token": task_token, "identity": identity or self._identity,
            "request_id": request_id or str(uuid.uuid4()),
        })
        return ActivityStart(attempt=int(answer["attempt"]),
                             heartbeat_details=answer.get("heartbeat_details"),
                             started_time=int(answer["started_time"]))

    async def record_activity_heartbeat_task(
        self, task_token: str, details: str | None, *, identity: str | None = None
    ) -> bool:
        """Heartbeat an activity task with encoded details; True when it should stop."""
        answer = await self.transport.call("POST", "/api/v1/tasks/activity/heartbeat", json={
            "task_token": task_token, "details": details, "identity": identity or self._identity,
        })
        return bool(answer.get("cancel_requested"))

    async def cancel_activity_task(
        self, task_token: str, details: str | None, *, identity: str | None = None
    ) -> None:
        """Acknowledge an activity's cancellation (used by workers)."""
        await self.transport.call("POST", "/api/v1/tasks/activity/cancel", json={
            "task_token": task_token, "details": details, "identity": identity or self._identity,
            "request_id": str(uuid.uuid4()),
        })


def _completion(answer: dict[str, Any]) -> DecisionCompletion:
    """A decision completion's answer (service.api.completion_answer) as typed records."""
    activities = []
    for item in answer.get("activity_tasks") or ():
        message = TaskMessage.parse(str(item.get("message")))
        if message is None:
            raise InternalServiceError("the engine answered an eager task that is not one")
        activities.append(EagerActivity(message=message, start=ActivityStart(
            attempt=int(item["attempt"]), heartbeat_details=item.get("heartbeat_details"),
            started_time=int(item["started_time"]))))
    return DecisionCompletion(activities=tuple(activities), events=_events(answer),
                              version=int(answer.get("version") or 0))


def _events(answer: dict[str, Any]) -> tuple[HistoryEvent, ...]:
    return tuple(HistoryEvent.from_dict(e) for e in answer.get("events") or ())


def _activity_completion(answer: dict[str, Any]) -> ActivityCompletion:
    """An activity completion's answer (service.api.activity_completion_answer), typed."""
    handed = answer.get("decision_task")
    if not handed:
        return ActivityCompletion()
    message = TaskMessage.parse(str(handed.get("message")))
    if message is None:
        raise InternalServiceError("the engine handed back a decision task that is not one")
    return ActivityCompletion(decision=HandedDecision(
        message=message, events=_events(handed), version=int(handed["version"])))


class RetryingTransport:
    """Calls again, with exponential backoff and full jitter, while the answer is "busy" (the
    run is changing too fast, or the API cannot be reached). Safe because every mutating call
    carries a request id that the engine recognises when it sees it again."""

    #: Attempts in all, and the backoff's first and largest pause, in seconds.
    ATTEMPTS = 8
    FIRST_PAUSE = 0.05
    LONGEST_PAUSE = 2.0

    def __init__(self, inner: Transport) -> None:
        self.inner = inner

    async def call(
        self, method: str, path: str, *, json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None, timeout: float | None = None,
    ) -> dict[str, Any]:
        for attempt in range(self.ATTEMPTS):
            try:
                return await self.inner.call(method, path, json=json, params=params,
                                             timeout=timeout)
            except ServiceBusyError:
                if attempt == self.ATTEMPTS - 1:
                    raise
                pause = min(self.LONGEST_PAUSE, self.FIRST_PAUSE * 2**attempt)
                await asyncio.sleep(random.uniform(0, pause))
        raise AssertionError("unreachable")  # pragma: no cover

    async def close(self) -> None:
        await self.inner.close()


def _token_text(token: str | bytes) -> str:
    return token.decode() if isinstance(token, bytes) else token


def _close_error(workflow_id: str, status: str, answer: dict[str, Any]) -> WorkflowFailure:
    reason = str(answer.get("reason") or status.lower())
    details = answer.get("details")
    message = f"workflow {workflow_id!r} {status.lower()}: {reason}"
    if details:
        message += f"\n{details}"
    kind = {
        "FAILED": WorkflowExecutionFailedError,
        "TERMINATED": WorkflowExecutionTerminatedError,
        "CANCELED": WorkflowExecutionCanceledError,
        "TIMED_OUT": WorkflowExecutionTimedOutError,
    }.get(status, WorkflowFailure)
    return kind(message, reason=reason, details=details, close_status=status)
