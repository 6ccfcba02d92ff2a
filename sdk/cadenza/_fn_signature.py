"""What Cadenza needs to know about a user function to move its arguments through payloads.

Payloads hold positional values only (JSON values separated by spaces), so a signature is the
ordered list of parameters with their type hints (used to decode each value) and defaults (used
when a payload holds fewer values, which lets a parameter be added with a default without
breaking runs already in flight), plus the return annotation (used to decode results).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, get_type_hints

from cadenza.data_converter import DataConverter

__all__ = ["FnParameter", "FnSignature"]

_EMPTY = inspect.Parameter.empty


@dataclass(frozen=True, slots=True)
class FnParameter:
    name: str
    type_hint: Any
    has_default: bool = False
    default: Any = None


@dataclass(frozen=True, slots=True)
class FnSignature:
    params: tuple[FnParameter, ...]
    return_type: Any

    @staticmethod
    def of(fn: Callable[..., Any], *, skip_self: bool = False) -> FnSignature:
        """Read ``fn``'s parameters; ``skip_self`` drops the first one (an unbound method).

        Keyword-only and variadic parameters are refused: they cannot be carried by a
        positional payload, and refusing them at decoration time beats failing in a worker.
        """
        signature = inspect.signature(fn)
        try:
            hints = get_type_hints(fn)
        except Exception:
            # Unresolvable forward references (types local to a function): keep the
            # annotations that are real objects; the others decode to plain JSON values.
            annotations = getattr(fn, "__annotations__", {}) or {}
            hints = {k: v for k, v in annotations.items() if not isinstance(v, str)}
        params: list[FnParameter] = []
        parameters = list(signature.parameters.values())
        if skip_self and parameters:
            parameters = parameters[1:]
        for parameter in parameters:
            if parameter.kind not in (
                inspect.Parameter.POSITIONAL_ONLY,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
            ):
                qualname = getattr(fn, "__qualname__", repr(fn))
                raise ValueError(
                    f"{qualname}: parameter {parameter.name!r} is {parameter.kind.description}; "
                    "only positional parameters can be carried in a payload"
                )
            params.append(
                FnParameter(
                    name=parameter.name,
                    type_hint=hints.get(parameter.name),
                    has_default=parameter.default is not _EMPTY,
                    default=None if parameter.default is _EMPTY else parameter.default,
                )
            )
        return_type = hints.get("return") if "return" in hints else None
        if return_type is type(None):
            return_type = None
        return FnSignature(params=tuple(params), return_type=return_type)

    @property
    def type_hints(self) -> list[Any]:
        return [param.type_hint for param in self.params]

    def bind(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> list[Any]:
        """Turn a Python call's arguments into the positional values a payload carries."""
        if len(args) > len(self.params):
            raise TypeError(
                f"expected at most {len(self.params)} positional arguments, got {len(args)}"
            )
        values = list(args)
        remaining = dict(kwargs)
        for param in self.params[len(args) :]:
            if param.name in remaining:
                values.append(remaining.pop(param.name))
            elif param.has_default:
                values.append(param.default)
            else:
                raise TypeError(f"missing required argument {param.name!r}")
        if remaining:
            raise TypeError(f"unexpected keyword arguments: {sorted(remaining)}")
        return values

    def decode(self, converter: DataConverter, payload: str | None) -> list[Any]:
        """Decode a payload into call arguments, filling trailing defaults.

        A payload with fewer values than parameters is completed with the defaults; a missing
        value for a parameter without default is an error, not a silent ``None``.
        """
        if not self.params:
            return []
        provided = _count_values(converter, payload, len(self.params))
        decoded = converter.from_data(payload, self.type_hints[:provided]) if provided else []
        values = list(decoded[:provided])
        for index, param in enumerate(self.params[provided:], start=provided):
            if not param.has_default:
                raise ValueError(
                    f"payload has no value for required parameter {param.name!r} (position {index})"
                )
            values.append(param.default)
        return values


def _count_values(converter: DataConverter, payload: str | None, limit: int) -> int:
    """How many values the payload holds (at most ``limit``)."""
    if not payload:
        return 0
    counter = getattr(converter, "count", None)
    if callable(counter):
        return min(int(counter(payload)), limit)
    # A converter without a counter: assume it holds one value per parameter.
    return limit
