"""A local Lambda runtime: the stack's handlers, invoked in-process with the events AWS sends.

moto cannot run Lambda code without Docker and does not route API Gateway in server mode (and an
external emulator such as LocalStack is used for its DynamoDB and SQS only), so this module
plays the parts of the Lambda service: the SQS and DynamoDB stream pollers of event
source mappings, the schedules, and the HTTP API in front of the api function. Each event is
built in exactly the shape AWS delivers it, so handlers stay free of local-only code paths.

All functions share this process (unlike Lambda, where each has its own sandbox), which has
two consequences: their environment variables are merged into one ``os.environ`` and must
agree, and a handler may be invoked concurrently from several threads.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import importlib.util
import json
import logging
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from botocore.exceptions import ClientError
from werkzeug.serving import BaseWSGIServer

from cadenza.core.limits import MAX_BODY_BYTES
from cadenza.local.endpoint import AwsEndpoint
from cadenza.local.errors import HandlerImportError, LocalStackError, PortInUseError
from cadenza.local.template import (
    DynamoStreamSource,
    FunctionSpec,
    HttpApiSource,
    ScheduleSource,
    SqsSource,
    StackDescription,
)
from cadenza.local.wsgi import (
    KeepAliveHandler,
    WsgiApp,
    close_connections,
    request_headers,
    serve,
)

__all__ = [
    "LambdaContext",
    "LocalFunction",
    "LocalRuntime",
    "dynamodb_stream_record",
    "http_api_event",
    "http_api_response",
    "match_route",
    "merged_environment",
    "sqs_event_record",
]

log = logging.getLogger("cadenza.local.runtime")

#: How long an SQS long poll waits; short so that stop() is prompt.
SQS_WAIT_SECONDS = 1
#: Stream polling interval when records flow, and the ceiling it backs off to when idle.
STREAM_POLL_BUSY = 0.05
STREAM_POLL_IDLE = 0.25
#: Batches of one SQS event source handled at a time, unless the stack says otherwise. Lambda
#: starts with five concurrent batches for a standard queue; one poller would handle twenty
#: timers due together one batch after another (the last fired a second late).
STANDARD_SQS_POLLERS = 4
FIFO_SQS_POLLERS = 1
#: Attributes every record of a Lambda event from a FIFO queue has (besides the standard ones).
FIFO_RECORD_ATTRIBUTES = ("MessageGroupId", "MessageDeduplicationId", "SequenceNumber")
#: Bound on stream retries when the template says "forever" (-1): a poisoned record must not
#: wedge a local shard for good.
STREAM_RETRY_CAP = 10


# --------------------------------------------------------------------------------------------
# Environment and handlers


def merged_environment(functions: Iterable[FunctionSpec]) -> dict[str, str]:
    """The one environment every function of the stack can live with.

    In AWS each function has its own; here they share ``os.environ``, so a variable two
    functions set to different values cannot be honoured and is refused, naming both.
    """
    merged: dict[str, str] = {}
    owner: dict[str, str] = {}
    for function in functions:
        for key, value in function.environment.items():
            if key in merged and merged[key] != value:
                raise LocalStackError(
                    f"environment variable {key} differs between {owner[key]} ({merged[key]!r}) "
                    f"and {function.logical_id} ({value!r}); functions share one process locally"
                )
            merged[key] = value
            owner.setdefault(key, function.logical_id)
    return merged


@dataclass(frozen=True)
class LambdaContext:
    """The ``context`` argument of a handler, with the attributes of Lambda's Python runtime."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    deadline: float  # time.monotonic() value
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    identity: Any = None
    client_context: Any = None

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@dataclass
class LocalFunction:
    """A function of the stack with its handler imported, ready to be invoked."""

    spec: FunctionSpec
    handler: Callable[[Any, Any], Any]
    module: ModuleType
    invocations: int = field(default=0)

    def invoke(self, event: Any) -> Any:
        """Call the handler the way Lambda does: ``handler(event, context)``."""
        self.invocations += 1
        context = LambdaContext(
            function_name=self.spec.name,
            invoked_function_arn=self.spec.arn,
            memory_limit_in_mb=self.spec.memory_size,
            aws_request_id=str(uuid.uuid4()),
            deadline=time.monotonic() + self.spec.timeout,
            log_group_name=f"/aws/lambda/{self.spec.name}",
            log_stream_name=f"{dt.date.today():%Y/%m/%d}/[$LATEST]local",
        )
        return self.handler(event, context)


def load_function(spec: FunctionSpec, *, module_prefix: str) -> LocalFunction:
    """Import a function's handler module by file path.

    The function's code root goes first on ``sys.path`` (it is ``/var/task`` in Lambda, so a
    handler can import its sibling modules the same way in both places) and local layer
    directories go last (installed packages win, as ``/opt/python`` comes after the task root).
    The module gets a private name so that two stacks, or two functions whose files are both
    called ``app.py``, never share module state, just as two Lambda sandboxes would not.
    """
    path = spec.handler_file
    if not path.is_file():
        raise HandlerImportError(
            f"handler of {spec.logical_id} ({spec.handler}) not found: expected {path}"
        )
    root = str(spec.code_root)
    if root not in sys.path:
        sys.path.insert(0, root)
    for layer in spec.layer_paths:
        if str(layer) not in sys.path and layer.is_dir():
            sys.path.append(str(layer))
    name = f"{module_prefix}_{spec.logical_id}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:  # pragma: no cover - .py files load
        raise HandlerImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise HandlerImportError(
            f"importing the handler of {spec.logical_id} ({path}) failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    handler = getattr(module, spec.handler_function, None)
    if not callable(handler):
        sys.modules.pop(name, None)
        raise HandlerImportError(f"{path} has no callable {spec.handler_function!r}")
    return LocalFunction(spec=spec, handler=handler, module=module)


# --------------------------------------------------------------------------------------------
# Event shapes (pure functions: tested without any server)


def _message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    def b64(data: Any) -> str:
        return base64.b64encode(data if isinstance(data, bytes) else str(data).encode()).decode()

    result: dict[str, Any] = {}
    if "StringValue" in value:
        result["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        result["binaryValue"] = b64(value["BinaryValue"])
    result["stringListValues"] = list(value.get("StringListValues") or [])
    result["binaryListValues"] = [b64(item) for item in value.get("BinaryListValues") or []]
    result["dataType"] = value.get("DataType", "String")
    return result


def sqs_event_record(message: Mapping[str, Any], *, queue_arn: str, region: str) -> dict[str, Any]:
    """One record of an SQS Lambda event from a ReceiveMessage message (boto3 shape)."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": dict(message.get("Attributes") or {}),
        "messageAttributes": {
            name: _message_attribute(value)
            for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    record["eventSource"] = "aws:sqs"
    record["eventSourceARN"] = queue_arn
    record["awsRegion"] = region
    return record


def _attribute_json(value: Any) -> Any:
    """A boto3-parsed AttributeValue back to its JSON wire form (binary as base64)."""
    if not isinstance(value, dict):
        return value
    result: dict[str, Any] = {}
    for kind, item in value.items():
        if kind == "B":
            result[kind] = base64.b64encode(bytes(item)).decode()
        elif kind == "BS":
            result[kind] = [base64.b64encode(bytes(b)).decode() for b in item]
        elif kind == "M":
            result[kind] = {k: _attribute_json(v) for k, v in item.items()}
        elif kind == "L":
            result[kind] = [_attribute_json(v) for v in item]
        else:
            result[kind] = item
    return result


def dynamodb_stream_record(
    record: Mapping[str, Any], *, stream_arn: str, region: str
) -> dict[str, Any]:
    """One record of a DynamoDB stream Lambda event from a GetRecords record (boto3 shape)."""
    source = record.get("dynamodb") or {}
    body: dict[str, Any] = {}
    created = source.get("ApproximateCreationDateTime")
    if isinstance(created, dt.datetime):
        if created.tzinfo is None:
            created = created.replace(tzinfo=dt.UTC)
        body["ApproximateCreationDateTime"] = int(created.timestamp())
    elif created is not None:
        body["ApproximateCreationDateTime"] = created
    for key in ("Keys", "NewImage", "OldImage"):
        if key in source:
            body[key] = {name: _attribute_json(v) for name, v in source[key].items()}
    for key in ("SequenceNumber", "SizeBytes", "StreamViewType"):
        if key in source:
            body[key] = source[key]
    return {
        "eventID": record.get("eventID") or uuid.uuid4().hex,
        "eventName": record.get("eventName"),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": body,
        "eventSourceARN": stream_arn,
    }


_TEXT_TYPES = re.compile(
    r"^(text/|application/([\w.+-]*\+)?(json|xml|javascript|x-www-form-urlencoded|graphql))",
    re.IGNORECASE,
)


def http_api_event(
    *,
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    source_ip: str,
    protocol: str = "HTTP/1.1",
    route_key: str = "$default",
    path_parameters: Mapping[str, str] | None = None,
    api_id: str = "local",
    account_id: str = "123456789012",
    request_id: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API payload v2.0 event for one request.

    Header names are lower-cased and repeated headers joined with commas; cookies move to
    ``cookies``; the body is base64 unless its content type is textual and it decodes as UTF-8.
    """
    split = urlsplit(target)
    raw_path = split.path or "/"
    raw_query = split.query
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        lower = name.lower()
        if lower == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        merged[lower] = f"{merged[lower]},{value}" if lower in merged else value
    now = time.time() if now is None else now
    request_id = request_id or base64.b32encode(uuid.uuid4().bytes)[:16].decode()
    host = merged.get("host", "localhost")
    merged.setdefault("x-forwarded-for", source_ip)
    merged.setdefault("x-forwarded-proto", "http")
    if ":" in host:
        merged.setdefault("x-forwarded-port", host.rsplit(":", 1)[1])
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = merged
    if raw_query:
        params: dict[str, str] = {}
        for key, value in parse_qsl(raw_query, keep_blank_values=True):
            params[key] = f"{params[key]},{value}" if key in params else value
        event["queryStringParameters"] = params
    event["requestContext"] = {
        "accountId": account_id,
        "apiId": api_id,
        "domainName": host,
        "domainPrefix": host.split(".", 1)[0].split(":", 1)[0],
        "http": {
            "method": method.upper(),
            "path": raw_path,
            "protocol": protocol,
            "sourceIp": source_ip,
            "userAgent": merged.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": route_key,
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "timeEpoch": int(now * 1000),
    }
    if body:
        content_type = merged.get("content-type", "")
        text: str | None = None
        if not content_type or _TEXT_TYPES.match(content_type):
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        event["body"] = text if text is not None else base64.b64encode(body).decode()
        event["isBase64Encoded"] = text is None
    else:
        event["isBase64Encoded"] = False
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    return event


def http_api_response(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body API Gateway (payload v2.0) makes of a handler's return value.

    A dict with ``statusCode`` is taken as is (``cookies`` become ``Set-Cookie`` headers,
    ``isBase64Encoded`` bodies are decoded); anything else is the body of a 200 JSON response,
    as API Gateway infers it.
    """
    if isinstance(result, dict) and "statusCode" in result:
        status = int(result["statusCode"])
        headers = [
            (str(name), str(value))
            for name, value in (result.get("headers") or {}).items()
            if str(name).lower() not in ("content-length", "transfer-encoding", "connection")
        ]
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers.extend((str(name), str(value)) for value in values)
        headers.extend(("Set-Cookie", str(cookie)) for cookie in result.get("cookies") or [])
        raw = result.get("body")
        if raw is None:
            body = b""
        elif result.get("isBase64Encoded"):
            body = base64.b64decode(raw)
        else:
            body = (raw if isinstance(raw, str) else json.dumps(raw)).encode("utf-8")
        return status, headers, body
    text = result if isinstance(result, str) else json.dumps(result)
    return 200, [("Content-Type", "application/json")], text.encode("utf-8")


@dataclass(frozen=True)
class _Route:
    function: str
    source: HttpApiSource


def _route_score(route: _Route) -> tuple[int, int, int, int]:
    path = route.source.path
    if path is None:  # $default: only when nothing else matches
        return (-1, 0, 0, 0)
    segments = [s for s in path.split("/") if s]
    greedy = any(s.endswith("+}") for s in segments)
    literal = sum(1 for s in segments if not s.startswith("{"))
    return (0 if greedy else 1, literal, len(segments), 0 if route.source.method == "ANY" else 1)


def match_route(
    routes: Iterable[_Route], method: str, path: str
) -> tuple[_Route, dict[str, str]] | None:
    """The most specific route for a request, as API Gateway picks it, and its path parameters.

    Literal segments beat ``{param}`` which beats ``{proxy+}``; a method beats ``ANY``;
    ``$default`` catches what nothing else matches.
    """
    segments = [unquote(s) for s in path.split("/") if s]
    best: tuple[tuple[int, int, int, int], _Route, dict[str, str]] | None = None
    for route in routes:
        source = route.source
        if source.method not in ("ANY", method.upper()):
            continue
        params: dict[str, str] | None = {}
        if source.path is not None:
            params = _match_path(source.path, segments)
        if params is None:
            continue
        score = _route_score(route)
        if best is None or score > best[0]:
            best = (score, route, params)
    return None if best is None else (best[1], best[2])


def _match_path(template: str, segments: list[str]) -> dict[str, str] | None:
    pattern = [s for s in template.split("/") if s]
    params: dict[str, str] = {}
    for index, part in enumerate(pattern):
        if part.startswith("{") and part.endswith("+}"):
            rest = segments[index:]
            if not rest:
                return None
            params[part[1:-2]] = "/".join(rest)
            return params
        if index >= len(segments):
            return None
        if part.startswith("{") and part.endswith("}"):
            params[part[1:-1]] = segments[index]
        elif part != segments[index]:
            return None
    return params if len(pattern) == len(segments) else None


# --------------------------------------------------------------------------------------------
# Pollers


class _Worker(threading.Thread):
    """A daemon thread that loops ``poll_once`` until stopped, surviving its own errors."""

    def __init__(self, name: str, stop: threading.Event) -> None:
        super().__init__(name=name, daemon=True)
        self.stop_event = stop

    def poll_once(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.poll_once()
            except Exception:
                if self.stop_event.is_set():
                    return
                log.exception("%s: poll failed; retrying in 1 s", self.name)
                self.stop_event.wait(1.0)


class _SqsPoller(_Worker):
    """Lambda's SQS poller: receive a batch, invoke, delete what succeeded."""

    def __init__(
        self,
        function: LocalFunction,
        source: SqsSource,
        *,
        queue_url: str,
        queue_arn: str,
        client: Any,
        region: str,
        stop: threading.Event,
    ) -> None:
        super().__init__(f"sqs:{source.queue}->{function.spec.logical_id}", stop)
        self.function = function
        self.source = source
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.client = client
        self.region = region
        self.fifo = queue_arn.endswith(".fifo") or queue_url.endswith(".fifo")
        self._warned_fifo = False

    def _receive(self, limit: int, wait: int) -> list[dict[str, Any]]:
        response = self.client.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max(1, min(10, limit)),
            WaitTimeSeconds=wait,
            AttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(response.get("Messages") or [])

    def poll_once(self) -> None:
        messages = self._receive(self.source.batch_size, SQS_WAIT_SECONDS)
        while messages and len(messages) < self.source.batch_size and len(messages) % 10 == 0:
            more = self._receive(self.source.batch_size - len(messages), 0)
            if not more:
                break
            messages.extend(more)
        if not messages:
            return
        records = [
            sqs_event_record(m, queue_arn=self.queue_arn, region=self.region) for m in messages
        ]
        if self.fifo:
            self._check_fifo_attributes(records)
        try:
            result = self.function.invoke({"Records": records})
        except Exception:
            # The whole batch becomes visible again after the visibility timeout, as in AWS.
            log.exception("%s failed on a batch of %d", self.function.spec.logical_id, len(records))
            return
        failed = self._failed_ids(result, records)
        done = [r for r in records if r["messageId"] not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            response = self.client.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": r["receiptHandle"]}
                    for i, r in enumerate(chunk)
                ],
            )
            for failure in response.get("Failed") or []:
                log.warning("could not delete an SQS message: %s", failure)

    def _check_fifo_attributes(self, records: list[dict[str, Any]]) -> None:
        """Lambda gives FIFO records their group, deduplication id and sequence number; FIFO
        batch processors (powertools' SqsFifoPartialProcessor) rely on ``MessageGroupId``.
        They come from ReceiveMessage's system attributes: an endpoint that omits them is
        reported once rather than silently breaking per-group failure handling."""
        if self._warned_fifo:
            return
        for record in records:
            missing = sorted(set(FIFO_RECORD_ATTRIBUTES) - set(record["attributes"]))
            if missing:
                self._warned_fifo = True
                log.warning(
                    "%s: the AWS endpoint returned FIFO messages without %s; Lambda's events "
                    "carry them", self.name, ", ".join(missing),
                )
                return

    def _failed_ids(self, result: Any, records: list[dict[str, Any]]) -> set[str]:
        """Message ids to keep. An invalid batchItemFailures response fails the whole batch."""
        if not self.source.report_batch_item_failures:
            return set()
        if not isinstance(result, dict):
            return set()
        failures = result.get("batchItemFailures")
        if not failures:
            return set()
        ids = {r["messageId"] for r in records}
        failed: set[str] = set()
        for failure in failures:
            item = failure.get("itemIdentifier") if isinstance(failure, dict) else None
            if not item or item not in ids:
                log.warning(
                    "%s returned an invalid batchItemFailures entry %r: the whole batch fails",
                    self.function.spec.logical_id,
                    failure,
                )
                return ids
            failed.add(str(item))
        return failed


class _StreamPoller(_Worker):
    """Lambda's DynamoDB stream poller: ordered batches per shard, retries, bisection."""

    def __init__(
        self,
        function: LocalFunction,
        source: DynamoStreamSource,
        *,
        stream_arn: str,
        client: Any,
        emulator: AwsEndpoint,
        failure_queue_url: str | None,
        region: str,
        stop: threading.Event,
    ) -> None:
        super().__init__(f"stream:{source.table}->{function.spec.logical_id}", stop)
        self.function = function
        self.source = source
        self.stream_arn = stream_arn
        self.client = client
        self.emulator = emulator
        self.failure_queue_url = failure_queue_url
        self.region = region
        self.iterators: dict[str, str | None] = {}
        self.last_discovery = 0.0
        self.idle = STREAM_POLL_BUSY
        #: Held while polling; ``unstreamed`` holds it to keep the poller waiting.
        self.gate = threading.Lock()

    def _discover(self) -> None:
        """Find shards not yet followed; they start at TRIM_HORIZON so nothing is missed."""
        self.last_discovery = time.monotonic()
        shards = self.client.describe_stream(StreamArn=self.stream_arn)["StreamDescription"][
            "Shards"
        ]
        for shard in shards:
            shard_id = shard["ShardId"]
            if shard_id in self.iterators:
                continue
            self.iterators[shard_id] = self.client.get_shard_iterator(
                StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]

    def poll_once(self) -> None:
        with self.gate:
            delivered = self._poll_shards()
        self.idle = STREAM_POLL_BUSY if delivered else min(STREAM_POLL_IDLE, self.idle * 1.5)
        if not delivered:
            self.stop_event.wait(self.idle)

    @contextlib.contextmanager
    def unstreamed(self) -> Iterator[None]:
        """Writes made inside are not delivered to the function: what is in the stream before
        is delivered first, then the poller waits, and afterwards it follows each shard from
        its newest record (as a table restored or imported into DynamoDB starts with no
        stream records for what it holds). Nothing else may write to the table meanwhile:
        its records would be skipped too."""
        with self.gate:
            if not self.iterators:
                self._discover()
            while self._poll_shards():
                pass
            yield
            for shard_id in list(self.iterators):
                self.iterators[shard_id] = self.client.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType="LATEST"
                )["ShardIterator"]

    def _poll_shards(self) -> bool:
        """One GetRecords per shard, their records delivered; True when there were any."""
        if not self.iterators or time.monotonic() - self.last_discovery > 5:
            self._discover()
        delivered = False
        for shard_id, iterator in list(self.iterators.items()):
            if iterator is None or self.stop_event.is_set():
                continue
            response = self.client.get_records(ShardIterator=iterator, Limit=self.source.batch_size)
            self.emulator.forget_shard_iterator(iterator)
            self.iterators[shard_id] = response.get("NextShardIterator")
            raw = response.get("Records") or []
            if raw:
                delivered = True
                records = [
                    dynamodb_stream_record(r, stream_arn=self.stream_arn, region=self.region)
                    for r in raw
                ]
                self._process(shard_id, records)
        return delivered

    def _retry_limit(self) -> int:
        limit = self.source.maximum_retry_attempts
        return STREAM_RETRY_CAP if limit < 0 else min(limit, STREAM_RETRY_CAP)

    def _process(self, shard_id: str, records: list[dict[str, Any]]) -> None:
        """Deliver ``records`` in order; retry from the first failure with backoff, bounded."""
        pending = records
        attempts = 0
        while pending and not self.stop_event.is_set():
            try:
                result = self.function.invoke({"Records": pending})
            except Exception:
                log.exception(
                    "%s failed on %d stream records", self.function.spec.logical_id, len(pending)
                )
                if self.source.bisect_batch_on_function_error and len(pending) > 1:
                    half = len(pending) // 2
                    self._process(shard_id, pending[:half])
                    self._process(shard_id, pending[half:])
                    return
                first_failed = 0
            else:
                first_failed_or_none = self._first_failure(result, pending)
                if first_failed_or_none is None:
                    return
                first_failed = first_failed_or_none
            attempts += 1
            pending = pending[first_failed:]
            if attempts > self._retry_limit():
                self._give_up(shard_id, pending, attempts)
                return
            self.stop_event.wait(min(2.0, 0.05 * 2**attempts))

    def _first_failure(self, result: Any, records: list[dict[str, Any]]) -> int | None:
        if not self.source.report_batch_item_failures or not isinstance(result, dict):
            return None
        failures = result.get("batchItemFailures")
        if not failures:
            return None
        positions = {r["dynamodb"].get("SequenceNumber"): i for i, r in enumerate(records)}
        indexes = []
        for failure in failures:
            item = failure.get("itemIdentifier") if isinstance(failure, dict) else None
            if item not in positions:
                log.warning("invalid batchItemFailures entry %r: retrying the batch", failure)
                return 0
            indexes.append(positions[item])
        return min(indexes)

    def _give_up(self, shard_id: str, records: list[dict[str, Any]], attempts: int) -> None:
        """Retries exhausted: record the batch on the on-failure destination, as AWS does."""
        first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
        log.error(
            "%s: dropping %d stream records (%s..%s) after %d attempts",
            self.function.spec.logical_id,
            len(records),
            first.get("SequenceNumber"),
            last.get("SequenceNumber"),
            attempts,
        )
        if not self.failure_queue_url:
            return

        def iso(record: Mapping[str, Any]) -> str | None:
            created = record.get("ApproximateCreationDateTime")
            if created is None:
                return None
            return dt.datetime.fromtimestamp(float(created), dt.UTC).isoformat()

        message = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": self.function.spec.arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": attempts,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "version": "1.0",
            "timestamp": dt.datetime.now(dt.UTC).isoformat(),
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": first.get("SequenceNumber"),
                "endSequenceNumber": last.get("SequenceNumber"),
                "approximateArrivalOfFirstRecord": iso(first),
                "approximateArrivalOfLastRecord": iso(last),
                "batchSize": len(records),
                "streamArn": self.stream_arn,
            },
        }
        with contextlib.suppress(Exception):
            self.emulator.client("sqs").send_message(
                QueueUrl=self.failure_queue_url, MessageBody=json.dumps(message)
            )


class _OneTimeScheduleFirer(_Worker):
    """What EventBridge Scheduler does for one-time ``at(...)`` schedules, which moto stores but
    never runs: when one is due, put its target input on its SQS target, then delete it if its
    ActionAfterCompletion says so (the engine's long timers are such schedules)."""

    def __init__(self, groups: Iterable[str], *, endpoint: AwsEndpoint,
                 stop: threading.Event) -> None:
        super().__init__("schedules:at", stop)
        self.groups = tuple(groups)
        self.scheduler = endpoint.new_client("scheduler")
        self.sqs = endpoint.new_client("sqs")
        #: (group, name, creation date) -> due time of a schedule read once: the engine's
        #: schedules never change, and most (deadlines) are deleted long before they are due,
        #: so each is fetched once, not every second.
        self._due: dict[tuple[str, str, Any], dt.datetime] = {}

    def poll_once(self) -> None:
        now = dt.datetime.now(dt.UTC)
        listed = set()
        complete = True
        for group in self.groups:
            pages = self.scheduler.get_paginator("list_schedules").paginate(GroupName=group)
            try:
                for page in pages:
                    for summary in page.get("Schedules", []):
                        key = (group, summary["Name"], summary.get("CreationDate"))
                        listed.add(key)
                        due = self._due.get(key)
                        if due is None or due <= now:
                            self._fire_if_due(group, summary["Name"], now, key)
            except ClientError as error:
                # moto's page token names the schedule a page ended at; deleted meanwhile (the
                # engine deletes deadlines all the time), the listing cannot go on. The next
                # round lists again a second later.
                if error.response.get("Error", {}).get("Code") != "InvalidToken":
                    raise
                complete = False
        if complete:
            for gone in set(self._due) - listed:
                del self._due[gone]
        self.stop_event.wait(1.0)

    def _fire_if_due(self, group: str, name: str, now: dt.datetime,
                     key: tuple[str, str, Any] | None = None) -> None:
        try:
            schedule = self.scheduler.get_schedule(Name=name, GroupName=group)
        except self.scheduler.exceptions.ResourceNotFoundException:
            return  # deleted since it was listed (its run or activity closed)
        match = _AT.match(schedule.get("ScheduleExpression", ""))
        if match is None or schedule.get("State") == "DISABLED":
            return
        due = dt.datetime.fromisoformat(match.group(1)).replace(tzinfo=dt.UTC)
        if due > now:
            if key is not None:
                self._due[key] = due
            return
        target = schedule["Target"]
        arn = target["Arn"]
        if not arn.startswith("arn:aws:sqs:"):
            log.warning("schedule %s/%s: only SQS targets are emulated locally", group, name)
            return
        account, queue = arn.split(":")[4:6]
        url = self.sqs.get_queue_url(QueueName=queue, QueueOwnerAWSAccountId=account)["QueueUrl"]
        self.sqs.send_message(QueueUrl=url, MessageBody=target.get("Input") or "{}")
        if schedule.get("ActionAfterCompletion") == "DELETE":
            self.scheduler.delete_schedule(Name=name, GroupName=group)
        else:
            self.scheduler.update_schedule(
                Name=name, GroupName=group, ScheduleExpression=schedule["ScheduleExpression"],
                FlexibleTimeWindow=schedule["FlexibleTimeWindow"], Target=target,
                State="DISABLED",
            )


_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_RATE_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


class _SchedulePoller(_Worker):
    """Fires a ``rate(...)`` schedule event; other expressions are not emulated."""

    def __init__(
        self,
        function: LocalFunction,
        source: ScheduleSource,
        *,
        interval: float,
        region: str,
        account_id: str,
        stop: threading.Event,
    ) -> None:
        super().__init__(f"schedule:{source.name}->{function.spec.logical_id}", stop)
        self.function = function
        self.source = source
        self.interval = interval
        self.region = region
        self.account_id = account_id

    def poll_once(self) -> None:
        if self.stop_event.wait(self.interval):
            return
        if self.source.input is not None:
            event: Any = json.loads(self.source.input)
        else:
            event = {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": self.account_id,
                "time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": self.region,
                "resources": [
                    f"arn:aws:events:{self.region}:{self.account_id}:rule/"
                    f"{self.function.spec.name}-{self.source.name}"
                ],
                "detail": {},
            }
        try:
            self.function.invoke(event)
        except Exception:
            log.exception(
                "%s failed on schedule %s", self.function.spec.logical_id, self.source.name
            )


# --------------------------------------------------------------------------------------------
# HTTP API


class _ApiHandler(KeepAliveHandler):
    """Bodies over the API's limit are refused (413) before they are read, as API Gateway
    refuses them before the function runs."""

    max_body_bytes = MAX_BODY_BYTES


#: Writes the one-line request log of ``cadenza dev --verbose``.
RequestLog = Callable[[str, str, int, float], None]


class ApiGateway:
    """The HTTP API as a WSGI application: a request becomes an HTTP API v2.0 event for the
    function its route names, the function's answer becomes the response.

    ``mounted`` (a WSGI application, e.g. the web UI) answers every request whose path is not
    under ``/api/``; without it those go to the routes too (a template's own routes), and one
    that no route matches gets a short 404. ``authorize`` (e.g. SigV4 verification for
    ``cadenza dev --auth iam``) wraps the ``/api/`` part only. ``request_log`` is called with
    the method, path, status and milliseconds of each request.
    """

    def __init__(self, runtime: LocalRuntime, *, mounted: WsgiApp | None = None,
                 authorize: Callable[[WsgiApp], WsgiApp] | None = None,
                 request_log: RequestLog | None = None) -> None:
        self.runtime = runtime
        self.mounted = mounted
        self.routed: WsgiApp = self._route if authorize is None else authorize(self._route)
        self.request_log = request_log

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO") or "/")
        app = self.routed
        if self.mounted is not None and not (path == "/api" or path.startswith("/api/")):
            app = self.mounted
        if self.request_log is None:
            return app(environ, start_response)
        began = time.perf_counter()
        status: list[str] = []

        def logged(code: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status[:] = [code]
            return start_response(code, headers, exc_info)

        answer = list(app(environ, logged))
        code = int(status[0].split(" ", 1)[0]) if status else 500
        self.request_log(str(environ.get("REQUEST_METHOD", "GET")), path, code,
                         (time.perf_counter() - began) * 1000)
        return answer

    def _route(self, environ: dict[str, Any],
               start_response: Callable[..., Any]) -> Iterable[bytes]:
        runtime = self.runtime
        method = str(environ.get("REQUEST_METHOD", "GET"))
        path = str(environ.get("PATH_INFO") or "/")
        stream = environ.get("wsgi.input")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = bytes(stream.read(length)) if stream is not None and length > 0 else b""
        request_id = base64.b32encode(uuid.uuid4().bytes)[:16].decode()
        matched = match_route(runtime.routes, method, path)
        if matched is None:
            return _answer(start_response, 404, [("Content-Type", "application/json")],
                           b'{"message":"Not Found"}', request_id)
        route, params = matched
        query = str(environ.get("QUERY_STRING") or "")
        raw_path = str(environ.get("RAW_URI") or environ.get("REQUEST_URI") or "").split("?")[0]
        target = (raw_path or path) + (f"?{query}" if query else "")
        event = http_api_event(
            method=method,
            target=target,
            headers=request_headers(environ),
            body=body,
            source_ip=str(environ.get("REMOTE_ADDR") or "127.0.0.1"),
            protocol=str(environ.get("SERVER_PROTOCOL") or "HTTP/1.1"),
            route_key=route.source.route_key,
            path_parameters=params,
            account_id=runtime.description.account_id,
            request_id=request_id,
        )
        try:
            result = runtime.functions[route.function].invoke(event)
            status, headers, payload = http_api_response(result)
        except Exception as error:
            # One line: what failed and why; the traceback only with debug logging.
            log.error("%s failed on %s %s: %s: %s", route.function, method, path,
                      type(error).__name__, error, exc_info=log.isEnabledFor(logging.DEBUG))
            status, headers, payload = (
                500,
                [("Content-Type", "application/json")],
                b'{"message":"Internal Server Error"}',
            )
        if method == "HEAD":
            payload = b""
        return _answer(start_response, status, headers, payload, request_id)


def _answer(start_response: Callable[..., Any], status: int, headers: list[tuple[str, str]],
            body: bytes, request_id: str) -> list[bytes]:
    start_response(f"{status} {_reason(status)}", [
        *headers, ("Content-Length", str(len(body))), ("apigw-requestid", request_id)])
    return [body]


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


# --------------------------------------------------------------------------------------------
# The runtime


class LocalRuntime:
    """Runs a described stack's functions against an AWS endpoint (the embedded moto, or an
    external one such as LocalStack): pollers, schedules and the API.

    ``start()`` binds the API port, sets the merged function environment (plus ``extra_env``)
    in ``os.environ``, imports every handler, then starts the pollers; ``stop()`` stops them
    and restores ``os.environ``. ``mount``, ``authorize`` and ``request_log`` shape the HTTP
    front end (:class:`ApiGateway`); ``mount`` is given the API's URL.
    """

    def __init__(
        self,
        description: StackDescription,
        *,
        emulator: AwsEndpoint,
        api_host: str = "127.0.0.1",
        api_port: int = 7933,
        extra_env: Mapping[str, str] | None = None,
        sqs_pollers: int | None = None,
        mount: Callable[[str], WsgiApp] | None = None,
        authorize: Callable[[WsgiApp], WsgiApp] | None = None,
        request_log: RequestLog | None = None,
    ) -> None:
        self.description = description
        self._mount = mount
        self._authorize = authorize
        self._request_log = request_log
        self.emulator = emulator
        self.api_host = api_host
        self._requested_api_port = api_port
        self._extra_env = dict(extra_env or {})
        self._sqs_pollers = None if sqs_pollers is None else max(1, sqs_pollers)
        self.functions: dict[str, LocalFunction] = {}
        self.routes: list[_Route] = [
            _Route(function.logical_id, source)
            for function in description.functions
            for source in function.sources(HttpApiSource)
        ]
        self._stop = threading.Event()
        self._workers: list[_Worker] = []
        self._server: BaseWSGIServer | None = None
        self._server_thread: threading.Thread | None = None
        self._saved_env: dict[str, str | None] = {}
        self._environment: dict[str, str] = {}
        self._started = False

    @property
    def api_port(self) -> int:
        if self._server is None:
            raise LocalStackError("the API server is not running")
        return int(self._server.server_address[1])

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"

    @property
    def environment(self) -> dict[str, str]:
        """The variables set in ``os.environ`` for the handlers (a copy)."""
        return dict(self._environment)

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        try:
            self._bind_api()
            self._environment = {
                **merged_environment(self.description.functions),
                **self._extra_env,
                "CADENZA_API_URL": self.api_url,
            }
            self._apply_environment()
            prefix = f"cadenza_local_{uuid.uuid4().hex[:8]}"
            for spec in self.description.functions:
                self.functions[spec.logical_id] = load_function(spec, module_prefix=prefix)
            self._start_workers()
            server = self._server
            assert server is not None
            self._server_thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.2},
                name="cadenza-local-api", daemon=True,
            )
            self._server_thread.start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the API server and every poller (each within about a second), restore env."""
        self._stop.set()
        if self._server is not None:
            if self._server_thread is not None:
                self._server.shutdown()
            self._server.server_close()
            close_connections(self._server)
            self._server = None
        for worker in self._workers:
            worker.join(timeout=SQS_WAIT_SECONDS + 5)
        self._workers.clear()
        if self._server_thread is not None:
            self._server_thread.join(timeout=5)
            self._server_thread = None
        self._restore_environment()
        self._started = False

    def invoke(self, function: str, event: Any) -> Any:
        """Invoke a function by logical id or physical name, as ``lambda:Invoke`` would."""
        for logical_id, loaded in self.functions.items():
            if function in (logical_id, loaded.spec.name, loaded.spec.arn):
                return loaded.invoke(event)
        raise LocalStackError(f"no function {function!r} in the local stack")

    @contextlib.contextmanager
    def unstreamed(self, table: str) -> Iterator[None]:
        """Writes to ``table`` (a logical id) made inside reach no stream function: see
        ``_StreamPoller.unstreamed``. For seeding stored state, while nothing else writes."""
        with contextlib.ExitStack() as stack:
            for worker in self._workers:
                if isinstance(worker, _StreamPoller) and worker.source.table == table:
                    stack.enter_context(worker.unstreamed())
            yield

    # -- internals

    def _bind_api(self) -> None:
        try:
            gateway = ApiGateway(self, authorize=self._authorize, request_log=self._request_log)
            self._server = serve(self.api_host, self._requested_api_port, gateway, _ApiHandler)
        except OSError as exc:
            raise PortInUseError(
                "HTTP API server", self.api_host, self._requested_api_port, exc.strerror or ""
            ) from exc
        if self._mount is not None:
            # Given the API's URL, which is known once the port is bound.
            gateway.mounted = self._mount(self.api_url)

    def _apply_environment(self) -> None:
        for key, value in self._environment.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def _restore_environment(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    def _start_workers(self) -> None:
        attributes = self.description.attributes
        region = self.description.region
        for logical_id, function in self.functions.items():
            for source in function.spec.events:
                if isinstance(source, SqsSource) and source.enabled:
                    queue = attributes.get(source.queue) or {}
                    if "QueueUrl" not in queue:
                        raise LocalStackError(
                            f"{logical_id}.{source.name}: queue {source.queue} is not in the stack"
                        )
                    fifo = str(queue["Arn"]).endswith(".fifo")
                    pollers = self._sqs_pollers or (
                        FIFO_SQS_POLLERS if fifo else STANDARD_SQS_POLLERS)
                    for _ in range(pollers):
                        self._workers.append(
                            _SqsPoller(
                                function,
                                source,
                                queue_url=queue["QueueUrl"],
                                queue_arn=queue["Arn"],
                                client=self.emulator.new_client(
                                    "sqs", read_timeout=SQS_WAIT_SECONDS + 10
                                ),
                                region=region,
                                stop=self._stop,
                            )
                        )
                elif isinstance(source, DynamoStreamSource) and source.enabled:
                    table = attributes.get(source.table) or {}
                    stream_arn = table.get("StreamArn", "")
                    if not stream_arn or stream_arn.endswith("/stream/*"):
                        raise LocalStackError(
                            f"{logical_id}.{source.name}: table {source.table} has no stream"
                        )
                    failure_queue = (
                        (attributes.get(source.on_failure_queue) or {}).get("QueueUrl")
                        if source.on_failure_queue
                        else None
                    )
                    self._workers.append(
                        _StreamPoller(
                            function,
                            source,
                            stream_arn=stream_arn,
                            client=self.emulator.new_client("dynamodbstreams"),
                            emulator=self.emulator,
                            failure_queue_url=failure_queue,
                            region=region,
                            stop=self._stop,
                        )
                    )
                elif isinstance(source, ScheduleSource) and source.enabled:
                    match = _RATE.match(source.expression.strip())
                    if match is None:
                        log.warning(
                            "%s.%s: schedule %r is not emulated locally (only rate(...) is)",
                            logical_id,
                            source.name,
                            source.expression,
                        )
                        continue
                    unit = match.group(2).rstrip("s")
                    self._workers.append(
                        _SchedulePoller(
                            function,
                            source,
                            interval=int(match.group(1)) * _RATE_SECONDS[unit],
                            region=region,
                            account_id=self.description.account_id,
                            stop=self._stop,
                        )
                    )
            for ignored in function.spec.ignored_events:
                log.warning("%s: event %s is not emulated locally", logical_id, ignored)
        if self.description.schedule_groups:
            self._workers.append(_OneTimeScheduleFirer(
                (group.name for group in self.description.schedule_groups),
                endpoint=self.emulator, stop=self._stop,
            ))
        for worker in self._workers:
            worker.start()

