"""The Cadenza stack in CDK: the same resources as template.yaml, for teams that deploy with CDK.

template.yaml stays the source of truth (the local stack and the SAM deployment read it); this
module mirrors it resource for resource and keeps the same logical ids for the stateful and
engine-facing resources, so moving a stack from SAM to CDK does not replace its tables or
queues. tests/infra/test_cdk.py checks the mirror against the template.

Task-list queues are not here, for the same reason as in template.yaml: the service creates
``<stack>-<domain>-<tasklist>-<kind>.fifo`` queues at run time, and the functions may use any
queue named with the stack prefix. The exception, as in template.yaml, is the example worker in
Lambda mode (OrdersWorkerFunction) and the two queues of the "orders" task list that feed it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import (
    BundlingOptions,
    CfnOutput,
    CfnParameter,
    Duration,
    ILocalBundling,
    RemovalPolicy,
    Stack,
)
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sqs as sqs
from constructs import Construct

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Provided by the Lambda Python runtime or only needed off Lambda (the local emulator, the CLI).
_NOT_IN_LAYER = ("boto3", "botocore", "moto", "rich")


def layer_requirements(pyproject: Path = REPO_ROOT / "pyproject.toml") -> list[str]:
    """The runtime dependencies the layer installs: pyproject's, minus what Lambda provides."""
    dependencies = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    return [
        dep for dep in dependencies
        if not dep.split("[")[0].split("<")[0].split(">")[0].split("=")[0].strip().lower()
        .startswith(_NOT_IN_LAYER)
    ]


@jsii.implements(ILocalBundling)
class _LocalPipBundling:
    """Builds the layer with this machine's pip (Linux x86_64 wheels) so synth needs no Docker."""

    def try_bundle(self, output_dir: str, *, image: Any = None, **_: Any) -> bool:
        target = Path(output_dir) / "python"
        command = [
            sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target),
            "--platform", "manylinux2014_x86_64", "--implementation", "cp",
            "--python-version", "3.12", "--only-binary=:all:", *layer_requirements(),
        ]
        try:
            subprocess.run(command, check=True)
        except (OSError, subprocess.CalledProcessError):
            return False  # fall back to Docker bundling
        shutil.copytree(
            REPO_ROOT / "sdk" / "cadenza", target / "cadenza",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), dirs_exist_ok=True,
        )
        return True


class CadenzaStack(Stack):
    """Tables, the stream failure queue, the functions, their event sources, the HTTP API and
    the examples' bucket."""

    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)

        secret = CfnParameter(
            self, "TaskTokenSecret", type="String", no_echo=True, min_length=32,
            description="HMAC key that signs task tokens (at least 32 characters).",
        )

        # ---------------------------------------------------------------- state
        history = dynamodb.Table(
            self, "HistoryTable",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            stream=dynamodb.StreamViewType.NEW_IMAGE,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=RemovalPolicy.RETAIN,
        )
        visibility = dynamodb.Table(
            self, "VisibilityTable",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=RemovalPolicy.RETAIN,
        )
        # The listing indexes (docs/design.md, "Visibility"), each ordered by start time.
        for index_name, partition in (("by_start", "list_pk"), ("by_type", "type_pk"),
                                      ("by_close_status", "close_pk"),
                                      ("by_attribute", "attr_pk")):
            visibility.add_global_secondary_index(
                index_name=index_name,
                partition_key=dynamodb.Attribute(
                    name=partition, type=dynamodb.AttributeType.STRING),
                sort_key=dynamodb.Attribute(
                    name="start_time", type=dynamodb.AttributeType.NUMBER),
                projection_type=dynamodb.ProjectionType.ALL,
            )

        # ---------------------------------------------------------------- failures
        stream_failures = sqs.Queue(
            self, "StreamFailureQueue", retention_period=Duration.days(14)
        )

        # ---------------------------------------------------------------- timers
        timer_dead_letters = sqs.Queue(
            self, "TimerDeadLetterQueue", retention_period=Duration.days(14)
        )
        timers = sqs.Queue(
            self, "TimerQueue",
            visibility_timeout=Duration.seconds(180),
            retention_period=Duration.days(14),
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=10, queue=timer_dead_letters),
        )

        schedule_group = scheduler.CfnScheduleGroup(
            self, "TimerScheduleGroup", name=f"{self.stack_name}-timers"
        )
        scheduler_role = iam.Role(
            self, "SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            ),
        )
        timers.grant_send_messages(scheduler_role)

        # ---------------------------------------------------------------- functions
        layer = lambda_.LayerVersion(
            self, "CadenzaLayer",
            description="The cadenza SDK/engine package and its runtime dependencies.",
            code=lambda_.Code.from_asset(
                str(REPO_ROOT / "sdk"),
                bundling=BundlingOptions(
                    image=lambda_.Runtime.PYTHON_3_12.bundling_image,
                    command=[
                        "bash", "-c",
                        "pip install --target /asset-output/python "
                        + " ".join(f"'{r}'" for r in layer_requirements())
                        + " && cp -r cadenza /asset-output/python/",
                    ],
                    local=_LocalPipBundling(),
                ),
            ),
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_12],
            compatible_architectures=[lambda_.Architecture.X86_64],
            removal_policy=RemovalPolicy.DESTROY,
        )
        code = lambda_.Code.from_asset(
            str(REPO_ROOT / "functions"), exclude=["__pycache__", "*.pyc"]
        )
        examples_code = lambda_.Code.from_asset(
            str(REPO_ROOT / "examples"), exclude=["__pycache__", "*.pyc"]
        )
        environment = {
            "CADENZA_HISTORY_TABLE": history.table_name,
            "CADENZA_VISIBILITY_TABLE": visibility.table_name,
            "CADENZA_QUEUE_PREFIX": self.stack_name,
            "CADENZA_TASK_TOKEN_SECRET": secret.value_as_string,
            "CADENZA_TIMER_QUEUE_URL": timers.queue_url,
            "CADENZA_TIMER_QUEUE_ARN": timers.queue_arn,
            "CADENZA_SCHEDULE_GROUP": schedule_group.ref,
            "CADENZA_SCHEDULER_ROLE_ARN": scheduler_role.role_arn,
            "POWERTOOLS_SERVICE_NAME": "cadenza-engine",
        }

        def function(
            logical_id: str, handler: str, description: str, *, code: lambda_.Code = code
        ) -> lambda_.Function:
            fn = lambda_.Function(
                self, logical_id,
                description=description,
                runtime=lambda_.Runtime.PYTHON_3_12,
                architecture=lambda_.Architecture.X86_64,
                handler=handler,
                code=code,
                layers=[layer],
                timeout=Duration.seconds(30),
                memory_size=512,
                tracing=lambda_.Tracing.ACTIVE,
                environment=environment,
            )
            history.grant_read_write_data(fn)
            visibility.grant_read_write_data(fn)
            fn.add_to_role_policy(iam.PolicyStatement(
                sid="TaskListQueues",
                actions=["sqs:*"],
                resources=[f"arn:aws:sqs:{self.region}:{self.account}:{self.stack_name}-*"],
            ))
            fn.add_to_role_policy(iam.PolicyStatement(
                sid="LongTimers",
                actions=["scheduler:CreateSchedule"],
                resources=[f"arn:aws:scheduler:{self.region}:{self.account}:schedule/"
                           f"{self.stack_name}-timers/*"],
            ))
            scheduler_role.grant_pass_role(fn)
            return fn

        api_fn = function(
            "ApiFunction", "api/app.handler",
            "The HTTP API (start, describe, history, result, terminate, list, task completion).",
        )
        stream_fn = function("StreamFunction", "stream/app.handler",
                             "Outbox sweeper fed by the history table's stream.")
        timer_fn = function("TimerFunction", "timer/app.handler",
                            "Fires durable timers delivered by TimerQueue.")

        # ---------------------------------------------------------------- example worker
        # The order example in Lambda mode, fed by the "orders" task list of domain "default":
        # its queues carry the names and attributes the service would give them, with a
        # visibility timeout of six times the function's timeout.
        def orders_queue(logical_id: str, kind: str) -> sqs.Queue:
            return sqs.Queue(
                self, logical_id,
                queue_name=f"{self.stack_name}-default-orders-{kind}.fifo",
                fifo=True,
                content_based_deduplication=False,
                deduplication_scope=sqs.DeduplicationScope.MESSAGE_GROUP,
                fifo_throughput_limit=sqs.FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
                visibility_timeout=Duration.seconds(6 * 30),
                retention_period=Duration.days(14),
            )

        orders_decisions = orders_queue("OrdersDecisionQueue", "decision")
        orders_activities = orders_queue("OrdersActivityQueue", "activity")
        orders_fn = function(
            "OrdersWorkerFunction", "orders/lambda_app.handler",
            "Example worker in Lambda mode, the order saga of examples/orders.",
            code=examples_code,
        )

        # ---------------------------------------------------------------- example files
        # The sample applications' bucket (examples/monitor watches it): goes with the stack
        # (RemovalPolicy.DESTROY, template.yaml's DeletionPolicy: Delete), files expire after
        # a week. No auto_delete_objects: its custom resource would add a function template.yaml
        # does not have.
        examples_bucket = s3.Bucket(
            self, "ExamplesBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            lifecycle_rules=[s3.LifecycleRule(id="ExpireExampleFiles",
                                              expiration=Duration.days(7))],
            removal_policy=RemovalPolicy.DESTROY,
        )

        # ---------------------------------------------------------------- event sources
        stream_fn.add_event_source(sources.DynamoEventSource(
            history,
            starting_position=lambda_.StartingPosition.TRIM_HORIZON,
            batch_size=100,
            report_batch_item_failures=True,
            retry_attempts=10,
            bisect_batch_on_error=True,
            on_failure=sources.SqsDlq(stream_failures),
        ))
        timer_fn.add_event_source(sources.SqsEventSource(
            timers, batch_size=10, report_batch_item_failures=True,
        ))
        for queue in (orders_decisions, orders_activities):
            orders_fn.add_event_source(sources.SqsEventSource(
                queue, batch_size=10, report_batch_item_failures=True,
            ))
        http_api = apigwv2.HttpApi(self, "ServerlessHttpApi")
        integration = integrations.HttpLambdaIntegration(
            "ApiIntegration", api_fn,
            payload_format_version=apigwv2.PayloadFormatVersion.VERSION_2_0,
        )
        for path in ("/{proxy+}", "/"):
            http_api.add_routes(path=path, methods=[apigwv2.HttpMethod.ANY],
                                integration=integration)

        schedule_group.override_logical_id("TimerScheduleGroup")
        # Same logical ids as template.yaml for what holds state or is wired to the engine.
        for construct, logical_id in (
            (history, "HistoryTable"), (visibility, "VisibilityTable"),
            (stream_failures, "StreamFailureQueue"),
            (timers, "TimerQueue"), (timer_dead_letters, "TimerDeadLetterQueue"),
            (scheduler_role, "SchedulerRole"),
            (orders_decisions, "OrdersDecisionQueue"), (orders_activities, "OrdersActivityQueue"),
            (api_fn, "ApiFunction"), (stream_fn, "StreamFunction"), (timer_fn, "TimerFunction"),
            (orders_fn, "OrdersWorkerFunction"),
            (http_api, "ServerlessHttpApi"), (examples_bucket, "ExamplesBucket"),
        ):
            construct.node.default_child.override_logical_id(logical_id)  # type: ignore[union-attr]

        # ---------------------------------------------------------------- outputs
        CfnOutput(self, "ApiUrl", value=f"{http_api.api_endpoint}/",
                  description="Base URL of the HTTP API (the client's endpoint).")
        CfnOutput(self, "HistoryTableName", value=history.table_name)
        CfnOutput(self, "VisibilityTableName", value=visibility.table_name)
        CfnOutput(self, "QueuePrefix", value=self.stack_name,
                  description="Prefix of the task-list queues the service creates at run time.")
        CfnOutput(self, "ExamplesBucketName", value=examples_bucket.bucket_name,
                  description="Bucket of the sample applications' files (examples/monitor "
                              "watches it).")
