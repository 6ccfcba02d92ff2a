"""The visibility query language: what each query means, and what is refused and why."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from cadenza.core.visibility import TimeRange, attribute_key, attribute_keys
from cadenza.error import BadRequestError
from cadenza.service.visibility_query import VisibilityQuery, parse_query, quote

NOON = int(datetime(2026, 1, 31, 12, tzinfo=UTC).timestamp() * 1000)
MIDNIGHT = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)


def test_an_empty_query_lists_everything() -> None:
    for text in ("", "   ", None, "ORDER BY StartTime DESC", "order by starttime"):
        assert parse_query(text) == VisibilityQuery()


def test_the_record_is_frozen_and_typed() -> None:
    query = parse_query("WorkflowType = 'Order'")
    with pytest.raises(dataclasses.FrozenInstanceError):
        query.workflow_type = "x"  # type: ignore[misc]
    assert hash(query) == hash(parse_query("WorkflowType = \"Order\""))


def test_identity_fields() -> None:
    assert parse_query(
        "WorkflowType = 'Order' AND WorkflowID = \"o-1\" and RunID = 'r-1'"
    ) == VisibilityQuery(workflow_type="Order", workflow_id="o-1", run_id="r-1")
    # Same value twice is fine; system field names in any case.
    assert parse_query("workflowid = 'a' AND WORKFLOWID = 'a'").workflow_id == "a"


def test_quoted_strings_take_escapes_and_quote_makes_them() -> None:
    assert parse_query(r"WorkflowID = 'it\'s \\ here'").workflow_id == "it's \\ here"
    assert parse_query(r'WorkflowID = "say \"hi\""').workflow_id == 'say "hi"'
    for value in ("plain", "it's", "back\\slash", "'\"", "with AND OR ( )"):
        assert parse_query(f"WorkflowID = {quote(value)}").workflow_id == value


@pytest.mark.parametrize(("text", "status"), [
    ("CloseStatus = 'COMPLETED'", "COMPLETED"),
    ("CloseStatus = \"failed\"", "FAILED"),
    ("CloseStatus = CANCELED", "CANCELED"),
    ("CloseStatus = 'CANCELLED'", "CANCELED"),
    ("CloseStatus = 'TERMINATED'", "TERMINATED"),
    ("CloseStatus = 'CONTINUED_AS_NEW'", "CONTINUED_AS_NEW"),
    ("CloseStatus = 'TIMED_OUT'", "TIMED_OUT"),
    ("CloseStatus = 1", "FAILED"),  # Cadence's numbering
    ("ExecutionStatus = 'Open'", "OPEN"),
    ("ExecutionStatus = 'running'", "OPEN"),
    ("ExecutionStatus = 'Closed'", "CLOSED"),
    ("ExecutionStatus = 'ContinuedAsNew'", "CONTINUED_AS_NEW"),
    ("ExecutionStatus = 'timed_out'", "TIMED_OUT"),
    ("CloseTime = missing", "OPEN"),
    ("CloseTime = MISSING", "OPEN"),
    ("ExecutionStatus = 'Closed' AND CloseStatus = 'FAILED'", "FAILED"),
    ("ExecutionStatus = 'Open' AND CloseTime = missing", "OPEN"),
    ("CloseTime > '2026-01-01'", "CLOSED"),
])
def test_statuses(text: str, status: str) -> None:
    assert parse_query(text).status == status


def test_time_comparisons_are_inclusive_epoch_millisecond_ranges() -> None:
    iso = "'2026-01-31T12:00:00Z'"
    assert parse_query(f"StartTime = {iso}").start_time == TimeRange(NOON, NOON)
    assert parse_query(f"StartTime > {iso}").start_time == TimeRange(NOON + 1, None)
    assert parse_query(f"StartTime >= {iso}").start_time == TimeRange(NOON, None)
    assert parse_query(f"StartTime < {iso}").start_time == TimeRange(None, NOON - 1)
    assert parse_query(f"StartTime <= {iso}").start_time == TimeRange(None, NOON)
    between = parse_query(f"StartTime BETWEEN '2026-01-01' AND {iso} AND WorkflowType = 'T'")
    assert between.start_time == TimeRange(MIDNIGHT, NOON)
    assert between.workflow_type == "T"
    # Offsets, naive times (UTC) and sub-millisecond times.
    assert parse_query("StartTime >= '2026-01-31T13:00:00+01:00'").start_time.earliest == NOON
    assert parse_query("StartTime >= '2026-01-31T12:00:00'").start_time.earliest == NOON
    assert parse_query("StartTime > '2026-01-31T12:00:00.000500Z'").start_time.earliest == (
        NOON + 1)
    assert parse_query("StartTime >= '2026-01-31T12:00:00.000500Z'").start_time.earliest == (
        NOON + 1)
    assert parse_query("StartTime < '2026-01-31T12:00:00.000500Z'").start_time.latest == NOON


def test_ranges_on_one_field_intersect() -> None:
    query = parse_query("StartTime > '2026-01-01' AND StartTime <= '2026-01-31T12:00:00Z' "
                        "AND StartTime >= '2026-01-02'")
    assert query.start_time == TimeRange(MIDNIGHT + 86_400_000, NOON)
    closed = parse_query("CloseTime >= '2026-01-01' AND CloseTime < '2026-01-31T12:00:00Z'")
    assert closed.close_time == TimeRange(MIDNIGHT, NOON - 1)
    assert closed.status == "CLOSED"
    empty = parse_query("StartTime > '2026-02-01' AND StartTime < '2026-01-01'")
    assert empty.nothing_matches


def test_search_attributes_by_name_and_type() -> None:
    query = parse_query(
        "CustomKeywordField = 'blue' AND CustomStringField = 12 AND CustomIntField = '7' "
        "AND CustomDoubleField = 2 AND CustomBoolField = 'TRUE' AND "
        "CustomDatetimeField = '2026-01-31T12:00:00Z' AND Region = 'eu' AND Priority = 3 "
        "AND Ratio = 0.5 AND Urgent = false AND customkeywordfield = 'green'")
    assert query.search_attributes == (
        ("CustomKeywordField", "blue"), ("CustomStringField", "12"), ("CustomIntField", 7),
        ("CustomDoubleField", 2.0), ("CustomBoolField", True),
        ("CustomDatetimeField", "2026-01-31T12:00:00Z"), ("Region", "eu"), ("Priority", 3),
        ("Ratio", 0.5), ("Urgent", False), ("CustomKeywordField", "green"),
    )
    assert isinstance(query.search_attributes[3][1], float)


def test_keywords_are_case_insensitive() -> None:
    assert parse_query(
        "WorkflowType = 'T' and StartTime between '2026-01-01' and '2026-01-31T12:00:00Z' "
        "And CustomBoolField = TRUE order BY StartTime Desc"
    ) == VisibilityQuery(workflow_type="T", start_time=TimeRange(MIDNIGHT, NOON),
                         search_attributes=(("CustomBoolField", True),))


@pytest.mark.parametrize(("text", "names"), [
    ("WorkflowType = 'a' OR WorkflowType = 'b'", "OR"),
    ("WorkflowType = 'a' or WorkflowType = 'b'", "OR"),
    ("(WorkflowType = 'a')", "parentheses"),
    ("WorkflowType = 'a' AND (CloseTime = missing)", "'('"),
    ("WorkflowID != 'a'", "!="),
    ("WorkflowID <> 'a'", "<>"),
    ("NOT WorkflowID = 'a'", "NOT"),
    ("HistoryLength > 3", "HistoryLength"),
    ("TaskList = 'tl'", "TaskList"),
    ("ExecutionTime > '2026-01-01'", "ExecutionTime"),
    ("WorkflowType > 'a'", "WorkflowType"),
    ("WorkflowType = a", "'a'"),
    ("WorkflowType = 3", "'3'"),
    ("WorkflowType 'a'", "operator"),
    ("WorkflowType = 'a' WorkflowID = 'b'", "AND"),
    ("WorkflowType = 'a' AND", "the end of the query"),
    ("WorkflowType = 'a' AND WorkflowType = 'b'", "twice"),
    ("WorkflowType = 'a", "position"),
    ("WorkflowType ~ 'a'", "'~'"),
    ("WorkflowType IN ('a')", "IN"),
    ("WorkflowType LIKE 'a%'", "LIKE"),
    ("CloseStatus = 'RUNNING'", "CloseStatus"),
    ("CloseStatus = 9", "CloseStatus"),
    ("CloseStatus > 'FAILED'", "CloseStatus"),
    ("ExecutionStatus = 'sleepy'", "ExecutionStatus"),
    ("ExecutionStatus = 'Open' AND CloseStatus = 'FAILED'", "contradicts"),
    ("CloseTime = missing AND CloseTime > '2026-01-01'", "contradicts"),
    ("CloseStatus = 'FAILED' AND CloseStatus = 'COMPLETED'", "contradicts"),
    ("StartTime = missing", "StartTime"),
    ("StartTime > 1767225600000", "ISO 8601"),
    ("StartTime > 'yesterday'", "ISO 8601"),
    ("StartTime BETWEEN '2026-01-01' '2026-01-02'", "AND"),
    ("CloseTime != missing", "!="),
    ("CustomKeywordField > 'a'", "CustomKeywordField"),
    ("Region BETWEEN 'a' AND 'b'", "Region"),
    ("CustomIntField = 'seven'", "CustomIntField"),
    ("CustomIntField = 1.5", "CustomIntField"),
    ("CustomDoubleField = 'x'", "CustomDoubleField"),
    ("CustomBoolField = 1", "CustomBoolField"),
    ("CustomDatetimeField = 'soon'", "CustomDatetimeField"),
    ("Region = missing", "Region"),
    ("ORDER BY StartTime ASC", "DESC"),
    ("ORDER BY CloseTime DESC", "StartTime"),
    ("ORDER StartTime", "BY"),
    ("ORDER BY StartTime DESC AND WorkflowType = 'a'", "unexpected"),
    ("AND WorkflowType = 'a'", "field name"),
    ("= 'a'", "field name"),
    ("5abc = 1", "position"),
])
def test_refusals_name_the_offending_part(text: str, names: str) -> None:
    with pytest.raises(BadRequestError) as raised:
        parse_query(text)
    assert raised.value.field == "query"
    assert names in str(raised.value), str(raised.value)


def test_an_overlong_query_is_refused() -> None:
    with pytest.raises(BadRequestError, match="longer"):
        parse_query("WorkflowID = '" + "x" * 5000 + "'")


def test_search_attribute_values_compare_by_meaning() -> None:
    assert attribute_key("N", 5) == attribute_key("N", 5.0)
    assert attribute_key("N", 5) != attribute_key("N", "5")
    assert attribute_key("B", True) != attribute_key("B", 1)
    assert attribute_key("T", "2026-01-31T12:00:00Z") == attribute_key(
        "T", "2026-01-31T13:00:00+01:00")
    assert attribute_key("K", "2026") == attribute_key("K", "2026")
    assert attribute_key("A", "x") != attribute_key("B", "x")
    assert attribute_key("N", float("nan")) is None
    assert attribute_key("N", {"nested": 1}) is None
    long = attribute_key("S", "y" * 5000)
    assert long is not None and len(long) < 100
    assert attribute_keys({"K": ["a", "b", "a"], "N": 1, "Gone": None}) == {
        attribute_key("K", "a"), attribute_key("K", "b"), attribute_key("N", 1)}
