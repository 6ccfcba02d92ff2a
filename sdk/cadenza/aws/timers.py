"""Durable timers on AWS: SQS delays for the last 15 minutes, Scheduler schedules before that.

A timer due within SQS's 15-minute delay limit is one delayed message on the timer queue. A
longer one becomes a one-time EventBridge Scheduler schedule, named after the timer (so the
redrive copy of the same timer meets ConflictException instead of a second schedule), that puts
the same message on the timer queue a minute before the timer is due and deletes itself; the
timer function then delays it the last stretch. One request per timer whatever its length.
Without a schedule group configured, long timers hop through the queue every 15 minutes.

Deadlines (a run's execution timeout, an activity attempt's timeouts) nearly never fire: the
run or the activity ends first. One due SCHEDULED_DEADLINE_SECONDS or more ahead is a schedule
too, whatever its length, and is deleted (:meth:`TimerQueue.retire`) once the run or the
activity closes: Scheduler bills invocations, not the calls that create or delete schedules, so
a deadline that never fires costs no billed request at all, where a delayed message costs its
send, and its receive, delete, function invocation and read when it surfaces stale. A deletion
that is lost (or a create that lands after it) only lets a stale timer fire: it is dropped.
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
from ..core.tasks import TimerKind, TimerTask
from .settings import ConfigurationError

#: SQS's longest message delay.
MAX_DELAY_SECONDS = 900
#: How long before the due time a schedule fires (Scheduler's precision is about a minute).
SCHEDULE_LEAD_SECONDS = 60
#: Deadlines due at least this far ahead become schedules (deleted when moot), not messages:
#: the schedule fires a minute early and the timer function delays the rest, so the lead must
#: leave the schedule a minute of its own.
SCHEDULED_DEADLINE_SECONDS = 2 * SCHEDULE_LEAD_SECONDS
#: The timers that guard against something that nearly never happens.
DEADLINES = frozenset({TimerKind.WORKFLOW_TIMEOUT, TimerKind.ACTIVITY_TIMEOUT})
_NAME = re.compile(r"[^0-9A-Za-z_.-]")
#: Schedule names are at most 64 characters; a longer key keeps this much of its beginning
#: (a run id and the timer's kind and event: what moot_timer_prefixes name) and a digest.
_NAME_KEPT = 64 - 1 - 12


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
    return f"{name[:_NAME_KEPT]}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


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
            if self.settings.schedules and (remaining > MAX_DELAY_SECONDS or (
                    remaining >= SCHEDULED_DEADLINE_SECONDS and _is_deadline(message))):
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

    def retire(self, prefixes: Sequence[str]) -> None:
        """Delete the schedules of timers whose keys start with ``prefixes`` (moot timers:
        core.tasks.moot_timer_prefixes). Listing and deleting schedules is not billed; a
        schedule already gone (fired, or deleted by an earlier try) is skipped."""
        if not self.settings.schedules:
            return
        group = self.settings.schedule_group
        for prefix in prefixes:
            pages = self.scheduler.get_paginator("list_schedules").paginate(
                GroupName=group, NamePrefix=_NAME.sub("_", prefix)[:_NAME_KEPT])
            names = [s["Name"] for page in pages for s in page.get("Schedules", [])]
            for name in names:
                with contextlib.suppress(self.scheduler.exceptions.ResourceNotFoundException):
                    self.scheduler.delete_schedule(Name=name, GroupName=group)

    def _schedule(self, message: OutgoingMessage, at: float) -> None:
        moment = datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
        # ConflictException: the same timer was scheduled already (the redrive sends it twice).
        with contextlib.suppress(self.scheduler.exceptions.ConflictException):
            self.scheduler.create_schedule(
                Name=schedule_name(_schedule_key(message)),
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


def _is_deadline(message: OutgoingMessage) -> bool:
    task = message.task
    return isinstance(task, TimerTask) and task.timer_kind in DEADLINES


def _schedule_key(message: OutgoingMessage) -> str:
    """The key a timer's schedule is named after: its key and its due time (a run's timers
    keep one key when sent again for a later time: the names must differ, and a create must
    never meet the name of a schedule that fired and has yet to delete itself)."""
    task = message.task
    fire_at = getattr(task, "fire_at", 0)
    return task.key if task.key.endswith(f".{fire_at}") else f"{task.key}.{fire_at}"
