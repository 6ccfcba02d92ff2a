"""Build the service from the environment (Lambda handlers, the local stack, tests).

AWS clients are made once per process and endpoint and shared by every service built here:
botocore clients are thread-safe once made, making one takes 100-200 ms, and a process that
hosts several handlers (the local stack runs every function in one) would otherwise make a set
per handler. boto3 sessions are not thread-safe, so clients are made from one private session
under a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import boto3

from ..aws.queries import DynamoQueryAnswers
from ..aws.settings import AwsSettings
from ..aws.store import DynamoHistoryStore
from ..aws.tasklists import SqsTaskLists, sqs_client
from ..aws.timers import TimerQueue, TimerQueueSettings
from ..aws.visibility import DynamoVisibilityStore, dynamodb_client
from .engine import WorkflowService
from .metrics import TASKS_SENT, EngineMetrics, MeteredQueues, MeteredStore
from .tokens import TaskTokens

_lock = threading.Lock()
_session: boto3.Session | None = None
_clients: dict[tuple[str, str, str | None], Any] = {}


def _scheduler_client(settings: AwsSettings, *, session: boto3.Session) -> Any:
    return session.client("scheduler", region_name=settings.region,
                          endpoint_url=settings.endpoint_url)


_MAKERS: dict[str, Callable[..., Any]] = {
    "dynamodb": dynamodb_client, "sqs": sqs_client, "scheduler": _scheduler_client}


def shared_client(service_name: str, settings: AwsSettings) -> Any:
    """This process's client of ``service_name`` ("dynamodb", "sqs", "scheduler") for the
    region and endpoint of ``settings``, made on first use."""
    global _session
    key = (service_name, settings.region, settings.endpoint_url)
    with _lock:
        client = _clients.get(key)
        if client is None:
            if _session is None:
                _session = boto3.Session()
            client = _MAKERS[service_name](settings, session=_session)
            _clients[key] = client
        return client


def service_from_settings(
    settings: AwsSettings, *, metrics: EngineMetrics | None = None,
    sent_metric: str = TASKS_SENT,
) -> WorkflowService:
    """The service on the AWS adapters; with ``metrics``, what it commits and sends is
    measured (service/metrics.py), tasks sent counted as ``sent_metric``."""
    sqs = shared_client("sqs", settings)
    timers = TimerQueue(
        sqs=sqs,
        scheduler=shared_client("scheduler", settings),
        settings=TimerQueueSettings(
            queue_url=settings.timer_queue_url,
            queue_arn=settings.timer_queue_arn,
            schedule_group=settings.schedule_group,
            scheduler_role_arn=settings.scheduler_role_arn,
        ),
    )
    store: Any = DynamoHistoryStore(settings)
    queues: Any = SqsTaskLists(client=sqs, prefix=settings.queue_prefix, timers=timers,
                               dead_letter_arn=settings.task_list_dlq_arn)
    if metrics is not None:
        store, queues = MeteredStore(store, metrics), MeteredQueues(queues, metrics,
                                                                    name=sent_metric)
    return WorkflowService(
        store=store,
        queues=queues,
        visibility=DynamoVisibilityStore(settings, client=shared_client("dynamodb", settings)),
        answers=DynamoQueryAnswers(settings),
        tokens=TaskTokens(settings.task_token_secret),
    )


def service_from_environment(
    environ: Mapping[str, str] | None = None, *, metrics: EngineMetrics | None = None,
    sent_metric: str = TASKS_SENT,
) -> WorkflowService:
    return service_from_settings(AwsSettings.from_environment(environ), metrics=metrics,
                                 sent_metric=sent_metric)
