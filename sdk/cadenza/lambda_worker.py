"""Lambda mode: a registry as the handler of SQS task-list events.

    from cadenza.lambda_worker import lambda_handler
    handler = lambda_handler(registry)

Each record is one task, processed by the same code as a polling worker; records that must be
retried are reported as batch item failures (powertools), so SQS redelivers only those.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from ._tasks import (
    DEFAULT_CACHED_WORKFLOWS,
    MAX_EAGER_ACTIVITIES,
    Outcome,
    WorkerBackend,
    WorkflowCache,
    process_activity,
    process_decision,
    process_query,
)
from .core import ActivityTask, DecisionTask, QueryTask, Task
from .core.records import TaskMessage
from .data_converter import DataConverter, DefaultDataConverter

__all__ = ["TaskRetryLaterError", "lambda_handler"]

logger = Logger(service="cadenza-worker")
#: X-Ray: each invocation a segment, each AWS call a subsegment, each record annotated with
#: its run (in Lambda with active tracing; a no-op elsewhere).
tracer = Tracer(service="cadenza-worker")


class TaskRetryLaterError(Exception):
    """The task must come back later (reported as a batch item failure)."""


def lambda_handler(
    registry: Any,
    *,
    backend: WorkerBackend | None = None,
    domain: str = "default",
    converter: DataConverter | None = None,
    sqs: Any = None,
    max_cached_workflows: int = DEFAULT_CACHED_WORKFLOWS,
    max_eager_activities: int = MAX_EAGER_ACTIVITIES,
) -> Callable[[dict[str, Any], Any], Any]:
    """The Lambda handler for SQS task-list events of ``registry``'s workflows and activities.

    ``backend`` defaults to the service in-process (the function has the stack's environment);
    ``sqs`` is the client that delays a task to retry (default: boto3's, from the environment).
    The handler keeps up to ``max_cached_workflows`` runs between warm invocations of the
    execution environment (sticky execution: a run's next task reads only its new events).
    A decision that schedules activities of its own task list (this function serves that
    list's activity queue too) asks for up to ``max_eager_activities`` of them in its
    completion and runs them in the same invocation, without a queue round trip, and so does
    the decision task an activity's result schedules there (handed back with the result): the
    function's timeout must leave room for them (an attempt cut short by it is retried when
    its start-to-close timeout passes, a decision task comes by its queue). 0 sends every task
    through its queue.
    """
    codec = converter or DefaultDataConverter()
    state: dict[str, Any] = {}
    # Built when the module is loaded (the handler is made at import): it lives as long as
    # the execution environment, across warm invocations.
    cache = WorkflowCache(max_cached_workflows)

    def engine() -> WorkerBackend:
        if "backend" not in state:
            if backend is not None:
                state["backend"] = backend
            else:
                from .aws.metrics import PowertoolsMetrics
                from .service.backend import ServiceBackend
                from .service.factory import service_from_environment

                state["metrics"] = PowertoolsMetrics()  # EMF, flushed after each invocation
                state["backend"] = ServiceBackend(
                    service_from_environment(metrics=state["metrics"]), domain=domain)
        return state["backend"]

    def sqs_client() -> Any:
        if "sqs" not in state:
            import boto3

            state["sqs"] = sqs if sqs is not None else boto3.client("sqs")
        return state["sqs"]

    def slots(task_list: str, most: int) -> _EagerSlots | None:
        return _EagerSlots(task_list, most) if max_eager_activities > 0 else None

    def follow(first: Outcome, task_list: str) -> None:
        """Run, in this invocation, what the answers hand over: eager activities, the decision
        task their results schedule, its eager activities ... up to MAX_CHAIN tasks. Whatever
        fails or is left is not lost: an attempt's deadline retries it, and the redrive has
        sent a handed-back decision task to its queue."""
        pending = [first]
        for _ in range(MAX_CHAIN):
            if not pending:
                return
            outcome = pending.pop(0)
            try:
                for eager in outcome.eager:
                    pending.append(asyncio.run(process_activity(
                        engine(), registry, eager.message, converter=codec,
                        started=eager.start, hand_back=slots(task_list, 1))))
                if outcome.handed is not None:
                    pending.append(asyncio.run(process_decision(
                        engine(), registry, outcome.handed.message, converter=codec,
                        cache=cache, eager=slots(task_list, max_eager_activities),
                        handed=outcome.handed)))
            except Exception:
                logger.exception("a task handed to this invocation failed; it is retried")

    def record_handler(record: SQSRecord) -> None:
        message = TaskMessage.parse(record.body)
        if message is None:
            # No retry can make it a task: redelivering it would only cost invocations until
            # the message expires. Logged with its id, then dropped (reported as processed).
            logger.error("dropping SQS message %s: not a Cadenza task (%.200r)",
                         record.message_id, record.body)
            return
        task = message.task
        receive_count = int(record.attributes.approximate_receive_count or 1)
        _correlate(task, receive_count)
        if isinstance(task, QueryTask):
            outcome = asyncio.run(process_query(engine(), registry, message, converter=codec,
                                                cache=cache))
        elif isinstance(task, DecisionTask):
            outcome = asyncio.run(process_decision(
                engine(), registry, message, converter=codec, receive_count=receive_count,
                cache=cache, eager=slots(task.task_list, max_eager_activities),
            ))
            follow(outcome, task.task_list)
        else:
            outcome = asyncio.run(process_activity(
                engine(), registry, message, converter=codec,
                hand_back=slots(task.task_list, 1),
            ))
            follow(outcome, task.task_list)
        if not outcome.done:
            if outcome.retry_after:
                _delay(sqs_client(), record, outcome.retry_after)
            raise TaskRetryLaterError(outcome.note or "retry later")

    @logger.inject_lambda_context(clear_state=True)
    @tracer.capture_lambda_handler
    def handler(event: dict[str, Any], context: Any) -> Any:
        processor = SqsFifoPartialProcessor(skip_group_on_error=True)
        # A batch whose every record must come back later is answered like a partial one:
        # by default powertools raises instead, which fails the invocation (an error for
        # Lambda's metrics and the event source mapping's backoff) for an expected outcome.
        processor.raise_on_entire_batch_failure = False
        try:
            return process_partial_response(
                event=event, record_handler=record_handler, processor=processor, context=context
            )
        finally:
            if "metrics" in state:
                state["metrics"].flush()

    handler.cache = cache  # type: ignore[attr-defined]
    return handler


def _correlate(task: Task, receive_count: int) -> None:
    """Every log line of this record names its run, task list and attempt (powertools keys),
    and the trace is searchable by workflow id."""
    attempt = task.attempt if isinstance(task, DecisionTask | ActivityTask) else None
    logger.append_keys(workflow_id=task.workflow_id, run_id=task.run_id,
                       task_list=task.task_list, task_kind=str(task.kind), attempt=attempt,
                       receive_count=receive_count)
    tracer.put_annotation("workflow_id", task.workflow_id)
    tracer.put_annotation("run_id", task.run_id)


#: Most tasks one record's invocation runs after it (eager activities, handed-back decisions).
MAX_CHAIN = 50


class _EagerSlots:
    """One invocation runs its eager activities one after the other, after the decision."""

    def __init__(self, task_list: str, most: int) -> None:
        self.task_list = task_list
        self._free = most

    def reserve(self, most: int) -> int:
        taken = max(0, min(most, self._free))
        self._free -= taken
        return taken

    def release(self, count: int) -> None:
        self._free += max(0, count)


_queue_urls: dict[str, str] = {}


def _delay(sqs: Any, record: SQSRecord, seconds: int) -> None:
    """Keep a record invisible for ``seconds`` (the retry backoff) instead of the queue's
    visibility timeout; the event source mapping does not delete a reported failure."""
    arn = record.event_source_arn
    try:
        if arn not in _queue_urls:
            account, name = arn.split(":")[4:6]
            _queue_urls[arn] = sqs.get_queue_url(
                QueueName=name, QueueOwnerAWSAccountId=account
            )["QueueUrl"]
        sqs.change_message_visibility(
            QueueUrl=_queue_urls[arn], ReceiptHandle=record.receipt_handle,
            VisibilityTimeout=max(0, min(seconds, 43_200)),
        )
    except Exception:  # the queue's own visibility timeout applies instead
        logger.exception("could not delay SQS message %s", record.message_id)
