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
from typing import Any

from botocore.client import BaseClient

from cadenza._http import ApiTransport


class Meter:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.empty_receives = 0
        self.write_units = 0
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
    original_call = BaseClient._make_api_call
    original_http = ApiTransport.call

    def counted_call(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        service = self.meta.service_model.service_name
        response = original_call(self, operation_name, api_params)
        if service == "sqs" and operation_name == "ReceiveMessage" and not response.get(
            "Messages"
        ):
            meter.record("sqs:ReceiveMessage(empty)")
        else:
            meter.record(f"{service}:{operation_name}")
        if service == "dynamodb" and operation_name == "PutItem":
            meter.record("dynamodb:WriteUnits", _item_write_units(api_params))
        return response

    async def counted_http(self: ApiTransport, method: str, path: str, **kwargs: Any) -> Any:
        route = path.split("/api/v1/")[-1]
        parts = route.split("/")
        if parts[0] == "domains":
            route = "workflows/" + "/".join(parts[4:]) if len(parts) > 4 else "workflows"
        meter.record(f"http:{method} {route}")
        return await original_http(self, method, path, **kwargs)

    BaseClient._make_api_call = counted_call  # type: ignore[method-assign]
    ApiTransport.call = counted_http  # type: ignore[method-assign]
    try:
        yield meter
    finally:
        BaseClient._make_api_call = original_call  # type: ignore[method-assign]
        ApiTransport.call = original_http  # type: ignore[method-assign]
