#!/usr/bin/env python3
"""CDK entry point. Deploy with
``cd infra && cdk deploy -c stack_name=cadenza --parameters TaskTokenSecret=...``.

Needs the optional extra: ``pip install 'cadenza[cdk]'`` (and the CDK CLI, ``npm i -g aws-cdk``).
"""

from __future__ import annotations

import aws_cdk as cdk

from cadenza_stack import CadenzaStack

app = cdk.App()
CadenzaStack(app, str(app.node.try_get_context("stack_name") or "cadenza"))
app.synth()
