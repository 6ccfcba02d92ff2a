"""A local stack run as ``cadenza dev --auth iam``: signed clients and workers work, nothing
unsigned, badly signed, expired or replayed gets through, and a refused request writes nothing.

The stack verifies SigV4 against its own credentials (the suite's, ``testing``/``testing``,
which the client finds in the environment through the usual AWS chain).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.auth
import httpx
import pytest
from botocore.credentials import Credentials

from cadenza import Client, Worker
from cadenza._http import SigV4Signer
from cadenza.local import LocalStack

from .workflows import reg

WORKFLOWS = "/api/v1/domains/default/workflows"
CREDENTIALS = Credentials("testing", "testing")


@pytest.fixture(scope="module")
def iam_stack() -> Iterator[LocalStack]:
    with LocalStack(api_port=0, auth="iam") as stack:
        yield stack


def start_body(**overrides: Any) -> dict[str, Any]:
    return {"workflow_id": f"auth-{uuid.uuid4().hex[:12]}", "workflow_type": "SingleActivity",
            "task_list": f"tl-{uuid.uuid4().hex[:8]}", "input": '"hi"',
            "execution_start_to_close_timeout_seconds": 30, **overrides}


def signed(stack: LocalStack, method: str, path: str, *, json: Any = None,
           region: str | None = None) -> httpx.Request:
    request = httpx.Request(method, f"{stack.api_url}{path}", json=json)
    SigV4Signer(stack.api_url, always=True, region=region or stack.region,
                credentials=CREDENTIALS).sign(request)
    return request


def refused(response: httpx.Response, code: str) -> None:
    assert response.status_code == 403, response.text
    assert response.json()["code"] == code, response.text


def history_length(stack: LocalStack, workflow_id: str) -> int:
    with httpx.Client() as http:
        described = http.send(signed(stack, "GET", f"{WORKFLOWS}/{workflow_id}"))
    assert described.status_code == 200, described.text
    return int(described.json()["history_length"])


async def test_a_signed_client_and_its_worker_run_a_workflow(iam_stack: LocalStack) -> None:
    task_list = f"tl-{uuid.uuid4().hex[:8]}"
    # Every call is signed once the stack refuses the first unsigned one, the worker's too.
    async with (Client(domain="default", target=iam_stack.api_url) as client,
                Worker(client, task_list, reg, poll_wait_seconds=1)):
        execution = await client.start_workflow(
            "SingleActivity", "signed", task_list=task_list,
            execution_start_to_close_timeout=timedelta(seconds=30))
        assert await client.get_workflow_result(execution.workflow_id, timeout=30) == "signed"


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/api/v1/cluster", None),
    ("GET", "/api/v1/openapi.json", None),
    ("POST", WORKFLOWS, start_body()),
    ("POST", "/api/v1/tasks/activity/complete", {"task_token": "x.y"}),
])
def test_unsigned_requests_are_403(iam_stack: LocalStack, method: str, path: str,
                                   body: Any) -> None:
    with httpx.Client(base_url=iam_stack.api_url) as http:
        refused(http.request(method, path, json=body), "UnsignedRequestError")
        if body and "workflow_id" in body:  # nothing was written
            answer = http.send(signed(iam_stack, "GET", f"{WORKFLOWS}/{body['workflow_id']}"))
            assert answer.status_code == 404, answer.text


def test_signed_for_another_region_is_403_and_writes_nothing(iam_stack: LocalStack) -> None:
    body = start_body()
    other = "ap-southeast-2" if iam_stack.region != "ap-southeast-2" else "eu-west-1"
    with httpx.Client() as http:
        refused(http.send(signed(iam_stack, "POST", WORKFLOWS, json=body, region=other)),
                "CredentialScopeError")
        assert http.send(signed(iam_stack, "GET", f"{WORKFLOWS}/{body['workflow_id']}")
                         ).status_code == 404


def test_an_expired_signature_is_403(iam_stack: LocalStack,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    body = start_body()
    long_ago = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=6)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: long_ago)
    request = signed(iam_stack, "POST", WORKFLOWS, json=body)
    monkeypatch.undo()
    with httpx.Client() as http:
        refused(http.send(request), "RequestExpiredError")
        assert http.send(signed(iam_stack, "GET", f"{WORKFLOWS}/{body['workflow_id']}")
                         ).status_code == 404


def test_a_replayed_signal_is_403_and_signals_once(iam_stack: LocalStack) -> None:
    body = start_body()
    with httpx.Client() as http:
        assert http.send(signed(iam_stack, "POST", WORKFLOWS, json=body)).status_code == 201
        before = history_length(iam_stack, body["workflow_id"])
        signal = signed(iam_stack, "POST", f"{WORKFLOWS}/{body['workflow_id']}/signal",
                        json={"signal_name": "once"})
        assert http.send(signal).status_code == 200
        refused(http.send(signal), "ReplayedRequestError")
        assert history_length(iam_stack, body["workflow_id"]) == before + 1
        # The same body signed anew is a new request, accepted.
        again = signed(iam_stack, "POST", f"{WORKFLOWS}/{body['workflow_id']}/signal",
                       json={"signal_name": "once"})
        assert http.send(again).status_code == 200
        http.send(signed(iam_stack, "POST", f"{WORKFLOWS}/{body['workflow_id']}/terminate",
                         json={"reason": "cleanup"}))


def test_a_tampered_body_is_403(iam_stack: LocalStack) -> None:
    body = start_body()
    request = signed(iam_stack, "POST", WORKFLOWS, json=body)
    with httpx.Client() as http:
        tampered = http.post(f"{iam_stack.api_url}{WORKFLOWS}",
                             json={**body, "input": '"changed"'},
                             headers={name: request.headers[name] for name in
                                      ("authorization", "x-amz-date", "x-cadenza-nonce")})
        refused(tampered, "SignatureMismatchError")
        assert http.send(signed(iam_stack, "GET", f"{WORKFLOWS}/{body['workflow_id']}")
                         ).status_code == 404


def test_the_cli_signs_too_and_is_refused_when_told_not_to(
    iam_stack: LocalStack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json

    from cadenza.cli import main

    workflow_id = f"auth-cli-{uuid.uuid4().hex[:8]}"
    capsys.readouterr()
    code = main(["workflow", "start", "SingleActivity", "--task-list", "tl-cli",
                 "--execution-timeout", "30", "-i", '"hi"', "--workflow-id", workflow_id,
                 "--address", iam_stack.api_url, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, (out, err)
    assert json.loads(out)["workflow_id"] == workflow_id
    monkeypatch.setenv("CADENZA_API_SIGNING", "off")
    code = main(["workflow", "describe", workflow_id, "--address", iam_stack.api_url])
    out, err = capsys.readouterr()
    assert code != 0 and "sign" in (out + err).lower(), (out, err)
    with httpx.Client() as http:
        http.send(signed(iam_stack, "POST", f"{WORKFLOWS}/{workflow_id}/terminate",
                         json={"reason": "cleanup"}))


def test_the_cluster_answer_says_the_stack_enforces_iam(iam_stack: LocalStack) -> None:
    """template.yaml gives the API function CADENZA_API_AUTH=iam (API Gateway's authorization);
    a local stack sets its own mode over it (a credential-free one says "none":
    tests/e2e/test_http_api.py)."""
    with httpx.Client() as http:
        enforced = http.send(signed(iam_stack, "GET", "/api/v1/cluster"))
    assert enforced.json()["auth"] == "iam"
