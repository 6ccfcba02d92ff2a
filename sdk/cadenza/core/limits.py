"""Size limits that keep every commit inside one DynamoDB item and every task in one SQS message.

Every limit is in UTF-8 bytes, as the store's are (DynamoDB keys and items, SQS messages,
Lambda payloads): 700 characters of CJK text are 2,100 bytes. Each is checked on the text as
received, before any compression, on every field that is stored or sent on. A string that
cannot be UTF-8 at all (a lone surrogate, which JSON's ``\\ud800`` escape can carry) is refused
wherever it appears: it would be a 500 from boto3, or a history no other language can read.
"""

from __future__ import annotations

from ..error import BadRequestError

#: Largest payload (input, result, details, ...) accepted anywhere, in UTF-8 bytes.
MAX_PAYLOAD_BYTES = 128 * 1024
#: Largest identifier (workflow id, run id, type names, task list, activity id, signal name),
#: in bytes: a run's partition key is ``domain#workflow_id`` (DynamoDB allows 2,048 bytes) and
#: ids are sort keys of the visibility indexes (1,024 bytes).
MAX_ID_BYTES = 1000
#: Kept for callers that still say length: every check is in bytes, which is never fewer.
MAX_ID_LENGTH = MAX_ID_BYTES
#: Largest reason or cause of a failure, cancel, terminate or reset.
MAX_REASON_BYTES = 1000
MAX_REASON_LENGTH = MAX_REASON_BYTES
#: Who made a request (recorded in history).
MAX_IDENTITY_BYTES = 1000
#: A request id, remembered by the run so that a retry changes nothing.
MAX_REQUEST_ID_BYTES = 256
#: A run's memo and its search attributes, as JSON (Cadence's defaults are of this order).
MAX_MEMO_BYTES = 32 * 1024
MAX_SEARCH_ATTRIBUTES_BYTES = 40 * 1024
#: A task token: a run's ids (JSON, so escaped) and a signature, base64.
MAX_TASK_TOKEN_BYTES = 16 * 1024
#: A value of the query string (a visibility query, a page token).
MAX_QUERY_VALUE_BYTES = 16 * 1024
#: A whole request body: refused before it is parsed. Above any body the other limits allow
#: (a decision completion carries several payloads), far below Lambda's 6 MB.
MAX_BODY_BYTES = 2 * 1024 * 1024
#: A history page's events, as JSON: a page holds fewer commits rather than grow past it.
MAX_HISTORY_PAGE_BYTES = 1024 * 1024


def utf8_size(text: str, *, field: str | None = None) -> int:
    """The UTF-8 size of ``text``; BadRequestError naming ``field`` for a lone surrogate."""
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError as error:
        raise BadRequestError(
            f"{field or 'a string'} is not valid Unicode text (a lone surrogate at character "
            f"{error.start})", field=field,
        ) from error


def payload_size(payload: str | None, *, field: str | None = None) -> int:
    return 0 if payload is None else utf8_size(payload, field=field)


def check_text(text: str, *, field: str, limit: int) -> None:
    """BadRequestError naming ``field`` and ``limit`` when ``text`` is over ``limit`` bytes."""
    size = utf8_size(text, field=field)
    if size > limit:
        raise BadRequestError(
            f"{field} is {size} bytes (UTF-8); the limit is {limit} bytes", field=field,
            limit=limit, size=size,
        )
