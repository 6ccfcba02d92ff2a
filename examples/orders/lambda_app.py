"""The order example as a Lambda function: template.yaml's OrdersWorkerFunction.

SQS event source mappings on the "orders" task list's two queues (domain "default") deliver its
decision and activity tasks; ``cadenza.lambda_worker`` runs them against the engine in-process.
The task root is examples/, so the example is imported as ``orders`` (in Lambda and in the
local runtime alike).
"""

from __future__ import annotations

from cadenza.lambda_worker import lambda_handler
from orders.app import registry

handler = lambda_handler(registry, domain="default")
