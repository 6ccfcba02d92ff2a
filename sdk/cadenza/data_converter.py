"""Payload encoding: the same text format as the Cadence Python client's default converter.

A payload is JSON values separated by single spaces (``"a" 3 {"k": 1}``), one value per argument,
so payloads written by Cadence clients and by Cadenza read the same. Values are converted to the
declared types (dataclasses, datetimes, lists of them, ...) with msgspec.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

import msgspec

__all__ = ["DataConverter", "DefaultDataConverter"]


class DataConverter(Protocol):
    def to_data(self, values: Sequence[Any]) -> str | None: ...

    def from_data(self, payload: str | None, type_hints: Sequence[Any]) -> list[Any]: ...


class DefaultDataConverter:
    """JSON values separated by spaces; ``None`` for no values at all."""

    def __init__(self) -> None:
        self._encoder = msgspec.json.Encoder()
        self._decoder = json.JSONDecoder(strict=False)

    def to_data(self, values: Sequence[Any]) -> str | None:
        if not values:
            return None
        return " ".join(self._encoder.encode(value).decode() for value in values)

    def from_data(self, payload: str | None, type_hints: Sequence[Any]) -> list[Any]:
        """Decode up to ``len(type_hints)`` values; missing ones become ``None``.

        A hint of ``None`` or ``object``/``Any`` keeps the plain JSON value.
        """
        hints = list(type_hints) or [None]
        values: list[Any] = []
        text = payload or ""
        position, end = 0, len(text)
        while position < end and len(values) < len(hints):
            while position < end and text[position].isspace():
                position += 1
            if position >= end:
                break
            value, position = self._decoder.raw_decode(text, position)
            values.append(value)
        while len(values) < len(hints):
            values.append(None)
        return [_convert(value, hint) for value, hint in zip(values, hints, strict=True)]

    def count(self, payload: str | None) -> int:
        """How many values a payload holds."""
        count, text, position = 0, payload or "", 0
        while True:
            while position < len(text) and text[position].isspace():
                position += 1
            if position >= len(text):
                return count
            _, position = self._decoder.raw_decode(text, position)
            count += 1


def _convert(value: Any, hint: Any) -> Any:
    if hint is None or hint is object or hint is Any or value is None:
        return value
    return msgspec.convert(value, hint, strict=False)
