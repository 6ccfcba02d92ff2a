"""The registry: which workflow and activity types a worker can run, by name.

A worker serves exactly the types of its registry, so names are unique within one (a second
registration under the same name is a ``KeyError``, never a silent replacement). Registries
compose with ``Registry.of(a, b)`` or ``a + b`` so that modules can each export their own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any, ParamSpec, TypeVar, overload

from cadenza._activity_definition import ActivityDecorator, ActivityDefinition
from cadenza._workflow_definition import WorkflowDefinition, definition_for

__all__ = ["Registry"]

W = TypeVar("W", bound=type)
P = ParamSpec("P")
R = TypeVar("R")


class Registry:
    """The workflow classes and activity functions a worker serves, by their type names.

    Decorate with ``@registry.workflow()`` and ``@registry.activity()`` (the decorated class is
    returned unchanged; the activity keeps its function's parameter and result types), or
    register existing definitions with :meth:`register_workflow` / :meth:`register_activity`.
    """

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
        """Register a workflow class (or its definition); a name taken by another is a
        ``KeyError``. Returns the definition."""
        definition = WorkflowDefinition.of(definition)
        existing = self._workflows.get(definition.name)
        if existing is not None and existing is not definition:
            raise KeyError(f"workflow {definition.name!r} is already registered")
        self._workflows[definition.name] = definition
        return definition

    # -- activities ------------------------------------------------------------------------

    @overload
    def activity(
        self, fn: ActivityDefinition[P, R], /, *, name: str | None = None
    ) -> ActivityDefinition[P, R]: ...

    @overload
    def activity(
        self, fn: Callable[P, Awaitable[R]], /, *, name: str | None = None
    ) -> ActivityDefinition[P, R]: ...

    @overload
    def activity(
        self, fn: Callable[P, R], /, *, name: str | None = None
    ) -> ActivityDefinition[P, R]: ...

    @overload
    def activity(self, /, *, name: str | None = None) -> ActivityDecorator: ...

    def activity(self, fn: Any = None, /, *, name: str | None = None) -> Any:
        """Register an activity function: ``@registry.activity``, ``()`` or ``(name=...)``.

        Returns the activity definition (callable like the function outside workflows,
        awaitable as an activity inside them), typed with the function's parameters and
        result: ``async def greet(name: str) -> str`` gives ``ActivityDefinition[[str], str]``,
        so ``await greet.execute(42)`` is a type error and ``await greet.execute("ann")`` a
        ``str``. An existing definition is registered as is.
        """

        def register(target: Callable[..., Any]) -> ActivityDefinition[Any, Any]:
            definition = ActivityDefinition.wrap(target, name=name)
            self.register_activity(definition)
            return definition

        if fn is not None:
            return register(fn)
        return register

    def register_activity(
        self, definition: ActivityDefinition[P, R]
    ) -> ActivityDefinition[P, R]:
        """Register an activity definition (a plain function is wrapped under its name); a
        name taken by another is a ``KeyError``, an unbound method a ``ValueError``."""
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
        """The workflow registered as ``name``; ``KeyError`` naming the known ones if none."""
        try:
            return self._workflows[name]
        except KeyError:
            raise KeyError(
                f"workflow type {name!r} is not registered (known: {sorted(self._workflows)})"
            ) from None

    def get_activity(self, name: str) -> ActivityDefinition[Any, Any]:
        """The activity registered as ``name``; ``KeyError`` naming the known ones if none."""
        try:
            return self._activities[name]
        except KeyError:
            raise KeyError(
                f"activity type {name!r} is not registered (known: {sorted(self._activities)})"
            ) from None

    @property
    def workflows(self) -> Mapping[str, WorkflowDefinition]:
        """The registered workflows by type name (read-only)."""
        return MappingProxyType(self._workflows)

    @property
    def activities(self) -> Mapping[str, ActivityDefinition[Any, Any]]:
        """The registered activities by type name (read-only)."""
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
