"""Policies a start or a child names: workflow id reuse and parent close.

Accepted in Cadence's Go spelling (``AllowDuplicateFailedOnly``), its proto spelling
(``WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY``) or as an enum member, because
workflows written for the Cadence Python client pass any of these.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from ..error import BadRequestError


def _normalized(value: Any, prefix: str) -> str:
    text = str(getattr(value, "value", value))
    return re.sub(r"[^a-z]", "", text.lower()).removeprefix(prefix)


class ReusePolicy(StrEnum):
    """Whether a start may reuse a workflow id whose last run is closed (or still open)."""

    ALLOW_DUPLICATE_FAILED_ONLY = "AllowDuplicateFailedOnly"
    ALLOW_DUPLICATE = "AllowDuplicate"
    REJECT_DUPLICATE = "RejectDuplicate"
    TERMINATE_IF_RUNNING = "TerminateIfRunning"

    @classmethod
    def parse(cls, value: Any, *, field: str = "workflow_id_reuse_policy") -> ReusePolicy:
        if value is None or value == "":
            return cls.ALLOW_DUPLICATE_FAILED_ONLY
        wanted = _normalized(value, "workflowidreusepolicy")
        for policy in cls:
            if policy.value.lower() == wanted:
                return policy
        raise BadRequestError(
            f"{field} {str(getattr(value, 'value', value))!r} is not one of "
            f"{', '.join(p.value for p in cls)}",
            field=field,
        )


class ParentClosePolicy(StrEnum):
    """What happens to an open child when its parent closes, however the parent closes."""

    TERMINATE = "TERMINATE"
    REQUEST_CANCEL = "REQUEST_CANCEL"
    ABANDON = "ABANDON"

    @classmethod
    def parse(cls, value: Any, *, field: str = "parent_close_policy") -> ParentClosePolicy:
        if value is None or value == "":
            return cls.TERMINATE
        wanted = _normalized(value, "parentclosepolicy")
        for policy in cls:
            if policy.value.replace("_", "").lower() == wanted:
                return policy
        raise BadRequestError(
            f"{field} {str(getattr(value, 'value', value))!r} is not one of "
            f"{', '.join(p.value for p in cls)}",
            field=field,
        )


__all__ = ["ParentClosePolicy", "ReusePolicy"]
