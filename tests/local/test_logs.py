"""`cadenza dev` prints the functions' powertools records as one readable line each."""

from __future__ import annotations

import io
import json
import logging
import uuid

from aws_lambda_powertools import Logger

from cadenza.local.logs import make_logs_readable, readable_line


def test_a_record_is_one_line_with_its_correlation_keys_first() -> None:
    line = readable_line({
        "level": "WARNING", "location": "fire_timer:12", "message": "timer stale",
        "timestamp": "2026-12-01 16:03:26,937+0000", "service": "cadenza-engine",
        "function_name": "TimerFunction", "run_id": "r-1", "workflow_id": "w-1", "commits": 3,
        "xray_trace_id": "1-abc", "cold_start": False,
    })
    assert line == ("16:03:26,937 WARNING TimerFunction timer stale workflow_id=w-1 run_id=r-1 "
                    "commits=3")


def test_an_exception_follows_its_line() -> None:
    line = readable_line({"level": "ERROR", "message": "failed", "exception": "Traceback ...",
                          "timestamp": "2026-12-01 16:03:26,937+0000"})
    assert line.splitlines() == ["16:03:26,937 ERROR failed", "Traceback ..."]


def test_the_loggers_of_the_process_print_readable_lines() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = Logger(service=f"test-{uuid.uuid4().hex[:8]}", logger_handler=handler)
    logger.append_keys(workflow_id="w-2")
    logger.warning("before")
    assert json.loads(stream.getvalue().splitlines()[0])["message"] == "before"

    assert make_logs_readable() >= 1
    logger.warning("after", extra={"attempt": 2})
    last = stream.getvalue().splitlines()[-1]
    assert last.endswith("WARNING " + logger.service + " after workflow_id=w-2 attempt=2")
