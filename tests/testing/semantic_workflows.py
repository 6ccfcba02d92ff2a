"""What the engine-semantics tests need besides tests/e2e/workflows.py (which they run as is).

``Deployment`` is the code a fleet of workers runs: the environment's registry, swapped between
decisions as a deploy swaps it on the stack's workers (a workflow type appearing late, or code
that no longer matches the history written by its previous version).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from cadenza import Registry, workflow

from ..e2e.workflows import echo, shout


class Deployment:
    """A registry whose contents change while runs are open; records when the engine's task
    code looked a workflow type up (each lookup is one attempt of a decision or query task)."""

    def __init__(self, registry: Registry) -> None:
        self.current = registry
        #: The environment's clock (``env.now``), set once the environment exists.
        self.clock: Callable[[], datetime] | None = None
        #: When each workflow lookup happened (virtual time).
        self.lookups: list[datetime] = []

    def get_workflow(self, name: str) -> Any:
        if self.clock is not None:
            self.lookups.append(self.clock())
        return self.current.get_workflow(name)

    def get_activity(self, name: str) -> Any:
        return self.current.get_activity(name)

    @property
    def workflows(self) -> Mapping[str, Any]:
        return self.current.workflows

    @property
    def activities(self) -> Mapping[str, Any]:
        return self.current.activities


def drifting_registry(first_activity: Any) -> Registry:
    """Version N of the code when ``first_activity`` is echo; version N+1 calls shout first."""
    registry = Registry()
    registry.register_activity(echo)
    registry.register_activity(shout)

    @registry.workflow(name="Drifting")
    class Drifting:
        @workflow.run
        async def run(self, activity_task_list: str) -> str:
            options = {"start_to_close_timeout": timedelta(seconds=10),
                       "task_list": activity_task_list}
            first = await first_activity.with_options(**options).execute("a")
            second = await echo.with_options(**options).execute("b")
            return f"{first}{second}"

    return registry
