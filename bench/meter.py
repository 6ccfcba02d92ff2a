"""Counts every AWS API call and every Cadenza HTTP API call made in this process.

The local stack runs the Lambda handlers in-process and the worker talks to moto from this
process too, so wrapping botocore's ``_make_api_call`` (which pynamodb also goes through) and the
client's HTTP transport sees every billable request exactly, without touching the engine.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from botocore.client import BaseClient

from cadenza._http import ApiTransport


class Observer(Protocol):
    """Sees every request the meter counts (bench/attribution.py attributes them)."""

    def aws_call(self, service: str, operation: str, params: dict[str, Any],
                 response: dict[str, Any] | None) -> None: ...

    def http_call(self, method: str, path: str, kwargs: dict[str, Any]) -> None: ...


class Meter:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.empty_receives = 0
        self.write_units = 0
        self.observers: list[Observer] = []
        self._lock = threading.Lock()

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.calls)

    def record(self, key: str, amount: int = 1) -> None:
        with self._lock:
            self.calls[key] += amount


def _item_write_units(params: dict[str, Any]) -> int:
    """DynamoDB bills one write unit per started KB of the item written."""
    size = 0
    for name, value in params.get("Item", {}).items():
        size += len(name.encode())
        for typed in value.values():
            if isinstance(typed, bytes):
                size += len(typed)
            elif typed is not None:
                size += len(str(typed).encode())
            else:
                size += 1
    return max(1, -(-size // 1024))


@contextmanager
def metering() -> Iterator[Meter]:
    meter = Meter()
    original_call = BaseClient._make_api_call  # type: ignore[attr-defined]
    original_http = ApiTransport.call

    def counted_call(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        service = self.meta.service_model.service_name
        response: dict[str, Any] | None = None
        try:
            response = original_call(self, operation_name, api_params)
            return response
        finally:
            # A refused request (a failed condition, a throttle) is billed too: counted all the
            # same, with no response.
            if service == "sqs" and operation_name == "ReceiveMessage" and response is not None \
                    and not response.get("Messages"):
                meter.record("sqs:ReceiveMessage(empty)")
            else:
                meter.record(f"{service}:{operation_name}")
            if service == "dynamodb" and operation_name == "PutItem":
                meter.record("dynamodb:WriteUnits", _item_write_units(api_params))
            for observer in meter.observers:
                observer.aws_call(service, operation_name, api_params, response)

    async def counted_http(self: ApiTransport, method: str, path: str, **kwargs: Any) -> Any:
        route = path.split("/api/v1/")[-1]
        parts = route.split("/")
        if parts[0] == "domains":
            route = "workflows/" + "/".join(parts[4:]) if len(parts) > 4 else "workflows"
        meter.record(f"http:{method} {route}")
        for observer in meter.observers:
            observer.http_call(method, path, kwargs)
        return await original_http(self, method, path, **kwargs)

    BaseClient._make_api_call = counted_call  # type: ignore[attr-defined]
    ApiTransport.call = counted_http  # type: ignore[method-assign]
    try:
        yield meter
    finally:
        BaseClient._make_api_call = original_call  # type: ignore[attr-defined]
        ApiTransport.call = original_http  # type: ignore[method-assign]
