"""Policies a start or a child names: workflow id reuse and parent close.

Accepted in Cadence's Go spelling (``AllowDuplicateFailedOnly``), its proto spelling
(``WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY``) or as an enum member, because
workflows written for the Cadence Python client pass any of these.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, TypeVar

from ..error import BadRequestError

_P = TypeVar("_P", bound=StrEnum)


def _parse(cls: type[_P], value: Any, *, field: str, prefix: str, default: _P) -> _P:
    """The member ``value`` names in any spelling (``default`` for none); a 400 otherwise."""
    if value is None or value == "":
        return default
    text = str(getattr(value, "value", value))
    wanted = re.sub(r"[^a-z]", "", text.lower()).removeprefix(prefix)
    for member in cls:
        if member.value.replace("_", "").lower() == wanted:
            return member
    raise BadRequestError(
        f"{field} {text!r} is not one of {', '.join(m.value for m in cls)}", field=field)


class ReusePolicy(StrEnum):
    """Whether a start may reuse a workflow id whose last run is closed (or still open)."""

    ALLOW_DUPLICATE_FAILED_ONLY = "AllowDuplicateFailedOnly"
    ALLOW_DUPLICATE = "AllowDuplicate"
    REJECT_DUPLICATE = "RejectDuplicate"
    TERMINATE_IF_RUNNING = "TerminateIfRunning"

    @classmethod
    def parse(cls, value: Any, *, field: str = "workflow_id_reuse_policy") -> ReusePolicy:
        return _parse(cls, value, field=field, prefix="workflowidreusepolicy",
                      default=cls.ALLOW_DUPLICATE_FAILED_ONLY)


class ParentClosePolicy(StrEnum):
    """What happens to an open child when its parent closes, however the parent closes."""

    TERMINATE = "TERMINATE"
    REQUEST_CANCEL = "REQUEST_CANCEL"
    ABANDON = "ABANDON"

    @classmethod
    def parse(cls, value: Any, *, field: str = "parent_close_policy") -> ParentClosePolicy:
        return _parse(cls, value, field=field, prefix="parentclosepolicy", default=cls.TERMINATE)


__all__ = ["ParentClosePolicy", "ReusePolicy"]
