"""Where moto differs from AWS in a way the engine relies on, the local stack makes it agree.

SQS FIFO deduplication: AWS drops a message whose MessageDeduplicationId was accepted in the
last five minutes, even if that message was already received and deleted. moto (5.2) compares
only against messages still in the queue, so a redrive copy sent after the original was consumed
is delivered again. The engine stays correct either way (duplicates are recognised as stale),
but locally an activity would then run twice. This patch keeps accepted ids per queue for the
deduplication interval, as AWS does.

SQS FIFO sequence numbers: AWS gives every FIFO message a SequenceNumber that grows within its
group, and Lambda passes it on in the event's record attributes. moto draws a random one, and
none at all under content-based deduplication; the patch numbers FIFO messages in send order.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

DEDUPLICATION_INTERVAL_SECONDS = 300

_lock = threading.Lock()
_patched = False
#: 20-digit numbers like AWS's, increasing across restarts of this process as well.
_sequence = itertools.count(int(time.time() * 1_000_000) * 10_000)


def apply_sqs_fifo_deduplication() -> None:
    """Patch this process's moto: FIFO deduplication over five minutes, and sequence numbers
    (idempotent). Only for the embedded moto; an external emulator is used as it is."""
    global _patched
    with _lock:
        if _patched:
            return
        from moto.sqs.models import Queue

        original = Queue.add_message

        def add_message(self: Any, message: Any) -> None:
            dedup_id = getattr(message, "deduplication_id", None)
            if getattr(self, "fifo_queue", False) and dedup_id:
                now = time.monotonic()
                with _lock:
                    seen: dict[str, float] = self.__dict__.setdefault("_cadenza_dedup", {})
                    for key in [k for k, t in seen.items()
                                if now - t >= DEDUPLICATION_INTERVAL_SECONDS]:
                        del seen[key]
                    if dedup_id in seen:
                        return
                    seen[dedup_id] = now
            if getattr(self, "fifo_queue", False):
                with _lock:
                    message.sequence_number = str(next(_sequence))
            original(self, message)

        Queue.add_message = add_message  # type: ignore[method-assign]
        _patched = True
