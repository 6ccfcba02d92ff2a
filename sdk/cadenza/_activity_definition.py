"""Activity definitions: a user function plus the name and signature the engine uses.

The same object serves three callers. Workflow code awaits it (``await act(x)``,
``await act.execute(x)``), which schedules the activity through the workflow context. Plain
Python code calls it and gets the function's own behaviour, which keeps activities unit
testable. The activity executor runs the underlying function with arguments decoded from the
task's payload using the signature's type hints.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, Unpack, cast, overload

from cadenza._fn_signature import FnSignature
from cadenza._workflow_context import ActivityOptions, WorkflowContext, execute_activity

__all__ = [
    "ActivityDecorator",
    "ActivityDefinition",
    "MethodActivityDecorator",
    "activity_name",
    "defn",
    "method",
]

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])


def activity_name(fn: Callable[..., Any]) -> str:
    """Default activity type name: the function's qualified name without enclosing scopes.

    ``greet`` for a function (even one defined inside another function), ``Activities.greet``
    for a method, which is what the Cadence Python client names them.
    """
    qualname = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    if not qualname:
        raise TypeError(f"cannot derive an activity name from {fn!r}; pass name=...")
    return str(qualname).rsplit("<locals>.", 1)[-1]


class ActivityDefinition(Generic[P, R]):
    """A registered (or registrable) activity.

    ``options`` (set with :meth:`with_options`) are the defaults used whenever workflow code
    schedules this activity through the definition.
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str,
        signature: FnSignature,
        is_async: bool,
        is_method: bool = False,
        bound: bool = False,
        options: ActivityOptions | None = None,
    ) -> None:
        if not name:
            raise ValueError("an activity name must not be empty")
        self._fn = fn
        self._name = name
        self._signature = signature
        self._is_async = is_async
        self._is_method = is_method
        self._bound = bound
        self._options: ActivityOptions = cast(ActivityOptions, dict(options or {}))
        functools.update_wrapper(self, fn)
        if is_async:
            _mark_coroutine_function(self)

    @classmethod
    def wrap(
        cls, fn: Callable[..., Any], *, name: str | None = None, is_method: bool = False
    ) -> ActivityDefinition[Any, Any]:
        """The definition of ``fn`` (named ``name``, default :func:`activity_name`); a
        definition is returned as is, or renamed."""
        if isinstance(fn, ActivityDefinition):
            return fn if name is None or name == fn.name else fn._renamed(name)
        if not callable(fn):
            raise TypeError(f"an activity must be a function, not {fn!r}")
        is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)  # noqa: B004 - async callable objects
        )
        return cls(
            fn,
            name=name or activity_name(fn),
            signature=FnSignature.of(fn, skip_self=is_method),
            is_async=is_async,
            is_method=is_method,
        )

    # -- facts -------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The activity type name workflows schedule it by."""
        return self._name

    @property
    def fn(self) -> Callable[..., Any]:
        """The user function (bound to its object for a method taken from an instance)."""
        return self._fn

    @property
    def signature(self) -> FnSignature:
        """Parameters and type hints, used to decode a task's arguments."""
        return self._signature

    @property
    def is_async(self) -> bool:
        """Whether the function is ``async def`` (sync ones run in a thread)."""
        return self._is_async

    @property
    def is_method(self) -> bool:
        """Whether it was declared with ``@activity.method`` (needs an object to run)."""
        return self._is_method

    @property
    def is_bound(self) -> bool:
        """Whether the executor can call :attr:`fn` with the activity's arguments alone."""
        return not self._is_method or self._bound

    @property
    def result_type(self) -> Any:
        """The function's declared result type (what results are decoded into)."""
        return self._signature.return_type

    @property
    def options(self) -> ActivityOptions:
        """The scheduling options set with :meth:`with_options` (a copy)."""
        return cast(ActivityOptions, dict(self._options))

    # -- derived definitions -----------------------------------------------------------------

    def _copy(self) -> ActivityDefinition[P, R]:
        clone = copy.copy(self)
        clone._options = cast(ActivityOptions, dict(self._options))
        return clone

    def _renamed(self, name: str) -> ActivityDefinition[P, R]:
        clone = self._copy()
        clone._name = name
        return clone

    def with_options(self, **options: Unpack[ActivityOptions]) -> ActivityDefinition[P, R]:
        """A copy whose scheduling options are these (merged over the current ones)."""
        clone = self._copy()
        clone._options = cast(ActivityOptions, {**self._options, **options})
        return clone

    def __get__(self, instance: Any, owner: type | None = None) -> ActivityDefinition[P, R]:
        # A method definition read from an instance is bound to it, like a plain method.
        if instance is None or not self._is_method or self._bound:
            return self
        clone = self._copy()
        clone._fn = functools.partial(self._fn, instance)
        clone._bound = True
        return clone

    # -- calls -------------------------------------------------------------------------------

    async def execute(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Schedule this activity from workflow code and wait for its result."""
        values = self._signature.bind(args, kwargs)
        return cast(
            R, await execute_activity(self, self._signature.return_type, *values, **self._options)
        )

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        """In workflow code: schedule (await the result). Elsewhere: call the function.

        The arguments are checked against the function's parameters; the result is typed
        ``Any`` because it is the function's own value outside workflows and an awaitable
        inside them: use :meth:`execute` for a typed result in workflow code.
        """
        if WorkflowContext.is_set():
            return self.execute(*args, **kwargs)
        return self._fn(*args, **kwargs)

    def invoke(self, args: list[Any]) -> Any:
        """Call the user function (used by the executor): a value, or a coroutine if async."""
        if not self.is_bound:
            raise TypeError(
                f"activity {self._name!r} is a method: register it with "
                "registry.register_activities(instance) so it is bound to its object"
            )
        return self._fn(*args)

    def __repr__(self) -> str:
        kind = "async " if self._is_async else ""
        return f"<{kind}activity {self._name!r}>"


def _mark_coroutine_function(obj: Any) -> None:
    """Let ``inspect.iscoroutinefunction`` recognise an async definition (Python >= 3.12)."""
    marker = getattr(inspect, "markcoroutinefunction", None)
    if marker is not None:
        marker(obj)
    else:  # Python 3.11: asyncio.iscoroutinefunction looks for this marker
        obj._is_coroutine = getattr(asyncio.coroutines, "_is_coroutine", None)


class ActivityDecorator(Protocol):
    """What ``@activity.defn(name=...)`` and ``@registry.activity()`` return: a decorator that
    keeps the function's parameter and result types (an ``async def f(x: int) -> str`` becomes
    an ``ActivityDefinition[[int], str]``), so IDEs and mypy check calls and results."""

    @overload
    def __call__(self, fn: ActivityDefinition[P, R], /) -> ActivityDefinition[P, R]: ...

    @overload
    def __call__(self, fn: Callable[P, Awaitable[R]], /) -> ActivityDefinition[P, R]: ...

    @overload
    def __call__(self, fn: Callable[P, R], /) -> ActivityDefinition[P, R]: ...


class MethodActivityDecorator(Protocol):
    """What ``@activity.method(name=...)`` returns: the method's types without ``self`` (the
    activity is scheduled without it; the registered object supplies it)."""

    @overload
    def __call__(
        self, fn: Callable[Concatenate[Any, P], Awaitable[R]], /
    ) -> ActivityDefinition[P, R]: ...

    @overload
    def __call__(self, fn: Callable[Concatenate[Any, P], R], /) -> ActivityDefinition[P, R]: ...


@overload
def defn(fn: ActivityDefinition[P, R], /, *, name: str | None = None) -> ActivityDefinition[P, R]:
    ...


@overload
def defn(fn: Callable[P, Awaitable[R]], /, *, name: str | None = None) -> ActivityDefinition[P, R]:
    ...


@overload
def defn(fn: Callable[P, R], /, *, name: str | None = None) -> ActivityDefinition[P, R]: ...


@overload
def defn(*, name: str | None = None) -> ActivityDecorator: ...


def defn(fn: Any = None, /, *, name: str | None = None) -> Any:
    """Make a function (sync or async) an activity: ``@activity.defn`` or ``(name=...)``.

    The definition keeps the function's types: ``await greet.execute("ann")`` in workflow code
    is checked against ``greet``'s parameters and typed as its result.
    """
    if fn is not None:
        return ActivityDefinition.wrap(fn, name=name)

    def decorate(target: Callable[..., Any]) -> ActivityDefinition[Any, Any]:
        return ActivityDefinition.wrap(target, name=name)

    return decorate


@overload
def method(
    fn: Callable[Concatenate[Any, P], Awaitable[R]], /, *, name: str | None = None
) -> ActivityDefinition[P, R]: ...


@overload
def method(
    fn: Callable[Concatenate[Any, P], R], /, *, name: str | None = None
) -> ActivityDefinition[P, R]: ...


@overload
def method(*, name: str | None = None) -> MethodActivityDecorator: ...


def method(fn: Any = None, /, *, name: str | None = None) -> Any:
    """Make a method an activity; register the object with ``registry.register_activities``.

    Its types are the method's without ``self``: workflow code schedules it by name and the
    registered object's bound method runs it.
    """
    if fn is not None:
        return ActivityDefinition.wrap(fn, name=name, is_method=True)

    def decorate(target: Callable[..., Any]) -> ActivityDefinition[Any, Any]:
        return ActivityDefinition.wrap(target, name=name, is_method=True)

    return decorate
