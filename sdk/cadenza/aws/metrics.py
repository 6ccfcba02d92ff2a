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

#: The namespace when POWERTOOLS_METRICS_NAMESPACE is not set (template.yaml sets it).
DEFAULT_NAMESPACE = "Cadenza"


class PowertoolsMetrics:
    def __init__(self, metrics: Metrics | None = None) -> None:
        self.metrics = metrics or Metrics(
            namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE)
        self._lock = threading.Lock()  # a local stack runs handlers on many threads
        self._pending = False

    def count(self, name: str, value: int = 1) -> None:
        with self._lock:
            self.metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
            self._pending = True

    def milliseconds(self, name: str, value: float) -> None:
        with self._lock:
            self.metrics.add_metric(name=name, unit=MetricUnit.Milliseconds, value=value)
            self._pending = True

    def flush(self) -> None:
        """Print what was measured since the last flush as one EMF line (none: nothing)."""
        with self._lock:
            if self._pending:
                self.metrics.flush_metrics()
                self._pending = False
