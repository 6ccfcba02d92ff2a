"""The DynamoDB history store: every state change of a run is one conditional PutItem.

See models.py for the item layout. Reads: the latest batch of a run is its state (one Query,
newest first, limit 1); history is every batch of the run in key order, paginated.
"""

from __future__ import annotations

import base64
import json
import uuid
import zlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from ..core import HistoryEvent, RunState, Transition, task_from_dict, task_to_dict, tasks_of
from ..core.records import StoredBatch
from ..error import BadRequestError, CommitConflictError, PayloadTooLargeError
from .models import HistoryBatchModel, bind, create, is_condition_failure
from .settings import AwsSettings

#: DynamoDB's item limit is 400 KB; keep room for keys and attribute names.
MAX_ITEM_BYTES = 390_000
#: The largest version a commit's sort key can hold (ten digits).
_LAST = 9_999_999_999


def run_key(domain: str, workflow_id: str) -> str:
    if "#" in domain:
        raise BadRequestError("domain must not contain '#'", field="domain")
    return f"{domain}#{workflow_id}"


def batch_key(run_id: str, version: int) -> str:
    """A commit's sort key: its run, then its version (every commit of a run adds one)."""
    return f"{run_id}#{version:010d}"


#: How late a run may close after its execution deadline: the timeout is a durable timer, and
#: timers fire late by their delivery (SQS, Scheduler's minute, retried stream batches).
CLOSE_LAG_SECONDS = 86_400


def expires_at(state: RunState, committed_at: int, retention_seconds: int) -> int:
    """Epoch seconds from which DynamoDB's TTL may delete a batch of this run: never before
    ``retention_seconds`` after the run's close (docs/design.md, "Retention").

    A batch of a closed run (the closing one and any after it) expires retention after the
    close. A batch written while the run is open cannot know the close, but bounds it: the run
    closes by its execution deadline, at most its backoff plus its execution timeout after its
    start, which is no later than this write, plus the lag of the timeout's timer. The item is
    never rewritten, so the bound is written instead of the close.
    """
    if state.close_time is not None:
        return state.close_time // 1000 + retention_seconds
    deadline = committed_at // 1000 + state.backoff_seconds \
        + state.execution_start_to_close_timeout_seconds + CLOSE_LAG_SECONDS
    return deadline + retention_seconds


def encode_batch(
    transition: Transition, committed_at: int, *, retention_seconds: int | None = None
) -> dict[str, Any]:
    """The attributes of the item a transition is stored as (also what the stream carries);
    with ``retention_seconds``, the item's TTL (``expires_at``)."""
    state = transition.state
    events = transition.events
    first = events[0].event_id if events else state.next_event_id
    document: dict[str, Any] = {"events": [e.to_dict() for e in events], "state": state.to_dict()}
    if transition.outbox:
        document["outbox"] = [task_to_dict(task) for task in transition.outbox]
    body = zlib.compress(json.dumps(document, separators=(",", ":")).encode(), 6)
    attributes: dict[str, Any] = {
        "pk": run_key(state.domain, state.workflow_id),
        "sk": batch_key(state.run_id, state.version),
        "run_id": state.run_id,
        "first_event_id": first,
        "last_event_id": events[-1].event_id if events else first - 1,
        "committed_at": committed_at,
        "body": body,
    }
    if retention_seconds is not None:
        attributes["expires_at"] = expires_at(state, committed_at, retention_seconds)
    size = sum(len(v) if isinstance(v, bytes) else len(str(v).encode())
               for v in attributes.values())
    if size > MAX_ITEM_BYTES:
        raise PayloadTooLargeError(
            f"one commit would store {size} bytes; the limit is {MAX_ITEM_BYTES} bytes",
            limit=MAX_ITEM_BYTES,
            size=size,
        )
    return attributes


def _body(raw: bytes) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(zlib.decompress(raw))
    return decoded


def decode_batch(attributes: Mapping[str, Any]) -> StoredBatch:
    """Read a batch from plain attribute values (a model's or a stream image's)."""
    body = _body(attributes["body"])
    events = tuple(HistoryEvent.from_dict(e) for e in body["events"])
    state = RunState.from_dict(body["state"])
    outbox = tuple(task_from_dict(t) for t in body.get("outbox") or ())
    return StoredBatch(
        run_id=str(attributes["run_id"]),
        events=events,
        state=state,
        tasks=(*tasks_of(state, events), *outbox),
        committed_at=int(attributes["committed_at"]),
    )


def decode_stream_image(image: Mapping[str, Mapping[str, Any]]) -> StoredBatch:
    """A batch from a DynamoDB stream NewImage (typed attribute values).

    Binary values are bytes from boto3 and base64 text in a Lambda event.
    """
    plain: dict[str, Any] = {}
    for name, typed in image.items():
        if "S" in typed:
            plain[name] = typed["S"]
        elif "N" in typed:
            plain[name] = int(typed["N"])
        elif "B" in typed:
            value = typed["B"]
            plain[name] = value if isinstance(value, bytes) else base64.b64decode(value)
        elif "NULL" in typed:
            plain[name] = None
    return decode_batch(plain)


class DynamoHistoryStore:
    def __init__(self, settings: AwsSettings) -> None:
        self.settings = settings
        #: Closed runs expire this long after their close (None: never; CADENZA_RETENTION_DAYS).
        self.retention_seconds = (None if settings.retention_days is None
                                  else settings.retention_days * 86_400)
        self.model = bind(
            HistoryBatchModel,
            table_name=settings.history_table,
            region=settings.region,
            host=settings.endpoint_url,
        )

    # --- reads ----------------------------------------------------------------------------

    def latest(self, domain: str, workflow_id: str, run_id: str = "") -> StoredBatch | None:
        """The newest batch of a run (of the newest run when ``run_id`` is empty)."""
        condition = self.model.sk.startswith(f"{run_id}#") if run_id else None
        for item in self.model.query(
            run_key(domain, workflow_id),
            condition,
            scan_index_forward=False,
            limit=1,
            consistent_read=True,
        ):
            return decode_batch(self._plain(item))
        return None

    def history_pages(
        self,
        domain: str,
        workflow_id: str,
        run_id: str,
        *,
        page_size: int = 1000,
        page_token: str | None = None,
    ) -> tuple[list[HistoryEvent], str | None]:
        """Events of a run in order, at least ``page_size`` a page (whole batches)."""
        start_key = _decode_token(page_token, run_key(domain, workflow_id), run_id)
        events: list[HistoryEvent] = []
        last_sk: str | None = None
        results = self.model.query(
            run_key(domain, workflow_id),
            self.model.sk.startswith(f"{run_id}#"),
            consistent_read=True,
            last_evaluated_key=start_key,
            page_size=min(max(page_size // 3, 10), 500),
        )
        for item in results:
            events.extend(HistoryEvent.from_dict(e) for e in _body(item.body)["events"])
            last_sk = item.sk
            if len(events) >= page_size:
                break
        else:
            return events, None
        assert last_sk is not None
        return events, _encode_token(
            {"pk": {"S": run_key(domain, workflow_id)}, "sk": {"S": last_sk}}
        )

    def events_after(
        self, domain: str, workflow_id: str, run_id: str, version: int, *,
        page_size: int = 1000,
    ) -> tuple[list[HistoryEvent], int, bool]:
        """The events of the run's commits after ``version`` (0: all of them), at least
        ``page_size`` unless the run has fewer: (events, the version of the last commit read,
        whether more follow). One Query with a key condition on the commit's sort key, so a
        worker that holds a run's history up to a commit reads only what came after it."""
        events: list[HistoryEvent] = []
        last = version
        results = self.model.query(
            run_key(domain, workflow_id),
            self.model.sk.between(batch_key(run_id, version + 1), batch_key(run_id, _LAST)),
            consistent_read=True,
            page_size=min(max(page_size // 3, 10), 500),
        )
        for item in results:
            events.extend(HistoryEvent.from_dict(e) for e in _body(item.body)["events"])
            last = int(item.sk.rsplit("#", 1)[1])
            if len(events) >= page_size:
                return events, last, True
        return events, last, False

    def read_batch(
        self, domain: str, workflow_id: str, run_id: str, version: int
    ) -> StoredBatch | None:
        """One commit by its version (a retry reads the commit that scheduled its activity)."""
        try:
            item = self.model.get(run_key(domain, workflow_id), batch_key(run_id, version),
                                  consistent_read=True)
        except self.model.DoesNotExist:
            return None
        return decode_batch(self._plain(item))

    def all_events(self, domain: str, workflow_id: str, run_id: str) -> Iterator[HistoryEvent]:
        token: str | None = None
        while True:
            events, token = self.history_pages(
                domain, workflow_id, run_id, page_size=1000, page_token=token
            )
            yield from events
            if token is None:
                return

    # --- writes ---------------------------------------------------------------------------

    def append(self, transition: Transition, *, committed_at: int) -> StoredBatch:
        """Commit one transition; CommitConflictError when its first event id is taken."""
        attributes = {**encode_batch(transition, committed_at,
                                     retention_seconds=self.retention_seconds),
                      "commit_id": uuid.uuid4().hex}
        if not create(self.model(**attributes)) and not self._is_own(attributes):
            raise CommitConflictError("the run changed since it was read")
        return decode_batch(attributes)

    def _is_own(self, attributes: Mapping[str, Any]) -> bool:
        """Whether the item in the way is this very commit: botocore retried a PutItem whose
        answer was lost, and the retry met the item the first try wrote. Success, not a race."""
        try:
            item = self.model.get(attributes["pk"], attributes["sk"], consistent_read=True)
        except self.model.DoesNotExist:
            return False
        return item.commit_id == attributes["commit_id"]

    def append_together(
        self, transitions: Sequence[Transition], *, committed_at: int
    ) -> list[StoredBatch]:
        """Commit transitions of different runs atomically (a DynamoDB transaction)."""
        encoded = [encode_batch(t, committed_at, retention_seconds=self.retention_seconds)
                   for t in transitions]
        connection = Connection(region=self.settings.region, host=self.settings.endpoint_url)
        try:
            with TransactWrite(connection=connection) as transaction:
                for attributes in encoded:
                    transaction.save(
                        self.model(**attributes), condition=self.model.pk.does_not_exist()
                    )
        except TransactWriteError as error:
            if is_condition_failure(error):
                raise CommitConflictError("a run changed since it was read") from error
            raise
        return [decode_batch(a) for a in encoded]

    @staticmethod
    def _plain(item: HistoryBatchModel) -> dict[str, Any]:
        return {"run_id": item.run_id, "body": item.body, "committed_at": item.committed_at}


def _encode_token(key: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def _decode_token(token: str | None, pk: str, run_id: str) -> dict[str, Any] | None:
    """The start key a token names, if it is one this run's history handed out.

    A token of another run or workflow (or a forged one) would make DynamoDB answer with another
    run's events or fail the query; it is refused as a bad request instead.
    """
    if not token:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
        if not isinstance(key, dict) or set(key) != {"pk", "sk"}:
            raise ValueError
        sk = key["sk"]
        if key["pk"] != {"S": pk} or not isinstance(sk, dict) or set(sk) != {"S"} \
                or not isinstance(sk["S"], str) or not sk["S"].startswith(f"{run_id}#"):
            raise ValueError
        return key
    except ValueError as error:
        raise BadRequestError("next_page_token is not valid", field="next_page_token") from error
