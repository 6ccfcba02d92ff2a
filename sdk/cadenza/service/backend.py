"""The worker's engine port served in-process (Lambda workers with AWS access).

A Lambda worker already runs inside the account: it calls the service directly instead of
going through API Gateway, which saves a request and an invocation per task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from ..core import Decision, HistoryEvent
from ..core.records import ActivityCompletion, ActivityStart, DecisionCompletion, HistorySince
from .engine import WorkflowService


class ServiceBackend:
    def __init__(self, service: WorkflowService, *, domain: str, identity: str = "lambda") -> None:
        self.service = service
        self.domain = domain
        self.identity = identity

    async def get_workflow_history(
        self, workflow_id: str, run_id: str = "", wait_for_close: bool = False
    ) -> list[HistoryEvent]:
        def read() -> list[HistoryEvent]:
            events: list[HistoryEvent] = []
            token: str | None = None
            while True:
                _, page, token = self.service.get_history(
                    self.domain, workflow_id, run_id, page_token=token,
                    wait_for_close_seconds=25.0 if wait_for_close else 0.0,
                )
                events.extend(page)
                if token is None:
                    return events

        return await asyncio.to_thread(read)

    async def read_history_since(
        self, workflow_id: str, run_id: str, *, after_version: int = 0, page_size: int = 1000,
    ) -> HistorySince:
        def read() -> HistorySince:
            events: list[HistoryEvent] = []
            version = after_version
            while True:
                page, version, more = self.service.history_after(
                    self.domain, workflow_id, run_id, after_version=version,
                    page_size=page_size,
                )
                events.extend(page)
                if not more:
                    return HistorySince(tuple(events), version)

        return await asyncio.to_thread(read)

    async def complete_decision_task(
        self, task_token: str, decisions: Sequence[Decision], *, history_length: int,
        started_at: datetime, identity: str | None = None, request_id: str | None = None,
        eager_activities: int = 0, eager_task_list: str = "",
    ) -> DecisionCompletion:
        return await asyncio.to_thread(
            self.service.complete_decision_task, task_token,
            decisions=decisions, history_length=history_length,
            started_at=started_at, identity=identity or self.identity,
            request_id=request_id or "", eager_activities=eager_activities,
            eager_task_list=eager_task_list,
        )

    async def fail_decision_task(
        self, task_token: str, *, cause: str, details: str | None, started_at: datetime,
        identity: str | None = None,
    ) -> bool:
        return await asyncio.to_thread(
            self.service.fail_decision_task, task_token, cause=cause, details=details,
            started_at=started_at, identity=identity or self.identity,
        )

    async def complete_activity_task(
        self, task_token: str, result: str | None, *, identity: str | None = None,
        request_id: str | None = None, hand_back_task_list: str = "",
    ) -> ActivityCompletion:
        return await asyncio.to_thread(
            self.service.complete_activity_task, task_token, result=result,
            identity=identity or self.identity, request_id=request_id or "",
            hand_back_task_list=hand_back_task_list,
        )

    async def fail_activity_task(
        self, task_token: str, reason: str, details: str | None, *, identity: str | None = None
    ) -> None:
        await asyncio.to_thread(
            self.service.fail_activity_task, task_token, reason=reason, details=details,
            identity=identity or self.identity,
        )

    async def answer_query_task(
        self, task_token: str, *, answer: str | None, error: str | None
    ) -> bool:
        return await asyncio.to_thread(
            self.service.answer_query_task, task_token, answer=answer, error=error
        )

    async def start_activity_task(
        self, task_token: str, *, identity: str | None = None, request_id: str | None = None
    ) -> ActivityStart:
        return await asyncio.to_thread(
            self.service.start_activity_task, task_token, identity=identity or self.identity,
            request_id=request_id or "",
        )

    async def record_activity_heartbeat_task(
        self, task_token: str, details: str | None, *, identity: str | None = None
    ) -> bool:
        return await asyncio.to_thread(
            self.service.record_activity_heartbeat, task_token, details=details,
            identity=identity or self.identity,
        )

    async def cancel_activity_task(
        self, task_token: str, details: str | None, *, identity: str | None = None
    ) -> None:
        await asyncio.to_thread(
            self.service.cancel_activity_task, task_token, details=details,
            identity=identity or self.identity,
        )
