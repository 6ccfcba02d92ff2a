"""The functions' structured logs as readable lines for `cadenza dev`.

In AWS the functions' powertools Logger prints one JSON object per line for CloudWatch Logs
Insights. On a terminal that is a kilobyte per line; `cadenza dev` prints the same records as one
line each: time, level, function, message and the correlation keys (workflow_id, run_id,
task_list, attempt...), the traceback under it when there is one. The records are the same:
only the serializer of each powertools formatter in the process changes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

#: Keys every powertools record has, or that say nothing to a developer here.
_PLAIN = frozenset({
    "level", "location", "message", "timestamp", "service", "exception", "exception_name",
    "exception_notes", "stack_trace", "xray_trace_id", "sampling_rate", "cold_start",
    "function_name", "function_memory_size", "function_arn", "function_request_id",
    "correlation_id",
})
#: Shown first, in this order, when present.
_CORRELATION = ("workflow_id", "run_id", "task_list", "attempt", "activity_id", "timer_id")


def readable_line(log: Mapping[str, Any]) -> str:
    """One line for a powertools log record (the dict its formatter would serialize)."""
    stamp = str(log.get("timestamp", ""))
    time_of_day = stamp[11:23] if len(stamp) >= 23 else stamp
    source = log.get("function_name") or log.get("service") or ""
    keys = [key for key in _CORRELATION if key in log]
    keys += sorted(key for key in log if key not in _PLAIN and key not in _CORRELATION)
    fields = " ".join(f"{key}={log[key]}" for key in keys)
    line = " ".join(part for part in (
        time_of_day, str(log.get("level", "")), str(source), str(log.get("message", "")), fields,
    ) if part)
    exception = log.get("exception")
    return f"{line}\n{exception}" if exception else line


def make_logs_readable() -> int:
    """Give every powertools formatter of this process the readable serializer; returns how
    many it changed. Call it after the functions are imported (their Loggers exist then)."""
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    changed = 0
    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)]
    for logger in loggers:
        for handler in logger.handlers:
            formatter = handler.formatter
            if isinstance(formatter, LambdaPowertoolsFormatter):
                formatter.json_serializer = readable_line  # type: ignore[assignment]
                changed += 1
    return changed
