"""The bucket-watching workflow and its monitoring activity.

Why a heartbeating activity rather than a workflow loop of short activities and timers: a
watch that polls every fraction of a second for hours would write a history event per poll.
One long activity costs nothing in history while it runs; its heartbeats are what tell the
engine it is alive (at most one request per 80% of the heartbeat timeout, however often the
code calls :func:`cadenza.activity.heartbeat`), and what they carry (the iteration count here)
is handed to the next attempt if this one dies. The retry policy is what turns a dead worker
into a resumed watch instead of a failed workflow.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from cadenza import Client, Registry, RetryPolicy, activity, workflow
from cadenza.error import ActivityCancelledError

#: The task list the monitoring workers poll.
TASK_LIST = "bucket-monitors"
#: How long a watch may go without a heartbeat before its worker counts as dead.
HEARTBEAT_TIMEOUT = timedelta(seconds=3)
#: Retries of a watch whose worker died: soon, a few times.
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                    maximum_interval=timedelta(seconds=10), maximum_attempts=10)

workflows = Registry()


@dataclass(frozen=True)
class Watch:
    """Wait for ``key`` to appear in ``bucket``, looking every ``poll_seconds``."""

    bucket: str
    key: str
    poll_seconds: float = 0.2


@dataclass(frozen=True)
class Sighting:
    """The object that appeared, and how the watch got there.

    ``attempt`` is the activity attempt that saw it (0 is the first); ``resumed_from`` is the
    iteration count that attempt took over from a previous one (0: it started afresh);
    ``iterations`` counts the polls of all attempts together.
    """

    key: str
    size: int
    attempt: int
    resumed_from: int
    iterations: int


async def aws_client(client: Client, service: str) -> Any:
    """A boto3 client for the stack behind ``client``.

    Against an emulator (the embedded stack, ``cadenza dev``) its endpoint comes from the
    API's cluster info and any credentials do; against AWS the usual boto3 configuration
    applies.
    """
    info = await client.cluster_info()
    options: dict[str, Any] = {"region_name": info["region"],
                               "config": Config(retries={"max_attempts": 5, "mode": "standard"})}
    if info.get("emulated"):
        options.update(endpoint_url=info["sqs_endpoint_url"], aws_access_key_id="local",
                       aws_secret_access_key="local")
    session: Any = boto3.session.Session()  # any service: no typed overload applies
    return session.client(service, **options)


class BucketWatcher:
    """The monitoring activity, bound to one S3 client (one per worker process)."""

    def __init__(self, s3: Any) -> None:
        self.s3 = s3

    @activity.method(name="wait_for_object")
    def wait_for_object(self, watch: Watch) -> Sighting:
        """Poll until the object exists, heartbeating the iteration count every round.

        A sync activity: boto3 blocks, so the worker runs it in a thread (heartbeats work
        there as well). A retry resumes from the count its predecessor last reported.
        """
        details = activity.heartbeat_details(int)
        resumed_from = int(details[0]) if details else 0
        iteration = resumed_from
        while True:
            if activity.is_cancelled():
                raise ActivityCancelledError(iteration)
            iteration += 1
            size = self._size(watch)
            if size is not None:
                return Sighting(watch.key, size, activity.info().attempt, resumed_from,
                                iteration)
            activity.heartbeat(iteration)
            time.sleep(watch.poll_seconds)

    def _size(self, watch: Watch) -> int | None:
        try:
            head = self.s3.head_object(Bucket=watch.bucket, Key=watch.key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return int(head["ContentLength"])


def watcher_registry(s3: Any) -> Registry:
    """What a monitoring worker serves: the activity, bound to its S3 client."""
    registry = Registry()
    registry.register_activities(BucketWatcher(s3))
    return registry


@workflows.workflow()
class WatchBucket:
    """Wait (durably) for an object to appear in a bucket; return what was found."""

    @workflow.run
    async def run(self, watch: Watch) -> Sighting:
        sighting: Sighting = await workflow.execute_activity(
            "wait_for_object", Sighting, watch,
            task_list=TASK_LIST,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            start_to_close_timeout=timedelta(hours=1),
            schedule_to_close_timeout=timedelta(hours=2),
            retry_policy=RETRY,
        )
        return sighting


__all__ = [
    "HEARTBEAT_TIMEOUT",
    "RETRY",
    "TASK_LIST",
    "BucketWatcher",
    "Sighting",
    "Watch",
    "WatchBucket",
    "aws_client",
    "watcher_registry",
    "workflows",
]
