"""Visibility records (list open/closed runs), written from the history stream.

Written off the commit path on purpose: a commit stays one PutItem, and listing is eventually
consistent, as in Cadence. Writes are order-independent: the open record never overwrites a
closed one, so stream records may arrive in any order.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from ..core import RunState
from ..core.records import VisibilityRecord
from ..error import BadRequestError
from .models import VisibilityModel, bind, create
from .settings import AwsSettings
from .store import run_key


class DynamoVisibilityStore:
    def __init__(self, settings: AwsSettings) -> None:
        self.model = bind(
            VisibilityModel,
            table_name=settings.visibility_table,
            region=settings.region,
            host=settings.endpoint_url,
        )

    def record(self, state: RunState) -> None:
        item = self.model(
            pk=run_key(state.domain, state.workflow_id),
            sk=state.run_id,
            list_pk=f"{state.domain}#{'OPEN' if state.is_open else 'CLOSED'}",
            start_time=state.start_time,
            close_time=state.close_time,
            domain=state.domain,
            workflow_id=state.workflow_id,
            run_id=state.run_id,
            workflow_type=state.workflow_type,
            task_list=state.task_list,
            status=str(state.status),
            history_length=state.next_event_id - 1,
        )
        if state.is_open:
            create(item)  # never over a closed record: stream records may come in any order
        else:
            item.save()

    def list(
        self,
        domain: str,
        *,
        open_runs: bool,
        workflow_type: str | None = None,
        workflow_id: str | None = None,
        page_size: int = 100,
        page_token: str | None = None,
    ) -> tuple[list[VisibilityRecord], str | None]:
        condition: Any = None
        if workflow_type:
            condition = self.model.workflow_type == workflow_type
        if workflow_id:
            by_id = self.model.workflow_id == workflow_id
            condition = by_id if condition is None else condition & by_id
        results = self.model.by_start.query(
            f"{domain}#{'OPEN' if open_runs else 'CLOSED'}",
            filter_condition=condition,
            scan_index_forward=False,
            limit=page_size,
            last_evaluated_key=_decode(page_token, f"{domain}#{'OPEN' if open_runs else 'CLOSED'}"),
        )
        records = [
            VisibilityRecord(
                domain=i.domain,
                workflow_id=i.workflow_id,
                run_id=i.run_id,
                workflow_type=i.workflow_type,
                task_list=i.task_list,
                status=i.status,
                start_time=int(i.start_time),
                close_time=int(i.close_time) if i.close_time is not None else None,
                history_length=int(i.history_length) if i.history_length is not None else None,
            )
            for i in results
        ]
        key = results.last_evaluated_key
        return records, _encode(key) if key else None


def _encode(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def _decode(token: str | None, list_pk: str) -> dict[str, Any] | None:
    """The start key a token names, if it is one this listing (domain and status) handed out."""
    if not token:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(token.encode()))
        if not isinstance(value, dict) or set(value) != {"pk", "sk", "list_pk", "start_time"}:
            raise ValueError
        if value["list_pk"] != {"S": list_pk}:
            raise ValueError
        for name in ("pk", "sk"):
            if not (isinstance(value[name], dict) and set(value[name]) == {"S"}
                    and isinstance(value[name]["S"], str)):
                raise ValueError
        start = value["start_time"]
        if not (isinstance(start, dict) and set(start) == {"N"} and isinstance(start["N"], str)):
            raise ValueError
        int(start["N"])
    except ValueError as error:
        raise BadRequestError("next_page_token is not valid", field="next_page_token") from error
    return value
