"""What an IDE (and mypy) sees of the SDK: decorated activities keep their function's types, a
misspelled start or worker option is a type error. mypy runs, strict, on a small user module."""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import textwrap
from pathlib import Path
from typing import get_type_hints

import pytest

from cadenza import Client
from cadenza.worker import WorkerOptions, WorkerOptionsDict

api = pytest.importorskip("mypy.api")

SDK = Path(__file__).resolve().parents[2] / "sdk"

SAMPLE = '''
from __future__ import annotations

from datetime import timedelta

from cadenza import Client, Registry, Worker, activity, workflow

registry = Registry()


@registry.activity()
async def shout(times: int, text: str) -> str:
    return text * times


@registry.activity
def count(value: float) -> int:
    return int(value)


@registry.activity(name="bytes-to-list")
async def to_list(data: bytes) -> list[int]:
    return list(data)


@activity.defn(name="named")
async def named(flag: bool) -> bool:
    return flag


class Inventory:
    @activity.method
    async def reserve(self, sku: str, quantity: int) -> bool:
        return quantity > 0


@registry.workflow()
class Greeting:
    @workflow.run
    async def run(self, name: str) -> str:
        loud = await shout.execute(2, name)
        reveal_type(loud)  # REVEAL loud
        quick = shout.with_options(start_to_close_timeout=timedelta(seconds=5))
        reveal_type(await quick.execute(1, name))  # REVEAL with_options
        await shout.execute("twice", name)  # ERROR wrong-argument
        return loud


reveal_type(shout)  # REVEAL shout
reveal_type(count)  # REVEAL count
reveal_type(to_list)  # REVEAL to_list
reveal_type(named)  # REVEAL named
reveal_type(Inventory.reserve)  # REVEAL method
reveal_type(Greeting)  # REVEAL workflow


async def start(client: Client) -> None:
    run = await client.start_workflow(
        Greeting, "ann", task_list="greetings",
        execution_start_to_close_timeout=timedelta(minutes=1), workflow_id="g-1",
    )
    reveal_type(run)  # REVEAL execution
    reveal_type(await client.get_workflow_result(run.workflow_id, result_type=str))  # REVEAL str
    reveal_type(await client.get_workflow_result(run.workflow_id))  # REVEAL untyped-result
    reveal_type(await client.query_workflow("g-1", "", "q", result_type=int))  # REVEAL query
    go, minute = client.start_workflow, timedelta(minutes=1)
    await go(Greeting, task_list="t", execution_start_to_close_timout=minute)  # ERROR misspelled
    await go(Greeting, task_list="greetings")  # ERROR missing-timeout
    await go(Greeting, task_list="t", execution_start_to_close_timeout=60)  # ERROR seconds
    Worker(client, "greetings", registry, max_concurrent_activity_execution_size=5)
    Worker(client, "greetings", registry, max_concurrent_activities=5)  # ERROR worker-option
    Client(target="http://127.0.0.1:7933", metrics_emitter=None)  # Cadence's, ignored
    Client(target="http://127.0.0.1:7933", identy="me")  # ERROR client-option
'''

EXPECTED_REVEALS = {
    "loud": "str",
    "with_options": "str",
    "shout": "cadenza._activity_definition.ActivityDefinition[[times: int, "
             "text: str], str]",
    "count": "cadenza._activity_definition.ActivityDefinition[[value: float], "
             "int]",
    "to_list": "cadenza._activity_definition.ActivityDefinition[[data: bytes], "
               "list[int]]",
    "named": "cadenza._activity_definition.ActivityDefinition[[flag: bool], "
             "bool]",
    # A method's definition is scheduled without self: the registered object supplies it.
    "method": "cadenza._activity_definition.ActivityDefinition[[sku: str, "
              "quantity: int], bool]",
    "workflow": "def () -> sample.Greeting",
    "execution": "cadenza.client.WorkflowExecution",
    "str": "str",
    "untyped-result": "Any",
    "query": "int",
}


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> dict[int, list[str]]:
    """mypy's messages on the sample, by line (strict; cadenza read from the source tree)."""
    folder = tmp_path_factory.mktemp("typing")
    sample = folder / "sample.py"
    sample.write_text(textwrap.dedent(SAMPLE))
    config = folder / "mypy.ini"
    config.write_text("[mypy]\nstrict = True\nshow_error_codes = True\n")
    previous = os.environ.get("MYPYPATH")
    os.environ["MYPYPATH"] = str(SDK)
    try:
        out, err, _ = api.run([
            "--config-file", str(config), "--follow-imports", "silent", "--no-incremental",
            "--cache-dir", str(folder / "cache"), "--python-executable", sys.executable,
            "--show-column-numbers", "--no-pretty", "--no-error-summary", str(sample),
        ])
    finally:
        if previous is None:
            os.environ.pop("MYPYPATH", None)
        else:
            os.environ["MYPYPATH"] = previous
    assert not err.strip(), err
    by_line: dict[int, list[str]] = {}
    for line in out.splitlines():
        match = re.match(r".*sample\.py:(\d+):\d+: (.*)", line)
        assert match, f"unexpected mypy output: {line}"
        by_line.setdefault(int(match.group(1)), []).append(match.group(2))
    return by_line


def _marked_lines(marker: str) -> dict[str, int]:
    lines = textwrap.dedent(SAMPLE).splitlines()
    return {line.split(f"# {marker} ", 1)[1].strip(): number
            for number, line in enumerate(lines, start=1) if f"# {marker} " in line}


def test_decorated_activities_and_workflows_keep_their_types(
    mypy_output: dict[int, list[str]],
) -> None:
    reveals = _marked_lines("REVEAL")
    assert set(reveals) == set(EXPECTED_REVEALS)
    for name, line in reveals.items():
        notes = [m for m in mypy_output.get(line, []) if m.startswith("note: Revealed type")]
        assert notes == [f'note: Revealed type is "{EXPECTED_REVEALS[name]}"'], (name, notes)


def test_wrong_arguments_and_misspelled_options_are_type_errors(
    mypy_output: dict[int, list[str]],
) -> None:
    errors = _marked_lines("ERROR")
    for name, line in errors.items():
        found = [m for m in mypy_output.get(line, []) if m.startswith("error:")]
        assert found, f"{name}: no type error on line {line}: {mypy_output}"
    flagged = {line for line, messages in mypy_output.items()
               if any(m.startswith("error:") for m in messages)}
    # Every error is one the sample asks for: the correct calls type-check.
    assert flagged == set(errors.values()), mypy_output
    misspelled = " ".join(mypy_output[errors["misspelled"]])
    assert 'did you mean "execution_start_to_close_timeout"' in misspelled
    worker = " ".join(mypy_output[errors["worker-option"]])
    assert "max_concurrent_activities" in worker


def test_worker_keyword_options_are_exactly_the_worker_options_fields() -> None:
    assert set(get_type_hints(WorkerOptionsDict)) == {
        f.name for f in dataclasses.fields(WorkerOptions)}



def test_a_misspelled_client_option_is_refused_at_run_time_too() -> None:
    with pytest.raises(TypeError, match="identy"):
        Client(target="http://127.0.0.1:7933", identy="me")  # type: ignore[call-arg]
    Client(target="http://127.0.0.1:7933", service_name="cadence-frontend")  # Cadence's: ignored
