"""The whole stack against a real LocalStack: opt-in, as LocalStack cannot run everywhere.

Runs when ``CADENZA_LOCALSTACK_ENDPOINT`` (e.g. ``http://localhost:4566``) names a LocalStack
whose health check answers; skipped otherwise, saying why. Only DynamoDB (with streams), SQS and
STS of LocalStack are used: the handlers run in this process on the local Lambda runtime, as
with ``cadenza dev --aws-endpoint``. The scenario is tests/e2e/endpoint_scenario.py, which
tests/e2e/test_aws_endpoint.py also runs against a moto server.

    CADENZA_LOCALSTACK_ENDPOINT=http://localhost:4566 .venv/bin/pytest -m localstack
"""

from __future__ import annotations

import os

import httpx
import pytest

from tests.e2e.endpoint_scenario import run_scenario

pytestmark = pytest.mark.localstack

ENDPOINT_VARIABLE = "CADENZA_LOCALSTACK_ENDPOINT"
#: The LocalStack services the stack needs (besides STS, which only tells the account id).
NEEDED_SERVICES = ("dynamodb", "dynamodbstreams", "sqs")


@pytest.fixture(scope="module")
def localstack_endpoint() -> str:
    endpoint = os.environ.get(ENDPOINT_VARIABLE, "").strip().rstrip("/")
    if not endpoint:
        pytest.skip(f"{ENDPOINT_VARIABLE} is not set (e.g. {ENDPOINT_VARIABLE}="
                    "http://localhost:4566 with LocalStack running)")
    try:
        response = httpx.get(f"{endpoint}/_localstack/health", timeout=3)
        response.raise_for_status()
        health = response.json()
    except (httpx.HTTPError, ValueError) as error:
        pytest.skip(f"no LocalStack answers at {ENDPOINT_VARIABLE}={endpoint}: {error}")
    services = health.get("services") or {}
    unavailable = [name for name in NEEDED_SERVICES
                   if services.get(name) not in ("available", "running")]
    if unavailable:
        pytest.skip(f"LocalStack at {endpoint} does not offer {', '.join(unavailable)} "
                    f"(services: {services})")
    return endpoint


async def test_workflows_run_end_to_end_on_localstack(localstack_endpoint: str) -> None:
    await run_scenario(localstack_endpoint)
