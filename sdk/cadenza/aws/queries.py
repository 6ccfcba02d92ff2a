"""Answers to queries, kept until the caller has read them.

A query is answered by a worker that replays the run; the answer is not history, so it is not
written to the history table (whose stream would see it): it is an item of the visibility table
under its own key, written once (the first answer wins) and expiring after a day.
"""

from __future__ import annotations

from ..core.records import QueryAnswer
from .models import QueryAnswerModel, bind, create
from .settings import AwsSettings

#: How long an unread answer is kept (DynamoDB TTL, attribute ``expires_at``).
ANSWER_TTL_SECONDS = 86_400


class DynamoQueryAnswers:
    def __init__(self, settings: AwsSettings) -> None:
        self.model = bind(
            QueryAnswerModel,
            table_name=settings.visibility_table,
            region=settings.region,
            host=settings.endpoint_url,
        )

    def put(self, query_id: str, *, answer: str | None, error: str | None, now: float) -> bool:
        """Record the answer; False when another worker answered first."""
        return create(self.model(pk=f"query#{query_id}", sk="answer", answer=answer,
                                 error=error, expires_at=int(now) + ANSWER_TTL_SECONDS))

    def get(self, query_id: str) -> QueryAnswer | None:
        try:
            item = self.model.get(f"query#{query_id}", "answer", consistent_read=True)
        except self.model.DoesNotExist:
            return None
        return QueryAnswer(answer=item.answer, error=item.error)
