"""``cadenza workflow stack`` against a live worker: the run's suspended coroutines."""

from __future__ import annotations

from .test_cli import Cli, cli, unique, worker  # noqa: F401  (fixtures shared with the CLI tests)


def test_workflow_stack_prints_where_the_run_waits(cli: Cli, worker: str) -> None:  # noqa: F811
    workflow_id = unique("stack")
    cli.json("workflow", "start", "Approval", "--task-list", worker, "--execution-timeout", "60",
             "--workflow-id", workflow_id, "-i", "2")
    code, out, err = cli.run("workflow", "stack", workflow_id)
    assert code == 0, err
    assert out.startswith("coroutine 1 (Approval.run):\n")
    assert "await workflow.wait_condition(lambda: len(self.approvers) >= needed)" in out
    answer = cli.json("workflow", "stack", workflow_id)
    assert answer["workflow_id"] == workflow_id and answer["stack"] == out
    code, _, err = cli.run("workflow", "stack", unique("nope"))
    assert code == 2 and "EntityNotExistsError" in err
