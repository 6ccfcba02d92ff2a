"""Size limits that keep every commit inside one DynamoDB item and every task in one SQS message."""

from __future__ import annotations

#: Largest payload (input, result, details, ...) accepted anywhere, in UTF-8 bytes.
MAX_PAYLOAD_BYTES = 128 * 1024
#: Largest identifier (workflow id, type names, task list, activity id, signal name).
MAX_ID_LENGTH = 1000
#: Largest reason string of a failure.
MAX_REASON_LENGTH = 1000


def payload_size(payload: str | None) -> int:
    return 0 if payload is None else len(payload.encode("utf-8"))
