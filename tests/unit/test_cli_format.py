"""What the ``cadenza`` command prints for people, at fixed console widths: ids whole at any
width, local ISO times, inputs from files and stdin, help and version, spinners only on a
terminal. (tests/e2e/test_cli.py runs the commands against a stack.)"""

from __future__ import annotations

import importlib
import io
import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from cadenza.cli.format import local_time, print_describe, print_history, print_runs
from cadenza.client import WorkflowExecutionInfo
from cadenza.core import EventType, HistoryEvent
from cadenza.error import BadRequestError

cli = importlib.import_module("cadenza.cli.main")

LONG_ID = "order-" + "0123456789abcdef" * 4  # 70 characters: wider than a narrow terminal
RUN_ID = "0f8e4a8c-5a9b-4b1f-9d3c-1e2f3a4b5c6d"
STARTED = datetime(2026, 12, 1, 9, 30, 15, 250000, tzinfo=UTC)


@pytest.fixture
def india() -> Iterator[None]:
    """The local time zone is UTC+05:30 (no daylight saving: the offset is certain)."""
    previous = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Kolkata"
    time.tzset()
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = previous
        time.tzset()


def render(width: int, draw: object, *args: object, **kwargs: object) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None, force_terminal=False)
    draw(console, *args, **kwargs)  # type: ignore[operator]
    return out.getvalue()


def run(**changes: object) -> WorkflowExecutionInfo:
    fields: dict[str, object] = dict(
        workflow_id=LONG_ID, run_id=RUN_ID, workflow_type="OrderWorkflow", task_list="orders",
        status="COMPLETED", start_time=STARTED, close_time=STARTED, history_length=11, raw={})
    fields.update(changes)
    return WorkflowExecutionInfo(**fields)  # type: ignore[arg-type]


def test_local_time_is_iso_in_the_local_zone(india: None) -> None:
    assert local_time(STARTED) == "2026-12-01T15:00:15.250+05:30"
    millis = int(STARTED.timestamp() * 1000)
    assert local_time(millis) == "2026-12-01T15:00:15.250+05:30"
    assert local_time(None) == ""


@pytest.mark.parametrize("width", [40, 80, 120, 300])
def test_runs_print_every_id_whole_at_any_width(width: int) -> None:
    out = render(width, print_runs, [run(), run(run_id="1" * 36, status="OPEN", close_time=None)])
    lines = out.splitlines()
    for identifier in (LONG_ID, RUN_ID, "1" * 36):
        assert any(identifier in line for line in lines), (width, out)
    assert "…" not in out


def test_a_wide_console_gets_a_table_a_narrow_one_a_block_per_run() -> None:
    wide = render(300, print_runs, [run()])
    assert "┃ workflow id" in wide and "history" in wide
    narrow = render(60, print_runs, [run()])
    assert "┃" not in narrow
    assert f"workflow id: {LONG_ID}" in narrow.splitlines()
    assert "history: 11" in narrow.splitlines()


def test_runs_show_local_times_and_the_history_length(india: None) -> None:
    out = render(300, print_runs, [run()])
    assert "2026-12-01T15:00:15.250+05:30" in out
    assert "11" in out


def test_no_runs_says_so() -> None:
    assert render(80, print_runs, []).strip() == "no workflow executions"


def describe_raw() -> dict[str, object]:
    millis = int(STARTED.timestamp() * 1000)
    return {
        "domain": "default", "workflow_id": LONG_ID, "run_id": RUN_ID,
        "workflow_type": "OrderWorkflow", "task_list": "orders", "status": "OPEN",
        "start_time": millis, "close_time": None, "history_length": 7,
        "execution_start_to_close_timeout_seconds": 60, "attempt": 0,
        "pending_activities": [{
            "activity_id": "0", "activity_type": "charge", "attempt": 2, "state": "STARTED",
            "scheduled_time": millis, "last_heartbeat_time": millis + 1500,
            "heartbeat_details": "[50]", "heartbeat_timeout_seconds": 10,
        }],
        "memo": {"customer": "[ann]"},
    }


def test_describe_shows_local_times_not_epoch_milliseconds(india: None) -> None:
    out = render(50, print_describe, describe_raw())
    millis = str(int(STARTED.timestamp() * 1000))
    assert millis not in out
    assert "2026-12-01T15:00:15.250+05:30" in out
    assert "2026-12-01T15:00:16.750+05:30" in out  # the pending activity's last heartbeat
    assert "pending activity 0" in out and "attempt: 2" in out
    assert '"[ann]"' in out  # data, not markup
    assert any(LONG_ID in line for line in out.splitlines())  # whole on one line


def events() -> list[HistoryEvent]:
    return [
        HistoryEvent(event_id=1, event_type=EventType.WorkflowExecutionStarted,
                     timestamp=STARTED, attributes={"input": '"[red]payload[/]"'}),
        HistoryEvent(event_id=2, event_type=EventType.DecisionTaskScheduled,
                     timestamp=STARTED, attributes={}),
    ]


def test_history_is_a_table_when_wide_and_lines_when_narrow(india: None) -> None:
    wide = render(200, print_history, events(), title=LONG_ID)
    assert "┃ id" in wide and "WorkflowExecutionStarted" in wide
    assert "2026-12-01T15:00:15.250+05:30" in wide
    narrow = render(60, print_history, events(), title=LONG_ID)
    assert "┃" not in narrow
    lines = narrow.splitlines()
    assert lines[0] == LONG_ID
    assert any("WorkflowExecutionStarted" in line and "[red]payload[/]" in line
               for line in lines), narrow


# --- arguments --------------------------------------------------------------------------------


def test_inputs_from_a_file_and_from_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = {"items": list(range(2000))}
    path = tmp_path / "order.json"
    path.write_text(json.dumps(big))
    monkeypatch.setattr("sys.stdin", io.StringIO('"from stdin"'))
    assert cli._json_inputs([f"@{path}", "-", "3"]) == [big, "from stdin", 3]


def test_bad_inputs_are_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(BadRequestError, match="cannot read"):
        cli._json_inputs([f"@{tmp_path / 'missing.json'}"])
    (tmp_path / "bad.json").write_text("not json")
    with pytest.raises(BadRequestError, match=r"bad\.json.*is not JSON"):
        cli._json_inputs([f"@{tmp_path / 'bad.json'}"])
    monkeypatch.setattr("sys.stdin", io.StringIO("1"))
    with pytest.raises(BadRequestError, match="once"):
        cli._json_inputs(["-", "-"])


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("cadenza ") and out.split()[1][0].isdigit()


def test_help_is_written_for_users(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert "Argument parsing" not in out  # not the module's docstring
    assert "CADENZA_ADDRESS" in out and "cadenza dev" in out and "exit codes" in out


def test_address_comes_from_cadenza_address(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CADENZA_ADDRESS", "http://stack.example:9999")
    args = cli._parser().parse_args(["workflow", "describe", "x"])
    assert args.address == "http://stack.example:9999"
    with pytest.raises(SystemExit):
        cli.main(["workflow", "describe", "--help"])
    assert "CADENZA_ADDRESS" in capsys.readouterr().out


def test_reuse_policy_lists_its_choices_and_takes_the_proto_spelling(
    capsys: pytest.CaptureFixture[str],
) -> None:
    start = ["workflow", "start", "Order", "--task-list", "t", "--execution-timeout", "5"]
    args = cli._parser().parse_args(
        [*start, "--reuse-policy", "WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE"])
    assert args.reuse_policy == "RejectDuplicate"
    with pytest.raises(SystemExit) as exit_:
        cli.main([*start, "--reuse-policy", "Sometimes"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Sometimes" in err and "AllowDuplicateFailedOnly" in err


def test_list_status_and_watch_flags_are_listed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["workflow", "list", "--help"])
    assert "continued_as_new" in capsys.readouterr().out
    for action in ("describe", "show"):
        assert cli._parser().parse_args(["workflow", action, "x", "--watch"]).watch is True


def test_no_spinner_when_output_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    with cli._waiting("waiting for x"):
        pass
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "")


def test_a_spinner_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    terminal = Console(file=err, force_terminal=True, width=80)
    monkeypatch.setattr(cli, "errors", terminal)
    monkeypatch.setattr(cli, "console", Console(file=io.StringIO(), force_terminal=True))
    with cli._waiting("waiting for the result of x"):
        time.sleep(0.3)
    assert "waiting for the result of x" in err.getvalue()
