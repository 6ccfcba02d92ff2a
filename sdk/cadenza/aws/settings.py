"""Where the engine's AWS resources are: read once from the environment a handler runs in.

The same variables are set by template.yaml in AWS, by the local stack for the emulator, and by
tests; ``AWS_ENDPOINT_URL`` points every client at moto or LocalStack when it is set.

The task-token key is a secret: in AWS the stack generates it in Secrets Manager and gives the
functions its ARN (``CADENZA_TASK_TOKEN_SECRET_ARN``), read once per process (a cold start), so
the key is in no function's configuration. ``CADENZA_TASK_TOKEN_SECRET`` (the key itself) wins
when set: the local stack and tests use it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..error import CadenzaError

#: The shortest task-token key accepted (HMAC-SHA256 wants at least 32 bytes of key).
MIN_SECRET_LENGTH = 32


class ConfigurationError(CadenzaError):
    """A required setting is missing from the environment."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AwsSettings:
    history_table: str
    visibility_table: str
    queue_prefix: str
    task_token_secret: str
    #: The standard queue durable timers are delayed messages on (template.yaml TimerQueue).
    timer_queue_url: str = ""
    #: With these three, timers longer than 15 minutes are one Scheduler schedule each.
    timer_queue_arn: str = ""
    schedule_group: str = ""
    scheduler_role_arn: str = ""
    #: The dead-letter queue of every task-list queue created at run time ("": none).
    task_list_dlq_arn: str = ""
    #: Days a closed run's history stays before DynamoDB's TTL removes it (None: forever).
    retention_days: int | None = None
    region: str = "us-east-1"
    endpoint_url: str | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> AwsSettings:
        env = os.environ if environ is None else environ
        missing = [
            name
            for name in ("CADENZA_HISTORY_TABLE", "CADENZA_VISIBILITY_TABLE",
                         "CADENZA_QUEUE_PREFIX")
            if not env.get(name)
        ]
        if not env.get("CADENZA_TASK_TOKEN_SECRET") and not env.get(
                "CADENZA_TASK_TOKEN_SECRET_ARN"):
            missing.append("CADENZA_TASK_TOKEN_SECRET_ARN (or CADENZA_TASK_TOKEN_SECRET)")
        if missing:
            raise ConfigurationError(f"missing environment variables: {', '.join(missing)}")
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        endpoint_url = env.get("AWS_ENDPOINT_URL") or None
        secret = env.get("CADENZA_TASK_TOKEN_SECRET") or read_secret(
            env["CADENZA_TASK_TOKEN_SECRET_ARN"], region=region, endpoint_url=endpoint_url)
        if len(secret) < MIN_SECRET_LENGTH:
            raise ConfigurationError(
                f"the task-token secret must be at least {MIN_SECRET_LENGTH} characters long")
        return cls(
            history_table=env["CADENZA_HISTORY_TABLE"],
            visibility_table=env["CADENZA_VISIBILITY_TABLE"],
            queue_prefix=env["CADENZA_QUEUE_PREFIX"],
            task_token_secret=secret,
            timer_queue_url=env.get("CADENZA_TIMER_QUEUE_URL", ""),
            timer_queue_arn=env.get("CADENZA_TIMER_QUEUE_ARN", ""),
            schedule_group=env.get("CADENZA_SCHEDULE_GROUP", ""),
            scheduler_role_arn=env.get("CADENZA_SCHEDULER_ROLE_ARN", ""),
            task_list_dlq_arn=env.get("CADENZA_TASK_LIST_DLQ_ARN", ""),
            retention_days=_retention_days(env.get("CADENZA_RETENTION_DAYS", "")),
            region=region,
            endpoint_url=endpoint_url,
        )


def _retention_days(text: str) -> int | None:
    if not text:
        return None
    try:
        days = int(text)
    except ValueError:
        days = 0
    if days < 1:
        raise ConfigurationError(f"CADENZA_RETENTION_DAYS must be a positive number of days, "
                                 f"not {text!r}")
    return days


@functools.cache
def read_secret(arn: str, *, region: str, endpoint_url: str | None = None) -> str:
    """The secret's current string value, fetched once per process and ARN (each cold start
    makes one GetSecretValue call; the functions of a local stack share one)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    client: Any = boto3.client("secretsmanager", region_name=region, endpoint_url=endpoint_url)
    try:
        value = client.get_secret_value(SecretId=arn).get("SecretString")
    except (BotoCoreError, ClientError) as error:
        raise ConfigurationError(f"cannot read the task-token secret {arn}: {error}") from error
    if not value:
        raise ConfigurationError(f"the task-token secret {arn} has no string value")
    return str(value)
