"""CDK constructs for Cadenza (``pip install 'cadenza[cdk]'``): the engine, and your workers.

    from aws_cdk import App, Stack, aws_lambda as lambda_
    from cadenza.cdk import CadenzaEngine, CadenzaWorker

    app = App()
    stack = Stack(app, "cadenza")
    engine = CadenzaEngine(stack, "Engine")
    CadenzaWorker(stack, "Billing", engine=engine, task_list="billing",
                  code=lambda_.Code.from_asset("src"), handler="billing.lambda_app.handler")
    app.synth()

:class:`CadenzaEngine` is template.yaml in CDK (tables, queues and their dead-letter queues,
the task-token secret, the functions and their event sources, the IAM-authorized HTTP API,
alarms); tests/infra/test_cdk.py checks the two agree. :class:`CadenzaWorker` is a Lambda
function running ``cadenza.lambda_worker`` on one task list: it declares that task list's two
queues as the service would create them, feeds the function from them and gives it the engine's
environment and permissions.

Nothing of the engine or of Lambda code imports this package: it needs aws-cdk-lib, which only
the ``cdk`` extra installs.
"""

from __future__ import annotations

from ._engine import CadenzaEngine
from ._layer import cadenza_layer_code
from ._worker import CadenzaWorker

__all__ = ["CadenzaEngine", "CadenzaWorker", "cadenza_layer_code"]
