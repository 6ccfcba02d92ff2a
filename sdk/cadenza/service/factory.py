"""Build the service from the environment (Lambda handlers, the local stack, tests)."""

from __future__ import annotations

from collections.abc import Mapping

import boto3

from ..aws.queries import DynamoQueryAnswers
from ..aws.settings import AwsSettings
from ..aws.store import DynamoHistoryStore
from ..aws.tasklists import SqsTaskLists, sqs_client
from ..aws.timers import TimerQueue, TimerQueueSettings
from ..aws.visibility import DynamoVisibilityStore
from .engine import WorkflowService
from .tokens import TaskTokens


def service_from_settings(settings: AwsSettings) -> WorkflowService:
    sqs = sqs_client(settings)
    timers = TimerQueue(
        sqs=sqs,
        scheduler=boto3.client("scheduler", region_name=settings.region,
                               endpoint_url=settings.endpoint_url),
        settings=TimerQueueSettings(
            queue_url=settings.timer_queue_url,
            queue_arn=settings.timer_queue_arn,
            schedule_group=settings.schedule_group,
            scheduler_role_arn=settings.scheduler_role_arn,
        ),
    )
    return WorkflowService(
        store=DynamoHistoryStore(settings),
        queues=SqsTaskLists(client=sqs, prefix=settings.queue_prefix, timers=timers),
        visibility=DynamoVisibilityStore(settings),
        answers=DynamoQueryAnswers(settings),
        tokens=TaskTokens(settings.task_token_secret),
    )


def service_from_environment(environ: Mapping[str, str] | None = None) -> WorkflowService:
    return service_from_settings(AwsSettings.from_environment(environ))
