"""Errors of the embedded local stack.

They derive from :class:`cadenza.error.CadenzaError` so a caller of ``cadenza dev`` or a test
fixture can tell "the local stack could not start" (a port in use, a template it cannot read, a
handler that does not import) apart from a failure of the code under test.
"""

from __future__ import annotations

from cadenza.error import CadenzaError

__all__ = ["HandlerImportError", "LocalStackError", "PortInUseError", "TemplateError"]


class LocalStackError(CadenzaError):
    """The local stack (emulator, runtime or API server) could not do what was asked."""


class TemplateError(LocalStackError):
    """template.yaml declares something the local stack cannot read or emulate."""


class PortInUseError(LocalStackError):
    """A port the local stack must listen on is already taken by another process."""

    def __init__(self, what: str, host: str, port: int, reason: str = "") -> None:
        detail = f" ({reason})" if reason else ""
        super().__init__(
            f"cannot start the {what} on {host}:{port}: the port is already in use{detail}. "
            f"Stop whatever listens there or choose another port (0 picks a free one)."
        )
        self.what = what
        self.host = host
        self.port = port


class HandlerImportError(LocalStackError):
    """A function's handler module could not be found or imported."""
