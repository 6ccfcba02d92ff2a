"""A workflow module written for the Cadence Python client runs after the import swap.

The module below uses the Cadence client's names only (children, an external signal,
continue-as-new, markers, versions, search attributes). When that client is installed (the
bench extra), the module is first imported with it as written, which proves it is a module for
that client; then ``cadence`` becomes ``cadenza`` in its imports and it runs on the engine.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cadenza.testing import TestWorkflowEnvironment

CADENCE_MODULE = '''
from datetime import timedelta

from cadence import Registry, workflow

registry = Registry()


@registry.workflow(name="Leaf")
class Leaf:
    @workflow.run
    async def run(self, value: int) -> int:
        return value + 1


@registry.workflow(name="Root")
class Root:
    def __init__(self) -> None:
        self.pings: list[str] = []

    @workflow.run
    async def run(self, rounds: int, total: int) -> int:
        stamp = workflow.side_effect(lambda: "once", str)
        setting = workflow.mutable_side_effect("setting", lambda: 3, int,
                                               updated=lambda old, new: old != new)
        version = workflow.get_version("leaf-child", workflow.DEFAULT_VERSION, 1)
        workflow.upsert_search_attributes({"CustomKeywordField": f"round-{rounds}"})
        child = await workflow.start_child_workflow(
            "Leaf", int, total, workflow_id=f"{workflow.info().workflow_id}-leaf-{rounds}",
            execution_start_to_close_timeout=timedelta(minutes=1),
            parent_close_policy="ABANDON")
        total = await child
        await workflow.signal_external_workflow(workflow.info().workflow_id, "ping", stamp)
        await workflow.wait_condition(lambda: len(self.pings) > 0)
        await workflow.sleep(timedelta(seconds=setting))
        if rounds > 1:
            workflow.continue_as_new(rounds - 1, total + version)
        return total

    @workflow.signal(name="ping")
    def ping(self, text: str) -> None:
        self.pings.append(text)
'''


def load(name: str, source: str) -> types.ModuleType:
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    finally:
        del sys.modules[name]
    return module


def test_the_module_is_one_for_the_cadence_client() -> None:
    pytest.importorskip("cadence", reason="the Cadence client comes with the bench extra")
    module = load("written_for_cadence", CADENCE_MODULE)
    assert module.Root.__name__ == "Root"


async def test_it_runs_on_cadenza_after_the_import_swap(tmp_path: Path) -> None:
    swapped = CADENCE_MODULE.replace("from cadence import", "from cadenza import")
    assert "cadence" not in swapped
    module = load("swapped_to_cadenza", swapped)
    start = datetime(2030, 1, 1, tzinfo=UTC)
    async with TestWorkflowEnvironment(module.registry, start_time=start) as env:
        run = await env.client.start_workflow(
            "Root", 3, 0, workflow_id="root", task_list=env.task_list,
            execution_start_to_close_timeout=timedelta(minutes=5))
        result = await env.client.get_workflow_result("root")
        runs = await env.client.list_workflows("WorkflowType = 'Root'")
        first = await env.client.get_workflow_history("root", run.run_id)
        tagged = await env.client.list_workflows("CustomKeywordField = 'round-1'")
        elapsed = env.now() - start
    # Three rounds: each child adds one, each continue-as-new adds the version (1).
    assert result == 5
    assert sorted(r.status for r in runs) == ["COMPLETED", "CONTINUED_AS_NEW",
                                              "CONTINUED_AS_NEW"]
    assert [r.workflow_id for r in tagged] == ["root"]
    assert first[-1].event_type == "WorkflowExecutionContinuedAsNew"
    assert elapsed == timedelta(seconds=9)  # three 3-second sleeps, virtual time
