"""The embedded AWS emulator: moto in server mode, on 127.0.0.1, holding the stack's resources.

Server mode (rather than moto's in-process mocks) is what lets ``cadenza dev`` serve other
processes: a worker, the CLI or a browser talk to the same endpoint with ordinary boto3 clients
pointed at it by ``AWS_ENDPOINT_URL``. Nothing the handlers do is local-only.

moto keeps its state in process-global backends, so every emulator started in one process sees
the same accounts; the emulator therefore deletes what it created when it stops, and two stacks
in one process need different stack names.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from moto.server import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    ThreadedMotoServer,
    create_backend_app,
)
from werkzeug.serving import make_server

from cadenza.local.fidelity import apply_sqs_fifo_deduplication
from cadenza.local.errors import LocalStackError, PortInUseError
from cadenza.local.template import DEFAULT_ACCOUNT_ID, DEFAULT_REGION, StackDescription

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_scheduler import EventBridgeSchedulerClient
    from mypy_boto3_sqs import SQSClient

__all__ = ["DUMMY_ACCESS_KEY_ID", "DUMMY_SECRET_ACCESS_KEY", "Emulator"]

log = logging.getLogger("cadenza.local.emulator")

#: moto accepts any credentials; these make it obvious nothing real is being called.
DUMMY_ACCESS_KEY_ID = "testing"
DUMMY_SECRET_ACCESS_KEY = "testing"


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
            app = DomainDispatcherApplication(create_backend_app)
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


class Emulator:
    """moto in server mode plus the tables, queues and schedule groups of one stack."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        region: str = DEFAULT_REGION,
    ) -> None:
        self.host = host
        self.region = region
        self.account_id = DEFAULT_ACCOUNT_ID
        self._requested_port = port or 0
        self._server: _MotoServer | None = None
        self._port: int | None = None
        self._session: boto3.Session | None = None
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._created: list[tuple[str, str]] = []  # (kind, name or url), creation order

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
        self._session = boto3.Session(
            aws_access_key_id=DUMMY_ACCESS_KEY_ID,
            aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
            region_name=self.region,
        )
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
            self._clients.clear()
            self._session = None

    # -- clients

    def client(self, service_name: str) -> Any:
        """A boto3 client for ``service_name`` pointed at the emulator (cached, thread-safe use).

        botocore clients are safe to share between threads once created; creating them is not,
        hence the lock.
        """
        with self._lock:
            if service_name not in self._clients:
                if self._session is None:
                    raise LocalStackError("the emulator is not running")
                self._clients[service_name] = self.new_client(service_name)
            return self._clients[service_name]

    def new_client(self, service_name: str, *, read_timeout: float = 30.0) -> Any:
        """A fresh client (long-polling threads each want their own connection pool)."""
        if self._session is None:
            raise LocalStackError("the emulator is not running")
        return self._session.client(
            service_name,  # type: ignore[call-overload]
            endpoint_url=self.endpoint_url,
            config=Config(
                retries={"max_attempts": 2, "mode": "standard"},
                read_timeout=read_timeout,
                connect_timeout=5,
            ),
        )

    # -- resources

    def create_resources(self, stack: StackDescription) -> dict[str, dict[str, str]]:
        """Create every table, queue and schedule group of ``stack``.

        Returns the attributes only the emulator knows (queue URLs, stream ARNs) per logical id,
        to be passed back to :func:`cadenza.local.template.describe_stack`.
        """
        attributes: dict[str, dict[str, str]] = {}
        dynamodb: DynamoDBClient = self.client("dynamodb")
        for table in stack.tables:
            try:
                dynamodb.create_table(**table.create_table_request())
            except dynamodb.exceptions.ResourceInUseException as exc:
                raise LocalStackError(
                    f"table {table.name} already exists in this process's emulator state: is "
                    f"another local stack named {stack.stack_name!r} running in this process? "
                    "Give each one its own stack_name."
                ) from exc
            self._created.append(("table", table.name))
            if table.ttl_attribute:
                dynamodb.update_time_to_live(
                    TableName=table.name,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
                )
            if table.point_in_time_recovery:
                with contextlib.suppress(Exception):  # cosmetic locally; never fatal
                    dynamodb.update_continuous_backups(
                        TableName=table.name,
                        PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
                    )
            description = dynamodb.describe_table(TableName=table.name)["Table"]
            values = {"Ref": table.name, "Arn": description["TableArn"]}
            if description.get("LatestStreamArn"):
                values["StreamArn"] = description["LatestStreamArn"]
            attributes[table.logical_id] = values

        sqs: SQSClient = self.client("sqs")
        by_id = {queue.logical_id: queue for queue in stack.queues}
        created: set[str] = set()

        def create_queue(logical_id: str, chain: tuple[str, ...] = ()) -> None:
            if logical_id in created:
                return
            if logical_id in chain:
                raise LocalStackError(f"queues redrive to each other: {' -> '.join(chain)}")
            queue = by_id[logical_id]
            dead_letter = queue.redrive.dead_letter_queue if queue.redrive else None
            if dead_letter in by_id:
                create_queue(str(dead_letter), (*chain, logical_id))
            url = sqs.create_queue(
                QueueName=queue.name, Attributes=queue.create_queue_attributes()  # type: ignore[arg-type]
            )["QueueUrl"]
            self._created.append(("queue", url))
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            attributes[logical_id] = {
                "Ref": url,
                "QueueUrl": url,
                "Arn": arn,
                "QueueName": queue.name,
            }
            created.add(logical_id)

        for queue in stack.queues:
            create_queue(queue.logical_id)

        if stack.schedule_groups:
            scheduler: EventBridgeSchedulerClient = self.client("scheduler")
            for group in stack.schedule_groups:
                arn = scheduler.create_schedule_group(Name=group.name)["ScheduleGroupArn"]
                self._created.append(("schedule-group", group.name))
                attributes[group.logical_id] = {"Ref": group.name, "Arn": arn}
        return attributes

    def delete_resources(self) -> None:
        """Delete what :meth:`create_resources` made (moto's state outlives the server)."""
        for kind, name in reversed(self._created):
            try:
                if kind == "table":
                    self.client("dynamodb").delete_table(TableName=name)
                elif kind == "queue":
                    self.client("sqs").delete_queue(QueueUrl=name)
                elif kind == "schedule-group":
                    self.client("scheduler").delete_schedule_group(Name=name)
            except Exception as exc:  # best effort: the server is going away anyway
                log.debug("could not delete %s %s: %s", kind, name, exc)
        self._created.clear()

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
