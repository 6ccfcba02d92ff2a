"""The engine construct: template.yaml's resources, permissions and wiring in CDK."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jsii
from aws_cdk import Aws, CfnResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from ._layer import cadenza_layer_code, checkout_root

#: The listing indexes of the visibility table (docs/design.md, "Visibility"): name, key.
VISIBILITY_INDEXES = (("by_start", "list_pk"), ("by_type", "type_pk"),
                      ("by_close_status", "close_pk"), ("by_attribute", "attr_pk"))
FOURTEEN_DAYS = Duration.days(14)
#: Where AWS has no resource-level permission; the only resource these accept is "*".
TRACING_ACTIONS = ("xray:PutTraceSegments", "xray:PutTelemetryRecords")


def keep_logical_id(construct: Construct, logical_id: str | None) -> None:
    """Give the construct's CloudFormation resource template.yaml's logical id (so a stack
    moved from SAM to CDK keeps its tables and queues instead of replacing them)."""
    if logical_id is not None:
        child = construct.node.default_child
        assert isinstance(child, CfnResource)
        child.override_logical_id(logical_id)


def lambda_role(scope: Construct, construct_id: str, *, engine_policy: iam.IManagedPolicy,
                statements: Sequence[iam.PolicyStatement], name: str) -> iam.Role:
    """A function's own role: the engine's managed policy plus one inline policy."""
    return iam.Role(
        scope, construct_id,
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        managed_policies=[engine_policy],
        inline_policies={name: iam.PolicyDocument(statements=list(statements))},
    )


def logs_statement(log_group: logs.ILogGroup) -> iam.PolicyStatement:
    return iam.PolicyStatement(sid="Logs", actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                               resources=[log_group.log_group_arn])


def traced(function: lambda_.Function) -> lambda_.Function:
    """Active tracing without CDK's grant of it (EnginePolicy grants X-Ray already)."""
    child = function.node.default_child
    assert isinstance(child, CfnResource)
    child.add_property_override("TracingConfig", {"Mode": "Active"})
    return function


@jsii.implements(lambda_.IEventSourceDlq)
class _OnFailureQueue:
    """The stream mapping's on-failure destination, granted by the role's own statement."""

    def __init__(self, queue: sqs.IQueue) -> None:
        self.queue = queue

    def bind(self, _target: Any, _handler: Any) -> lambda_.DlqDestinationConfig:
        return lambda_.DlqDestinationConfig(destination=self.queue.queue_arn)


class CadenzaEngine(Construct):
    """Tables, queues with their dead-letter queues and alarms, the task-token secret, the
    API, stream and timer functions with their event sources, and the IAM-authorized HTTP API.

    ``template_logical_ids`` (default) gives the resources template.yaml's logical ids: one
    engine per stack, and a stack deployed from template.yaml can move to CDK in place.
    ``functions_code`` is the engine's handlers (functions/ of a checkout by default) and
    ``layer_code`` the cadenza layer (:func:`cadenza_layer_code` by default).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        retention_days: int = 30,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        api_throttle_rate_limit: int = 200,
        api_throttle_burst_limit: int = 400,
        alarm_topic: sns.ITopic | None = None,
        functions_code: lambda_.Code | None = None,
        layer_code: lambda_.Code | None = None,
        template_logical_ids: bool = True,
    ) -> None:
        super().__init__(scope, construct_id)
        if retention_days < 1:
            raise ValueError("retention_days must be at least 1")
        stack = Stack.of(self)
        self.queue_prefix = stack.stack_name
        self.log_retention = log_retention
        self._same_ids = template_logical_ids

        # ---------------------------------------------------------------- code
        self.layer = lambda_.LayerVersion(
            self, "CadenzaLayer",
            description="The cadenza package installed with its runtime dependencies.",
            code=layer_code or cadenza_layer_code(),
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_12],
            compatible_architectures=[lambda_.Architecture.X86_64],
            removal_policy=RemovalPolicy.DESTROY,
        )
        if functions_code is None:
            root = checkout_root()
            if root is None:
                raise ValueError("functions_code is required outside a Cadenza checkout "
                                 "(the engine's handlers are its functions/ directory)")
            functions_code = lambda_.Code.from_asset(
                str(root / "functions"), exclude=["__pycache__", "*.pyc"])
        self.functions_code = functions_code

        # ---------------------------------------------------------------- secret, state
        self.task_token_secret = secretsmanager.Secret(
            self, "TaskTokenSecret",
            description="Cadenza task-token signing key (HMAC).",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64, exclude_punctuation=True),
        )
        self.keep_template_id(self.task_token_secret, "TaskTokenSecret")
        self.history_table = self._table("HistoryTable", stream=dynamodb.StreamViewType.NEW_IMAGE)
        self.visibility_table = self._table("VisibilityTable")
        for index_name, partition in VISIBILITY_INDEXES:
            self.visibility_table.add_global_secondary_index(
                index_name=index_name,
                partition_key=dynamodb.Attribute(name=partition,
                                                 type=dynamodb.AttributeType.STRING),
                sort_key=dynamodb.Attribute(name="start_time",
                                            type=dynamodb.AttributeType.NUMBER),
                projection_type=dynamodb.ProjectionType.ALL,
            )

        # ---------------------------------------------------------------- queues
        self.stream_failure_queue = self._queue("StreamFailureQueue")
        self.task_list_dead_letter_queue = self._queue(
            "TaskListDeadLetterQueue", fifo=True,
            queue_name=f"{self.queue_prefix}_task-list-dead-letters.fifo")
        self.timer_dead_letter_queue = self._queue("TimerDeadLetterQueue")
        self.timer_queue = self._queue(
            "TimerQueue", visibility_timeout=Duration.seconds(180),
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=10,
                                                  queue=self.timer_dead_letter_queue))
        self.schedule_group = scheduler.CfnScheduleGroup(
            self, "TimerScheduleGroup", name=f"{self.queue_prefix}-timers")
        if self._same_ids:
            self.schedule_group.override_logical_id("TimerScheduleGroup")
        self.scheduler_role = iam.Role(
            self, "SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}}),
            inline_policies={"send-timers": iam.PolicyDocument(statements=[
                iam.PolicyStatement(actions=["sqs:SendMessage"],
                                    resources=[self.timer_queue.queue_arn])])},
        )
        self.keep_template_id(self.scheduler_role, "SchedulerRole")

        # ---------------------------------------------------------------- alarms
        for queue, name, description in (
            (self.task_list_dead_letter_queue, "TaskListDeadLettersAlarm",
             "Task-list messages were moved to the dead-letter queue."),
            (self.timer_dead_letter_queue, "TimerDeadLettersAlarm",
             "Timer messages were moved to the dead-letter queue."),
            (self.stream_failure_queue, "StreamFailuresAlarm",
             "History stream batches failed every retry (their outbox needs a sweep)."),
        ):
            alarm = cloudwatch.Alarm(
                self, name, alarm_description=description,
                metric=queue.metric_approximate_number_of_messages_visible(
                    period=Duration.minutes(5), statistic="Maximum"),
                threshold=0, evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            if alarm_topic is not None:
                alarm.add_alarm_action(actions.SnsAction(alarm_topic))
            self.keep_template_id(alarm, name)

        # The API answered 500 (the API function's EMF metric).
        errors = cloudwatch.Alarm(
            self, "ApiServerErrorsAlarm", alarm_description="The HTTP API answered with "
                                                            "server errors.",
            metric=cloudwatch.Metric(
                namespace="Cadenza", metric_name="ServerErrors",
                dimensions_map={"service": "cadenza-engine"}, statistic="Sum",
                period=Duration.minutes(5)),
            threshold=0, evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        if alarm_topic is not None:
            errors.add_alarm_action(actions.SnsAction(alarm_topic))
        self.keep_template_id(errors, "ApiServerErrorsAlarm")

        # ---------------------------------------------------------------- permissions
        self.engine_policy = iam.ManagedPolicy(
            self, "EnginePolicy",
            description="Cadenza engine data plane (history, visibility, task lists, timers, "
                        "token key).",
            statements=self._engine_statements(),
        )
        self.keep_template_id(self.engine_policy, "EnginePolicy")
        self.environment: dict[str, str] = {
            "CADENZA_HISTORY_TABLE": self.history_table.table_name,
            "CADENZA_VISIBILITY_TABLE": self.visibility_table.table_name,
            "CADENZA_QUEUE_PREFIX": self.queue_prefix,
            "CADENZA_TASK_LIST_DLQ_ARN": self.task_list_dead_letter_queue.queue_arn,
            "CADENZA_TASK_TOKEN_SECRET_ARN": self.task_token_secret.secret_arn,
            "CADENZA_RETENTION_DAYS": str(retention_days),
            "CADENZA_TIMER_QUEUE_URL": self.timer_queue.queue_url,
            "CADENZA_TIMER_QUEUE_ARN": self.timer_queue.queue_arn,
            "CADENZA_SCHEDULE_GROUP": self.schedule_group.ref,
            "CADENZA_SCHEDULER_ROLE_ARN": self.scheduler_role.role_arn,
            "POWERTOOLS_SERVICE_NAME": "cadenza-engine",
            "POWERTOOLS_METRICS_NAMESPACE": "Cadenza",
        }

        # ---------------------------------------------------------------- functions
        self.api_function = self.function(
            "ApiFunction", "api/app.handler",
            "The HTTP API (start, describe, history, result, terminate, list, task completion).",
            memory_size=1024, log_group_id="ApiLogGroup",
            environment={"CADENZA_API_AUTH": "iam"},  # every route is IAM-authorized
            statements=[
                iam.PolicyStatement(sid="ListRuns", actions=["dynamodb:Query"], resources=[
                    self.visibility_table.table_arn,
                    f"{self.visibility_table.table_arn}/index/*"])],
        )
        assert self.history_table.table_stream_arn is not None
        self.stream_function = self.function(
            "StreamFunction", "stream/app.handler",
            "Outbox sweeper fed by the history table's stream.",
            timeout=Duration.seconds(120), log_group_id="StreamLogGroup", statements=[
                iam.PolicyStatement(
                    sid="HistoryStream",
                    actions=["dynamodb:DescribeStream", "dynamodb:GetRecords",
                             "dynamodb:GetShardIterator"],
                    resources=[self.history_table.table_stream_arn]),
                iam.PolicyStatement(sid="ListStreams", actions=["dynamodb:ListStreams"],
                                    resources=["*"]),
                iam.PolicyStatement(sid="StreamFailures", actions=["sqs:SendMessage"],
                                    resources=[self.stream_failure_queue.queue_arn]),
                # The redrive deletes the schedules of deadlines that became moot.
                iam.PolicyStatement(sid="RetireLongTimers", actions=["scheduler:DeleteSchedule"],
                                    resources=[self._schedules_arn()]),
                iam.PolicyStatement(sid="FindLongTimers", actions=["scheduler:ListSchedules"],
                                    resources=["*"])],
        )
        self.timer_function = self.function(
            "TimerFunction", "timer/app.handler", "Fires durable timers delivered by TimerQueue.",
            log_group_id="TimerLogGroup", statements=[
                iam.PolicyStatement(sid="TimerQueue", actions=[
                    "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                    resources=[self.timer_queue.queue_arn])],
        )

        # ---------------------------------------------------------------- event sources
        stream = lambda_.EventSourceMapping(
            self, "StreamFunctionHistoryStream", target=self.stream_function,
            event_source_arn=self.history_table.table_stream_arn,
            starting_position=lambda_.StartingPosition.TRIM_HORIZON, batch_size=100,
            report_batch_item_failures=True, retry_attempts=10, bisect_batch_on_error=True,
            # One read gathers a second of commits (engine.on_committed_all).
            max_batching_window=Duration.seconds(1),
            on_failure=_OnFailureQueue(self.stream_failure_queue),
        )
        timers = lambda_.EventSourceMapping(
            self, "TimerFunctionTimers", target=self.timer_function,
            event_source_arn=self.timer_queue.queue_arn, batch_size=10,
            report_batch_item_failures=True,
        )
        self.keep_template_id(stream, "StreamFunctionHistoryStream")
        self.keep_template_id(timers, "TimerFunctionTimers")

        # ---------------------------------------------------------------- HTTP API
        # Every route needs a SigV4 signature of a principal allowed execute-api:Invoke on it.
        self.http_api = apigwv2.HttpApi(
            self, "HttpApi", create_default_stage=False,
            default_authorizer=authorizers.HttpIamAuthorizer(),
        )
        self.keep_template_id(self.http_api, "ServerlessHttpApi")
        apigwv2.HttpStage(
            self, "DefaultStage", http_api=self.http_api, stage_name="$default",
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(rate_limit=api_throttle_rate_limit,
                                              burst_limit=api_throttle_burst_limit),
        )
        integration = integrations.HttpLambdaIntegration(
            "ApiIntegration", self.api_function,
            payload_format_version=apigwv2.PayloadFormatVersion.VERSION_2_0)
        for path in ("/{proxy+}", "/"):
            self.http_api.add_routes(path=path, methods=[apigwv2.HttpMethod.ANY],
                                     integration=integration)
        self.api_url = f"{self.http_api.api_endpoint}/"
        self.polling_worker_policy = iam.ManagedPolicy(
            self, "PollingWorkerPolicy",
            description="Cadenza polling worker (task-list queues and the worker routes of "
                        "the API).",
            statements=self._polling_worker_statements(),
        )
        self.keep_template_id(self.polling_worker_policy, "PollingWorkerPolicy")

    # -- building blocks (also used by CadenzaWorker)

    def function(
        self, logical_id: str, handler: str, description: str, *,
        log_group_id: str, statements: Sequence[iam.PolicyStatement],
        code: lambda_.Code | None = None, scope: Construct | None = None,
        memory_size: int = 512, timeout: Duration | None = None,
        environment: dict[str, str] | None = None,
    ) -> lambda_.Function:
        """A function of this engine: the layer, the engine's environment, its own role (the
        engine policy plus ``statements`` plus its log group) and its own log group."""
        owner = scope or self
        log_group = logs.LogGroup(owner, log_group_id, retention=self.log_retention,
                                  removal_policy=RemovalPolicy.DESTROY)
        self.keep_template_id(log_group, log_group_id)
        role = lambda_role(owner, f"{logical_id}Role", engine_policy=self.engine_policy,
                           statements=[logs_statement(log_group), *statements],
                           name=logical_id.removesuffix("Function").lower())
        self.keep_template_id(role, f"{logical_id}Role")
        function = traced(lambda_.Function(
            owner, logical_id, description=description, handler=handler,
            code=code or self.functions_code, runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=lambda_.Architecture.X86_64, layers=[self.layer], role=role,
            log_group=log_group, memory_size=memory_size,
            timeout=timeout or Duration.seconds(30),
            environment={**self.environment, **(environment or {})},
        ))
        self.keep_template_id(function, logical_id)
        return function

    def _engine_statements(self) -> list[iam.PolicyStatement]:
        prefix = f"arn:{Aws.PARTITION}:sqs:{Aws.REGION}:{Aws.ACCOUNT_ID}:{self.queue_prefix}"
        return [
            iam.PolicyStatement(sid="History", resources=[self.history_table.table_arn],
                                actions=["dynamodb:GetItem", "dynamodb:Query",
                                         "dynamodb:PutItem"]),
            iam.PolicyStatement(sid="Visibility", resources=[self.visibility_table.table_arn],
                                actions=["dynamodb:GetItem", "dynamodb:PutItem"]),
            iam.PolicyStatement(sid="TaskListQueues", resources=[f"{prefix}-*.fifo"],
                                actions=["sqs:GetQueueUrl", "sqs:CreateQueue",
                                         "sqs:SendMessage"]),
            iam.PolicyStatement(sid="Timers", actions=["sqs:SendMessage"],
                                resources=[self.timer_queue.queue_arn]),
            iam.PolicyStatement(sid="LongTimers", actions=["scheduler:CreateSchedule"],
                                resources=[self._schedules_arn()]),
            iam.PolicyStatement(
                sid="PassSchedulerRole", actions=["iam:PassRole"],
                resources=[self.scheduler_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}),
            iam.PolicyStatement(sid="TaskTokenKey", actions=["secretsmanager:GetSecretValue"],
                                resources=[self.task_token_secret.secret_arn]),
            iam.PolicyStatement(sid="Tracing", actions=list(TRACING_ACTIONS), resources=["*"]),
        ]

    def _polling_worker_statements(self) -> list[iam.PolicyStatement]:
        """For a principal outside the stack running cadenza.Worker: the routes a worker
        calls and the task-list queues it polls (and creates when they do not exist yet)."""
        api = (f"arn:{Aws.PARTITION}:execute-api:{Aws.REGION}:{Aws.ACCOUNT_ID}:"
               f"{self.http_api.api_id}/$default")
        return [
            iam.PolicyStatement(sid="WorkerRoutes", actions=["execute-api:Invoke"], resources=[
                f"{api}/GET/api/v1/cluster", f"{api}/GET/api/v1/domains/*/workflows/*/history",
                f"{api}/GET/api/v1/domains/*/workflows/*/events", f"{api}/POST/api/v1/tasks/*"]),
            iam.PolicyStatement(
                sid="PollTaskLists",
                actions=["sqs:GetQueueUrl", "sqs:CreateQueue", "sqs:ReceiveMessage",
                         "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"],
                resources=[f"arn:{Aws.PARTITION}:sqs:{Aws.REGION}:{Aws.ACCOUNT_ID}:"
                           f"{self.queue_prefix}-*.fifo"]),
        ]

    def _schedules_arn(self) -> str:
        return (f"arn:{Aws.PARTITION}:scheduler:{Aws.REGION}:{Aws.ACCOUNT_ID}:"
                f"schedule/{self.schedule_group.ref}/*")

    def _table(self, logical_id: str, *,
               stream: dynamodb.StreamViewType | None = None) -> dynamodb.Table:
        table = dynamodb.Table(
            self, logical_id,
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            stream=stream,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            time_to_live_attribute="expires_at",
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.keep_template_id(table, logical_id)
        return table

    def _queue(self, logical_id: str, *, fifo: bool = False, **options: Any) -> sqs.Queue:
        queue = sqs.Queue(
            self, logical_id, retention_period=FOURTEEN_DAYS,
            encryption=sqs.QueueEncryption.SQS_MANAGED, fifo=fifo or None, **options)
        self.keep_template_id(queue, logical_id)
        return queue

    def keep_template_id(self, construct: Construct, logical_id: str) -> None:
        """Give ``construct`` template.yaml's logical id (unless template_logical_ids=False)."""
        if self._same_ids:
            keep_logical_id(construct, logical_id)
