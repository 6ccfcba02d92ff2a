"""The engine's metrics as CloudWatch embedded metric format, through powertools' Metrics.

Implements ``cadenza.service.metrics.EngineMetrics``: the functions and the Lambda worker build
one, hand it to the service factory and flush it at the end of each invocation. Only an
invocation that measured something prints a metrics line (powertools warns on an empty flush).
"""

from __future__ import annotations

import os
import threading

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)

#: The namespace when POWERTOOLS_METRICS_NAMESPACE is not set (template.yaml sets it).
DEFAULT_NAMESPACE = "Cadenza"
DISABLED_VARIABLE = "POWERTOOLS_METRICS_DISABLED"


def _private_metrics() -> Metrics:
    """A Metrics with sets of its own. powertools' Metrics instances share their metric,
    dimension and metadata sets (class attributes): one function per Lambda sandbox does not
    notice, but the local stack runs every function in one process, where they would flush
    each other's metrics under each other's service name."""
    provider = AmazonCloudWatchEMFProvider(
        namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE,
        service=os.environ.get("POWERTOOLS_SERVICE_NAME") or None,
        metric_set={}, dimension_set={}, metadata_set={}, default_dimensions={})
    return Metrics(provider=provider)


class PowertoolsMetrics:
    def __init__(self, metrics: Metrics | None = None, *, enabled: bool | None = None) -> None:
        self.metrics = metrics or _private_metrics()
        #: Decided once, when the function starts (as powertools' own check would be in a
        #: sandbox): a later change of the variable by another part of the process, such as
        #: a test, does not make the local stack's functions print metrics.
        self.enabled = (os.environ.get(DISABLED_VARIABLE, "").lower() not in ("true", "1")
                        if enabled is None else enabled)
        self._lock = threading.Lock()  # a local stack runs handlers on many threads
        self._pending = False

    def count(self, name: str, value: int = 1) -> None:
        if self.enabled:
            with self._lock:
                self.metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
                self._pending = True

    def milliseconds(self, name: str, value: float) -> None:
        if self.enabled:
            with self._lock:
                self.metrics.add_metric(name=name, unit=MetricUnit.Milliseconds, value=value)
                self._pending = True

    def flush(self) -> None:
        """Print what was measured since the last flush as one EMF line (none: nothing)."""
        with self._lock:
            if self._pending:
                self.metrics.flush_metrics()
                self._pending = False
