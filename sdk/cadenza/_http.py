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


class ApiTransport:
    """One pooled async HTTP connection to the API, shared by a client and its workers."""

    def __init__(self, target: str, *, timeout: float = 40.0) -> None:
        # Cadence clients name a "host:port" target; the HTTP API takes the same.
        if "://" not in target:
            target = f"http://{target}"
        self.target = target.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.target, timeout=timeout)

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
        try:
            response = await self._http.request(
                method, path, json=json, params=clean,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TransportError as error:
            raise ServiceBusyError(
                f"cannot reach the Cadenza API at {self.target}: {error}", target=self.target
            ) from error
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
        await self._http.aclose()
