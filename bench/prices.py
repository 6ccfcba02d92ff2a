"""The price table the benches cost requests at: AWS list prices, versioned.

US East (N. Virginia), on-demand, USD, the first (highest) tier of each service, free tiers
ignored. Change a price by adding a new table and pointing ``CURRENT`` at it, so that figures in
older RESULTS.md files can still be traced to the prices they used.

Which SQS price applies is decided by the queue, read from template.yaml and the service: the
task-list queues (one decision and one activity queue per task list, created on first use by
``cadenza.aws.tasklists`` and declared in the template only for the "orders" example) are FIFO;
TimerQueue, TimerDeadLetterQueue and StreamFailureQueue are standard.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class PriceTable:
    #: The day these list prices took effect (DynamoDB's on-demand prices were halved then).
    effective: str
    #: The day the table was checked and written down here.
    recorded: str
    source: str
    #: USD per million
    dynamodb_write_unit: float  # on-demand write request unit: 1 KB written (2 in a transaction)
    dynamodb_read_unit: float  # read request unit: 4 KB strongly consistent (0.5 eventually)
    sqs_standard_request: float  # per 64 KB chunk of a request; a batch of 10 is one request
    sqs_fifo_request: float
    lambda_request: float
    http_api_request: float  # API Gateway HTTP API, first 300 million a month
    scheduler_invocation: float  # EventBridge Scheduler, per schedule that fires
    #: USD per GB-second of Lambda duration (x86, first tier); NOT part of issue 8's target
    lambda_gb_second: float
    #: Memory of every function in template.yaml (Globals: MemorySize).
    lambda_memory_gb: float


PRICES_2024_11 = PriceTable(
    effective="2024-11-14",
    recorded="2026-12-01",
    source="aws.amazon.com pricing pages (DynamoDB, SQS, Lambda, API Gateway, EventBridge); "
           "the request prices are the ones issue 8 names",
    dynamodb_write_unit=0.625,
    dynamodb_read_unit=0.125,
    sqs_standard_request=0.40,
    sqs_fifo_request=0.50,
    lambda_request=0.20,
    http_api_request=1.00,
    scheduler_invocation=1.00,
    lambda_gb_second=16.6667,  # $0.0000166667 per GB-second
    lambda_memory_gb=0.5,
)

CURRENT = PRICES_2024_11


def is_fifo(queue: str) -> bool:
    """Whether a queue (URL, ARN or name) is FIFO: SQS requires FIFO names to end in .fifo."""
    return queue.endswith(".fifo")


def sqs_price(queue: str, prices: PriceTable = CURRENT) -> float:
    return prices.sqs_fifo_request if is_fifo(queue) else prices.sqs_standard_request


def template_queues(template_path: Path | None = None) -> dict[str, bool]:
    """Logical id -> FIFO? for every queue template.yaml declares (the source of truth)."""
    from cadenza.local.template import load_template

    path = template_path or Path(__file__).resolve().parent.parent / "template.yaml"
    document: dict[str, Any] = load_template(path)
    return {
        logical_id: str((resource.get("Properties") or {}).get("FifoQueue", "false")).lower()
        == "true"
        for logical_id, resource in (document.get("Resources") or {}).items()
        if resource.get("Type") == "AWS::SQS::Queue"
    }


def table(prices: PriceTable = CURRENT) -> list[str]:
    """The price table as Markdown lines."""
    return [
        f"Prices: {prices.source}; in effect since {prices.effective}, recorded "
        f"{prices.recorded} (bench/prices.py, `PRICES_2024_11`). USD per million.",
        "",
        "| item | USD / M |",
        "|---|---:|",
        f"| DynamoDB on-demand write request unit (1 KB; 2 per KB in a transaction) | "
        f"{prices.dynamodb_write_unit:.3f} |",
        f"| DynamoDB on-demand read request unit (4 KB consistent; half for eventually "
        f"consistent) | {prices.dynamodb_read_unit:.3f} |",
        f"| SQS standard request (TimerQueue) | {prices.sqs_standard_request:.2f} |",
        f"| SQS FIFO request (task-list queues) | {prices.sqs_fifo_request:.2f} |",
        f"| Lambda request | {prices.lambda_request:.2f} |",
        f"| API Gateway HTTP API request | {prices.http_api_request:.2f} |",
        f"| EventBridge Scheduler invocation | {prices.scheduler_invocation:.2f} |",
        f"| Lambda duration, per GB-second (not in the target; {prices.lambda_memory_gb:g} GB "
        f"functions) | {prices.lambda_gb_second:.4f} |",
    ]
