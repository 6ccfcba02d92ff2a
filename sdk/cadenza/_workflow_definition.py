"""Workflow classes: the decorators that mark them and the definition the engine runs.

A workflow is a class with exactly one ``@workflow.run`` async method, optional
``@workflow.signal`` handlers and ``@workflow.query`` handlers. The decorators only tag
methods; :class:`WorkflowDefinition` collects the tags once, validates them (one run method,
unique handler names, positional parameters only) and is stored on the class so that a
registry, a client and the replayer all see the same definition.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

from cadenza._fn_signature import FnSignature
from cadenza.data_converter import DataConverter

__all__ = [
    "QueryDefinition",
    "SignalDefinition",
    "WorkflowDefinition",
    "defn",
    "query",
    "run",
    "signal",
]

C = TypeVar("C", bound=type)
F = TypeVar("F", bound=Callable[..., Any])

_RUN_TAG = "__cadenza_workflow_run__"
_SIGNAL_TAG = "__cadenza_workflow_signal__"
_QUERY_TAG = "__cadenza_workflow_query__"
#: Where a class keeps its definition.
DEFINITION_ATTRIBUTE = "__cadenza_workflow__"


@dataclass(frozen=True, kw_only=True)
class SignalDefinition:
    """A signal handler: ``method_name`` is called on the workflow object with decoded args."""

    name: str
    method_name: str
    signature: FnSignature
    is_async: bool

    def decode_args(self, converter: DataConverter, payload: str | None) -> list[Any]:
        """The handler's arguments from a signal's payload.

        Raises (``TypeError``, ``ValueError``, the converter's own errors) when the payload
        does not fit the handler: more values than it has parameters, no value for a required
        one, or a value the converter cannot turn into the annotated type. The answer depends
        on the payload and the signature only, so it is the same on every replay (the
        replayer drops such a signal). Fewer values than parameters are completed with the
        defaults, so a parameter added with a default keeps older senders working.
        """
        counter = getattr(converter, "count", None)
        if payload and callable(counter):
            provided = int(counter(payload))
            expected = len(self.signature.params)
            if provided > expected:
                raise TypeError(
                    f"signal {self.name!r} takes {expected} argument(s) "
                    f"({', '.join(p.name for p in self.signature.params) or 'none'}) but its "
                    f"payload holds {provided}"
                )
        return self.signature.decode(converter, payload)


@dataclass(frozen=True, kw_only=True)
class QueryDefinition:
    """A query handler: synchronous, read-only, result encoded with the data converter."""

    name: str
    method_name: str
    signature: FnSignature

    @property
    def return_type(self) -> Any:
        """The handler's declared result type (what the answer is encoded from)."""
        return self.signature.return_type

    def decode_args(self, converter: DataConverter, payload: str | None) -> list[Any]:
        """The handler's arguments from a query's payload, by its parameters' types."""
        return self.signature.decode(converter, payload)


@dataclass(frozen=True, kw_only=True)
class WorkflowDefinition:
    """Everything the engine needs to run a workflow class."""

    name: str
    cls: type
    run_method_name: str
    run_signature: FnSignature
    signals: Mapping[str, SignalDefinition] = field(default_factory=dict)
    queries: Mapping[str, QueryDefinition] = field(default_factory=dict)

    @property
    def run_method(self) -> Callable[..., Any]:
        """The (unbound) ``@workflow.run`` function."""
        return getattr(self.cls, self.run_method_name)  # type: ignore[no-any-return]

    @property
    def run_parameter_types(self) -> list[Any]:
        """Type hints of the run method's parameters (``self`` excluded), to decode input."""
        return self.run_signature.type_hints

    @property
    def result_type(self) -> Any:
        """The run method's declared result type."""
        return self.run_signature.return_type

    def get_run_method(self, instance: Any) -> Callable[..., Any]:
        """The ``@workflow.run`` method bound to a workflow object."""
        return getattr(instance, self.run_method_name)  # type: ignore[no-any-return]

    def decode_input(self, converter: DataConverter, payload: str | None) -> list[Any]:
        """The run method's arguments from a start's payload, by its parameters' types."""
        return self.run_signature.decode(converter, payload)

    def bind_args(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> list[Any]:
        """Positional values for the run method from a call's arguments (keywords placed)."""
        return self.run_signature.bind(args, kwargs)

    @staticmethod
    def wrap(cls: type, *, name: str | None = None) -> WorkflowDefinition:
        """Build (and validate) the definition of ``cls``; its name defaults to the class name."""
        if not inspect.isclass(cls):
            raise TypeError(f"a workflow must be a class, not {cls!r}")
        run_method_name: str | None = None
        run_signature: FnSignature | None = None
        signals: dict[str, SignalDefinition] = {}
        queries: dict[str, QueryDefinition] = {}
        for attribute, member in _members(cls):
            if hasattr(member, _RUN_TAG):
                if run_method_name is not None:
                    raise ValueError(
                        f"workflow class {cls.__name__} has more than one @workflow.run method: "
                        f"{run_method_name!r} and {attribute!r}"
                    )
                run_method_name = attribute
                run_signature = FnSignature.of(member, skip_self=True)
            signal_name = getattr(member, _SIGNAL_TAG, None)
            if signal_name is not None:
                if signal_name in signals:
                    raise ValueError(
                        f"workflow class {cls.__name__}: signal {signal_name!r} is handled by both "
                        f"{signals[signal_name].method_name!r} and {attribute!r}"
                    )
                signals[signal_name] = SignalDefinition(
                    name=signal_name,
                    method_name=attribute,
                    signature=FnSignature.of(member, skip_self=True),
                    is_async=inspect.iscoroutinefunction(member),
                )
            query_name = getattr(member, _QUERY_TAG, None)
            if query_name is not None:
                if query_name in queries:
                    raise ValueError(
                        f"workflow class {cls.__name__}: query {query_name!r} is handled by both "
                        f"{queries[query_name].method_name!r} and {attribute!r}"
                    )
                queries[query_name] = QueryDefinition(
                    name=query_name,
                    method_name=attribute,
                    signature=FnSignature.of(member, skip_self=True),
                )
        if run_method_name is None or run_signature is None:
            raise ValueError(f"workflow class {cls.__name__} has no @workflow.run method")
        return WorkflowDefinition(
            name=name or cls.__name__,
            cls=cls,
            run_method_name=run_method_name,
            run_signature=run_signature,
            signals=signals,
            queries=queries,
        )

    @staticmethod
    def of(workflow: Any) -> WorkflowDefinition:
        """The definition of a workflow class (decorated or registered), or of a definition."""
        if isinstance(workflow, WorkflowDefinition):
            return workflow
        definition = inspect.getattr_static(workflow, DEFINITION_ATTRIBUTE, None)
        if isinstance(definition, WorkflowDefinition) and definition.cls is workflow:
            return definition
        raise TypeError(
            f"{workflow!r} is not a workflow: decorate it with @workflow.defn or register it "
            "with @registry.workflow"
        )


def _members(cls: type) -> list[tuple[str, Any]]:
    """Public callables of ``cls`` (inherited ones too), in a stable order."""
    members = []
    for attribute in sorted(dir(cls)):
        if attribute.startswith("__"):
            continue
        member = inspect.getattr_static(cls, attribute, None)
        if isinstance(member, staticmethod | classmethod):
            continue
        if callable(member):
            members.append((attribute, member))
    return members


def definition_for(cls: type, name: str | None) -> WorkflowDefinition:
    """The definition to use for ``cls`` under ``name``, reusing the one stored on the class.

    The first definition is stored on the class so that ``client.start_workflow(MyWorkflow)``
    can find the type name; registering the class again under another name builds a new one.
    """
    existing = cls.__dict__.get(DEFINITION_ATTRIBUTE)
    if isinstance(existing, WorkflowDefinition) and (name is None or name == existing.name):
        return existing
    definition = WorkflowDefinition.wrap(cls, name=name)
    if not isinstance(existing, WorkflowDefinition):
        setattr(cls, DEFINITION_ATTRIBUTE, definition)
    return definition


@overload
def defn(cls: C, /) -> C: ...


@overload
def defn(*, name: str | None = None) -> Callable[[C], C]: ...


def defn(cls: C | None = None, /, *, name: str | None = None) -> C | Callable[[C], C]:
    """Mark a class as a workflow (``@workflow.defn`` or ``@workflow.defn(name=...)``).

    The class is returned unchanged apart from its stored definition, so it stays usable and
    testable as a plain class.
    """

    def decorate(target: C) -> C:
        definition_for(target, name)
        return target

    if cls is not None:
        return decorate(cls)
    return decorate


@overload
def run(fn: F, /) -> F: ...


@overload
def run() -> Callable[[F], F]: ...


def run(fn: F | None = None, /) -> F | Callable[[F], F]:
    """Mark the workflow's entry point (an ``async def`` method); usable with or without ()."""

    def decorate(method: F) -> F:
        if not inspect.iscoroutinefunction(method):
            raise ValueError(
                f"workflow run method {getattr(method, '__qualname__', method)!r} must be "
                "declared with async def"
            )
        setattr(method, _RUN_TAG, True)
        return method

    if fn is not None:
        return decorate(fn)
    return decorate


def _handler_decorator(tag: str, kind: str, fn_or_name: Any, name: str | None) -> Any:
    if callable(fn_or_name):
        method = fn_or_name
        _check_handler(kind, method)
        setattr(method, tag, name or method.__name__)
        return method
    if fn_or_name is not None:
        if name is not None:
            raise TypeError(f"@workflow.{kind}: give the name once")
        name = fn_or_name
    if name is not None and (not isinstance(name, str) or not name):
        raise ValueError(f"@workflow.{kind} name must be a non-empty string")

    def decorate(method: F) -> F:
        _check_handler(kind, method)
        setattr(method, tag, name or method.__name__)
        return method

    return decorate


def _check_handler(kind: str, method: Callable[..., Any]) -> None:
    if kind == "query" and inspect.iscoroutinefunction(method):
        raise ValueError(
            f"query handler {method.__qualname__!r} must be synchronous: queries only read state"
        )


@overload
def signal(fn: F, /) -> F: ...


@overload
def signal(name: str | None = None, /) -> Callable[[F], F]: ...


@overload
def signal(*, name: str | None = None) -> Callable[[F], F]: ...


def signal(fn_or_name: Any = None, /, *, name: str | None = None) -> Any:
    """Mark a signal handler (sync or async) under ``name`` (default: the method name)."""
    return _handler_decorator(_SIGNAL_TAG, "signal", fn_or_name, name)


@overload
def query(fn: F, /) -> F: ...


@overload
def query(name: str | None = None, /) -> Callable[[F], F]: ...


@overload
def query(*, name: str | None = None) -> Callable[[F], F]: ...


def query(fn_or_name: Any = None, /, *, name: str | None = None) -> Any:
    """Mark a synchronous, read-only query handler under ``name`` (default: the method name)."""
    return _handler_decorator(_QUERY_TAG, "query", fn_or_name, name)
