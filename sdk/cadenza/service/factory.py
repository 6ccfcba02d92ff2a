"""Build the service from the environment (Lambda handlers, the local stack, tests)."""

from __future__ import annotations

from collections.abc import Mapping

from ..aws.queries import DynamoQueryAnswers
from ..aws.settings import AwsSettings
from ..aws.store import DynamoHistoryStore
from ..aws.tasklists import SqsTaskLists, sqs_client
from ..aws.visibility import DynamoVisibilityStore
from .engine import WorkflowService
from .tokens import TaskTokens


def service_from_settings(settings: AwsSettings) -> WorkflowService:
    return WorkflowService(
        store=DynamoHistoryStore(settings),
        queues=SqsTaskLists(client=sqs_client(settings), prefix=settings.queue_prefix,
                            timer_queue_url=settings.timer_queue_url),
        visibility=DynamoVisibilityStore(settings),
        answers=DynamoQueryAnswers(settings),
        tokens=TaskTokens(settings.task_token_secret),
    )


def service_from_environment(environ: Mapping[str, str] | None = None) -> WorkflowService:
    return service_from_settings(AwsSettings.from_environment(environ))
