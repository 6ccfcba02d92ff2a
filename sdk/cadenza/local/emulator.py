"""The embedded AWS emulator: moto in server mode, on 127.0.0.1, holding the stack's resources.

Server mode (rather than moto's in-process mocks) is what lets ``cadenza dev`` serve other
processes: a worker, the CLI or a browser talk to the same endpoint with ordinary boto3 clients
pointed at it by ``AWS_ENDPOINT_URL``. Nothing the handlers do is local-only.

moto keeps its state in process-global backends, so every emulator started in one process sees
the same accounts; the emulator therefore deletes what it created when it stops, and two stacks
in one process need different stack names.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from moto.server import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    ThreadedMotoServer,
    create_backend_app,
)
from werkzeug.serving import make_server

from cadenza.local.endpoint import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY, AwsEndpoint
from cadenza.local.errors import LocalStackError, PortInUseError
from cadenza.local.fidelity import apply_dynamodb_transactions, apply_sqs_fifo_deduplication
from cadenza.local.template import DEFAULT_REGION

__all__ = ["DUMMY_ACCESS_KEY_ID", "DUMMY_SECRET_ACCESS_KEY", "Emulator"]

log = logging.getLogger("cadenza.local.emulator")


class _RoutingCacheDispatcher(DomainDispatcherApplication):
    """moto's dispatcher with its per-request routing remembered.

    moto works out which service a request is for under one global lock, on every request, by
    trying each backend's patterns; that alone was a quarter of the local stack's CPU. The
    answer depends only on the signing scope, the JSON target prefix and the host, so it is
    cached by those (requests that carry no signature take moto's own path).
    """

    def __init__(self, create_app: Any) -> None:
        super().__init__(create_app)
        self._routes: dict[tuple[str, str, str], Any] = {}

    def get_application(self, environ: dict[str, Any]) -> Any:
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        scope_start = authorization.find("Credential=")
        path = environ.get("PATH_INFO", "")
        if scope_start < 0 or path.startswith(("/moto-api", "/latest/")):
            return super().get_application(environ)
        scope = authorization[scope_start:].split(",", 1)[0].split("/", 2)[-1]
        target = environ.get("HTTP_X_AMZ_TARGET", "").split(".", 1)[0]
        key = (scope, target, environ.get("HTTP_HOST", ""))
        app = self._routes.get(key)
        if app is None:
            app = super().get_application(environ)
            self._routes[key] = app
        return app


class _MotoServer(ThreadedMotoServer):
    """ThreadedMotoServer that reports a failed bind instead of waiting for it forever.

    The stock ``start()`` waits for a "ready" event that is never set when the socket cannot be
    bound, so a taken port would hang ``cadenza dev``.
    """

    def __init__(self, ip_address: str, port: int) -> None:
        super().__init__(ip_address=ip_address, port=port, verbose=False)
        self.error: BaseException | None = None

    def _server_entry(self) -> None:
        # As ThreadedMotoServer._server_entry, but polling for shutdown every 0.1 s instead of
        # 0.5 s (stop() is on the path of every test fixture and of Ctrl-C).
        try:
            app = _RoutingCacheDispatcher(create_backend_app)
            self._server = make_server(
                self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever(poll_interval=0.1)
        except BaseException as exc:
            self.error = exc
            self._server_ready_event.set()


def _check_port_free(host: str, port: int) -> None:
    """Fail fast, and quietly, when ``port`` is taken (werkzeug would print and exit)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise PortInUseError("AWS emulator (moto)", host, port, exc.strerror or "") from exc


class Emulator(AwsEndpoint):
    """moto in server mode plus the tables, queues and schedule groups of one stack.

    Unlike an external :class:`~cadenza.local.endpoint.AwsEndpoint`, the emulator owns its
    state: a table that already exists means another stack of the same name shares this
    process's moto backends (an error), and :meth:`stop` deletes what was created.
    """

    embedded = True
    reuse_existing = False

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        region: str = DEFAULT_REGION,
    ) -> None:
        super().__init__(f"http://{host}:{port or 0}", region=region)
        self.host = host
        self._requested_port = port or 0
        self._server: _MotoServer | None = None
        self._port: int | None = None

    # -- lifecycle

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._port is None:
            raise LocalStackError("the emulator is not running")
        return self._port

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Start moto on the requested port (a free one when none was given)."""
        if self._server is not None:
            return
        werkzeug_log = logging.getLogger("werkzeug")
        if werkzeug_log.level == logging.NOTSET:
            # werkzeug prints every request to stderr unless its logger has a level.
            werkzeug_log.setLevel(logging.WARNING)
        if self._requested_port:
            _check_port_free(self.host, self._requested_port)
        apply_sqs_fifo_deduplication()
        apply_dynamodb_transactions()
        server = _MotoServer(self.host, self._requested_port)
        server.start()
        if server.error is not None:
            # werkzeug reports a taken port by printing and calling sys.exit(1).
            if isinstance(server.error, OSError | SystemExit):
                raise PortInUseError(
                    "AWS emulator (moto)", self.host, self._requested_port, str(server.error)
                ) from server.error
            raise LocalStackError(f"the AWS emulator failed to start: {server.error}") from (
                server.error
            )
        self._server = server
        self._port = server.get_host_and_port()[1]
        self._open_session()
        log.info("moto server listening on %s", self.endpoint_url)

    def stop(self) -> None:
        """Delete what this emulator created, then stop the server."""
        if self._server is None:
            return
        try:
            self.delete_resources()
        finally:
            self._server.stop()
            self._server = None
            self._close_session()

    def forget_shard_iterator(self, iterator: str) -> None:
        """Drop a consumed DynamoDB stream iterator from moto's memory.

        moto keeps every shard iterator it ever handed out; a stream poller asks for one every
        tenth of a second, which would grow without bound in a long ``cadenza dev`` session.
        Only possible because moto runs in this process; harmless if moto's internals change.
        """
        try:
            from moto.dynamodbstreams.models import dynamodbstreams_backends

            backend = dynamodbstreams_backends[self.account_id][self.region]
            backend.shard_iterators.pop(iterator, None)
        except Exception:  # pragma: no cover - moto internals moved; only memory is at stake
            return
