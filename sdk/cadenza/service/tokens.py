"""Task tokens: which exact task attempt a worker answers for, signed so it cannot be forged.

A token names the run, the task's scheduled event id and its attempt, and carries an HMAC of
those under the stack's secret: a worker can answer for the task it was given and for no other
run. The state check (is that attempt still pending?) then drops duplicates and late answers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from ..core import QueryTask, Task, TaskKind
from ..error import BadRequestError


@dataclass(frozen=True, slots=True)
class TaskToken:
    domain: str
    workflow_id: str
    run_id: str
    kind: TaskKind
    scheduled_event_id: int
    attempt: int
    query_id: str = ""


class TaskTokens:
    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("a task token secret is required")
        self._key = secret.encode()

    def issue(self, task: Task) -> str:
        fields: list[Any] = [task.domain, task.workflow_id, task.run_id, str(task.kind),
                             task.scheduled_event_id, task.attempt]
        if isinstance(task, QueryTask):
            fields.append(task.query_id)
        body = json.dumps(fields, separators=(",", ":")).encode()
        signature = hmac.new(self._key, body, hashlib.sha256).digest()[:20]
        return f"{_b64(body)}.{_b64(signature)}"

    def read(self, token: str) -> TaskToken:
        try:
            body_text, signature_text = token.split(".", 1)
            body = _unb64(body_text)
            signature = _unb64(signature_text)
        except (ValueError, AttributeError) as error:
            raise BadRequestError("task_token is malformed", field="task_token") from error
        expected = hmac.new(self._key, body, hashlib.sha256).digest()[:20]
        if not hmac.compare_digest(signature, expected):
            raise BadRequestError("task_token is not valid for this stack", field="task_token")
        domain, workflow_id, run_id, kind, scheduled_event_id, attempt, *extra = json.loads(body)
        return TaskToken(domain, workflow_id, run_id, TaskKind(kind), int(scheduled_event_id),
                         int(attempt), str(extra[0]) if extra else "")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
