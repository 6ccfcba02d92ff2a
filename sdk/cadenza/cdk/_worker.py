"""The worker construct: your workflows and activities as a Lambda function on one task list."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from ..aws.tasklists import MAX_RECEIVE_COUNT, MESSAGE_RETENTION_SECONDS, queue_name
from ..core import TaskKind
from ._engine import CadenzaEngine


class CadenzaWorker(Construct):
    """A Lambda function running ``handler`` (typically ``lambda_handler(registry)`` of
    ``cadenza.lambda_worker``) for the ``task_list`` of ``domain``.

    The task list's two FIFO queues are declared here with the names and attributes the service
    would give them when it creates them at run time (so it finds them instead), except the
    visibility timeout: six times the function's, as AWS recommends for a queue that feeds a
    function. Declare a worker before anything sends to its task list: CloudFormation cannot
    adopt a queue the service already created. The function gets the engine's layer,
    environment and policy, plus the right to consume (and delay) its two queues.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        engine: CadenzaEngine,
        code: lambda_.Code,
        handler: str,
        task_list: str,
        domain: str = "default",
        description: str | None = None,
        timeout: Duration | None = None,
        memory_size: int = 512,
        batch_size: int = 10,
        environment: dict[str, str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        timeout = timeout or Duration.seconds(30)
        function_id = f"{construct_id}WorkerFunction"
        self.queues: dict[TaskKind, sqs.Queue] = {}
        for kind, logical_id in ((TaskKind.DECISION, f"{construct_id}DecisionQueue"),
                                 (TaskKind.ACTIVITY, f"{construct_id}ActivityQueue")):
            queue = sqs.Queue(
                self, logical_id,
                queue_name=queue_name(engine.queue_prefix, domain, task_list, kind),
                fifo=True,
                content_based_deduplication=False,
                deduplication_scope=sqs.DeduplicationScope.MESSAGE_GROUP,
                fifo_throughput_limit=sqs.FifoThroughputLimit.PER_MESSAGE_GROUP_ID,
                visibility_timeout=Duration.seconds(6 * timeout.to_seconds()),
                retention_period=Duration.seconds(MESSAGE_RETENTION_SECONDS),
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                dead_letter_queue=sqs.DeadLetterQueue(
                    max_receive_count=MAX_RECEIVE_COUNT,
                    queue=engine.task_list_dead_letter_queue),
            )
            engine.keep_template_id(queue, logical_id)
            self.queues[kind] = queue
        self.decision_queue = self.queues[TaskKind.DECISION]
        self.activity_queue = self.queues[TaskKind.ACTIVITY]
        self.function = engine.function(
            function_id, handler,
            description or f"Cadenza worker of task list {task_list!r} (domain {domain!r}).",
            scope=self, code=code, memory_size=memory_size, timeout=timeout,
            environment=environment, log_group_id=f"{construct_id}WorkerLogGroup",
            statements=[iam.PolicyStatement(
                # The event source mappings poll with this role; the worker delays a task it
                # must retry (ChangeMessageVisibility).
                sid=f"{construct_id}TaskList",
                actions=["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                         "sqs:ChangeMessageVisibility"],
                resources=[q.queue_arn for q in self.queues.values()])],
        )
        for kind, name in ((TaskKind.DECISION, "DecisionTasks"),
                           (TaskKind.ACTIVITY, "ActivityTasks")):
            mapping = lambda_.EventSourceMapping(
                self, f"{function_id}{name}", target=self.function,
                event_source_arn=self.queues[kind].queue_arn, batch_size=batch_size,
                report_batch_item_failures=True,
            )
            engine.keep_template_id(mapping, f"{function_id}{name}")
