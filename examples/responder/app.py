"""The workflow that asks a question, and the activity that forwards it to a responder.

Why async completion: the work happens somewhere a worker cannot wait on cheaply (another
service, a person, a batch system), reached through a queue. Holding a worker slot (and, in
Lambda, a running function) for the whole wait would cost for nothing. The activity instead
hands its task token to the responder with the request and returns; the activity stays open
in the engine, under its timeouts, until somebody completes, fails or heartbeats it by token.

The timeouts say what the responder owes: a heartbeat within :data:`ACK_WINDOW` of the
request (it has the request and works on it) and every :data:`ACK_WINDOW` while it works, and
the answer within :data:`REPLY_WINDOW`. A request that got lost (the responder was down, the
message expired) times out and is retried: forwarded again, with a new token; a late answer to
the old token is refused as stale.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import boto3
from botocore.config import Config

from cadenza import Client, Registry, RetryPolicy, activity, workflow

#: The task list of the workflow and of the forwarding activity.
TASK_LIST = "questions"
#: How long the responder may take to acknowledge (and then between heartbeats).
ACK_WINDOW = timedelta(seconds=30)
#: How long the responder has to answer.
REPLY_WINDOW = timedelta(minutes=5)
#: A lost request is forwarded again, a couple of times.
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)

workflows = Registry()


@dataclass(frozen=True)
class Question:
    text: str


@dataclass(frozen=True)
class Answer:
    """The responder's answer: to what, what, and who answered."""

    question: str
    reply: str
    responder: str


@dataclass(frozen=True)
class Request:
    """The message the responder receives: the question and the token that answers it."""

    task_token: str
    workflow_id: str
    activity_id: str
    attempt: int
    question: Question

    def to_json(self) -> str:
        return json.dumps({
            "task_token": self.task_token, "workflow_id": self.workflow_id,
            "activity_id": self.activity_id, "attempt": self.attempt,
            "question": {"text": self.question.text},
        })

    @classmethod
    def from_json(cls, text: str) -> Request:
        data = json.loads(text)
        return cls(task_token=data["task_token"], workflow_id=data["workflow_id"],
                   activity_id=data["activity_id"], attempt=int(data["attempt"]),
                   question=Question(**data["question"]))


async def aws_client(client: Client, service: str) -> Any:
    """A boto3 client for the stack behind ``client`` (the emulator's endpoint and any
    credentials locally; the usual boto3 configuration against AWS)."""
    info = await client.cluster_info()
    options: dict[str, Any] = {"region_name": info["region"],
                               "config": Config(retries={"max_attempts": 5, "mode": "standard"})}
    if info.get("emulated"):
        options.update(endpoint_url=info["sqs_endpoint_url"], aws_access_key_id="local",
                       aws_secret_access_key="local")
    session: Any = boto3.session.Session()  # any service: no typed overload applies
    return session.client(service, **options)


class Forwarder:
    """The forwarding activity, bound to the queue the responder reads."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self.sqs = sqs
        self.queue_url = queue_url

    @activity.method(name="ask_responder")
    def ask(self, question: Question) -> None:
        """Send the question and this attempt's task token to the responder; the answer
        completes the activity later (what this function returns is ignored)."""
        info = activity.info()
        request = Request(info.task_token, info.workflow_id, info.activity_id, info.attempt,
                          question)
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=request.to_json())
        # Only once the request is on its way: if sending fails, the attempt fails (and is
        # retried) instead of waiting for an answer nobody will send.
        activity.complete_async()


def forwarder_registry(sqs: Any, queue_url: str) -> Registry:
    registry = Registry()
    registry.register_activities(Forwarder(sqs, queue_url))
    return registry


@workflows.workflow()
class AskResponder:
    """Ask the responder a question and return its answer."""

    @workflow.run
    async def run(self, question: Question) -> Answer:
        answer: Answer = await workflow.execute_activity(
            "ask_responder", Answer, question,
            task_list=TASK_LIST,
            heartbeat_timeout=ACK_WINDOW,
            start_to_close_timeout=REPLY_WINDOW,
            retry_policy=RETRY,
        )
        return answer


__all__ = [
    "ACK_WINDOW",
    "REPLY_WINDOW",
    "RETRY",
    "TASK_LIST",
    "Answer",
    "AskResponder",
    "Forwarder",
    "Question",
    "Request",
    "aws_client",
    "forwarder_registry",
    "workflows",
]
