"""``LocalStack``: the embedded default, one object for ``cadenza dev`` and for test fixtures.

It reads template.yaml, starts moto in server mode, creates the tables, queues and schedule
groups the template declares, and runs the functions with the local Lambda runtime: the same
stack as in AWS, on 127.0.0.1, with nothing to install or deploy.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from cadenza.local.emulator import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY, Emulator
from cadenza.local.errors import LocalStackError
from cadenza.local.runtime import LocalFunction, LocalRuntime
from cadenza.local.template import (
    DEFAULT_REGION,
    DEFAULT_STACK_NAME,
    StackDescription,
    describe_stack,
    load_template,
    resolve_parameters,
)

__all__ = ["DEFAULT_API_PORT", "LocalStack", "find_repo_root"]

log = logging.getLogger("cadenza.local")

#: Cadence's frontend port, so ``cadenza dev`` is where a Cadence user would look first.
DEFAULT_API_PORT = 7933


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
        sqs_pollers: int = 1,
    ) -> None:
        if template_path is not None:
            self.template_path = Path(template_path).resolve()
            self.repo_root = Path(repo_root).resolve() if repo_root else self.template_path.parent
        else:
            self.repo_root = Path(repo_root).resolve() if repo_root else find_repo_root()
            self.template_path = self.repo_root / "template.yaml"
        self.api_port = api_port
        self.emulator_port = emulator_port
        self.stack_name = stack_name
        self.parameter_overrides = dict(parameter_overrides or {})
        self.host = host
        self.region = region
        self.sqs_pollers = sqs_pollers
        self._emulator: Emulator | None = None
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
        emulator = Emulator(host=self.host, port=self.emulator_port, region=self.region)
        emulator.start()
        self._emulator = emulator
        try:
            planned = describe_stack(
                template,
                stack_name=self.stack_name,
                region=self.region,
                account_id=emulator.account_id,
                parameters=parameters,
                code_base=self.repo_root,
                endpoint_url=emulator.endpoint_url,
            )
            created = emulator.create_resources(planned)
            description = describe_stack(
                template,
                stack_name=self.stack_name,
                region=self.region,
                account_id=emulator.account_id,
                parameters=parameters,
                code_base=self.repo_root,
                endpoint_url=emulator.endpoint_url,
                attributes=created,
            )
            description = _with_template_path(description, self.template_path)
            self._description = description
            runtime = LocalRuntime(
                description,
                emulator=emulator,
                api_host=self.host,
                api_port=self.api_port,
                extra_env=self._aws_environment(emulator),
                sqs_pollers=self.sqs_pollers,
            )
            runtime.start()
            self._runtime = runtime
        except BaseException:
            self.stop()
            raise
        log.info("local stack %s: API %s, AWS emulator %s", self.stack_name, self.api_url,
                 emulator.endpoint_url)
        return self

    def stop(self) -> None:
        """Stop the runtime (pollers, API), then the emulator; restore ``os.environ``."""
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
        """The moto server's endpoint, for ``endpoint_url=`` / ``AWS_ENDPOINT_URL``."""
        if self._emulator is None:
            raise LocalStackError("the local stack has not been started")
        return self._emulator.endpoint_url

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

    def client(self, service_name: str) -> Any:
        """A boto3 client for the emulator (dummy credentials, the stack's region)."""
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

    # -- internals

    def _require_runtime(self) -> LocalRuntime:
        if self._runtime is None:
            raise LocalStackError("the local stack has not been started")
        return self._runtime

    def _aws_environment(self, emulator: Emulator) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": emulator.endpoint_url,
            "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            # No X-Ray daemon locally: the functions have Tracing: Active in AWS only.
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
        }


def _with_template_path(description: StackDescription, path: Path) -> StackDescription:
    if description.template_path == path:
        return description
    from dataclasses import replace

    return replace(description, template_path=path)
