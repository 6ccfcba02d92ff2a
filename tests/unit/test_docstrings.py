"""Every public member of the user-facing API says what it is for (what an IDE shows on hover).

Walks ``Client``, ``Worker`` and the names ``cadenza.workflow`` and ``cadenza.activity`` export
(and the public members of the classes among them), and fails naming each one that has no
docstring of its own.
"""

from __future__ import annotations

import inspect
from types import ModuleType
from typing import Any

import cadenza
from cadenza import Client, Registry, Worker, activity, workflow

#: Members every class has, documented by Python itself.
_INHERITED = set(dir(object)) | {"__weakref__", "__dict__", "__slots__", "__annotations__"}


def _own_doc(value: Any) -> str | None:
    if isinstance(value, property):
        return value.fget.__doc__ if value.fget is not None else None
    if isinstance(value, staticmethod | classmethod):
        return value.__func__.__doc__
    return getattr(value, "__doc__", None)


def _undocumented_members(cls: type, prefix: str) -> list[str]:
    missing = []
    for name, value in vars(cls).items():
        if name.startswith("_") or name in _INHERITED:
            continue
        if not (callable(value) or isinstance(value, property | staticmethod | classmethod)):
            continue  # plain attributes and dataclass fields are documented by the class
        if not (_own_doc(value) or "").strip():
            missing.append(f"{prefix}{cls.__name__}.{name}")
    return missing


def _undocumented_in_module(module: ModuleType) -> list[str]:
    missing = []
    for name in module.__all__:
        value = getattr(module, name)
        if not callable(value) or isinstance(value, int | str):
            continue  # constants (DEFAULT_VERSION)
        doc = inspect.getdoc(value) if inspect.isclass(value) else value.__doc__
        if not (doc or "").strip():
            missing.append(f"{module.__name__}.{name}")
        if inspect.isclass(value):
            missing += _undocumented_members(value, f"{module.__name__}.")
    return missing


def test_client_worker_and_registry_members_have_docstrings() -> None:
    missing = []
    for cls in (Client, Worker, Registry):
        if not (cls.__doc__ or "").strip():
            missing.append(cls.__name__)
        missing += _undocumented_members(cls, "cadenza.")
    assert missing == [], f"undocumented: {missing}"


def test_workflow_and_activity_modules_have_docstrings_throughout() -> None:
    missing = _undocumented_in_module(workflow) + _undocumented_in_module(activity)
    assert missing == [], f"undocumented: {missing}"


def test_the_walk_finds_a_missing_docstring() -> None:
    """The check itself fails on an undocumented member (so the tests above can fail)."""

    class Sample:
        """Documented class."""

        def documented(self) -> None:
            """Yes."""

        def bare(self) -> None:
            pass

        @property
        def bare_property(self) -> int:
            return 1

    assert _undocumented_members(Sample, "") == ["Sample.bare", "Sample.bare_property"]
    assert cadenza.Client is Client
