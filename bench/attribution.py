"""Where every request goes, and for which workflow: the ledger behind "## The request floor".

A :class:`Ledger` watches the meter (every botocore call and every HTTP API call of the process)
and the local runtime's Lambda invocations. For each request it decides

- *where* it goes: the part of the engine that made it (commit, state read, history read,
  visibility, task dispatch, stream redrive, worker receive/delete, timer firing, result
  polling, ...), from the resource it touches (table, queue) and the engine functions on the
  calling thread's stack;
- *for which workflow*: from the request itself (a DynamoDB key, a message body, a receipt
  handle seen in an earlier receive, a task token, an API path), split evenly between the
  workflows of a batch. Requests of no workflow (an empty receive, a queue lookup) are idle or
  set-up costs, reported apart;
- *what it is billed*: DynamoDB read and write request units (item sizes, consistency,
  transactions, and the global secondary index writes a put causes), SQS requests by queue type
  (FIFO or standard), Lambda invocations and duration, HTTP API requests.

Workflow ids of the form ``<prefix>-<scenario>-...`` are tallied by scenario, so other benches
running on the same stack at the same time (their late timers, say) never leak into a scenario.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from . import prices as price_table
from .meter import Meter

KB = 1024

#: Where a request goes, in the order the report lists them.
WHERE = (
    "commit",
    "commit (state read)",
    "history read (decision task)",
    "result polling",
    "visibility",
    "task dispatch",
    "stream redrive",
    "worker receive/delete",
    "timer firing",
    "timer firing (projected)",
    "effects",
    "HTTP API (client)",
    "HTTP API (worker)",
    "other",
)


@dataclass
class Tally:
    """Requests and billed units of one (where, request) pair."""

    requests: float = 0.0
    write_units: float = 0.0
    read_units: float = 0.0
    gb_seconds: float = 0.0
    usd_m: float = 0.0  # USD per million of these: requests x their price, units x theirs

    def add(self, other: Tally, scale: float = 1.0) -> None:
        self.requests += other.requests * scale
        self.write_units += other.write_units * scale
        self.read_units += other.read_units * scale
        self.gb_seconds += other.gb_seconds * scale
        self.usd_m += other.usd_m * scale


@dataclass
class _TimerMessages:
    sent: Counter[str] = field(default_factory=Counter)
    received: Counter[str] = field(default_factory=Counter)
    fire_at: dict[str, float] = field(default_factory=dict)
    workflow: dict[str, str] = field(default_factory=dict)
    #: the send request a message last went out in (messages of one request that are due in
    #: the same second surface together)
    request: dict[str, int] = field(default_factory=dict)
    requests: int = 0


def item_size(item: Mapping[str, Any]) -> int:
    """DynamoDB's size of an item (typed attribute values): names plus values."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(typed: Mapping[str, Any]) -> int:
    for kind, value in typed.items():
        if kind == "S":
            return len(str(value).encode())
        if kind == "N":
            return len(str(value).lstrip("-").replace(".", "")) // 2 + 2
        if kind == "B":
            return len(value) if isinstance(value, bytes | bytearray) \
                else len(base64.b64decode(value))
        if kind in {"BOOL", "NULL"}:
            return 1
        if kind in {"SS", "NS", "BS"}:
            return sum(_value_size({kind[0]: member}) for member in value)
        if kind == "L":
            return 3 + sum(1 + _value_size(member) for member in value)
        if kind == "M":
            return 3 + sum(1 + len(k.encode()) + _value_size(v) for k, v in value.items())
    return 1


def _units(size: int, unit: int) -> int:
    return max(1, math.ceil(size / unit))


def _workflow_of_pk(pk: str) -> str | None:
    """``<domain>#<workflow id>`` (history, visibility record) or ``sa:<domain>#<id>``."""
    if "#" not in pk:
        return None
    return pk.split("#", 1)[1]


def _workflow_of_body(body: str) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    task = data.get("task") if isinstance(data, dict) else None
    value = task.get("workflow_id") if isinstance(task, dict) else None
    return str(value) if value else None


def _workflow_of_token(token: str) -> str | None:
    """A task token's workflow id (its body is base64 JSON: domain, workflow id, ...)."""
    try:
        text = token.split(".", 1)[0]
        fields = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        return str(fields[1])
    except (ValueError, IndexError, TypeError):
        return None


def _stack() -> set[str]:
    """``package/module:function`` of every Cadenza or handler frame on this thread's stack."""
    names = set()
    frame = sys._getframe(2)
    while frame is not None:
        path = frame.f_code.co_filename
        if "cadenza" in path or "/functions/" in path or "/bench/" in path:
            parts = path.rsplit("/", 2)
            module = f"{parts[-2]}/{parts[-1].removesuffix('.py')}" if len(parts) > 2 else path
            names.add(f"{module}:{frame.f_code.co_name}")
        frame = frame.f_back  # type: ignore[assignment]
    return names


def _any(stack: set[str], *names: str) -> bool:
    return any(name in stack for name in names)


_KEY_CONDITION = re.compile(r"(#\w+)\s*=\s*(:\w+)")


class Ledger:
    """Attributes every request; install it with :meth:`watch` around the work measured."""

    def __init__(self, *, history_table: str, visibility_table: str, timer_queue_url: str,
                 visibility_indexes: Iterable[tuple[str, str | None]] = (),
                 prefix: str = "floor", prices: price_table.PriceTable = price_table.CURRENT,
                 ) -> None:
        self.history_table = history_table
        self.visibility_table = visibility_table
        self.timer_queue_url = timer_queue_url
        self.visibility_indexes = tuple(visibility_indexes)
        self.prefix = prefix
        self.prices = prices
        #: scenario (None: no workflow, "other": another bench's) -> (where, request) -> tally
        self.tallies: dict[str | None, dict[tuple[str, str], Tally]] = defaultdict(
            lambda: defaultdict(Tally))
        self.timers = _TimerMessages()
        #: Schedules the engine created and nobody deleted yet: name -> (workflow, fire time)
        self.schedules: dict[str, tuple[str | None, float]] = {}
        self.receipts: dict[str, str] = {}
        #: (pk, sk) of a visibility item -> its index keys, to price the index writes of a put
        self._index_keys: dict[tuple[str, str], tuple[Any, ...]] = {}
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self.unclassified: Counter[str] = Counter()

    # --- installation ---------------------------------------------------------------------

    @contextmanager
    def watch(self, meter: Meter) -> Iterator[Ledger]:
        """Observe ``meter`` and the local runtime's Lambda invocations."""
        from cadenza.local import runtime

        original = runtime.LocalFunction.invoke
        ledger = self

        def invoke(function: runtime.LocalFunction, event: Any) -> Any:
            began = time.perf_counter()
            try:
                return original(function, event)
            finally:
                ledger.invocation(function.spec.logical_id, event, time.perf_counter() - began)

        meter.observers.append(self)
        runtime.LocalFunction.invoke = invoke  # type: ignore[method-assign, assignment]
        try:
            yield self
        finally:
            runtime.LocalFunction.invoke = original  # type: ignore[method-assign]
            meter.observers.remove(self)

    # --- scenario of a workflow -----------------------------------------------------------

    def scenario(self, workflow_id: str | None) -> str | None:
        if workflow_id is None:
            return None
        parts = workflow_id.split("-")
        if len(parts) >= 3 and parts[0] == self.prefix:
            return parts[1]
        return "other"

    def _book(self, workflows: Iterable[str | None], where: str, request: str,
              tally: Tally) -> None:
        shares = Counter(self.scenario(w) for w in workflows) or Counter({None: 1})
        total = sum(shares.values())
        with self._lock:
            for scenario, count in shares.items():
                self.tallies[scenario][(where, request)].add(tally, count / total)

    # --- observers (called on the requesting thread) --------------------------------------

    def aws_call(self, service: str, operation: str, params: dict[str, Any],
                 response: dict[str, Any] | None) -> None:
        try:
            if service == "dynamodb":
                self._dynamodb(operation, params, response)
            elif service == "sqs":
                self._sqs(operation, params, response)
            elif service == "scheduler":
                self._scheduler(operation, params)
            elif service == "dynamodbstreams":
                self._book([None], "other", f"dynamodbstreams:{operation} (free for Lambda)",
                           Tally(requests=1))
            else:
                self._book([None], "other", f"{service}:{operation}", Tally(requests=1))
        except Exception as error:  # a bench must not break the engine it measures
            self.unclassified[f"{service}:{operation}: {type(error).__name__}"] += 1

    def http_call(self, method: str, path: str, kwargs: dict[str, Any]) -> None:
        try:
            route = path.split("/api/v1/")[-1]
            parts = route.split("/")
            workflow = None
            body = kwargs.get("json") or {}
            if parts[0] == "domains" and len(parts) > 4:
                workflow = unquote(parts[3])
                route = "workflows/" + "/".join(parts[4:])
            elif parts[0] == "domains":
                workflow = body.get("workflow_id")
                route = "/".join(parts[2:])
            elif body.get("task_token"):
                workflow = _workflow_of_token(str(body["task_token"]))
            where = "HTTP API (worker)" if route.startswith("tasks/") or \
                route.endswith("/history") else "HTTP API (client)"
            price = self.prices.http_api_request + self.prices.lambda_request
            self._book([workflow], where, f"http:{method} {route}",
                       Tally(requests=1, usd_m=price))
        except Exception as error:
            self.unclassified[f"http: {type(error).__name__}"] += 1

    def invocation(self, function: str, event: Any, seconds: float) -> None:
        """A Lambda invocation by the local runtime (SQS batch, stream batch, HTTP request)."""
        try:
            records = event.get("Records") if isinstance(event, dict) else None
            gb_s = seconds * self.prices.lambda_memory_gb
            duration_usd = gb_s * self.prices.lambda_gb_second
            if records is None:  # an HTTP API request: requests are booked by http_call
                path = str((event or {}).get("rawPath", ""))
                parts = path.split("/")  # "", api, v1, domains, <domain>, workflows, <id>, ...
                workflow = unquote(parts[6]) if len(parts) > 6 and parts[3] == "domains" \
                    else None
                body = str((event or {}).get("body") or "")
                if workflow is None:
                    named = re.search(r'"workflow_id"\s*:\s*"([^"]+)"', body)
                    token = re.search(r'"task_token"\s*:\s*"([^"]+)"', body)
                    workflow = named.group(1) if named else \
                        _workflow_of_token(token.group(1)) if token else None
                self._book([workflow], "other", f"lambda:{function} duration",
                           Tally(gb_seconds=gb_s, usd_m=duration_usd))
                return
            workflows: list[str | None] = []
            for record in records:
                if "body" in record:
                    workflows.append(_workflow_of_body(record["body"]))
                else:
                    keys = (record.get("dynamodb") or {}).get("Keys") or {}
                    workflows.append(_workflow_of_pk(str((keys.get("pk") or {}).get("S", ""))))
            where = "stream redrive" if function.startswith("Stream") else \
                "timer firing" if function.startswith("Timer") else "other"
            self._book(workflows, where, f"lambda:Invoke {function}",
                       Tally(requests=1, usd_m=self.prices.lambda_request))
            self._book(workflows, "other", f"lambda:{function} duration",
                       Tally(gb_seconds=gb_s, usd_m=duration_usd))
        except Exception as error:
            self.unclassified[f"lambda: {type(error).__name__}"] += 1

    # --- DynamoDB -------------------------------------------------------------------------

    def _dynamodb(self, operation: str, params: dict[str, Any],
                  response: dict[str, Any] | None) -> None:
        stack = _stack()
        if operation == "TransactWriteItems":
            items = [entry.get("Put", {}) for entry in params.get("TransactItems", [])]
            units = sum(2 * _units(item_size(put.get("Item", {})), KB) for put in items)
            workflows = [_workflow_of_pk(put.get("Item", {}).get("pk", {}).get("S", ""))
                         for put in items]
            self._book(workflows, "commit", "dynamodb:TransactWriteItems",
                       self._write(units))
            return
        table = params.get("TableName", "")
        pk = self._pk(operation, params)
        workflow = _workflow_of_pk(pk) if pk else None
        request = f"dynamodb:{operation}"
        if table == self.visibility_table:
            if operation == "PutItem":
                units = _units(item_size(params.get("Item", {})), KB)
                if response is not None:
                    units += self._index_writes(params["Item"])
                self._book([workflow], "visibility", request, self._write(units))
            else:
                self._book([workflow], "visibility", request,
                           self._read(params, response))
            return
        if table != self.history_table:
            self._book([workflow], "other", request, self._read(params, response)
                       if operation in {"GetItem", "Query"} else Tally(requests=1))
            return
        if operation in {"PutItem", "UpdateItem", "DeleteItem"}:
            units = _units(item_size(params.get("Item", {})), KB)
            refused = " (refused: lost race)" if response is None else ""
            self._book([workflow], "commit", request + refused, self._write(units))
            return
        where = self._history_read(operation, stack)
        self._book([workflow], where, request, self._read(params, response))

    @staticmethod
    def _history_read(operation: str, stack: set[str]) -> str:
        if operation == "GetItem" and _any(stack, "aws/store:_is_own"):
            return "commit"
        if _any(stack, "service/engine:_dispatch_retry", "service/engine:fire_timer"):
            return "timer firing"  # the state read of the timer's own commit included
        if _any(stack, "service/engine:_commit_group", "service/engine:_start",
                "service/engine:_commit", "service/engine:_continue_chain"):
            return "commit (state read)"
        if _any(stack, "service/engine:_still_pending"):
            return "stream redrive"  # its last look at a run before sending again
        if _any(stack, "service/engine:get_result", "service/engine:_wait_closed"):
            return "result polling"
        if _any(stack, "service/engine:get_history", "service/engine:history_after"):
            return "history read (decision task)"
        if _any(stack, "service/engine:perform"):
            return "effects"
        return "other"

    def _pk(self, operation: str, params: dict[str, Any]) -> str:
        if operation == "PutItem":
            return str(params.get("Item", {}).get("pk", {}).get("S", ""))
        if operation in {"GetItem", "DeleteItem", "UpdateItem"}:
            return str(params.get("Key", {}).get("pk", {}).get("S", ""))
        if operation == "Query" and not params.get("IndexName"):
            names = params.get("ExpressionAttributeNames", {})
            values = params.get("ExpressionAttributeValues", {})
            for name, value in _KEY_CONDITION.findall(params.get("KeyConditionExpression", "")):
                if names.get(name, name) == "pk":
                    return str(values.get(value, {}).get("S", ""))
        return ""

    def _write(self, units: int) -> Tally:
        return Tally(requests=1, write_units=units, usd_m=units * self.prices.dynamodb_write_unit)

    def _read(self, params: dict[str, Any], response: dict[str, Any] | None) -> Tally:
        items = (response or {}).get("Items")
        if items is None:
            item = (response or {}).get("Item")
            items = [item] if item else []
        units = float(_units(sum(item_size(item) for item in items), 4 * KB))
        if not params.get("ConsistentRead"):
            units /= 2
        return Tally(requests=1, read_units=units, usd_m=units * self.prices.dynamodb_read_unit)

    def _index_writes(self, item: Mapping[str, Any]) -> int:
        """Write units the global secondary indexes add to a put (ALL projections): one for an
        item that enters or leaves an index or changes in it, two when its index key moves."""
        key = (str(item.get("pk", {}).get("S", "")), str(item.get("sk", {}).get("S", "")))
        size = _units(item_size(item), KB)
        new = tuple(
            (json.dumps(item.get(hash_key)), json.dumps(item.get(range_key)) if range_key else "")
            if hash_key in item and (range_key is None or range_key in item) else None
            for hash_key, range_key in self.visibility_indexes
        )
        with self._lock:
            old = self._index_keys.get(key, (None,) * len(new))
            self._index_keys[key] = new
        units = 0
        for before, after in zip(old, new, strict=True):
            if before is None and after is None:
                continue
            units += 2 * size if before is not None and after is not None and before != after \
                else size
        return units

    # --- SQS ------------------------------------------------------------------------------

    def _sqs(self, operation: str, params: dict[str, Any],
             response: dict[str, Any] | None) -> None:
        url = str(params.get("QueueUrl", ""))
        timer = url == self.timer_queue_url
        queue = "timer queue" if timer else "task list" if price_table.is_fifo(url) else "queue"
        price = price_table.sqs_price(url, self.prices)
        request = f"sqs:{operation} [{queue}]"
        if operation in {"SendMessage", "SendMessageBatch"}:
            entries = params.get("Entries") or [params]
            bodies = [str(entry.get("MessageBody", "")) for entry in entries]
            chunks = max(1, math.ceil(sum(len(b.encode()) for b in bodies) / (64 * KB)))
            workflows = [_workflow_of_body(body) for body in bodies]
            if timer:
                self._timers_sent(bodies, workflows)
            stack = _stack()
            if _any(stack, "local/runtime:_fire_if_due"):
                where = "timer firing"  # a schedule putting its timer on the queue
                for body in bodies:
                    self.scheduler_fired(body)
            elif _any(stack, "service/engine:on_committed", "service/engine:on_committed_all"):
                where = "stream redrive"
            elif _any(stack, "service/engine:_after", "service/engine:_dispatch_retry"):
                where = "task dispatch"
            elif _any(stack, "service/engine:fire_timer"):
                where = "timer firing"
            else:
                where = "other"
            self._book(workflows, where, request, Tally(requests=chunks, usd_m=chunks * price))
            return
        where = "timer firing" if timer else "worker receive/delete"
        if operation == "ReceiveMessage":
            messages = (response or {}).get("Messages") or []
            if not messages:
                self._book([None], "other", f"sqs:ReceiveMessage(empty) [{queue}]",
                           Tally(requests=1, usd_m=price))
                return
            workflows = [_workflow_of_body(str(m.get("Body", ""))) for m in messages]
            with self._lock:
                for message, workflow in zip(messages, workflows, strict=True):
                    if workflow:
                        self.receipts[message["ReceiptHandle"]] = workflow
            if timer:
                self._timers_received([str(m.get("Body", "")) for m in messages])
            self._book(workflows, where, request, Tally(requests=1, usd_m=price))
            return
        handles = [str(e.get("ReceiptHandle", "")) for e in params.get("Entries") or [params]]
        if operation in {"DeleteMessage", "DeleteMessageBatch", "ChangeMessageVisibility",
                         "ChangeMessageVisibilityBatch"} and any(handles):
            with self._lock:
                workflows = [self.receipts.get(handle) for handle in handles]
            self._book(workflows, where, request, Tally(requests=1, usd_m=price))
            return
        # GetQueueUrl, CreateQueue, ...: once per process and queue
        self._book([None], "other", request, Tally(requests=1, usd_m=price))

    @staticmethod
    def _digest(body: str) -> str:
        return hashlib.sha1(body.encode()).hexdigest()

    def _timers_sent(self, bodies: list[str], workflows: list[str | None]) -> None:
        with self._lock:
            self.timers.requests += 1
            for body, workflow in zip(bodies, workflows, strict=True):
                digest = self._digest(body)
                self.timers.sent[digest] += 1
                self.timers.request[digest] = self.timers.requests
                try:
                    self.timers.fire_at[digest] = float(json.loads(body)["task"]["fire_at"]) / 1000
                except (ValueError, KeyError, TypeError):
                    self.timers.fire_at[digest] = 0.0
                if workflow:
                    self.timers.workflow[digest] = workflow

    def _timers_received(self, bodies: list[str]) -> None:
        with self._lock:
            for body in bodies:
                self.timers.received[self._digest(body)] += 1

    def _scheduler(self, operation: str, params: dict[str, Any]) -> None:
        stack = _stack()
        name = str(params.get("Name", ""))
        if not _any(stack, "aws/timers:retire", "aws/timers:_schedule"):
            # The local runtime firing schedules, as EventBridge Scheduler would.
            if operation == "DeleteSchedule":
                with self._lock:
                    self.schedules.pop(name, None)  # it fired (its invocation is booked)
            self._book([None], "other", f"scheduler:{operation} (local emulation, not billed)",
                       Tally(requests=1))
            return
        where = "stream redrive" if _any(stack, "service/engine:on_committed_all") \
            else "task dispatch"
        workflow = None
        if operation == "CreateSchedule":
            body = str((params.get("Target") or {}).get("Input", ""))
            workflow = _workflow_of_body(body)
            try:
                fire_at = float(json.loads(body)["task"]["fire_at"]) / 1000
            except (ValueError, KeyError, TypeError):
                fire_at = 0.0
            with self._lock:
                self.schedules.setdefault(name, (workflow, fire_at))
        elif operation == "DeleteSchedule":
            with self._lock:
                workflow = (self.schedules.pop(name, None) or (None, 0.0))[0]
        # Scheduler bills the invocations of schedules, not the calls that manage them.
        self._book([workflow], where, f"scheduler:{operation} (not billed)", Tally(requests=1))

    def scheduler_fired(self, body: str) -> None:
        """A schedule put its timer on the timer queue: one Scheduler invocation."""
        self._book([_workflow_of_body(body)], "timer firing", "scheduler:invocation",
                   Tally(requests=1, usd_m=self.prices.scheduler_invocation))

    def pending_schedules(self, scenario: str) -> list[float]:
        """Fire times of ``scenario``'s schedules never deleted: each will be invoked, put its
        timer on the queue, and surface there stale."""
        with self._lock:
            return [fire_at for workflow, fire_at in self.schedules.values()
                    if self.scenario(workflow) == scenario]

    # --- reading the ledger ---------------------------------------------------------------

    def pending_timers(self, scenario: str) -> list[tuple[int, float]]:
        """(send request, fire time) of the timer messages of ``scenario`` still in the queue:
        each will surface once and (its run being closed) be dropped as stale."""
        with self._lock:
            left = self.timers.sent - self.timers.received
            return [(self.timers.request.get(digest, 0), self.timers.fire_at.get(digest, 0.0))
                    for digest, count in left.items()
                    for _ in range(count)
                    if self.scenario(self.timers.workflow.get(digest)) == scenario]

    def timer_messages(self, scenario: str) -> int:
        """Timer messages sent for ``scenario``'s workflows (a batch of ten is one request)."""
        with self._lock:
            return sum(count for digest, count in self.timers.sent.items()
                       if self.scenario(self.timers.workflow.get(digest)) == scenario)

    def snapshot(self, scenario: str | None) -> dict[tuple[str, str], Tally]:
        with self._lock:
            result: dict[tuple[str, str], Tally] = {}
            for key, tally in self.tallies.get(scenario, {}).items():
                copy = Tally()
                copy.add(tally)
                result[key] = copy
            return result


def surfacing_batches(pending: Iterable[tuple[int, float]], *, size: int = 10) -> int:
    """How many receives the timer function's event source needs for these messages: those
    sent in one request and due in the same second surface together, ``size`` to a receive;
    no other message is counted on to share a batch (as when runs go one at a time)."""
    groups = Counter((request, math.ceil(fire_at)) for request, fire_at in pending)
    return sum(math.ceil(count / size) for count in groups.values())


def stale_schedule_cost(schedules: int,
                        prices: price_table.PriceTable = price_table.CURRENT) \
        -> dict[tuple[str, str], Tally]:
    """What schedules never deleted cost when they fire: an invocation and the SQS send that
    puts the timer on the queue (where it then surfaces stale: stale_timer_cost)."""
    return {
        ("timer firing (projected)", "scheduler:invocation"):
            Tally(requests=schedules, usd_m=schedules * prices.scheduler_invocation),
        ("timer firing (projected)", "sqs:SendMessage [timer queue]"):
            Tally(requests=schedules, usd_m=schedules * prices.sqs_standard_request),
    }


def stale_timer_cost(messages: int, batches: int,
                     prices: price_table.PriceTable = price_table.CURRENT) \
        -> dict[tuple[str, str], Tally]:
    """What stale timer messages cost when they surface: for each batch, the timer function's
    event source receives it and deletes it and the function is invoked once; for each message,
    the function reads the run's latest commit (one consistent Query of one item) and drops
    it."""
    sqs = prices.sqs_standard_request
    return {
        ("timer firing (projected)", "sqs:ReceiveMessage [timer queue]"):
            Tally(requests=batches, usd_m=batches * sqs),
        ("timer firing (projected)", "sqs:DeleteMessageBatch [timer queue]"):
            Tally(requests=batches, usd_m=batches * sqs),
        ("timer firing (projected)", "lambda:Invoke TimerFunction"):
            Tally(requests=batches, usd_m=batches * prices.lambda_request),
        ("timer firing (projected)", "dynamodb:Query"):
            Tally(requests=messages, read_units=messages,
                  usd_m=messages * prices.dynamodb_read_unit),
    }
