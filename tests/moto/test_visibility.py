"""Visibility listings by query, on DynamoDB (moto) and in memory: the same answers and refusals.

Every test runs against both adapters. Expected answers come from the runs themselves (which
runs satisfy the query, newest first), so each index path is checked against the plain
meaning of the query, across every page.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from cadenza.aws.settings import AwsSettings
from cadenza.aws.visibility import DynamoVisibilityStore
from cadenza.core import RunState, RunStatus
from cadenza.core.ids import run_id_for
from cadenza.core.records import VisibilityRecord
from cadenza.core.visibility import IndexKind, choose_index
from cadenza.error import BadRequestError
from cadenza.service.ports import VisibilityStore
from cadenza.service.visibility_query import parse_query
from cadenza.testing._memory import InMemoryVisibility

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MINUTE = 60_000


@pytest.fixture(params=["dynamodb", "memory"])
def store(request: pytest.FixtureRequest) -> VisibilityStore:
    if request.param == "memory":
        return InMemoryVisibility()
    settings: AwsSettings = request.getfixturevalue("aws_settings")
    return DynamoVisibilityStore(settings)


def run(
    workflow_id: str,
    *,
    sequence: int = 1,
    workflow_type: str = "Order",
    status: RunStatus = RunStatus.OPEN,
    start: int = T0,
    close: int | None = None,
    search_attributes: Mapping[str, Any] | None = None,
    memo: Mapping[str, Any] | None = None,
    version: int | None = None,
    domain: str = "default",
) -> RunState:
    closed = status is not RunStatus.OPEN
    return RunState(
        domain=domain, workflow_id=workflow_id,
        run_id=run_id_for(domain, workflow_id, sequence), workflow_type=workflow_type,
        task_list="tl", execution_start_to_close_timeout_seconds=3600,
        task_start_to_close_timeout_seconds=10, start_time=start,
        next_event_id=8 if closed else 3,
        version=version if version is not None else (5 if closed else 1),
        status=status,
        close_time=(close if close is not None else start + MINUTE) if closed else None,
        search_attributes=search_attributes, memo=memo,
    )


def pages(
    store: VisibilityStore, query: str, page_size: int = 100, domain: str = "default"
) -> Iterator[list[VisibilityRecord]]:
    token: str | None = None
    parsed = parse_query(query)
    for _ in range(1000):
        page, token = store.list(domain, parsed, page_size=page_size, page_token=token)
        assert len(page) <= page_size
        yield page
        if token is None:
            return
    raise AssertionError("the listing never ended")


def listed(store: VisibilityStore, query: str, page_size: int = 100) -> list[str]:
    return [r.workflow_id for page in pages(store, query, page_size) for r in page]


def expected(runs: list[RunState], query: str) -> list[str]:
    """The workflow ids of the runs that satisfy ``query``, newest first."""
    parsed = parse_query(query)
    matching = [r for r in runs if parsed.matches(_as_record(r))]
    return [r.workflow_id for r in sorted(matching, key=lambda r: -r.start_time)]


def _as_record(state: RunState) -> VisibilityRecord:
    return VisibilityRecord(
        domain=state.domain, workflow_id=state.workflow_id, run_id=state.run_id,
        workflow_type=state.workflow_type, task_list=state.task_list, status=str(state.status),
        start_time=state.start_time, close_time=state.close_time, history_length=None,
        close_status=None if state.is_open else str(state.status),
        search_attributes=state.search_attributes, memo=state.memo)


# --- a small domain, one query of each kind -------------------------------------------------

def small_domain() -> list[RunState]:
    return [
        run("o1", start=T0 + 1 * MINUTE, search_attributes={"CustomKeywordField": "vip"}),
        run("o2", start=T0 + 2 * MINUTE, workflow_type="Refund"),
        run("c1", start=T0 + 3 * MINUTE, status=RunStatus.COMPLETED, close=T0 + 30 * MINUTE,
            search_attributes={"CustomKeywordField": ["vip", "eu"], "CustomIntField": 7,
                               "CustomBoolField": True},
            memo={"note": "first"}),
        run("f1", start=T0 + 4 * MINUTE, status=RunStatus.FAILED, close=T0 + 5 * MINUTE,
            search_attributes={"CustomDatetimeField": "2026-02-01T10:00:00+00:00",
                               "CustomDoubleField": 2.5, "Region": "eu"}),
        run("t1", start=T0 + 5 * MINUTE, status=RunStatus.TERMINATED, workflow_type="Refund",
            close=T0 + 60 * MINUTE, search_attributes={"CustomBoolField": False}),
        run("x1", start=T0 + 6 * MINUTE, status=RunStatus.TIMED_OUT, close=T0 + 7 * MINUTE),
        run("n1", start=T0 + 7 * MINUTE, status=RunStatus.CONTINUED_AS_NEW),
        run("n1", sequence=2, start=T0 + 8 * MINUTE, search_attributes={"CustomIntField": 7}),
        run("k1", start=T0 + 9 * MINUTE, status=RunStatus.CANCELED, workflow_type="Refund"),
        run("elsewhere", start=T0 + 10 * MINUTE, domain="other"),
    ]


QUERIES = {
    "": ["k1", "n1", "n1", "x1", "t1", "f1", "c1", "o2", "o1"],
    "ORDER BY StartTime DESC": ["k1", "n1", "n1", "x1", "t1", "f1", "c1", "o2", "o1"],
    "WorkflowID = 'n1'": ["n1", "n1"],
    "WorkflowID = 'n1' AND CloseTime = missing": ["n1"],
    "WorkflowID = 'n1' AND ExecutionStatus = 'ContinuedAsNew'": ["n1"],
    "WorkflowType = 'Refund'": ["k1", "t1", "o2"],
    "WorkflowType = 'Refund' AND ExecutionStatus = 'Open'": ["o2"],
    "WorkflowType = 'Refund' AND ExecutionStatus = 'Closed'": ["k1", "t1"],
    "WorkflowType = 'Order' AND CloseStatus = 'FAILED'": ["f1"],
    "CloseStatus = 'COMPLETED'": ["c1"],
    "CloseStatus = 5": ["x1"],
    "ExecutionStatus = 'terminated'": ["t1"],
    "CloseTime = missing": ["n1", "o2", "o1"],
    "ExecutionStatus = 'Closed'": ["k1", "n1", "x1", "t1", "f1", "c1"],
    "CustomKeywordField = 'vip'": ["c1", "o1"],
    "CustomKeywordField = 'eu' AND CustomKeywordField = 'vip'": ["c1"],
    "CustomKeywordField = 'vip' AND CloseTime = missing": ["o1"],
    "CustomIntField = 7": ["n1", "c1"],
    "CustomIntField = '7' AND WorkflowID = 'n1'": ["n1"],
    "CustomDoubleField = 2.5": ["f1"],
    "CustomDatetimeField = '2026-02-01T10:00:00Z'": ["f1"],
    "CustomBoolField = true": ["c1"],
    "CustomBoolField = false AND WorkflowType = 'Refund'": ["t1"],
    "Region = 'eu'": ["f1"],
    "Region = 'us'": [],
    "StartTime >= '2026-01-01T00:06:00Z'": ["k1", "n1", "n1", "x1"],
    "StartTime BETWEEN '2026-01-01T00:02:00Z' AND '2026-01-01T00:04:00Z'": ["f1", "c1", "o2"],
    "StartTime < '2026-01-01T00:02:00Z'": ["o1"],
    "CloseTime < '2026-01-01T00:10:00Z'": ["n1", "x1", "f1"],
    "CloseTime > '2026-01-01T00:29:00Z' AND WorkflowType = 'Order'": ["c1"],
    "StartTime > '2027-01-01T00:00:00Z'": [],
    "StartTime > '2026-01-01T00:05:00Z' AND StartTime < '2026-01-01T00:05:00Z'": [],
    "RunID = '00000002-0000-8000-8000-000000000000' AND WorkflowType = 'Order'": [],
}


@pytest.mark.parametrize("query", list(QUERIES), ids=lambda q: q or "everything")
def test_each_kind_of_query_lists_its_runs_newest_first(
    store: VisibilityStore, query: str,
) -> None:
    runs = small_domain()
    for state in runs:
        store.record(state)
    assert listed(store, query) == QUERIES[query]
    in_domain = [r for r in runs if r.domain == "default"]
    assert sorted(listed(store, query, page_size=2)) == sorted(expected(in_domain, query))


def test_the_index_choice_is_the_most_selective_key() -> None:
    kinds = {
        "WorkflowID = 'a' AND WorkflowType = 'T' AND CustomKeywordField = 'k'":
            IndexKind.WORKFLOW_ID,
        "WorkflowType = 'T' AND CustomKeywordField = 'k'": IndexKind.SEARCH_ATTRIBUTE,
        "WorkflowType = 'T' AND CloseStatus = 'FAILED'": IndexKind.WORKFLOW_TYPE,
        "CustomBoolField = true AND CloseStatus = 'FAILED'": IndexKind.CLOSE_STATUS,
        "CustomBoolField = true AND CloseTime = missing": IndexKind.SEARCH_ATTRIBUTE,
        "CloseTime = missing": IndexKind.STATUS,
        "CloseTime > '2026-01-01'": IndexKind.STATUS,
        "StartTime > '2026-01-01'": IndexKind.DOMAIN,
        "": IndexKind.DOMAIN,
    }
    for query, kind in kinds.items():
        assert choose_index(parse_query(query)).kind is kind, query


def test_a_record_carries_close_status_search_attributes_and_memo(
    store: VisibilityStore,
) -> None:
    for state in small_domain():
        store.record(state)
    (record,) = store.list("default", parse_query("WorkflowID = 'c1'"))[0]
    assert record.close_status == "COMPLETED" and record.status == "COMPLETED"
    assert record.search_attributes == {"CustomKeywordField": ["vip", "eu"],
                                        "CustomIntField": 7, "CustomBoolField": True}
    assert record.memo == {"note": "first"}
    assert record.close_time == T0 + 30 * MINUTE and record.history_length == 7
    (found,) = store.list("default", parse_query("CustomKeywordField = 'eu'"))[0]
    assert found == record  # an index item holds the same record
    (open_run,) = store.list("default", parse_query("WorkflowID = 'o2'"))[0]
    assert (open_run.close_status, open_run.close_time, open_run.memo) == (None, None, None)


# --- every page, exactly once ----------------------------------------------------------------


def many_runs() -> list[RunState]:
    statuses = [RunStatus.OPEN, RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.TERMINATED,
                RunStatus.COMPLETED]
    runs = []
    for i in range(250):
        status = statuses[i % len(statuses)]
        attributes: dict[str, Any] = {"CustomIntField": i % 3}
        if i % 4 == 0:
            attributes["CustomKeywordField"] = ["quarter", f"k{i % 8}"]
        # Some runs share a start time: ties must not lose or repeat a run across pages.
        runs.append(run(f"w{i:03d}", workflow_type="A" if i % 2 else "B", status=status,
                        start=T0 + (i // 2) * 1000, close=T0 + 10**6 + i,
                        search_attributes=attributes))
    # One workflow id with many runs (continue-as-new chain).
    for n in range(1, 31):
        runs.append(run("chain", sequence=n, workflow_type="A", start=T0 + 500_000 + n,
                        status=RunStatus.OPEN if n == 30 else RunStatus.CONTINUED_AS_NEW,
                        search_attributes={"CustomIntField": n % 3}))
    return runs


PAGED_QUERIES = [
    "",  # the domain: open and closed merged
    "WorkflowType = 'A'",  # a type, open and closed merged
    "WorkflowType = 'B' AND ExecutionStatus = 'Closed' AND CustomIntField = 1",
    "WorkflowType = 'A' AND CloseStatus = 'COMPLETED'",
    "CloseStatus = 'FAILED' AND StartTime > '2026-01-01T00:00:30Z'",
    "ExecutionStatus = 'Open' AND CustomIntField = 2",
    "CustomKeywordField = 'quarter' AND ExecutionStatus = 'Closed'",
    "CustomIntField = 0 AND WorkflowType = 'A'",
    "WorkflowID = 'chain' AND CustomIntField = 1",
    "StartTime BETWEEN '2026-01-01T00:00:10Z' AND '2026-01-01T00:01:00Z' AND "
    "CustomIntField = 2",
]


def test_paging_reaches_every_run_exactly_once(store: VisibilityStore) -> None:
    runs = many_runs()
    for state in runs:
        store.record(state)
    for query in PAGED_QUERIES:
        seen: list[VisibilityRecord] = []
        for page in pages(store, query, page_size=7):
            seen.extend(page)
        runs_seen = [(r.workflow_id, r.run_id) for r in seen]
        assert len(runs_seen) == len(set(runs_seen)), f"a run is listed twice: {query}"
        assert sorted(r.workflow_id for r in seen) == sorted(expected(runs, query)), query
        starts = [r.start_time for r in seen]
        if query.startswith("WorkflowID"):  # a workflow id's runs: newest run first
            assert [r.run_id for r in seen] == sorted((r.run_id for r in seen), reverse=True)
        assert starts == sorted(starts, reverse=True), f"not newest first: {query}"
        assert len(seen) > 7, f"one page only: {query}"


def test_a_listing_that_ends_with_a_page_hands_out_no_token(store: VisibilityStore) -> None:
    runs = [run(f"w{i}", start=T0 + i, workflow_type="A" if i < 4 else "B",
                status=RunStatus.OPEN if i % 2 else RunStatus.FAILED) for i in range(6)]
    for state in runs:
        store.record(state)
    for query, size in (("WorkflowType = 'A' AND CloseTime = missing", 2),
                        ("WorkflowType = 'A'", 2), ("", 3), ("CloseStatus = 'FAILED'", 3)):
        count = len(expected(runs, query))
        assert count % size == 0
        assert [len(page) for page in pages(store, query, page_size=size)] == (
            [size] * (count // size)), query


def test_a_page_token_is_bound_to_its_listing(store: VisibilityStore) -> None:
    for state in many_runs()[:40]:
        store.record(state)
    query = parse_query("WorkflowType = 'A'")
    _, token = store.list("default", query, page_size=3)
    assert token
    assert store.list("default", query, page_size=3, page_token=token)[0]
    for domain, other in (("default", parse_query("WorkflowType = 'B'")),
                          ("elsewhere", query)):
        with pytest.raises(BadRequestError) as raised:
            store.list(domain, other, page_token=token)
        assert raised.value.field == "next_page_token"

    def forged(value: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()

    decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    for bad in ("x", "!!", forged([1, 2]), forged({"v": 1}), forged([]),
                forged({**decoded, "c": [["1", "", ""]] * 2}) if isinstance(decoded, dict)
                else forged([decoded[0], "1", "a", "b"])):
        with pytest.raises(BadRequestError) as raised:
            store.list("default", query, page_token=bad)
        assert raised.value.field == "next_page_token"


# --- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize("query", [
    "RunID = 'r1'",
    "RunID = 'r1' AND StartTime > '2026-01-01'",
    "RunID = 'r1' AND CloseTime = missing",
])
def test_a_query_no_index_serves_is_refused(store: VisibilityStore, query: str) -> None:
    with pytest.raises(BadRequestError) as raised:
        store.list("default", parse_query(query))
    assert raised.value.field == "query"
    assert "RunID" in str(raised.value) and "index" in str(raised.value)


# --- writes in any order ---------------------------------------------------------------------


def test_an_open_record_never_overwrites_a_closed_one(store: VisibilityStore) -> None:
    opened = run("w", version=1, search_attributes={"CustomKeywordField": "a"})
    upserted = run("w", version=3, search_attributes={"CustomKeywordField": "b"})
    closed = run("w", version=6, status=RunStatus.COMPLETED,
                 search_attributes={"CustomKeywordField": "b"})
    for state in (closed, opened, upserted, opened):  # the stream delivered them late
        store.record(state)
    assert listed(store, "CloseTime = missing") == []
    assert listed(store, "ExecutionStatus = 'Completed'") == ["w"]
    assert listed(store, "CustomKeywordField = 'a'") == []
    assert listed(store, "CustomKeywordField = 'b' AND ExecutionStatus = 'Closed'") == ["w"]
    assert listed(store, "CustomKeywordField = 'b' AND CloseTime = missing") == []


def test_an_upsert_moves_the_run_to_its_new_values(store: VisibilityStore) -> None:
    store.record(run("w", version=1, search_attributes={"CustomKeywordField": ["x", "y"]}))
    assert listed(store, "CustomKeywordField = 'y'") == ["w"]
    store.record(run("w", version=2, search_attributes={"CustomKeywordField": ["x"],
                                                        "CustomIntField": 1}))
    store.record(run("w", version=2, search_attributes={"CustomKeywordField": ["x"],
                                                        "CustomIntField": 1}))  # redelivered
    assert listed(store, "CustomKeywordField = 'y'") == []
    assert listed(store, "CustomKeywordField = 'x'") == ["w"]
    assert listed(store, "CustomIntField = 1") == ["w"]
    store.record(run("w", version=4, search_attributes={"CustomKeywordField": "z",
                                                        "CustomIntField": 2}))
    store.record(run("w", version=1, search_attributes={"CustomKeywordField": ["x", "y"]}))
    for gone in ("CustomKeywordField = 'x'", "CustomKeywordField = 'y'", "CustomIntField = 1"):
        assert listed(store, gone) == [], gone
    assert listed(store, "CustomKeywordField = 'z' AND CustomIntField = 2") == ["w"]
    store.record(run("w", version=7, status=RunStatus.FAILED,
                     search_attributes={"CustomKeywordField": "z", "CustomIntField": 2}))
    (record,) = store.list("default", parse_query("CustomIntField = 2"))[0]
    assert record.status == "FAILED"  # the index item followed the close


def test_concurrent_writers_of_one_run_leave_the_newest_record(store: VisibilityStore) -> None:
    states = [run("w", version=v, search_attributes={"CustomIntField": v,
                                                     "CustomKeywordField": [f"k{v}", "all"]},
                  status=RunStatus.COMPLETED if v == 12 else RunStatus.OPEN)
              for v in range(1, 13)]
    order = states[5:] + states[:5][::-1]
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(store.record, order))
    assert listed(store, "CustomIntField = 12 AND CloseStatus = 'COMPLETED'") == ["w"]
    assert listed(store, "CustomKeywordField = 'all' AND ExecutionStatus = 'Closed'") == ["w"]
    for v in range(1, 12):
        assert listed(store, f"CustomIntField = {v}") == [], v
        assert listed(store, f"CustomKeywordField = 'k{v}'") == [], v
    assert listed(store, "CloseTime = missing") == []


def test_a_slow_older_writer_cannot_bring_back_a_value(aws_settings: AwsSettings) -> None:
    """A writer of version 2 that put its record, then stalled before its index items, while
    version 3 (which dropped the value) completed: its late index item is refused."""
    store = DynamoVisibilityStore(aws_settings)
    store.record(run("w", version=1, search_attributes={"CustomKeywordField": "a"}))
    older = run("w", version=2, search_attributes={"CustomKeywordField": ["a", "b"]})
    store.record(older)
    store.record(run("w", version=3, search_attributes={"CustomKeywordField": "c"}))
    store._put_index_item(older, '["CustomKeywordField","s","b"]', {
        "attr_pk": {"S": 'default#["CustomKeywordField","s","b"]'},
        "start_time": {"N": str(T0)}, "version": {"N": "2"}})
    assert listed(store, "CustomKeywordField = 'b'") == []
    assert listed(store, "CustomKeywordField = 'a'") == []
    assert listed(store, "CustomKeywordField = 'c'") == ["w"]


def test_long_and_odd_values_are_found(store: VisibilityStore) -> None:
    long_value = "x" * 3000  # over DynamoDB's key size: indexed by its digest
    store.record(run("w", search_attributes={"CustomStringField": long_value,
                                             "Quote": "it's \"quoted\"", "Ratio": 1.0}))
    assert listed(store, f"CustomStringField = '{long_value}'") == ["w"]
    assert listed(store, f"CustomStringField = '{long_value}y'") == []
    assert listed(store, r"Quote = 'it\'s \"quoted\"'") == ["w"]
    assert listed(store, "Ratio = 1") == ["w"]


# --- what DynamoDB is asked ------------------------------------------------------------------


def test_each_query_reads_the_partitions_of_its_key_and_never_scans(
    aws_settings: AwsSettings,
) -> None:
    store = DynamoVisibilityStore(aws_settings)
    for state in small_domain():
        store.record(state)
    calls: list[tuple[str, str | None, str]] = []

    def seen(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name in {"Query", "Scan"}:
            calls.append((model.name, params.get("IndexName"),
                          params["ExpressionAttributeValues"][":v0"]["S"]))

    store.client.meta.events.register("before-parameter-build.dynamodb", seen)
    partitions: dict[str, list[tuple[str | None, str]]] = {
        "WorkflowID = 'n1' AND CustomIntField = 7": [(None, "default#n1")],
        "CustomKeywordField = 'vip' AND WorkflowType = 'Order'": [
            ("by_attribute", 'default#["CustomKeywordField","s","vip"]')],
        "WorkflowType = 'Refund' AND CloseTime = missing": [("by_type", "default#Refund#OPEN")],
        "WorkflowType = 'Refund' AND CloseStatus = 'CANCELED'": [
            ("by_type", "default#Refund#CLOSED")],
        "WorkflowType = 'Refund'": [("by_type", "default#Refund#OPEN"),
                                    ("by_type", "default#Refund#CLOSED")],
        "CloseStatus = 'FAILED' AND CustomBoolField = true": [
            ("by_close_status", "default#FAILED")],
        "CustomBoolField = true": [("by_attribute", 'default#["CustomBoolField","b",true]')],
        "ExecutionStatus = 'Closed' AND StartTime > '2026-01-01'": [
            ("by_start", "default#CLOSED")],
        "StartTime > '2026-01-01'": [("by_start", "default#OPEN"),
                                     ("by_start", "default#CLOSED")],
    }
    for query, expected_calls in partitions.items():
        calls.clear()
        store.list("default", parse_query(query), page_size=50)
        assert calls == [("Query", index, value) for index, value in expected_calls], query
