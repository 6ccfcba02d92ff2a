#!/usr/bin/env python3
"""The Cadenza stack in CDK, built from the constructs of ``cadenza.cdk``.

``python infra/app.py`` synthesizes it (into ./cdk.out) without the CDK CLI: the layer is built
by this machine's pip, no Docker. Deploy with the CLI (``npm i -g aws-cdk``):
``cd infra && cdk deploy -c stack_name=cadenza``. Needs ``pip install 'cadenza[cdk]'``.

The same resources as template.yaml, with the same logical ids (tests/infra/test_cdk.py checks
the parity), so a stack deployed with SAM can move to CDK without replacing its tables.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cadenza.cdk import CadenzaEngine, CadenzaWorker

REPO_ROOT = Path(__file__).resolve().parent.parent


class CadenzaStack(cdk.Stack):
    """The engine, the order example's worker in Lambda mode, and the examples' bucket."""

    def __init__(self, scope: Construct, construct_id: str, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        engine = CadenzaEngine(self, "Engine")
        # examples/orders through cadenza.lambda_worker, on the "orders" task list of domain
        # "default" (examples/ is the task root: the example is imported as `orders`).
        CadenzaWorker(
            self, "Orders", engine=engine, task_list="orders",
            code=lambda_.Code.from_asset(str(REPO_ROOT / "examples"),
                                         exclude=["__pycache__", "*.pyc"]),
            handler="orders/lambda_app.handler",
            description="Example worker in Lambda mode, the order saga of examples/orders.",
        )
        # The sample applications' files (examples/monitor watches it): goes with the stack,
        # files expire after a week.
        bucket = s3.Bucket(
            self, "ExamplesBucket", encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            lifecycle_rules=[s3.LifecycleRule(id="ExpireExampleFiles",
                                              expiration=cdk.Duration.days(7))],
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        engine.keep_template_id(bucket, "ExamplesBucket")
        for name, value, description in (
            ("ApiUrl", engine.api_url, "Base URL of the HTTP API (requests are SigV4-signed)."),
            ("ApiId", engine.http_api.api_id, "The HTTP API's id, for execute-api ARNs."),
            ("HistoryTableName", engine.history_table.table_name, None),
            ("VisibilityTableName", engine.visibility_table.table_name, None),
            ("QueuePrefix", engine.queue_prefix, "Prefix of the run-time task-list queues."),
            ("TaskListDeadLetterQueueUrl", engine.task_list_dead_letter_queue.queue_url, None),
            ("EnginePolicyArn", engine.engine_policy.managed_policy_arn,
             "Attach to the role of your own Lambda worker (or use CadenzaWorker)."),
            ("PollingWorkerPolicyArn", engine.polling_worker_policy.managed_policy_arn,
             "Attach to the role a polling worker (cadenza.Worker) runs with."),
            ("ExamplesBucketName", bucket.bucket_name, None),
        ):
            cdk.CfnOutput(self, name, value=value, description=description)


def main() -> None:
    app = cdk.App()
    CadenzaStack(app, str(app.node.try_get_context("stack_name") or "cadenza"))
    app.synth()


if __name__ == "__main__":
    main()
