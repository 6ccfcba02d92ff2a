"""How the ``cadenza`` command prints runs and histories for people (``--json`` is for scripts).

Rules the functions here keep: ids are printed whole, never cut (a terminal too narrow for a
table gets one block per run instead, whose long lines the terminal wraps, so a copied id is
still one piece); times are ISO 8601 in the local time zone, with milliseconds; data is shown
as text, never read as rich markup (an id may hold ``[/]``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from ..client import WorkflowExecutionInfo
from ..core import HistoryEvent, from_millis

__all__ = [
    "describe_view",
    "event_line",
    "history_table",
    "local_time",
    "print_describe",
    "print_history",
    "print_runs",
    "runs_table",
]


def local_time(value: datetime | int | float | None) -> str:
    """ISO 8601 in the local time zone, to the millisecond ("" for None); ints are epoch ms."""
    if value is None:
        return ""
    moment = value if isinstance(value, datetime) else from_millis(int(value))
    return moment.astimezone().isoformat(timespec="milliseconds")


def _short(value: Any, limit: int = 80) -> Any:
    """Long payloads (stack traces, big inputs) cut to their first line and ``limit`` characters.

    Only attribute values are shortened, never ids: ``show --json`` has every byte."""
    if not isinstance(value, str):
        return value
    first = value.splitlines()[0] if value else value
    return first if len(first) <= limit and first == value else first[:limit] + " …"


def _attributes(event: HistoryEvent) -> str:
    shown = {k: _short(v) for k, v in event.attributes.items() if v not in (None, "", {}, [])}
    return json.dumps(shown)


def history_table(events: Sequence[HistoryEvent], *, title: str = "history") -> Table:
    """A run's history as a table: id, local time, event type, attributes (folded, not cut)."""
    table = Table(title=Text(title), title_justify="left")
    # The attributes fold (their width gives way first); the other cells stay whole.
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("time", no_wrap=True)
    table.add_column("event", no_wrap=True)
    table.add_column("attributes", overflow="fold", ratio=1)
    for event in events:
        table.add_row(str(event.event_id), local_time(event.timestamp), str(event.event_type),
                      Text(_attributes(event)))
    return table


#: The least width the attributes column gets in a table; a narrower console gets lines.
_ATTRIBUTES_MIN_WIDTH = 40


def print_history(console: Console, events: Sequence[HistoryEvent], *, title: str) -> None:
    """A history as a table when the attributes get a readable width, else one line per event
    (soft-wrapped by the terminal, so a payload or an id is never cut or split by rich)."""
    fixed = (max((len(str(e.event_id)) for e in events), default=2)
             + max((len(local_time(e.timestamp)) for e in events), default=0)
             + max((len(str(e.event_type)) for e in events), default=5)
             + 13)  # borders and padding of four columns
    if fixed + _ATTRIBUTES_MIN_WIDTH <= console.width:
        console.print(history_table(events, title=title))
        return
    console.print(Text(title, style="bold"), soft_wrap=True)
    for event in events:
        console.print(event_line(event), soft_wrap=True)


def event_line(event: HistoryEvent) -> Text:
    """One event on one line (``show --watch`` prints them as they come)."""
    return Text(f"{event.event_id:>5}  {local_time(event.timestamp)}  {event.event_type}  "
                f"{_attributes(event)}")


#: describe's fields in the order people read them, with their labels; the rest follow.
_DESCRIBE_FIELDS = (
    ("workflow_id", "workflow id"), ("run_id", "run id"), ("workflow_type", "type"),
    ("domain", "domain"), ("task_list", "task list"), ("status", "status"),
    ("start_time", "started"), ("close_time", "closed"), ("history_length", "history length"),
    ("execution_start_to_close_timeout_seconds", "execution timeout"),
    ("task_start_to_close_timeout_seconds", "decision timeout"),
)


def _value_text(key: str, value: Any) -> str:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if key.endswith("_time") and number:
        return local_time(value)
    if key.endswith("_seconds") and number:
        return f"{value:g} s"
    if isinstance(value, Mapping | list):
        return json.dumps(_times_in(value))
    return str(value)


def _times_in(value: Any) -> Any:
    """``value`` with every ``..._time`` epoch-millisecond number in it as local ISO text."""
    if isinstance(value, Mapping):
        return {k: (local_time(v) if k.endswith("_time") and isinstance(v, int | float)
                    and not isinstance(v, bool) else _times_in(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_times_in(v) for v in value]
    return value


def describe_view(raw: Mapping[str, Any]) -> RenderableType:
    """A run as describe reports it: one ``label  value`` line per field set, ids whole, times
    local; pending activities (attempt, heartbeat, timeouts) as a block each."""
    rows: list[tuple[str, Any]] = []
    seen = set()
    for key, label in _DESCRIBE_FIELDS:
        seen.add(key)
        if raw.get(key) not in (None, "", [], {}):
            rows.append((label, _value_text(key, raw[key])))
    pending = raw.get("pending_activities") or []
    seen.add("pending_activities")
    for key, value in raw.items():
        if key not in seen and value not in (None, "", [], {}, 0, False):
            rows.append((key.replace("_", " "), _value_text(key, value)))
    width = max(len(label) for label, _ in rows) if rows else 0
    lines: list[Text] = [
        Text.assemble((label.ljust(width), "bold"), "  ", Text(str(value)))
        for label, value in rows
    ]
    for activity in pending:
        lines.append(Text(f"pending activity {activity.get('activity_id')}", style="bold"))
        for key, value in activity.items():
            if value not in (None, "", [], {}) and key != "activity_id":
                lines.append(Text(f"  {key.replace('_', ' ')}: {_value_text(key, value)}"))
    for line in lines:  # a long line is the terminal's to wrap: rich never splits an id
        line.no_wrap, line.overflow = True, "ignore"
    return Group(*lines)


def print_describe(console: Console, raw: Mapping[str, Any]) -> None:
    """:func:`describe_view`, soft-wrapped: a line wider than the console is the terminal's to
    wrap, so an id is never split or cut."""
    console.print(describe_view(raw), soft_wrap=True)


_RUN_COLUMNS = ("workflow id", "run id", "type", "status", "started", "closed", "history")


def _run_cells(run: WorkflowExecutionInfo) -> tuple[str, ...]:
    return (run.workflow_id, run.run_id, run.workflow_type, run.status,
            local_time(run.start_time), local_time(run.close_time),
            "" if run.history_length is None else str(run.history_length))


def runs_table(runs: Iterable[WorkflowExecutionInfo]) -> Table:
    """Runs as a table; no column is ever cut or wrapped (see :func:`print_runs`)."""
    table = Table(title="workflow executions", title_justify="left")
    for column in _RUN_COLUMNS:
        table.add_column(column, no_wrap=True, justify="right" if column == "history" else "left")
    for run in runs:
        table.add_row(*(Text(cell) for cell in _run_cells(run)))
    return table


def print_runs(console: Console, runs: Sequence[WorkflowExecutionInfo]) -> None:
    """A table when it fits the console, else one block of ``label: value`` lines per run
    (printed with soft wrapping: the terminal wraps a long line, the id stays one piece)."""
    if not runs:
        console.print("no workflow executions")
        return
    table = runs_table(runs)
    unbounded = console.options.update_width(1_000_000)  # the table's own width, not clamped
    if Measurement.get(console, unbounded, table).maximum <= console.width:
        console.print(table)
        return
    for number, run in enumerate(runs):
        if number:
            console.print()
        for label, cell in zip(_RUN_COLUMNS, _run_cells(run), strict=True):
            if cell:
                console.print(Text.assemble((f"{label}: ", "bold"), cell), soft_wrap=True)
