"""The HTTP API's client side: JSON requests, typed errors back from the wire."""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import quote

import httpx

from .error import InternalServiceError, ServiceBusyError, error_from_wire


def path_part(value: str) -> str:
    return quote(value, safe="")


class Transport(Protocol):
    """How a client reaches the API's routes: over HTTP, or in-process (cadenza.testing)."""

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]: ...

    async def close(self) -> None: ...


#: Pools of kept-alive connections to the API, and connections per pool. httpcore's pool
#: examines every connection it holds (and, for each idle one, counts them all again) each
#: time a request starts or ends: one pool of a hundred connections spent a third of a busy
#: process's time there. Several small pools keep that work small; a call goes to the pool with
#: the fewest calls in flight.
POOLS = 8
CONNECTIONS_PER_POOL = 32
#: An idle kept-alive connection is closed after this long (httpx: 5 s).
KEEPALIVE_SECONDS = 60.0


class ApiTransport:
    """Kept-alive async HTTP connections to the API, shared by a client and its workers."""

    def __init__(self, target: str, *, timeout: float = 40.0) -> None:
        # Cadence clients name a "host:port" target; the HTTP API takes the same.
        if "://" not in target:
            target = f"http://{target}"
        self.target = target.rstrip("/")
        limits = httpx.Limits(max_connections=CONNECTIONS_PER_POOL,
                              max_keepalive_connections=CONNECTIONS_PER_POOL // 2,
                              keepalive_expiry=KEEPALIVE_SECONDS)
        tls = httpx.create_ssl_context()  # made once (about 15 ms), shared by the pools
        self._pools = [httpx.AsyncClient(base_url=self.target, timeout=timeout, limits=limits,
                                         verify=tls)
                       for _ in range(POOLS)]
        self._in_flight = [0] * POOLS

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        clean = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        in_flight = self._in_flight
        pool = in_flight.index(min(in_flight))
        in_flight[pool] += 1
        try:
            response = await self._pools[pool].request(
                method, path, json=json, params=clean,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TransportError as error:
            raise ServiceBusyError(
                f"cannot reach the Cadenza API at {self.target}: {error}", target=self.target
            ) from error
        finally:
            in_flight[pool] -= 1
        try:
            body = response.json() if response.content else {}
        except ValueError:
            body = {"message": response.text}
        if response.status_code >= 400:
            if isinstance(body, dict) and "code" in body and body["code"] != "NotFound":
                raise error_from_wire(body)
            raise InternalServiceError(
                f"{method} {path} answered {response.status_code}: "
                f"{body.get('message') if isinstance(body, dict) else body}",
                status=response.status_code,
            )
        return body if isinstance(body, dict) else {"value": body}

    async def close(self) -> None:
        for pool in self._pools:
            await pool.aclose()
