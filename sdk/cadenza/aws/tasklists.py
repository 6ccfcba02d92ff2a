"""Task lists on SQS: one FIFO queue per (domain, task list, kind), created on first use.

FIFO queues because a task's key is its MessageDeduplicationId: the copy the stream redrive sends
after the direct send is dropped by SQS itself, so a redrive costs one SendMessage and no extra
decision or activity execution. Every task is its own message group: ordering is not what the
queue is for (a run's state allows one pending decision task at a time already), and a task in
flight must never hold back the next one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from ..core import TaskKind
from ..core.records import OutgoingMessage, TaskMessage
from .settings import AwsSettings, ConfigurationError
from .timers import TimerQueue

logger = logging.getLogger("cadenza.tasklists")

_VALID = re.compile(r"[^A-Za-z0-9_-]")
_MAX_QUEUE_NAME = 80

#: Visibility of a received task before SQS hands it to another worker.
DEFAULT_VISIBILITY_TIMEOUT = 30
#: Fourteen days: an unconsumed task waits as long as SQS allows (e.g. for a new worker).
MESSAGE_RETENTION_SECONDS = 1_209_600
#: Receives of one task-list message before SQS moves it to the stack's task-list dead-letter
#: queue: far more than any healthy task needs (a busy run's decision is retried a few times, a
#: worker crash costs one), so only a task no worker can take ends there (and raises the alarm).
MAX_RECEIVE_COUNT = 50
#: Connections each AWS client of the engine keeps open (SQS here, DynamoDB in models.py and
#: visibility.py): enough for the concurrent requests of one process (a handler serving many
#: threads) never to open a new one.
MAX_POOL_CONNECTIONS = 64


def queue_name(prefix: str, domain: str, task_list: str, kind: TaskKind) -> str:
    """A valid, deterministic FIFO queue name; unusual characters get a hash suffix."""
    base = f"{prefix}-{domain}-{task_list}-{kind}"
    clean = _VALID.sub("_", base)
    suffix = ".fifo"
    if clean != base or len(clean) + len(suffix) > _MAX_QUEUE_NAME:
        digest = hashlib.sha256(base.encode()).hexdigest()[:10]
        room = _MAX_QUEUE_NAME - len(suffix) - len(digest) - 1
        clean = f"{clean[:room]}-{digest}"
    return clean + suffix


def queue_attributes(dead_letter_arn: str = "") -> dict[str, str]:
    """What a task-list queue is created with (template.yaml declares the example worker's
    queues with the same, tests/infra checks it): FIFO with per-task deduplication, encrypted
    with SQS-managed keys, and, given the stack's dead-letter queue, a redrive policy to it."""
    attributes = {
        "FifoQueue": "true",
        "ContentBasedDeduplication": "false",
        "DeduplicationScope": "messageGroup",
        "FifoThroughputLimit": "perMessageGroupId",
        "VisibilityTimeout": str(DEFAULT_VISIBILITY_TIMEOUT),
        "MessageRetentionPeriod": str(MESSAGE_RETENTION_SECONDS),
        "SqsManagedSseEnabled": "true",
    }
    if dead_letter_arn:
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": MAX_RECEIVE_COUNT},
            separators=(",", ":"))
    return attributes


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    queue_url: str
    receipt_handle: str
    message_id: str
    message: TaskMessage
    receive_count: int


def sqs_client(settings: AwsSettings, *, session: boto3.Session | None = None) -> Any:
    """An SQS client for ``settings`` (thread-safe once made; service/factory.py makes one per
    process and shares it). Its pool holds a connection for each of many concurrent requests."""
    return (session.client if session is not None else boto3.client)(
        "sqs",
        region_name=settings.region,
        endpoint_url=settings.endpoint_url,
        config=Config(retries={"max_attempts": 5, "mode": "standard"},
                      max_pool_connections=MAX_POOL_CONNECTIONS),
    )


class SqsTaskLists:
    def __init__(
        self, *, client: Any, prefix: str, timers: TimerQueue | None = None,
        dead_letter_arn: str = "",
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.timers = timers
        #: Where a queue created here sends what it received MAX_RECEIVE_COUNT times.
        self.dead_letter_arn = dead_letter_arn
        self._urls: dict[str, str] = {}
        self._lock = threading.Lock()

    def queue_url(self, domain: str, task_list: str, kind: TaskKind) -> str:
        name = queue_name(self.prefix, domain, task_list, kind)
        with self._lock:
            url = self._urls.get(name)
        if url is not None:
            return url
        try:
            url = self.client.get_queue_url(QueueName=name)["QueueUrl"]
        except ClientError as error:
            if "NonExistentQueue" not in str(error) and "QueueDoesNotExist" not in str(error):
                raise
            url = self.client.create_queue(
                QueueName=name, Attributes=queue_attributes(self.dead_letter_arn))["QueueUrl"]
        with self._lock:
            self._urls[name] = url
        return url

    def send(self, messages: Sequence[OutgoingMessage]) -> None:
        """Send every message; raises if any could not be sent (the redrive will retry)."""
        by_queue: dict[str, list[OutgoingMessage]] = defaultdict(list)
        timers = [m for m in messages if m.task.kind is TaskKind.TIMER]
        if timers:
            if self.timers is None:
                raise ConfigurationError("no timer queue is configured: timers cannot be sent")
            self.timers.send(timers)
        for message in messages:
            task = message.task
            if task.kind is TaskKind.TIMER:
                continue
            kind = TaskKind.DECISION if task.kind is TaskKind.QUERY else task.kind
            by_queue[self.queue_url(task.domain, task.task_list, kind)].append(message)
        for url, queued in by_queue.items():
            for start in range(0, len(queued), 10):
                chunk = queued[start : start + 10]
                response = self.client.send_message_batch(
                    QueueUrl=url,
                    Entries=[
                        {
                            "Id": str(index),
                            "MessageBody": message.body,
                            "MessageGroupId": message.task.key,
                            "MessageDeduplicationId": message.task.key,
                        }
                        for index, message in enumerate(chunk)
                    ],
                )
                failed = response.get("Failed") or []
                if failed:
                    raise RuntimeError(f"SQS refused {len(failed)} task(s): {failed[0]}")

    def retire_timers(self, prefixes: Sequence[str]) -> None:
        """Delete what is left of moot timers outside the queue (see TimerQueue.retire)."""
        if prefixes and self.timers is not None:
            self.timers.retire(prefixes)

    def receive(
        self,
        domain: str,
        task_list: str,
        kind: TaskKind,
        *,
        max_messages: int = 10,
        wait_seconds: int = 20,
        visibility_timeout: int | None = None,
    ) -> list[ReceivedMessage]:
        url = self.queue_url(domain, task_list, kind)
        request: dict[str, Any] = {
            "QueueUrl": url,
            "MaxNumberOfMessages": max(1, min(max_messages, 10)),
            "WaitTimeSeconds": max(0, min(wait_seconds, 20)),
            "MessageSystemAttributeNames": ["ApproximateReceiveCount"],
        }
        if visibility_timeout is not None:
            request["VisibilityTimeout"] = visibility_timeout
        response = self.client.receive_message(**request)
        received = []
        for m in response.get("Messages", []):
            message = TaskMessage.parse(m["Body"])
            if message is None:
                # No retry can make it a task; left in place it would come back forever.
                logger.error("dropping message %s of %s: not a Cadenza task", m["MessageId"], url)
                self.client.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                continue
            received.append(ReceivedMessage(
                queue_url=url,
                receipt_handle=m["ReceiptHandle"],
                message_id=m["MessageId"],
                message=message,
                receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
            ))
        return received

    def delete(self, message: ReceivedMessage) -> None:
        self.client.delete_message(QueueUrl=message.queue_url, ReceiptHandle=message.receipt_handle)

    def retry_later(self, message: ReceivedMessage, delay_seconds: int) -> None:
        """Make a received task visible again after ``delay_seconds`` (a retry with backoff)."""
        self.client.change_message_visibility(
            QueueUrl=message.queue_url,
            ReceiptHandle=message.receipt_handle,
            VisibilityTimeout=max(0, min(delay_seconds, 43_200)),
        )
