"""Settings from the environment: the task-token key read from Secrets Manager by its ARN."""

from __future__ import annotations

import uuid

import boto3
import pytest

from cadenza.aws.settings import AwsSettings, ConfigurationError, read_secret

BASE = {"CADENZA_HISTORY_TABLE": "h", "CADENZA_VISIBILITY_TABLE": "v",
        "CADENZA_QUEUE_PREFIX": "stack", "AWS_REGION": "us-east-1"}


@pytest.fixture
def secret_arn(moto_endpoint: str) -> str:
    client = boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name="us-east-1")
    created = client.create_secret(Name=f"token-key-{uuid.uuid4().hex}",
                                   SecretString="k" * 64)
    return str(created["ARN"])


def test_the_key_is_read_from_its_secret_once_per_process(
    moto_endpoint: str, secret_arn: str
) -> None:
    env = {**BASE, "CADENZA_TASK_TOKEN_SECRET_ARN": secret_arn, "AWS_ENDPOINT_URL": moto_endpoint}
    assert AwsSettings.from_environment(env).task_token_secret == "k" * 64
    # Gone from Secrets Manager, still known: the value was fetched once (at the cold start).
    boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name="us-east-1"
                 ).delete_secret(SecretId=secret_arn, ForceDeleteWithoutRecovery=True)
    assert AwsSettings.from_environment(env).task_token_secret == "k" * 64


def test_the_plain_variable_wins_and_is_not_fetched(moto_endpoint: str) -> None:
    env = {**BASE, "CADENZA_TASK_TOKEN_SECRET": "p" * 40, "AWS_ENDPOINT_URL": moto_endpoint,
           "CADENZA_TASK_TOKEN_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:none"}
    assert AwsSettings.from_environment(env).task_token_secret == "p" * 40


def test_a_missing_or_unreadable_or_short_key_is_a_configuration_error(
    moto_endpoint: str,
) -> None:
    with pytest.raises(ConfigurationError, match="CADENZA_TASK_TOKEN_SECRET_ARN"):
        AwsSettings.from_environment(BASE)
    missing = f"arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-{uuid.uuid4().hex}"
    with pytest.raises(ConfigurationError, match="cannot read the task-token secret"):
        read_secret(missing, region="us-east-1", endpoint_url=moto_endpoint)
    with pytest.raises(ConfigurationError, match="at least 32"):
        AwsSettings.from_environment({**BASE, "CADENZA_TASK_TOKEN_SECRET": "short"})


def test_retention_and_dead_letter_settings() -> None:
    env = {**BASE, "CADENZA_TASK_TOKEN_SECRET": "s" * 32}
    assert AwsSettings.from_environment(env).retention_days is None
    settings = AwsSettings.from_environment(
        {**env, "CADENZA_RETENTION_DAYS": "30", "CADENZA_TASK_LIST_DLQ_ARN": "arn:dlq"})
    assert (settings.retention_days, settings.task_list_dlq_arn) == (30, "arn:dlq")
    for bad in ("0", "-1", "thirty"):
        with pytest.raises(ConfigurationError, match="CADENZA_RETENTION_DAYS"):
            AwsSettings.from_environment({**env, "CADENZA_RETENTION_DAYS": bad})
