"""The ``cadenza`` command: ``cadenza dev`` for the local stack, ``cadenza workflow ...``."""

from __future__ import annotations

from .main import main

__all__ = ["main"]
