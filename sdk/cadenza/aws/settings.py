"""Where the engine's AWS resources are: read once from the environment a handler runs in.

The same variables are set by template.yaml in AWS, by the local stack for the emulator, and by
tests; ``AWS_ENDPOINT_URL`` points every client at moto or LocalStack when it is set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from ..error import CadenzaError


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
    region: str = "us-east-1"
    endpoint_url: str | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> AwsSettings:
        env = os.environ if environ is None else environ
        missing = [
            name
            for name in (
                "CADENZA_HISTORY_TABLE",
                "CADENZA_VISIBILITY_TABLE",
                "CADENZA_QUEUE_PREFIX",
                "CADENZA_TASK_TOKEN_SECRET",
            )
            if not env.get(name)
        ]
        if missing:
            raise ConfigurationError(f"missing environment variables: {', '.join(missing)}")
        return cls(
            history_table=env["CADENZA_HISTORY_TABLE"],
            visibility_table=env["CADENZA_VISIBILITY_TABLE"],
            queue_prefix=env["CADENZA_QUEUE_PREFIX"],
            task_token_secret=env["CADENZA_TASK_TOKEN_SECRET"],
            timer_queue_url=env.get("CADENZA_TIMER_QUEUE_URL", ""),
            timer_queue_arn=env.get("CADENZA_TIMER_QUEUE_ARN", ""),
            schedule_group=env.get("CADENZA_SCHEDULE_GROUP", ""),
            scheduler_role_arn=env.get("CADENZA_SCHEDULER_ROLE_ARN", ""),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
        )
