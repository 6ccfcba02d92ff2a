"""An AWS API endpoint that holds one local stack's resources: moto, LocalStack, or any emulator.

:class:`AwsEndpoint` is what the local stack and its Lambda runtime need from "AWS": boto3
clients pointed at one endpoint, and the tables (with their streams), queues, buckets and
schedule groups template.yaml declares. Used as is, it talks to an endpoint somebody else runs
(LocalStack, or a moto server started elsewhere): resources that already exist there are
reused, never deleted, because their state outlives the local stack as a deployed stack's does.
:class:`cadenza.local.emulator.Emulator` is the embedded case: it starts moto itself and deletes
what it created when it stops.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cadenza.local.errors import LocalStackError
from cadenza.local.template import DEFAULT_ACCOUNT_ID, DEFAULT_REGION, StackDescription

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_scheduler import EventBridgeSchedulerClient
    from mypy_boto3_sqs import SQSClient

__all__ = ["DUMMY_ACCESS_KEY_ID", "DUMMY_SECRET_ACCESS_KEY", "AwsEndpoint"]

log = logging.getLogger("cadenza.local.endpoint")

#: Emulators accept any credentials; these make it obvious nothing real is being called.
DUMMY_ACCESS_KEY_ID = "testing"
DUMMY_SECRET_ACCESS_KEY = "testing"

#: How long a table created on an external endpoint may stay CREATING.
TABLE_ACTIVE_TIMEOUT = 60.0


class AwsEndpoint:
    """Clients for one AWS-compatible endpoint, and the stack's resources on it.

    ``endpoint_url`` is e.g. ``http://localhost:4566`` (LocalStack). Nothing is started:
    :meth:`start` only opens a session (dummy credentials, ``region``) and learns the account
    id (STS, else moto's default).
    """

    #: True when this object started the emulator itself (and owns its lifetime).
    embedded = False
    #: What to do when a table or queue the stack declares already exists there.
    reuse_existing = True

    def __init__(self, endpoint_url: str, *, region: str = DEFAULT_REGION) -> None:
        self._endpoint_url = endpoint_url.rstrip("/")
        self.region = region
        self.account_id = DEFAULT_ACCOUNT_ID
        self._session: boto3.Session | None = None
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._created: list[tuple[str, str]] = []  # (kind, name or url), creation order

    # -- lifecycle

    @property
    def running(self) -> bool:
        return self._session is not None

    @property
    def endpoint_url(self) -> str:
        return self._endpoint_url

    def start(self) -> None:
        """Open a session on the endpoint; fail clearly when nothing answers there."""
        if self._session is not None:
            return
        self._open_session()
        try:
            identity = self.new_client("sts", read_timeout=10).get_caller_identity()
            self.account_id = str(identity.get("Account") or DEFAULT_ACCOUNT_ID)
        except ClientError as exc:  # an endpoint without STS: keep moto's default account
            log.debug("no STS at %s (%s); assuming account %s", self.endpoint_url, exc,
                      self.account_id)
        except BotoCoreError as exc:
            self._session = None
            raise LocalStackError(
                f"the AWS endpoint {self.endpoint_url} does not answer: {exc}"
            ) from exc

    def stop(self) -> None:
        """Forget the clients; what lives at an external endpoint stays there."""
        self._created.clear()
        self._close_session()

    def _open_session(self) -> None:
        self._session = boto3.Session(
            aws_access_key_id=DUMMY_ACCESS_KEY_ID,
            aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
            region_name=self.region,
        )

    def _close_session(self) -> None:
        with self._lock:
            self._clients.clear()
            self._session = None

    # -- clients

    def client(self, service_name: str) -> Any:
        """A boto3 client for ``service_name`` pointed at the endpoint (cached, thread-safe use).

        botocore clients are safe to share between threads once created; creating them is not,
        hence the lock.
        """
        with self._lock:
            if service_name not in self._clients:
                if self._session is None:
                    raise LocalStackError(f"the AWS endpoint {self.endpoint_url} is not in use")
                self._clients[service_name] = self.new_client(service_name)
            return self._clients[service_name]

    def new_client(self, service_name: str, *, read_timeout: float = 30.0) -> Any:
        """A fresh client (long-polling threads each want their own connection pool)."""
        if self._session is None:
            raise LocalStackError(f"the AWS endpoint {self.endpoint_url} is not in use")
        return self._session.client(
            service_name,  # type: ignore[call-overload]
            endpoint_url=self.endpoint_url,
            config=Config(
                retries={"max_attempts": 2, "mode": "standard"},
                read_timeout=read_timeout,
                connect_timeout=5,
            ),
        )

    # -- resources

    def create_resources(self, stack: StackDescription) -> dict[str, dict[str, str]]:
        """Create every table, queue, bucket, schedule group and secret of ``stack`` (reusing
        existing ones when :attr:`reuse_existing`).

        Returns the attributes only the endpoint knows (queue URLs, stream ARNs) per logical id,
        to be passed back to :func:`cadenza.local.template.describe_stack`.
        """
        attributes: dict[str, dict[str, str]] = {}
        dynamodb: DynamoDBClient = self.client("dynamodb")
        for table in stack.tables:
            try:
                dynamodb.create_table(**table.create_table_request())
            except dynamodb.exceptions.ResourceInUseException as exc:
                if not self.reuse_existing:
                    raise LocalStackError(
                        f"table {table.name} already exists in this process's emulator state: "
                        f"is another local stack named {stack.stack_name!r} running in this "
                        "process? Give each one its own stack_name."
                    ) from exc
                log.info("reusing table %s at %s", table.name, self.endpoint_url)
            else:
                self._created.append(("table", table.name))
            description = self._wait_until_active(dynamodb, table.name)
            if table.stream_view_type and not description.get("LatestStreamArn"):
                # A reused table without the stream the stack needs: turn it on.
                dynamodb.update_table(
                    TableName=table.name,
                    StreamSpecification={
                        "StreamEnabled": True,
                        "StreamViewType": table.stream_view_type,  # type: ignore[typeddict-item]
                    },
                )
                description = self._wait_until_active(dynamodb, table.name)
            if table.ttl_attribute:
                with contextlib.suppress(ClientError):  # already enabled on a reused table
                    dynamodb.update_time_to_live(
                        TableName=table.name,
                        TimeToLiveSpecification={
                            "Enabled": True, "AttributeName": table.ttl_attribute},
                    )
            if table.point_in_time_recovery:
                with contextlib.suppress(Exception):  # cosmetic locally; never fatal
                    dynamodb.update_continuous_backups(
                        TableName=table.name,
                        PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
                    )
            values = {"Ref": table.name, "Arn": description["TableArn"]}
            if description.get("LatestStreamArn"):
                values["StreamArn"] = description["LatestStreamArn"]
            attributes[table.logical_id] = values

        sqs: SQSClient = self.client("sqs")
        by_id = {queue.logical_id: queue for queue in stack.queues}
        created: set[str] = set()

        def existing_queue(name: str) -> str | None:
            if not self.reuse_existing:
                return None
            try:
                return sqs.get_queue_url(QueueName=name)["QueueUrl"]
            except ClientError as exc:
                if "NonExistentQueue" in str(exc) or "QueueDoesNotExist" in str(exc):
                    return None
                raise

        def create_queue(logical_id: str, chain: tuple[str, ...] = ()) -> None:
            if logical_id in created:
                return
            if logical_id in chain:
                raise LocalStackError(f"queues redrive to each other: {' -> '.join(chain)}")
            queue = by_id[logical_id]
            dead_letter = queue.redrive.dead_letter_queue if queue.redrive else None
            if dead_letter in by_id:
                create_queue(str(dead_letter), (*chain, logical_id))
            url = existing_queue(queue.name)
            if url is not None:
                log.info("reusing queue %s at %s", queue.name, self.endpoint_url)
            else:
                url = sqs.create_queue(
                    QueueName=queue.name,
                    Attributes=queue.create_queue_attributes(),  # type: ignore[arg-type]
                )["QueueUrl"]
                self._created.append(("queue", url))
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            attributes[logical_id] = {
                "Ref": url,
                "QueueUrl": url,
                "Arn": arn,
                "QueueName": queue.name,
            }
            created.add(logical_id)

        for queue in stack.queues:
            create_queue(queue.logical_id)

        if stack.buckets:
            s3 = self.client("s3")
            for bucket in stack.buckets:
                request: dict[str, Any] = {"Bucket": bucket.name}
                if self.region != "us-east-1":  # S3 refuses the default region's constraint
                    request["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
                try:
                    s3.create_bucket(**request)
                except (s3.exceptions.BucketAlreadyOwnedByYou,
                        s3.exceptions.BucketAlreadyExists) as exc:
                    if not self.reuse_existing:
                        raise LocalStackError(
                            f"bucket {bucket.name} already exists in this process's emulator "
                            f"state: is another local stack named {stack.stack_name!r} running "
                            "in this process? Give each one its own stack_name."
                        ) from exc
                    log.info("reusing bucket %s at %s", bucket.name, self.endpoint_url)
                else:
                    self._created.append(("bucket", bucket.name))
                attributes[bucket.logical_id] = {
                    "Ref": bucket.name, "Arn": f"arn:aws:s3:::{bucket.name}"}

        if stack.schedule_groups:
            scheduler: EventBridgeSchedulerClient = self.client("scheduler")
            for group in stack.schedule_groups:
                try:
                    arn = scheduler.create_schedule_group(Name=group.name)["ScheduleGroupArn"]
                except scheduler.exceptions.ConflictException:
                    if not self.reuse_existing:
                        raise
                    arn = scheduler.get_schedule_group(Name=group.name)["Arn"]
                else:
                    self._created.append(("schedule-group", group.name))
                attributes[group.logical_id] = {"Ref": group.name, "Arn": arn}

        if stack.secrets:
            secretsmanager = self.client("secretsmanager")
            for secret in stack.secrets:
                try:
                    value = secret.secret_string
                    if value is None:  # GenerateSecretString: as CloudFormation generates it
                        value = secretsmanager.get_random_password(
                            PasswordLength=secret.length,
                            ExcludePunctuation=secret.exclude_punctuation,
                            ExcludeCharacters=secret.exclude_characters,
                        )["RandomPassword"]
                    arn = secretsmanager.create_secret(Name=secret.name, SecretString=value)["ARN"]
                except secretsmanager.exceptions.ResourceExistsException:
                    if not self.reuse_existing:
                        raise
                    arn = secretsmanager.describe_secret(SecretId=secret.name)["ARN"]
                else:
                    self._created.append(("secret", secret.name))
                attributes[secret.logical_id] = {"Ref": arn, "Id": arn, "Name": secret.name}
        return attributes

    def _wait_until_active(self, dynamodb: DynamoDBClient, name: str) -> dict[str, Any]:
        """The table's description once it is ACTIVE (moto: at once; others may take a while)."""
        deadline = time.monotonic() + TABLE_ACTIVE_TIMEOUT
        while True:
            description: dict[str, Any] = dict(dynamodb.describe_table(TableName=name)["Table"])
            if description.get("TableStatus", "ACTIVE") == "ACTIVE":
                return description
            if time.monotonic() > deadline:
                raise LocalStackError(
                    f"table {name} at {self.endpoint_url} is still {description['TableStatus']} "
                    f"after {TABLE_ACTIVE_TIMEOUT:.0f} s"
                )
            time.sleep(0.2)

    def delete_resources(self) -> None:
        """Delete what :meth:`create_resources` made (not what it found and reused)."""
        for kind, name in reversed(self._created):
            try:
                if kind == "table":
                    self.client("dynamodb").delete_table(TableName=name)
                elif kind == "queue":
                    self.client("sqs").delete_queue(QueueUrl=name)
                elif kind == "schedule-group":
                    self.client("scheduler").delete_schedule_group(Name=name)
                elif kind == "bucket":
                    self._delete_bucket(name)
                elif kind == "secret":
                    self.client("secretsmanager").delete_secret(
                        SecretId=name, ForceDeleteWithoutRecovery=True)
            except Exception as exc:  # best effort: the stack is going away anyway
                log.debug("could not delete %s %s: %s", kind, name, exc)
        self._created.clear()

    def _delete_bucket(self, name: str) -> None:
        """Empty a bucket (S3 deletes only empty ones), then delete it."""
        s3 = self.client("s3")
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=name, Delete={"Objects": keys, "Quiet": True})
        s3.delete_bucket(Bucket=name)

    def forget_shard_iterator(self, iterator: str) -> None:
        """Release a consumed DynamoDB stream iterator, where the endpoint needs that (moto)."""
