"""The registry: which workflow and activity types a worker can run, by name.

A worker serves exactly the types of its registry, so names are unique within one (a second
registration under the same name is a ``KeyError``, never a silent replacement). Registries
compose with ``Registry.of(a, b)`` or ``a + b`` so that modules can each export their own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar, overload

from cadenza._activity_definition import ActivityDefinition
from cadenza._workflow_definition import WorkflowDefinition, definition_for

__all__ = ["Registry"]

W = TypeVar("W", bound=type)


class Registry:
    def __init__(self) -> None:
        self._workflows: dict[str, WorkflowDefinition] = {}
        self._activities: dict[str, ActivityDefinition[Any, Any]] = {}

    # -- workflows -------------------------------------------------------------------------

    @overload
    def workflow(self, cls: W, /, *, name: str | None = None) -> W: ...

    @overload
    def workflow(self, /, *, name: str | None = None) -> Callable[[W], W]: ...

    def workflow(self, cls: W | None = None, /, *, name: str | None = None) -> W | Callable[[W], W]:
        """Register a workflow class: ``@registry.workflow``, ``()`` or ``(name=...)``.

        Returns the class itself. A class already marked with ``@workflow.defn`` keeps its
        definition (and name) unless another name is given here.
        """

        def register(target: W) -> W:
            self.register_workflow(definition_for(target, name))
            return target

        if cls is not None:
            return register(cls)
        return register

    def register_workflow(self, definition: WorkflowDefinition | type) -> WorkflowDefinition:
        definition = WorkflowDefinition.of(definition)
        existing = self._workflows.get(definition.name)
        if existing is not None and existing is not definition:
            raise KeyError(f"workflow {definition.name!r} is already registered")
        self._workflows[definition.name] = definition
        return definition

    # -- activities ------------------------------------------------------------------------

    @overload
    def activity(
        self, fn: Callable[..., Any], /, *, name: str | None = None
    ) -> ActivityDefinition[Any, Any]: ...

    @overload
    def activity(
        self, /, *, name: str | None = None
    ) -> Callable[[Callable[..., Any]], ActivityDefinition[Any, Any]]: ...

    def activity(self, fn: Any = None, /, *, name: str | None = None) -> Any:
        """Register an activity function: ``@registry.activity``, ``()`` or ``(name=...)``.

        Returns the activity definition (callable like the function outside workflows,
        awaitable as an activity inside them). An existing definition is registered as is.
        """

        def register(target: Callable[..., Any]) -> ActivityDefinition[Any, Any]:
            definition = ActivityDefinition.wrap(target, name=name)
            self.register_activity(definition)
            return definition

        if fn is not None:
            return register(fn)
        return register

    def register_activity(
        self, definition: ActivityDefinition[Any, Any]
    ) -> ActivityDefinition[Any, Any]:
        if not isinstance(definition, ActivityDefinition):
            definition = ActivityDefinition.wrap(definition)
        if not definition.is_bound:
            raise ValueError(
                f"activity {definition.name!r} is an unbound method: use "
                "registry.register_activities(instance)"
            )
        existing = self._activities.get(definition.name)
        if existing is not None and existing is not definition:
            raise KeyError(f"activity {definition.name!r} is already registered")
        self._activities[definition.name] = definition
        return definition

    def register_activities(self, obj: object) -> list[ActivityDefinition[Any, Any]]:
        """Register every ``@activity.method`` (or ``@activity.defn``) member of ``obj``."""
        found: list[ActivityDefinition[Any, Any]] = []
        for attribute in dir(obj):
            if attribute.startswith("__"):
                continue
            try:
                value = getattr(obj, attribute)
            except AttributeError:
                continue
            if isinstance(value, ActivityDefinition):
                found.append(value)
        if not found:
            raise ValueError(f"{obj!r} has no @activity.method members to register")
        for definition in found:
            self.register_activity(definition)
        return found

    # -- lookups ---------------------------------------------------------------------------

    def get_workflow(self, name: str) -> WorkflowDefinition:
        try:
            return self._workflows[name]
        except KeyError:
            raise KeyError(
                f"workflow type {name!r} is not registered (known: {sorted(self._workflows)})"
            ) from None

    def get_activity(self, name: str) -> ActivityDefinition[Any, Any]:
        try:
            return self._activities[name]
        except KeyError:
            raise KeyError(
                f"activity type {name!r} is not registered (known: {sorted(self._activities)})"
            ) from None

    @property
    def workflows(self) -> Mapping[str, WorkflowDefinition]:
        return MappingProxyType(self._workflows)

    @property
    def activities(self) -> Mapping[str, ActivityDefinition[Any, Any]]:
        return MappingProxyType(self._activities)

    # -- composition -----------------------------------------------------------------------

    def __add__(self, other: Registry) -> Registry:
        if not isinstance(other, Registry):
            return NotImplemented
        return Registry.of(self, other)

    @staticmethod
    def of(*registries: Registry) -> Registry:
        """A new registry holding all of ``registries``; clashing names raise ``KeyError``."""
        merged = Registry()
        for registry in registries:
            for workflow in registry._workflows.values():
                merged.register_workflow(workflow)
            for activity in registry._activities.values():
                merged.register_activity(activity)
        return merged

    def __repr__(self) -> str:
        return (
            f"Registry(workflows={sorted(self._workflows)}, activities={sorted(self._activities)})"
        )
