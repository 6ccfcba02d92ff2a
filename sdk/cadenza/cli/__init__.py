"""The ``cadenza`` command: ``cadenza dev`` for the local stack, ``cadenza workflow ...``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

__all__ = ["LOCAL_EXTRA_MODULES", "main"]

#: Top-level modules of the ``local`` extra (pyproject.toml): the CLI's terminal output and the
#: local stack. ``pip install cadenza`` (what a Lambda gets) has none of them.
LOCAL_EXTRA_MODULES = frozenset({"rich", "moto", "werkzeug", "yaml", "samtranslator"})


def _extra_module(error: ModuleNotFoundError) -> str | None:
    """The module of the ``local`` extra whose absence ``error`` reports, if it is one."""
    missing = (error.name or "").partition(".")[0]
    return missing if missing in LOCAL_EXTRA_MODULES else None


_run: Callable[[Sequence[str] | None], int] | None
_missing: str | None = None
try:
    from .main import main as _run
except ModuleNotFoundError as _error:
    _missing = _extra_module(_error)
    if _missing is None:
        raise
    _run = None


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: the CLI, or one line naming the extra to install when a module of
    the ``local`` extra is missing (the CLI and ``cadenza dev`` need it; Lambda code does not)."""
    missing = _missing
    if _run is not None:
        try:
            return _run(argv)
        except ModuleNotFoundError as error:  # `cadenza dev` imports the local stack late
            missing = _extra_module(error)
            if missing is None:
                raise
    print(f"cadenza: the command line and `cadenza dev` need the 'local' extra (module "
          f"{missing!r} is missing): pip install 'cadenza[local]'", file=sys.stderr)
    return 2
