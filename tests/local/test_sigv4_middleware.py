"""The local SigV4 check in front of a real werkzeug server, called by the real client transport.

The app behind the middleware echoes what reached it, so each test sees whether a request got
through (and with which body) or was refused before it.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from botocore.credentials import Credentials
from werkzeug.serving import make_server

from cadenza._http import ApiTransport, SigV4Signer
from cadenza.core.limits import MAX_BODY_BYTES
from cadenza.error import AuthError, UnsignedRequestError
from cadenza.local.auth import SigV4Middleware

REGION = "us-west-2"
CREDENTIALS = Credentials("local-key", "local-secret")


def echo(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    answer = json.dumps({"path": environ.get("RAW_URI"), "body": body.decode()}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(answer)))])
    return [answer]


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS.secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")  # not the API's: the 403 says
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("CADENZA_API_SIGNING", raising=False)
    app = SigV4Middleware(echo, credentials=CREDENTIALS, region=REGION)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


async def test_the_client_on_loopback_signs_once_asked_and_gets_through(api: str) -> None:
    transport = ApiTransport(api)
    try:
        answer = await transport.call("POST", "/api/v1/domains/default/workflows/a%2Fb/signal",
                                      json={"signal_name": "go", "input": "\"日本\""})
        assert answer["path"] == "/api/v1/domains/default/workflows/a%2Fb/signal"
        assert json.loads(answer["body"]) == {"signal_name": "go", "input": "\"日本\""}
        assert transport.signer is not None and transport.signer.signing
        # From then on, signed at once, queries included.
        again = await transport.call("GET", "/api/v1/domains/default/workflows",
                                     params={"query": "WorkflowType = 'a b'", "page_size": 5})
        assert again["path"].startswith("/api/v1/domains/default/workflows?")
    finally:
        await transport.close()


async def test_a_client_told_not_to_sign_is_refused(api: str) -> None:
    transport = ApiTransport(api, sign=False)
    try:
        with pytest.raises(UnsignedRequestError) as raised:
            await transport.call("GET", "/api/v1/cluster")
    finally:
        await transport.close()
    assert raised.value.status == 403 and raised.value.details["region"] == REGION


def test_raw_unsigned_or_replayed_requests_are_403(api: str) -> None:
    with httpx.Client(base_url=api) as http:
        refused = http.post("/api/v1/tasks/activity/complete", json={"task_token": "t"})
        assert refused.status_code == 403
        assert refused.json()["code"] == "UnsignedRequestError"
        # A request signed once by the client, captured and sent again: a replay.
        request = http.build_request("POST", "/api/v1/tasks/activity/complete",
                                     json={"task_token": "t"})
        SigV4Signer(api, always=True, region=REGION, credentials=CREDENTIALS).sign(request)
        assert http.send(request).status_code == 200
        replayed = http.send(request)
        assert replayed.status_code == 403 and replayed.json()["code"] == "ReplayedRequestError"
        # The same signature on another body: refused as not matching.
        tampered = http.post("/api/v1/tasks/activity/complete", content=b'{"task_token":"u"}',
                             headers={k: v for k, v in request.headers.items()
                                      if k.lower() not in {"content-length"}})
        assert tampered.status_code == 403
        assert tampered.json()["code"] == "SignatureMismatchError"  # checked before replays


def _raw(api: str, request: bytes) -> bytes:
    host, port = api.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_a_malformed_content_length_is_a_400(api: str) -> None:
    answer = _raw(api, b"POST /api/v1/cluster HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n"
                       b"Connection: close\r\n\r\n{}")
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b'"field": "Content-Length"' in answer


def test_a_body_over_the_limit_is_413_before_it_is_read(api: str) -> None:
    answer = _raw(api, b"POST /api/v1/cluster HTTP/1.1\r\nHost: x\r\n"
                       + f"Content-Length: {MAX_BODY_BYTES + 1}\r\n".encode()
                       + b"Connection: close\r\n\r\n{}")  # the body is never sent
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"PayloadTooLargeError" in answer


async def test_wrong_credentials_are_refused(api: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    transport = ApiTransport(api, sign=True, region=REGION)
    try:
        with pytest.raises(AuthError) as raised:
            await transport.call("GET", "/api/v1/cluster")
    finally:
        await transport.close()
    assert raised.value.code == "SignatureMismatchError"
