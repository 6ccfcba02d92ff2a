"""Smoke test of Cadenza's side of ``python -m bench.peers``: one run of each workflow.

It checks that the bench drives ``cadenza.testing.TestWorkflowEnvironment`` to the right results
and reports figures of the right shape; it asserts no time, and needs none of the peers'
packages.
"""

from __future__ import annotations

import pytest

testing = pytest.importorskip(
    "cadenza.testing", reason="cadenza.testing (TestWorkflowEnvironment) is not importable yet"
)
if not hasattr(testing, "TestWorkflowEnvironment"):
    pytest.skip("cadenza.testing has no TestWorkflowEnvironment yet", allow_module_level=True)

from bench.peers import load_peer  # noqa: E402
from bench.peers.timing import EXPECTED, measure  # noqa: E402


async def test_our_side_of_the_bench_runs_each_workflow_once() -> None:
    peer, reason = load_peer("ours")
    assert peer is not None, reason

    figures = await measure(peer, runs=1)

    assert figures["peer"] == "ours"
    assert figures["server_processes"] == 0
    assert set(figures["workflows"]) == {"a", "b", "c"}
    assert EXPECTED == {"a": 55, "b": 5050, "c": 42}
    for key, expected in EXPECTED.items():
        workflow = figures["workflows"][key]
        assert workflow["cannot"] is None
        assert workflow["result"] == expected
        assert workflow["runs"] == 1
        assert workflow["wall_ms_median"] > 0
        assert workflow["cpu_ms_per_run"] >= 0
        assert workflow["heap_peak_kib"] > 0
    assert figures["rss_peak_kib"] > 0
