"""Smoke test of ``python -m bench``: the orchestration, the request floor (bench.floor and the
ledger of bench/attribution.py), the engine-alone figures (bench.engine) and the report, with
one run of the smallest parts. It checks sections and that figures are numbers; no time is
asserted.
"""

from __future__ import annotations

import re
from pathlib import Path

from bench.__main__ import PEERS_SECTION, Plan, compose, machine, write
from bench.floor import FLOORS, SCENARIOS

SMALLEST = Plan(
    runs=0, mechanism_runs=0, single_runs=1, throughput_runs=0, timers=0, floor_runs=1,
    floor_scenarios=("one",), warm_up=False, settle=0.5, replay=False,
    engine={"activities": 2, "open_runs": 2, "repeats": 1, "import_repeats": 1,
            "functions": "TimerFunction"},
    peers=False,
)
NUMBER = r"[0-9][0-9,]*(?:\.[0-9]+)?"


def test_python_m_bench_writes_its_sections_with_figures(tmp_path: Path) -> None:
    output = tmp_path / "RESULTS.md"
    output.write_text(f"# old\n\n{PEERS_SECTION}\n\nkept figures\n")

    assert write(SMALLEST, output) == 0

    text = output.read_text()
    info = machine()
    assert info["date"] in text and info["python"] in text
    assert f"moto {info['moto']}" in text and f"boto3 {info['boto3']}" in text
    for heading in ("## Targets (issue 8)", "## The request floor",
                    "### Measured against the floor", "### Where every request goes",
                    "### The largest remaining costs", "### The floor, workflow by workflow",
                    "## Latency and throughput", "## The engine alone", PEERS_SECTION):
        assert heading in text, heading
    assert "kept figures" in text  # the peers' section of the previous run is kept
    row = re.search(rf"^\| one activity \| ({NUMBER}) \| ({NUMBER}) \| ({NUMBER}) \| "
                    rf"({NUMBER})x \| ({NUMBER}) \|", text, re.M)
    assert row is not None, "no figures for the one-activity workflow"
    events, requests, floor_requests, ratio, cost = (float(g.replace(",", ""))
                                                      for g in row.groups())
    assert events >= 5 and requests > 0 and cost > 0 and ratio > 0
    assert floor_requests > 0
    assert re.search(rf"^\| commit \| dynamodb:PutItem \| ({NUMBER}) \|", text, re.M)
    assert re.search(rf"^\| decisions per CPU second, {NUMBER} sequential activities \| "
                     rf"{NUMBER} \|", text, re.M)
    assert re.search(rf"^\| memory per open run, KiB \| {NUMBER} \|", text, re.M)
    assert re.search(rf"^\| TimerFunction \| `timer.app` \| {NUMBER} \| {NUMBER} \|", text, re.M)
    assert re.search(rf"single workflow start -> result under 150 ms at p50 \(emulator\) \| "
                     rf"{NUMBER} ms", text)


def test_every_standard_workflow_has_a_floor_and_an_argument() -> None:
    assert [scenario.key for scenario in SCENARIOS] == list(FLOORS)
    for floor in FLOORS.values():
        parts = floor.components()
        assert all(requests >= 0 and usd >= 0 for requests, usd in parts.values())
        assert floor.writes > 0 and len(floor.argument) > 100


def test_a_report_without_a_stack_keeps_the_previous_peers_section() -> None:
    previous = f"# x\n\n{PEERS_SECTION}\n\n| old | table |\n\n## Later\n\nother\n"

    text = compose({}, machine(), None, previous, None, "Not re-run (skipped).")

    assert "| old | table |" in text and "*Not re-run (skipped).*" in text
    assert "other" not in text  # only the peers' section is carried over
