"""The HTTP transport's connection errors: nobody listening is ApiUnreachableError (busy on the
wire, so retried like busy), a connection lost after sending stays plain ServiceBusyError."""

from __future__ import annotations

import random
import socket
from typing import Any

import httpx
import pytest

from cadenza._http import ApiTransport
from cadenza.client import RetryingTransport
from cadenza.error import ApiUnreachableError, ServiceBusyError, error_from_wire

TARGET = "http://127.0.0.1:7933"


def failing(error: Exception) -> ApiTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    return ApiTransport(TARGET, sign=False, http_transport=httpx.MockTransport(handler))


@pytest.mark.parametrize("error", [
    httpx.ConnectError("[Errno 111] Connection refused"),
    httpx.ConnectTimeout(""),
])
async def test_no_connection_is_api_unreachable(error: Exception) -> None:
    transport = failing(error)
    with pytest.raises(ApiUnreachableError) as raised:
        await transport.call("GET", "/api/v1/cluster")
    await transport.close()
    got = raised.value
    assert isinstance(got, ServiceBusyError)
    assert got.target == TARGET and got.reason  # a timeout's empty message still says what
    assert str(got).startswith(f"cannot reach the Cadenza API at {TARGET}")
    # Busy on the wire: a UI or a proxy passing it on says 503 ServiceBusyError, as before.
    assert got.to_wire()["code"] == "ServiceBusyError" and got.status == 503
    assert type(error_from_wire(got.to_wire())) is ServiceBusyError


@pytest.mark.parametrize("error", [
    httpx.ReadTimeout("timed out"),
    httpx.RemoteProtocolError("Server disconnected without sending a response."),
])
async def test_a_connection_lost_after_sending_is_only_busy(error: Exception) -> None:
    transport = failing(error)
    with pytest.raises(ServiceBusyError) as raised:
        await transport.call("POST", "/api/v1/tasks/activity/complete", json={})
    await transport.close()
    assert not isinstance(raised.value, ApiUnreachableError)  # it may have been served


async def test_a_refused_connection_is_api_unreachable() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = ApiTransport(f"127.0.0.1:{port}", sign=False)
    with pytest.raises(ApiUnreachableError) as raised:
        await transport.call("GET", "/api/v1/cluster")
    await transport.close()
    assert raised.value.target == f"http://127.0.0.1:{port}"


async def test_the_retrying_transport_retries_it_as_busy(monkeypatch: pytest.MonkeyPatch) \
        -> None:
    monkeypatch.setattr(random, "uniform", lambda low, high: 0.0)  # no pauses
    calls: list[str] = []

    class Inner:
        async def call(self, method: str, path: str, **_: Any) -> dict[str, Any]:
            calls.append(path)
            if len(calls) < 3:
                raise ApiUnreachableError("cannot reach", target=TARGET, reason="refused")
            return {"ok": True}

        async def close(self) -> None:
            pass

    assert await RetryingTransport(Inner()).call("GET", "/api/v1/cluster") == {"ok": True}
    assert len(calls) == 3
    calls.clear()

    class Down(Inner):
        async def call(self, method: str, path: str, **_: Any) -> dict[str, Any]:
            calls.append(path)
            raise ApiUnreachableError("cannot reach", target=TARGET, reason="refused")

    with pytest.raises(ApiUnreachableError):
        await RetryingTransport(Down()).call("GET", "/api/v1/cluster")
    assert len(calls) == RetryingTransport.ATTEMPTS
