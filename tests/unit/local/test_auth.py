"""The local SigV4 verifier on requests signed as the client signs them (botocore's SigV4Auth)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from botocore.credentials import Credentials

from cadenza._http import NONCE_HEADER, SigV4Signer, signing_wanted, target_region
from cadenza.error import (
    AuthError,
    CredentialScopeError,
    InvalidAccessKeyError,
    ReplayedRequestError,
    RequestExpiredError,
    SignatureMismatchError,
    UnsignedRequestError,
    error_from_wire,
)
from cadenza.local.auth import MAX_CLOCK_SKEW, SeenSignatures, verify_sigv4

LOCAL = Credentials("local-key", "local-secret")
REGION = "eu-west-1"
TARGET = "http://127.0.0.1:7933"


def signed(
    method: str = "POST",
    path: str = "/api/v1/domains/default/workflows/a%2Fb/signal",
    *,
    params: dict[str, str] | None = None,
    body: Any = None,
    region: str = REGION,
    credentials: Credentials = LOCAL,
) -> httpx.Request:
    request = httpx.Request(method, f"{TARGET}{path}", params=params,
                            json=body if body is not None else None)
    SigV4Signer(TARGET, always=True, region=region, credentials=credentials).sign(request)
    return request


def verify(request: httpx.Request, *, body: bytes | None = None, now: datetime | None = None,
           seen: SeenSignatures | None = None, region: str = REGION) -> None:
    raw_path, _, query = request.url.raw_path.decode().partition("?")
    verify_sigv4(
        request.method, raw_path, query, request.headers.multi_items(),
        request.content if body is None else body,
        credentials=LOCAL, region=region, now=now or signed_at(request),
        seen=SeenSignatures() if seen is None else seen,
    )


def signed_at(request: httpx.Request) -> datetime:
    return datetime.strptime(request.headers["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def test_a_request_signed_by_the_client_is_accepted() -> None:
    request = signed(body={"signal_name": "go", "input": "[1]"},
                     params={"run_id": "r 1/é", "empty": ""})
    assert request.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=local-key/")
    assert f"/{REGION}/execute-api/aws4_request" in request.headers["authorization"]
    assert NONCE_HEADER in request.headers["authorization"]
    verify(request)  # no error


def test_a_get_without_a_body_is_accepted() -> None:
    verify(signed("GET", "/api/v1/cluster"))


def test_unsigned_request_is_refused_naming_the_region() -> None:
    request = httpx.Request("GET", f"{TARGET}/api/v1/cluster")
    with pytest.raises(UnsignedRequestError) as raised:
        verify(request, now=datetime.now(UTC))
    assert raised.value.status == 403
    assert raised.value.details["region"] == REGION


def test_a_tampered_body_is_refused() -> None:
    request = signed(body={"signal_name": "go"})
    with pytest.raises(SignatureMismatchError):
        verify(request, body=json.dumps({"signal_name": "stop"}).encode())


def test_a_tampered_path_or_query_is_refused() -> None:
    request = signed("GET", "/api/v1/domains/default/workflows/w1", params={"run_id": "a"})
    headers = request.headers.multi_items()
    for path, query in (("/api/v1/domains/default/workflows/w2", "run_id=a"),
                        ("/api/v1/domains/default/workflows/w1", "run_id=b")):
        with pytest.raises(SignatureMismatchError):
            verify_sigv4("GET", path, query, headers, b"", credentials=LOCAL, region=REGION,
                         now=signed_at(request), seen=SeenSignatures())


def test_signed_for_another_region_is_refused() -> None:
    with pytest.raises(CredentialScopeError) as raised:
        verify(signed(region="us-east-2"))
    assert "us-east-2" in raised.value.message


def test_signed_with_another_key_or_secret_is_refused() -> None:
    with pytest.raises(InvalidAccessKeyError):
        verify(signed(credentials=Credentials("someone-else", "local-secret")))
    with pytest.raises(SignatureMismatchError):
        verify(signed(credentials=Credentials("local-key", "guessed-secret")))


@pytest.mark.parametrize("direction", [1, -1])
def test_a_signature_more_than_five_minutes_off_is_expired(direction: int) -> None:
    request = signed()
    late = signed_at(request) + direction * (MAX_CLOCK_SKEW + timedelta(seconds=1))
    with pytest.raises(RequestExpiredError):
        verify(request, now=late)
    verify(request, now=signed_at(request) + direction * MAX_CLOCK_SKEW)  # at the edge: fine


def test_a_replayed_request_is_refused_and_a_new_signature_is_not() -> None:
    seen = SeenSignatures()
    request = signed(body={"signal_name": "go"})
    verify(request, seen=seen)
    with pytest.raises(ReplayedRequestError):
        verify(request, seen=seen)
    # The same call signed again (same second, same bytes) differs by its nonce.
    verify(signed(body={"signal_name": "go"}), seen=seen)
    assert len(seen) == 2


def test_refused_requests_are_not_remembered() -> None:
    seen = SeenSignatures()
    request = signed(body={"signal_name": "go"})
    with pytest.raises(SignatureMismatchError):
        verify(request, body=b"{}", seen=seen)
    assert len(seen) == 0
    verify(request, seen=seen)


def test_signatures_are_forgotten_once_they_would_be_expired() -> None:
    seen = SeenSignatures()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert seen.first_use("a", valid_until=start + MAX_CLOCK_SKEW, now=start)
    assert not seen.first_use("a", valid_until=start + MAX_CLOCK_SKEW, now=start)
    later = start + MAX_CLOCK_SKEW + timedelta(seconds=1)
    assert seen.first_use("b", valid_until=later + MAX_CLOCK_SKEW, now=later)
    assert len(seen) == 1


def test_a_garbled_authorization_header_is_refused() -> None:
    request = signed()
    request.headers["authorization"] = "AWS4-HMAC-SHA256 Credential=x, Signature=zz"
    with pytest.raises(SignatureMismatchError):
        verify(request)


def test_an_unsigned_nonce_header_swap_is_refused() -> None:
    request = signed()
    request.headers[NONCE_HEADER] = "0" * 32
    with pytest.raises(SignatureMismatchError):
        verify(request)


def test_auth_errors_cross_the_wire_typed() -> None:
    for cls in (UnsignedRequestError, SignatureMismatchError, InvalidAccessKeyError,
                CredentialScopeError, RequestExpiredError, ReplayedRequestError):
        error = error_from_wire(cls("refused", region=REGION).to_wire())
        assert type(error) is cls and isinstance(error, AuthError) and error.status == 403


@pytest.mark.parametrize(("target", "wanted"), [
    ("https://abc123.execute-api.eu-west-1.amazonaws.com", True),
    ("https://api.example.com", True),
    ("http://127.0.0.1:7933", None),
    ("http://localhost:7933", None),
    ("http://[::1]:7933", None),
])
def test_signing_by_default_except_on_loopback(
    target: str, wanted: bool | None, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CADENZA_API_SIGNING", raising=False)
    assert signing_wanted(target) is wanted
    assert signing_wanted(target, sign=False) is False
    assert signing_wanted(target, sign=True) is True
    monkeypatch.setenv("CADENZA_API_SIGNING", "off")
    assert signing_wanted(target) is False


def test_region_from_an_api_gateway_url() -> None:
    assert target_region("https://abc123.execute-api.ap-south-2.amazonaws.com/") == "ap-south-2"
    assert target_region("http://127.0.0.1:7933") is None


def test_a_loopback_client_signs_once_the_local_stack_asks_for_it() -> None:
    signer = SigV4Signer(TARGET, always=False, credentials=LOCAL)
    request = httpx.Request("POST", f"{TARGET}/api/v1/tasks/activity/complete", json={"a": 1})
    flow = signer.auth_flow(request)
    first = next(flow)
    assert "authorization" not in first.headers and not signer.signing
    refusal = UnsignedRequestError("sign it", region=REGION, service="execute-api").to_wire()
    again = flow.send(httpx.Response(403, json=refusal, request=first))
    assert signer.signing
    verify(again)  # signed for the region the refusal named
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(200, json={}, request=again))
    # From then on every request is signed at once.
    later = next(signer.auth_flow(httpx.Request("GET", f"{TARGET}/api/v1/cluster")))
    verify(later)


def test_other_refusals_are_not_retried_signed() -> None:
    signer = SigV4Signer(TARGET, always=False, credentials=LOCAL)
    flow = signer.auth_flow(httpx.Request("GET", f"{TARGET}/api/v1/cluster"))
    first = next(flow)
    with pytest.raises(StopIteration):
        flow.send(httpx.Response(403, json={"message": "Forbidden"}, request=first))
    assert not signer.signing


async def test_the_transport_signs_with_the_credential_chain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cadenza._http import ApiTransport

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local-secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    seen = SeenSignatures()
    received: list[httpx.Request] = []

    def api(request: httpx.Request) -> httpx.Response:
        received.append(request)
        verify(request, seen=seen, region="eu-west-1")
        return httpx.Response(200, json={"ok": True})

    url = "https://abc123.execute-api.eu-west-1.amazonaws.com"
    transport = ApiTransport(url, http_transport=httpx.MockTransport(api))
    try:
        assert await transport.call("POST", "/api/v1/domains/default/workflows/a%2Fb/signal",
                                    json={"signal_name": "s"}) == {"ok": True}
        assert await transport.call("GET", "/api/v1/domains/default/workflows",
                                    params={"query": "WorkflowType = 'x y'"}) == {"ok": True}
    finally:
        await transport.close()
    assert len(received) == 2 and len(seen) == 2


async def test_api_gateways_own_403_is_an_auth_error() -> None:
    from cadenza._http import ApiTransport

    def gateway(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"message": "Missing Authentication Token"})

    transport = ApiTransport("https://abc.execute-api.us-east-1.amazonaws.com", sign=False,
                             http_transport=httpx.MockTransport(gateway))
    try:
        with pytest.raises(AuthError) as raised:
            await transport.call("GET", "/api/v1/cluster")
    finally:
        await transport.close()
    assert type(raised.value) is AuthError and "Missing Authentication Token" in str(
        raised.value)


def test_signing_without_any_credentials_says_how_to_fix_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any,
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    signer = SigV4Signer("https://abc.execute-api.us-east-1.amazonaws.com", always=True)
    with pytest.raises(UnsignedRequestError) as raised:
        signer.sign(httpx.Request("GET", "https://abc.execute-api.us-east-1.amazonaws.com/"))
    assert "CADENZA_API_SIGNING=off" in raised.value.message
