"""Durable timers on AWS: SQS delays for the last 15 minutes, Scheduler schedules before that.

A timer due within SQS's 15-minute delay limit is one delayed message on the timer queue. A
longer one becomes a one-time EventBridge Scheduler schedule, named after the timer (so the
redrive copy of the same timer meets ConflictException instead of a second schedule), that puts
the same message on the timer queue a minute before the timer is due and deletes itself; the
timer function then delays it the last stretch. One request per timer whatever its length.
Without a schedule group configured, long timers hop through the queue every 15 minutes.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..core.records import OutgoingMessage
from .settings import ConfigurationError

#: SQS's longest message delay.
MAX_DELAY_SECONDS = 900
#: How long before the due time a schedule fires (Scheduler's precision is about a minute).
SCHEDULE_LEAD_SECONDS = 60
_NAME = re.compile(r"[^0-9A-Za-z_.-]")


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerQueueSettings:
    queue_url: str
    queue_arn: str = ""
    schedule_group: str = ""
    scheduler_role_arn: str = ""

    @property
    def schedules(self) -> bool:
        return bool(self.queue_arn and self.schedule_group and self.scheduler_role_arn)


def schedule_name(key: str) -> str:
    """A valid schedule name, unique per timer key (the same key gives the same name)."""
    name = _NAME.sub("_", key)
    if name == key and len(name) <= 64:
        return name
    return f"{name[:40]}-{hashlib.sha256(key.encode()).hexdigest()[:23]}"


class TimerQueue:
    def __init__(self, *, sqs: Any, scheduler: Any, settings: TimerQueueSettings) -> None:
        self.sqs = sqs
        self.scheduler = scheduler
        self.settings = settings

    def send(self, messages: Sequence[OutgoingMessage], *, now: float | None = None) -> None:
        if not self.settings.queue_url:
            raise ConfigurationError("CADENZA_TIMER_QUEUE_URL is not set: timers cannot be sent")
        now = time.time() if now is None else now
        delayed = []
        for message in messages:
            remaining = getattr(message.task, "fire_at", 0) / 1000 - now
            if remaining > MAX_DELAY_SECONDS and self.settings.schedules:
                self._schedule(message, now + remaining - SCHEDULE_LEAD_SECONDS)
            else:
                delayed.append((message, max(0, min(MAX_DELAY_SECONDS, math.ceil(remaining)))))
        for start in range(0, len(delayed), 10):
            chunk = delayed[start : start + 10]
            response = self.sqs.send_message_batch(
                QueueUrl=self.settings.queue_url,
                Entries=[{"Id": str(i), "MessageBody": m.body, "DelaySeconds": delay}
                         for i, (m, delay) in enumerate(chunk)],
            )
            failed = response.get("Failed") or []
            if failed:
                raise RuntimeError(f"SQS refused {len(failed)} timer(s): {failed[0]}")

    def _schedule(self, message: OutgoingMessage, at: float) -> None:
        moment = datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
        # ConflictException: the same timer was scheduled already (the redrive sends it twice).
        with contextlib.suppress(self.scheduler.exceptions.ConflictException):
            self.scheduler.create_schedule(
                Name=schedule_name(message.task.key),
                GroupName=self.settings.schedule_group,
                ScheduleExpression=f"at({moment})",
                ScheduleExpressionTimezone="UTC",
                FlexibleTimeWindow={"Mode": "OFF"},
                ActionAfterCompletion="DELETE",
                Target={
                    "Arn": self.settings.queue_arn,
                    "RoleArn": self.settings.scheduler_role_arn,
                    "Input": message.body,
                },
            )
