"""``LocalStack``: the embedded default, one object for ``cadenza dev`` and for test fixtures.

It reads template.yaml, starts moto in server mode, creates the tables, queues, buckets and
schedule groups the template declares, and runs the functions with the local Lambda runtime:
the same stack as in AWS, on 127.0.0.1, with nothing to install or deploy.

Given an ``aws_endpoint`` (or ``$CADENZA_AWS_ENDPOINT``), e.g. LocalStack's
``http://localhost:4566``, it starts no emulator: the resources are created (or reused) there,
and the runtime's pollers and the handlers talk to that endpoint.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from cadenza.local.emulator import Emulator
from cadenza.local.endpoint import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY, AwsEndpoint
from cadenza.local.errors import LocalStackError, PortInUseError
from cadenza.local.runtime import LocalFunction, LocalRuntime, RequestLog
from cadenza.local.template import (
    DEFAULT_REGION,
    DEFAULT_STACK_NAME,
    StackDescription,
    describe_stack,
    load_template,
    resolve_parameters,
)
from cadenza.local.wsgi import WsgiApp

__all__ = ["AUTH_MODES", "AWS_ENDPOINT_VARIABLE", "DEFAULT_API_PORT", "LocalStack",
           "find_repo_root"]

log = logging.getLogger("cadenza.local")

#: Cadence's frontend port, so ``cadenza dev`` is where a Cadence user would look first.
DEFAULT_API_PORT = 7933
#: ``auth=``: ``none`` (credential-free) or ``iam`` (every /api/ request SigV4-verified).
AUTH_MODES = ("none", "iam")
#: Where ``LocalStack`` looks for an external AWS endpoint when ``aws_endpoint`` is not given.
AWS_ENDPOINT_VARIABLE = "CADENZA_AWS_ENDPOINT"


def find_repo_root(start: str | Path | None = None) -> Path:
    """The directory holding template.yaml and functions/.

    Looked for in ``$CADENZA_REPO_ROOT``, then in ``start`` (default: the working directory) and
    its parents, then next to the installed ``cadenza`` package (a source checkout or an
    editable install, where it lives in ``<root>/sdk/cadenza``).
    """

    def is_root(path: Path) -> bool:
        return (path / "template.yaml").is_file() and (path / "functions").is_dir()

    configured = os.environ.get("CADENZA_REPO_ROOT")
    if configured:
        path = Path(configured).expanduser().resolve()
        if not (path / "template.yaml").is_file():
            raise LocalStackError(f"CADENZA_REPO_ROOT={configured} has no template.yaml")
        return path
    here = Path(start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if is_root(candidate):
            return candidate
    import cadenza

    package_root = Path(cadenza.__file__).resolve().parent.parent.parent
    if is_root(package_root):
        return package_root
    raise LocalStackError(
        "cannot find template.yaml and functions/: run from the Cadenza project directory, "
        "set CADENZA_REPO_ROOT, or pass repo_root=/template_path="
    )


class LocalStack:
    """The whole stack on this machine: moto server, resources, handlers, HTTP API.

    ``api_port=0`` and ``emulator_port=None`` pick free ports (what tests want); ``cadenza dev``
    uses the fixed default API port so clients find it. ``repo_root`` is where ``CodeUri`` and
    layer paths are resolved (default: the template's directory, as in SAM).

    ``aws_endpoint`` (default: ``$CADENZA_AWS_ENDPOINT``; ``""`` forces the embedded moto) is
    an AWS-compatible endpoint somebody else runs, such as LocalStack: no moto is started and
    ``emulator_port`` is ignored; tables, streams and queues are created there, or reused when
    they exist, and are left there when the stack stops (their state outlives it, as a deployed
    stack's does). moto's fidelity patch (:mod:`cadenza.local.fidelity`) is applied only to the
    embedded moto, which runs in a process of its own (see :mod:`cadenza.local.emulator`).

    ``emulator_port`` defaults to the API port + 1 (a free one when ``api_port`` is 0), so a
    restarted stack's AWS endpoint is where it was. ``ui`` serves the web UI
    (``cadenza.ui``, when installed) at every path outside ``/api/`` (or the WSGI app a
    callable makes of the API's URL; False: the template's routes answer every path);
    ``auth="iam"`` refuses every /api/ request not SigV4-signed with the stack's credentials
    (``testing`` / ``testing``, the ones :attr:`environment` gives), as the deployed API's IAM
    authorization does; ``request_log`` is called with the method, path, status and
    milliseconds of each API request.

    ``sqs_pollers`` is how many batches of one SQS event source are handled at a time (default:
    four for a standard queue, as Lambda runs a queue's batches concurrently, so twenty timers
    due together fire together; one for a FIFO queue).

    The stack sets its :attr:`environment` in ``os.environ`` while it runs (the handlers run in
    this process and read it) and restores the previous values when it stops.
    """

    def __init__(
        self,
        *,
        api_port: int = DEFAULT_API_PORT,
        emulator_port: int | None = None,
        repo_root: str | Path | None = None,
        template_path: str | Path | None = None,
        stack_name: str = DEFAULT_STACK_NAME,
        parameter_overrides: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        region: str = DEFAULT_REGION,
        sqs_pollers: int | None = None,
        aws_endpoint: str | None = None,
        ui: bool | Callable[[str], WsgiApp] = True,
        auth: str = "none",
        request_log: RequestLog | None = None,
        readable_logs: bool = False,
    ) -> None:
        if auth not in AUTH_MODES:
            raise LocalStackError(f"auth must be one of {', '.join(AUTH_MODES)}, not {auth!r}")
        if template_path is not None:
            self.template_path = Path(template_path).resolve()
            self.repo_root = Path(repo_root).resolve() if repo_root else self.template_path.parent
        else:
            self.repo_root = Path(repo_root).resolve() if repo_root else find_repo_root()
            self.template_path = self.repo_root / "template.yaml"
        self.api_port = api_port
        if emulator_port is None and api_port:
            # Stable, so a restarted stack is found where it was (workers keep the endpoint).
            emulator_port = api_port + 1 if api_port < 65535 else 0
        self.emulator_port = emulator_port
        self.ui = ui
        self.auth = auth
        self.request_log = request_log
        #: The functions' powertools logs as one readable line each (`cadenza dev`), instead
        #: of the JSON objects CloudWatch gets (cadenza.local.logs).
        self.readable_logs = readable_logs
        self.stack_name = stack_name
        self.parameter_overrides = dict(parameter_overrides or {})
        self.host = host
        self.region = region
        self.sqs_pollers = sqs_pollers
        if aws_endpoint is None:
            aws_endpoint = os.environ.get(AWS_ENDPOINT_VARIABLE, "")
        #: The external AWS endpoint, or None for the embedded moto server.
        self.aws_endpoint: str | None = aws_endpoint.strip().rstrip("/") or None
        self._emulator: AwsEndpoint | None = None
        self._runtime: LocalRuntime | None = None
        self._description: StackDescription | None = None
        self._stopped = threading.Event()

    # -- lifecycle

    def start(self) -> LocalStack:
        """Start everything; on any failure, stop what was started and raise."""
        if self._runtime is not None:
            return self
        self._stopped.clear()
        template = load_template(self.template_path)
        parameters = resolve_parameters(template, self.parameter_overrides)
        # The API's port first: taken, it is most likely another stack already running there,
        # and that is what to say (not that the emulator's port, next to it, is taken).
        _check_free("HTTP API server", self.host, self.api_port)
        emulator: AwsEndpoint
        if self.aws_endpoint:
            emulator = AwsEndpoint(self.aws_endpoint, region=self.region)
        else:
            emulator = Emulator(host=self.host, port=self.emulator_port, region=self.region)
        emulator.start()
        self._emulator = emulator
        try:
            describe = functools.partial(
                describe_stack,
                template,
                stack_name=self.stack_name,
                region=self.region,
                account_id=emulator.account_id,
                parameters=parameters,
                code_base=self.repo_root,
                endpoint_url=emulator.endpoint_url,
            )
            # Once to know what to create, once more with the attributes creation gave out.
            created = emulator.create_resources(describe())
            description = describe(attributes=created)
            description = _with_template_path(description, self.template_path)
            self._description = description
            runtime = LocalRuntime(
                description,
                emulator=emulator,
                api_host=self.host,
                api_port=self.api_port,
                extra_env=self._aws_environment(emulator),
                sqs_pollers=self.sqs_pollers,
                mount=self.ui if callable(self.ui) else _web_ui() if self.ui else None,
                authorize=self._authorizer() if self.auth == "iam" else None,
                request_log=self.request_log,
            )
            runtime.start()
            self._runtime = runtime
            if self.readable_logs:
                from cadenza.local.logs import make_logs_readable

                make_logs_readable()
        except BaseException:
            self.stop()
            raise
        log.info("local stack %s: API %s, AWS %s %s", self.stack_name, self.api_url,
                 "emulator" if emulator.embedded else "endpoint", emulator.endpoint_url)
        return self

    def stop(self) -> None:
        """Stop the runtime (pollers, API), then the emulator; restore ``os.environ``.

        The embedded emulator deletes the resources it created; an external endpoint keeps
        them."""
        try:
            if self._runtime is not None:
                self._runtime.stop()
        finally:
            self._runtime = None
            if self._emulator is not None:
                self._emulator.stop()
                self._emulator = None
            self._stopped.set()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def serve_forever(self, *, poll_interval: float = 0.5) -> None:
        """Start (if needed) and block until Ctrl-C or SIGTERM, then stop cleanly.

        The caller prints whatever goodbye it wants once this returns.
        """
        self.start()
        previous: Any = None
        in_main_thread = threading.current_thread() is threading.main_thread()
        if in_main_thread:

            def interrupt(signum: int, frame: FrameType | None) -> None:
                raise KeyboardInterrupt

            previous = signal.signal(signal.SIGTERM, interrupt)
        try:
            while not self._stopped.wait(poll_interval):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            if in_main_thread:
                signal.signal(signal.SIGTERM, previous)
            self.stop()

    # -- what callers need

    @property
    def running(self) -> bool:
        return self._runtime is not None

    @property
    def description(self) -> StackDescription:
        """The resolved stack (tables, queues, functions, parameters, outputs)."""
        if self._description is None:
            raise LocalStackError("the local stack has not been started")
        return self._description

    @property
    def api_url(self) -> str:
        """Base URL of the HTTP API, e.g. ``http://127.0.0.1:7933``."""
        return self._require_runtime().api_url

    @property
    def emulator_endpoint(self) -> str:
        """The AWS endpoint the stack uses, for ``endpoint_url=`` / ``AWS_ENDPOINT_URL``: the
        embedded moto server's, or ``aws_endpoint``."""
        if self._emulator is None:
            raise LocalStackError("the local stack has not been started")
        return self._emulator.endpoint_url

    @property
    def embedded(self) -> bool:
        """True when this stack runs its own moto server (no ``aws_endpoint``)."""
        return self.aws_endpoint is None

    @property
    def environment(self) -> dict[str, str]:
        """Environment a process needs to use this stack: AWS_* (endpoint, dummy credentials,
        region) and every CADENZA_* variable of the functions, plus CADENZA_API_URL."""
        return self._require_runtime().environment

    @property
    def function_names(self) -> tuple[str, ...]:
        """Logical ids of the stack's functions (``ApiFunction``, ``StreamFunction`` ...)."""
        return tuple(function.logical_id for function in self.description.functions)

    def table_name(self, logical_id: str) -> str:
        return self.description.table(logical_id).name

    def queue_url(self, logical_id: str) -> str:
        return self.description.attributes[self.description.queue(logical_id).logical_id][
            "QueueUrl"
        ]

    def bucket_name(self, logical_id: str) -> str:
        return self.description.bucket(logical_id).name

    def client(self, service_name: str) -> Any:
        """A boto3 client for the stack's AWS endpoint (dummy credentials, its region)."""
        if self._emulator is None:
            raise LocalStackError("the local stack has not been started")
        return self._emulator.client(service_name)

    def function(self, logical_id: str) -> LocalFunction:
        """A loaded function: its spec and its handler module (tests read fixture state there)."""
        try:
            return self._require_runtime().functions[logical_id]
        except KeyError:
            raise LocalStackError(f"no function {logical_id!r} in the local stack") from None

    def invoke(self, function: str, event: Any) -> Any:
        """Invoke a function in-process by logical id or name with ``event``."""
        return self._require_runtime().invoke(function, event)

    def import_items(self, logical_id: str, items: Iterable[Mapping[str, Any]]) -> int:
        """Store ``items`` (DynamoDB's typed form) in a table of the stack the way DynamoDB's
        import does: written, but with no stream records, so no stream function sees them.
        For seeding stored state (a bench filling the tables with runs), while nothing else
        writes to the table. Returns how many were written."""
        runtime = self._require_runtime()
        table = self.table_name(logical_id)
        client = self.client("dynamodb")
        written = 0
        with runtime.unstreamed(logical_id):
            chunk: list[dict[str, Any]] = []
            for item in [*items, None]:
                if item is not None:
                    chunk.append({"PutRequest": {"Item": dict(item)}})
                if chunk and (item is None or len(chunk) == 25):
                    pending: dict[str, Any] = {table: chunk}
                    while pending:
                        pending = client.batch_write_item(
                            RequestItems=pending).get("UnprocessedItems") or {}
                    written += len(chunk)
                    chunk = []
        return written

    # -- internals

    def _authorizer(self) -> Callable[[WsgiApp], WsgiApp]:
        """SigV4 verification of every /api/ request against the stack's own credentials."""
        from botocore.credentials import Credentials

        from cadenza.local.auth import SigV4Middleware

        credentials = Credentials(DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY)
        region = self.region

        def authorize(app: WsgiApp) -> WsgiApp:
            return SigV4Middleware(app, credentials=credentials, region=region)

        return authorize

    def _require_runtime(self) -> LocalRuntime:
        if self._runtime is None:
            raise LocalStackError("the local stack has not been started")
        return self._runtime

    def _aws_environment(self, emulator: AwsEndpoint) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": emulator.endpoint_url,
            "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            # What GET /api/v1/cluster tells clients (the template says iam, as API Gateway's
            # authorization is; locally it is this stack's own mode).
            "CADENZA_API_AUTH": self.auth,
            # No X-Ray daemon locally: the functions have Tracing: Active in AWS only.
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
            # The functions' EMF metrics lines are for CloudWatch; locally they would only
            # interleave with the logs (set it to "false" to see them).
            "POWERTOOLS_METRICS_DISABLED": os.environ.get("POWERTOOLS_METRICS_DISABLED", "true"),
        }


def _check_free(what: str, host: str, port: int) -> None:
    if not port:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise PortInUseError(what, host, port, error.strerror or "") from error


def _web_ui() -> Callable[[str], WsgiApp] | None:
    """``cadenza.ui.wsgi_app`` when the web UI is installed, to serve at ``/``."""
    try:
        from cadenza.ui import wsgi_app
    except ImportError:
        return None
    return wsgi_app


def _with_template_path(description: StackDescription, path: Path) -> StackDescription:
    if description.template_path == path:
        return description
    from dataclasses import replace

    return replace(description, template_path=path)
