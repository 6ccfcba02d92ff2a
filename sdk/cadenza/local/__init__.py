"""The embedded default: template.yaml's stack on this machine, with no AWS account.

``LocalStack`` reads template.yaml through the SAM translator, starts moto in server mode,
creates the tables, queues and secrets the resulting CloudFormation declares,
and runs the functions in functions/ with a local Lambda runtime that delivers the same events
AWS would (SQS batches, DynamoDB stream records, schedules, HTTP API v2.0 requests)::

    with LocalStack(api_port=0) as stack:
        os.environ.update(stack.environment)   # already done in this process
        httpx.get(stack.api_url + "/health")

``LocalStack(aws_endpoint="http://localhost:4566")`` (or ``CADENZA_AWS_ENDPOINT``) uses an
emulator that runs elsewhere, such as LocalStack, instead of starting moto.
"""

from __future__ import annotations

from cadenza.local.emulator import Emulator
from cadenza.local.endpoint import AwsEndpoint
from cadenza.local.errors import HandlerImportError, LocalStackError, PortInUseError, TemplateError
from cadenza.local.runtime import LambdaContext, LocalFunction, LocalRuntime, merged_environment
from cadenza.local.stack import AWS_ENDPOINT_VARIABLE, DEFAULT_API_PORT, LocalStack, find_repo_root
from cadenza.local.template import (
    DynamoStreamSource,
    EventSource,
    FunctionSpec,
    HttpApiSource,
    IndexSpec,
    ParameterSpec,
    QueueSpec,
    RedriveSpec,
    ScheduleGroupSpec,
    ScheduleSource,
    SecretSpec,
    SqsSource,
    StackDescription,
    TableSpec,
    describe_stack,
    load_template,
    resolve_parameters,
)

__all__ = [
    "AWS_ENDPOINT_VARIABLE",
    "DEFAULT_API_PORT",
    "AwsEndpoint",
    "DynamoStreamSource",
    "Emulator",
    "EventSource",
    "FunctionSpec",
    "HandlerImportError",
    "HttpApiSource",
    "IndexSpec",
    "LambdaContext",
    "LocalFunction",
    "LocalRuntime",
    "LocalStack",
    "LocalStackError",
    "ParameterSpec",
    "PortInUseError",
    "QueueSpec",
    "RedriveSpec",
    "ScheduleGroupSpec",
    "ScheduleSource",
    "SecretSpec",
    "SqsSource",
    "StackDescription",
    "TableSpec",
    "TemplateError",
    "describe_stack",
    "find_repo_root",
    "load_template",
    "merged_environment",
    "resolve_parameters",
]
