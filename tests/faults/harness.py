"""Fault injection at every AWS call of the engine and the workers (see docs/design.md,
"Fault injection").

Every boto3/botocore/pynamodb client in the process goes through
``botocore.client.BaseClient._make_api_call`` and sends its HTTP requests through
``botocore.endpoint.Endpoint._send`` (where botocore's ``before-send`` handlers act). The
:class:`Injector` wraps both for the duration of a test:

* A call is **attributed** to a scenario run by the run's tag, which every workflow id and task
  list of the run contains: it appears in the call's parameters (a history key, a queue URL, a
  message body). Calls made by the local runtime itself (its SQS and stream pollers and the
  schedule firer play the Lambda and Scheduler services, not the project's code) and the
  harness's own reads are never counted nor faulted.
* At the n-th call of one operation during the run, one fault:

  - ``crash_before``: :class:`Crash` is raised instead of the call (the call is not made);
  - ``crash_after``: the call is made, then :class:`Crash` is raised (its answer is lost);
  - ``throttle``: every HTTP attempt of that call is answered with the service's throttling
    error without reaching the service; botocore's retry handler sees each one, backs off and
    retries until its attempts run out, and then the caller gets the ClientError;
  - ``server_error``: the first attempt reaches the service (it is applied), its answer is
    replaced by a 500; botocore retries it on its own, and the retry's answer is the caller's.

:class:`Crash` is a ``BaseException``: the process dies, so no ``except Exception`` of the code
under test may swallow it. In a Lambda handler it ends the invocation (the runtime then treats it
as a failed invocation, as Lambda does for a dead sandbox); in a polling worker it kills the
worker: every later AWS or API call of that worker raises too, and the runner replaces it with
a fresh worker, as a supervisor replaces a crashed process.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import re
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import botocore.client
import botocore.endpoint
import botocore.session
import pynamodb.connection.base
from botocore.awsrequest import AWSResponse, HeadersDict

import cadenza
import cadenza._tasks
from cadenza._http import ApiTransport
from cadenza.local.runtime import LocalFunction, load_function

__all__ = [
    "Call",
    "Crash",
    "DyingTransport",
    "Fault",
    "FaultKind",
    "Injector",
    "InvocationCrashed",
    "Probe",
    "bypassed",
    "new_tag",
]

_SDK = str(Path(cadenza.__file__).resolve().parent) + "/"
_FUNCTIONS = str(Path(cadenza.__file__).resolve().parents[2] / "functions") + "/"
_TAG = re.compile(r"fz[0-9a-f]{10}")
_local = threading.local()


def new_tag() -> str:
    """A run's tag: every workflow id and task list of the run contains it."""
    return f"fz{uuid.uuid4().hex[:10]}"


class Crash(BaseException):
    """Stands for the process dying at an AWS call. Not an Exception: nothing may catch it."""

    def __init__(self, message: str, probe: Probe | None = None) -> None:
        super().__init__(message)
        self.probe = probe


class InvocationCrashed(RuntimeError):
    """What the local Lambda runtime sees of a handler whose sandbox died (a failed invocation:
    the API answers 500, an SQS batch comes back after its visibility timeout, a stream batch is
    retried)."""


class FaultKind(enum.StrEnum):
    CRASH_BEFORE = "crash_before"
    CRASH_AFTER = "crash_after"
    THROTTLE = "throttle"
    SERVER_ERROR = "server_error"


@dataclass(frozen=True, slots=True)
class Call:
    """One AWS call of a run: the operation, who made it, from where, and how many calls of
    that operation from that place the run had made with it."""

    operation: str
    actor: str  # "worker", or the Lambda function: "api", "stream", "timer"
    site: str  # adapter method < engine operation
    occurrence: int

    @property
    def point(self) -> tuple[str, str, str]:
        """Where a fault is injected: the operation, at one site, by one actor."""
        return self.operation, self.actor, self.site

    def __str__(self) -> str:
        return f"{self.operation}#{self.occurrence} by {self.actor} at {self.site}"


@dataclass(frozen=True, slots=True)
class Fault:
    """At the ``occurrence``-th call of ``operation`` made by ``actor`` at ``site``: ``kind``."""

    operation: str
    actor: str
    site: str
    occurrence: int
    kind: FaultKind

    @classmethod
    def at(cls, call: Call, kind: FaultKind) -> Fault:
        return cls(call.operation, call.actor, call.site, call.occurrence, kind)

    @property
    def point(self) -> tuple[str, str, str]:
        return self.operation, self.actor, self.site

    def __str__(self) -> str:
        return f"{self.kind} at {self.operation}#{self.occurrence} ({self.actor}: {self.site})"


@dataclass(eq=False)
class Probe:
    """What the injector knows of one run: its calls, its fault, whether it fired, and the
    worker that is alive."""

    tag: str
    fault: Fault | None
    loop: asyncio.AbstractEventLoop
    calls: list[Call] = field(default_factory=list)
    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    fired: Call | None = None
    crashes: int = 0
    #: botocore clients of workers that crashed: every later call of theirs dies too.
    dead_clients: list[Any] = field(default_factory=list)
    #: The API transport of the live worker (made to die with it).
    transport: DyingTransport | None = None
    worker_crashed: asyncio.Event = field(default_factory=asyncio.Event)
    #: A Lambda function whose invocation this run's fault killed gets a fresh sandbox.
    fresh_sandboxes: bool = True

    def crash(self, actor: str, client: Any) -> Crash:
        self.crashes += 1
        if actor == "worker":
            self.dead_clients.append(client)
            if self.transport is not None:
                self.transport.dead = True
            self.loop.call_soon_threadsafe(self.worker_crashed.set)
        return Crash(f"injected {self.fault}", self)

    def is_dead(self, client: Any) -> bool:
        return any(dead is client for dead in self.dead_clients)


class DyingTransport(ApiTransport):
    """A worker's connection to the API that dies with the worker."""

    dead = False

    async def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        if self.dead:
            raise Crash("the worker process is dead")
        return await super().call(method, path, **kwargs)


@contextlib.contextmanager
def _bypass() -> Iterator[None]:
    previous = getattr(_local, "bypass", False)
    _local.bypass = True
    try:
        yield
    finally:
        _local.bypass = previous


def bypassed(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``function`` with the harness's own AWS calls exempt from counting and faults."""
    with _bypass():
        return function(*args, **kwargs)


def _where() -> tuple[str, str] | None:
    """(actor, site) of the AWS call being made; None for the local runtime's own calls.

    The site is the adapter method that made the call (the innermost frame in cadenza/aws, the
    pynamodb models aside), the engine operation it serves (the outermost frame in
    cadenza/service/engine.py) and, for an effect on another run, the effect (the frame
    ``perform`` called): ``store.append < engine.complete_decision_task``,
    ``store.append < engine.complete_decision_task > _start_child``. A worker's calls have
    no engine frame.
    """
    frame: Any = sys._getframe(1)
    adapter = ""
    entry = ""
    effect = ""
    below = ""
    actor = ""
    seen_sdk = False
    while frame is not None:
        path = frame.f_code.co_filename
        if path.startswith(_SDK):
            relative = path[len(_SDK):]
            if not seen_sdk and relative.startswith("local/"):
                return None  # a poller or the schedule firer: the AWS services' part
            seen_sdk = True
            name = frame.f_code.co_name
            if relative.startswith("aws/") and relative != "aws/models.py" and not adapter:
                adapter = f"{Path(relative).stem}.{name}"
            elif relative == "service/engine.py":
                entry = f"engine.{name}"
                if name == "perform" and not effect:
                    effect = below
                below = name
            elif relative == "worker.py":
                actor = "worker"
        elif path.startswith(_FUNCTIONS) and not actor:
            actor = Path(path).parent.name
        frame = frame.f_back
    if not adapter:
        return None
    site = f"{adapter} < {entry}" if entry else adapter
    return actor or "engine", f"{site} > {effect}" if effect else site


@dataclass(slots=True)
class _Pending:
    kind: FaultKind
    service: str
    attempts: int = 0


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


#: (status, code, prefix of __type, x-amzn-query-error) per service and kind.
_ERRORS: dict[tuple[str, FaultKind], tuple[int, str, str]] = {
    ("dynamodb", FaultKind.THROTTLE):
        (400, "ProvisionedThroughputExceededException", "com.amazonaws.dynamodb.v20120810"),
    ("dynamodb", FaultKind.SERVER_ERROR):
        (500, "InternalServerError", "com.amazonaws.dynamodb.v20120810"),
    ("sqs", FaultKind.THROTTLE): (400, "RequestThrottled", "com.amazonaws.sqs"),
    ("sqs", FaultKind.SERVER_ERROR): (500, "InternalError", "com.amazonaws.sqs"),
    ("scheduler", FaultKind.THROTTLE): (429, "ThrottlingException", "com.amazonaws.scheduler"),
    ("scheduler", FaultKind.SERVER_ERROR):
        (500, "InternalServerException", "com.amazonaws.scheduler"),
}


def _error_response(url: str, service: str, kind: FaultKind) -> AWSResponse:
    status, code, prefix = _ERRORS.get((service, kind), (500, "InternalFailure", "aws"))
    body = json.dumps({"__type": f"{prefix}#{code}", "message": f"injected {kind}"}).encode()
    headers = HeadersDict({
        "Content-Type": "application/x-amz-json-1.0",
        "x-amzn-RequestId": uuid.uuid4().hex,
        "x-amzn-ErrorType": code,
    })
    if service == "sqs":
        headers["x-amzn-query-error"] = f"{code};{'Sender' if status < 500 else 'Receiver'}"
    return AWSResponse(url, status, cast(Any, headers), _Raw(body))


class _Paths(list[str]):
    """A loader's search paths, each once."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


class Injector:
    """Counts each run's AWS calls and injects its fault; one per test (see conftest.py).

    A Lambda function whose invocation crashed gets a fresh copy of its handler module (a new
    service, clients and in-memory state) for its next invocations, as Lambda replaces a dead
    sandbox; invocations already running keep the old one, as other sandboxes would. A probe
    with ``fresh_sandboxes=False`` does without: the crash unwinds one thread of a process
    that goes on serving every other request (what a long-running process hosting the engine
    would see).
    """

    def __init__(self) -> None:
        self.sandboxes_replaced = 0
        self._lock = threading.Lock()
        self._probes: dict[str, Probe] = {}
        #: (workflow id, activity id) -> how many times the activity's code was run.
        self.executions: Counter[tuple[str, str]] = Counter()
        self._originals: list[tuple[Any, str, Any]] = []

    # -- runs

    def open(self, tag: str, fault: Fault | None, *, fresh_sandboxes: bool = True) -> Probe:
        probe = Probe(tag=tag, fault=fault, loop=asyncio.get_running_loop(),
                      fresh_sandboxes=fresh_sandboxes)
        with self._lock:
            self._probes[tag] = probe
        return probe

    def close(self, tag: str) -> None:
        with self._lock:
            self._probes.pop(tag, None)

    # -- patches

    def install(self) -> None:
        """Patch the process for the test: faults, activity counts, sandbox deaths, and one
        shared botocore data loader (speed only: every worker, and pynamodb in every API
        thread, starts a botocore session, which otherwise reads the service models from disk
        again)."""
        make_api_call = getattr(botocore.client.BaseClient, "_make_api_call")  # noqa: B009
        send = getattr(botocore.endpoint.Endpoint, "_send")  # noqa: B009
        execute = cadenza._tasks.execute_activity_task
        invoke = LocalFunction.invoke
        injector = self

        def patched_make_api_call(client: Any, operation: str, params: Any) -> Any:
            return injector._call(make_api_call, client, operation, params)

        def patched_send(endpoint: Any, request: Any) -> Any:
            return injector._send(send, endpoint, request)

        async def counted_execute(definition: Any, task: Any, **kwargs: Any) -> Any:
            with injector._lock:
                injector.executions[(task.workflow_id, task.activity_id)] += 1
            return await execute(definition, task, **kwargs)

        def patched_invoke(function: LocalFunction, event: Any) -> Any:
            try:
                return invoke(function, event)
            except Crash as crash:
                if crash.probe is None or crash.probe.fresh_sandboxes:
                    injector._replace_sandbox(function)
                raise InvocationCrashed(f"{function.spec.logical_id} died: {crash}") from None

        get_session = botocore.session.get_session
        loader = get_session().get_component("data_loader")
        with contextlib.suppress(AttributeError):  # boto3 adds its path once per session
            loader._search_paths = _Paths(loader._search_paths)

        def shared_loader_session(env_vars: Any = None) -> Any:
            session = get_session(env_vars)
            session.register_component("data_loader", loader)
            return session

        for owner, name, replacement in (
            (botocore.session, "get_session", shared_loader_session),
            (pynamodb.connection.base, "get_session", shared_loader_session),
            (botocore.client.BaseClient, "_make_api_call", patched_make_api_call),
            (botocore.endpoint.Endpoint, "_send", patched_send),
            (cadenza._tasks, "execute_activity_task", counted_execute),
            (LocalFunction, "invoke", patched_invoke),
        ):
            self._originals.append((owner, name, getattr(owner, name)))
            setattr(owner, name, replacement)

    def _replace_sandbox(self, function: LocalFunction) -> None:
        with self._lock:
            self.sandboxes_replaced += 1
            number = self.sandboxes_replaced
        with _bypass():  # a cold start's own calls (creating clients) are not the run's
            fresh = load_function(function.spec, module_prefix=f"faults_sandbox{number}")
        old = function.module
        function.handler, function.module = fresh.handler, fresh.module
        if old.__name__.startswith("faults_sandbox"):
            sys.modules.pop(old.__name__, None)

    def uninstall(self) -> None:
        while self._originals:
            owner, name, original = self._originals.pop()
            setattr(owner, name, original)

    # -- the hooks

    def _attribute(self, params: Any) -> Probe | None:
        if not self._probes:
            return None
        for tag in _TAG.findall(repr(params)):
            probe = self._probes.get(tag)
            if probe is not None:
                return probe
        return None

    def _call(self, original: Any, client: Any, operation: str, params: Any) -> Any:
        if getattr(_local, "bypass", False):
            return original(client, operation, params)
        probe = self._attribute(params)
        where = _where() if probe is not None else None
        if probe is None or where is None:
            return original(client, operation, params)
        actor, site = where
        if actor == "worker" and probe.is_dead(client):
            raise Crash("the worker process is dead", probe)
        with self._lock:
            point = (operation, actor, site)
            probe.counts[point] += 1
            call = Call(operation, actor, site, probe.counts[point])
            probe.calls.append(call)
            fault = probe.fault
            hit = (fault is not None and probe.fired is None and fault.point == point
                   and fault.occurrence == call.occurrence)
            if hit:
                probe.fired = call
        if not hit or fault is None:
            return original(client, operation, params)
        if fault.kind is FaultKind.CRASH_BEFORE:
            raise probe.crash(actor, client)
        if fault.kind is FaultKind.CRASH_AFTER:
            with contextlib.suppress(Exception):  # answered with an error: lost all the same
                original(client, operation, params)
            raise probe.crash(actor, client)
        previous = getattr(_local, "pending", None)
        _local.pending = _Pending(fault.kind, client.meta.service_model.service_name)
        try:
            return original(client, operation, params)
        finally:
            _local.pending = previous

    def _send(self, original: Any, endpoint: Any, request: Any) -> Any:
        pending: _Pending | None = getattr(_local, "pending", None)
        if pending is None:
            return original(endpoint, request)
        pending.attempts += 1
        if pending.kind is FaultKind.THROTTLE:
            return _error_response(request.url, pending.service, pending.kind)
        if pending.attempts == 1:  # SERVER_ERROR: applied, and the answer is a 500
            original(endpoint, request)
            return _error_response(request.url, pending.service, pending.kind)
        return original(endpoint, request)
