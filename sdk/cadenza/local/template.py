"""Read template.yaml and describe the stack the local runtime must emulate.

template.yaml is the single source of truth for the stack: the same file that ``sam deploy``
ships decides which tables, queues and functions exist locally and which events reach which
handler. This module turns it into plain, typed descriptions (frozen dataclasses) with every
intrinsic function resolved against the physical names the local stack chooses, so the emulator
and the runtime never look at raw CloudFormation.

A SAM template is read through the SAM translator (:mod:`cadenza.local.sam`), and what is
described is the plain CloudFormation it produces. Only what a local run needs is modelled:
DynamoDB tables (streams, indexes, TTL), SQS queues (redrive policies), S3 buckets, Scheduler
schedule groups, Secrets Manager secrets, and Lambda functions with their event source mappings
(SQS, DynamoDB streams), HTTP API routes (the API's OpenAPI body) and scheduled rules. Other
resources (IAM roles and policies, log groups, alarms, permissions, the API's stage) are
resolvable by ``Ref``/``GetAtt`` but are neither created nor enforced.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cadenza.local.errors import TemplateError
from cadenza.local.sam import Translated, is_sam, translate

__all__ = [
    "DEFAULT_ACCOUNT_ID",
    "DEFAULT_REGION",
    "DEFAULT_STACK_NAME",
    "BucketSpec",
    "CfnLoader",
    "DynamoStreamSource",
    "EventSource",
    "FunctionSpec",
    "HttpApiSource",
    "IndexSpec",
    "ParameterSpec",
    "QueueSpec",
    "RedriveSpec",
    "Resolver",
    "ScheduleGroupSpec",
    "ScheduleSource",
    "SecretSpec",
    "SqsSource",
    "StackDescription",
    "TableSpec",
    "describe_stack",
    "load_template",
    "predict_attributes",
    "resolve_parameters",
]

DEFAULT_STACK_NAME = "cadenza-local"
DEFAULT_REGION = "us-east-1"
#: moto's default account; ARNs the local stack predicts must match the ones moto returns.
DEFAULT_ACCOUNT_ID = "123456789012"
#: The API id every HTTP API (such as SAM's implicit ``ServerlessHttpApi``) gets locally.
LOCAL_API_ID = "local"

# --------------------------------------------------------------------------------------------
# YAML with CloudFormation short tags


class CfnLoader(yaml.SafeLoader):
    """A SafeLoader that understands CloudFormation's short-form tags (``!Ref``, ``!Sub`` ...).

    Each tag becomes the long form (``{"Ref": ...}``, ``{"Fn::Sub": ...}``) so the rest of the
    code handles one shape. Timestamps stay strings: ``AWSTemplateFormatVersion: 2010-09-09``
    must not turn into a ``date``.
    """


CfnLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

_FN_TAGS = (
    "Sub", "Join", "Select", "Split", "If", "Equals", "Not", "And", "Or", "FindInMap",
    "Base64", "Cidr", "ImportValue", "GetAZs", "Transform", "Length", "ToJsonString",
)


def _construct_node(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    raise TemplateError(f"unsupported YAML node {node!r}")  # pragma: no cover


def _fn_constructor(name: str) -> Any:
    key = "Ref" if name == "Ref" else "Condition" if name == "Condition" else f"Fn::{name}"

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        return {key: _construct_node(loader, node)}

    return construct


def _get_att_constructor(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
    value = _construct_node(loader, node)
    if isinstance(value, str):
        logical_id, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [logical_id, attribute]}
    return {"Fn::GetAtt": value}


for _tag in (*_FN_TAGS, "Ref", "Condition"):
    CfnLoader.add_constructor(f"!{_tag}", _fn_constructor(_tag))
CfnLoader.add_constructor("!GetAtt", _get_att_constructor)


def load_template(path: str | Path) -> dict[str, Any]:
    """Parse a CloudFormation/SAM template (YAML or JSON) into plain dicts and lists."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(f"cannot read template {path}: {exc}") from exc
    try:
        document = yaml.load(text, Loader=CfnLoader)
    except yaml.YAMLError as exc:
        raise TemplateError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise TemplateError(f"{path} is not a CloudFormation template (no Resources section)")
    return document


# --------------------------------------------------------------------------------------------
# Typed descriptions


@dataclass(frozen=True)
class ParameterSpec:
    """A template parameter. ``no_echo`` ones without a default get a random value locally."""

    name: str
    type: str = "String"
    default: str | None = None
    no_echo: bool = False
    description: str = ""
    min_length: int | None = None
    allowed_values: tuple[str, ...] = ()


@dataclass(frozen=True)
class IndexSpec:
    """A global or local secondary index."""

    name: str
    hash_key: str
    range_key: str | None
    projection_type: str = "ALL"
    non_key_attributes: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableSpec:
    """A DynamoDB table as the template declares it, with its local physical name."""

    logical_id: str
    name: str
    hash_key: str
    range_key: str | None
    attribute_types: Mapping[str, str]
    global_indexes: tuple[IndexSpec, ...] = ()
    local_indexes: tuple[IndexSpec, ...] = ()
    billing_mode: str = "PAY_PER_REQUEST"
    provisioned_throughput: tuple[int, int] | None = None
    stream_view_type: str | None = None
    ttl_attribute: str | None = None
    point_in_time_recovery: bool = False

    def create_table_request(self) -> dict[str, Any]:
        """The CreateTable request (boto3 keyword arguments) that makes this table."""

        def key_schema(hash_key: str, range_key: str | None) -> list[dict[str, str]]:
            keys = [{"AttributeName": hash_key, "KeyType": "HASH"}]
            if range_key:
                keys.append({"AttributeName": range_key, "KeyType": "RANGE"})
            return keys

        def projection(index: IndexSpec) -> dict[str, Any]:
            result: dict[str, Any] = {"ProjectionType": index.projection_type}
            if index.non_key_attributes:
                result["NonKeyAttributes"] = list(index.non_key_attributes)
            return result

        throughput = None
        if self.billing_mode == "PROVISIONED":
            read, write = self.provisioned_throughput or (5, 5)
            throughput = {"ReadCapacityUnits": read, "WriteCapacityUnits": write}
        request: dict[str, Any] = {
            "TableName": self.name,
            "AttributeDefinitions": [
                {"AttributeName": name, "AttributeType": kind}
                for name, kind in self.attribute_types.items()
            ],
            "KeySchema": key_schema(self.hash_key, self.range_key),
            "BillingMode": self.billing_mode,
        }
        if throughput:
            request["ProvisionedThroughput"] = throughput
        if self.global_indexes:
            request["GlobalSecondaryIndexes"] = []
            for index in self.global_indexes:
                entry: dict[str, Any] = {
                    "IndexName": index.name,
                    "KeySchema": key_schema(index.hash_key, index.range_key),
                    "Projection": projection(index),
                }
                if throughput:
                    entry["ProvisionedThroughput"] = throughput
                request["GlobalSecondaryIndexes"].append(entry)
        if self.local_indexes:
            request["LocalSecondaryIndexes"] = [
                {
                    "IndexName": index.name,
                    "KeySchema": key_schema(index.hash_key, index.range_key),
                    "Projection": projection(index),
                }
                for index in self.local_indexes
            ]
        if self.stream_view_type:
            request["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": self.stream_view_type,
            }
        return request


@dataclass(frozen=True)
class RedriveSpec:
    """Where a queue's poison messages go after ``max_receive_count`` receives."""

    dead_letter_arn: str
    max_receive_count: int
    dead_letter_queue: str | None = None  # logical id, when the DLQ is in the template


@dataclass(frozen=True)
class QueueSpec:
    """An SQS queue as the template declares it, with its local physical name."""

    logical_id: str
    name: str
    fifo: bool = False
    content_based_deduplication: bool = False
    deduplication_scope: str | None = None
    fifo_throughput_limit: str | None = None
    visibility_timeout: int | None = None
    message_retention_period: int | None = None
    delay_seconds: int | None = None
    receive_message_wait_time: int | None = None
    maximum_message_size: int | None = None
    redrive: RedriveSpec | None = None

    def create_queue_attributes(self) -> dict[str, str]:
        """The ``Attributes`` of the CreateQueue request that makes this queue."""
        attributes: dict[str, str] = {}
        if self.fifo:
            attributes["FifoQueue"] = "true"
            attributes["ContentBasedDeduplication"] = (
                "true" if self.content_based_deduplication else "false"
            )
            if self.deduplication_scope:
                attributes["DeduplicationScope"] = self.deduplication_scope
            if self.fifo_throughput_limit:
                attributes["FifoThroughputLimit"] = self.fifo_throughput_limit
        for name, value in (
            ("VisibilityTimeout", self.visibility_timeout),
            ("MessageRetentionPeriod", self.message_retention_period),
            ("DelaySeconds", self.delay_seconds),
            ("ReceiveMessageWaitTimeSeconds", self.receive_message_wait_time),
            ("MaximumMessageSize", self.maximum_message_size),
        ):
            if value is not None:
                attributes[name] = str(value)
        if self.redrive:
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": self.redrive.dead_letter_arn,
                    "maxReceiveCount": str(self.redrive.max_receive_count),
                }
            )
        return attributes


@dataclass(frozen=True)
class BucketSpec:
    """An S3 bucket as the template declares it, with its local physical name.

    Only the bucket itself is created locally: encryption, public access blocks and lifecycle
    rules are AWS-side policy that no local code path depends on.
    """

    logical_id: str
    name: str


@dataclass(frozen=True)
class SecretSpec:
    """A Secrets Manager secret: a value the template gives, or one generated at creation
    (``GenerateSecretString``: length and excluded characters), as CloudFormation does."""

    logical_id: str
    name: str
    secret_string: str | None = None
    length: int = 32
    exclude_punctuation: bool = False
    exclude_characters: str = ""


@dataclass(frozen=True)
class ScheduleGroupSpec:
    """An EventBridge Scheduler schedule group (where the engine puts long timers)."""

    logical_id: str
    name: str


@dataclass(frozen=True)
class SqsSource:
    """An SQS event source mapping: batches from ``queue`` (a logical id) invoke the function."""

    name: str
    queue: str
    batch_size: int = 10
    report_batch_item_failures: bool = False
    maximum_batching_window: int = 0
    enabled: bool = True


@dataclass(frozen=True)
class DynamoStreamSource:
    """A DynamoDB stream event source mapping on ``table`` (a logical id)."""

    name: str
    table: str
    batch_size: int = 100
    starting_position: str = "TRIM_HORIZON"
    report_batch_item_failures: bool = False
    maximum_retry_attempts: int = -1  # -1: until the record expires, as in AWS
    bisect_batch_on_function_error: bool = False
    on_failure_queue: str | None = None  # logical id of an SQS on-failure destination
    enabled: bool = True


@dataclass(frozen=True)
class HttpApiSource:
    """A route of an HTTP API. ``path`` None is the ``$default`` route."""

    name: str
    path: str | None
    method: str = "ANY"
    api: str = "ServerlessHttpApi"

    @property
    def route_key(self) -> str:
        return "$default" if self.path is None else f"{self.method} {self.path}"


@dataclass(frozen=True)
class ScheduleSource:
    """A schedule (EventBridge rule or Scheduler schedule) that invokes the function."""

    name: str
    expression: str
    input: str | None = None
    enabled: bool = True


EventSource = SqsSource | DynamoStreamSource | HttpApiSource | ScheduleSource


@dataclass(frozen=True)
class FunctionSpec:
    """A SAM function, its handler location and the events that invoke it."""

    logical_id: str
    name: str
    arn: str
    handler: str
    handler_module: str
    handler_function: str
    code_root: Path
    handler_file: Path
    runtime: str
    timeout: int
    memory_size: int
    environment: Mapping[str, str]
    events: tuple[EventSource, ...] = ()
    layer_paths: tuple[Path, ...] = ()
    ignored_events: tuple[str, ...] = ()

    def sources(self, kind: type[Any]) -> tuple[Any, ...]:
        """The event sources of one kind (``SqsSource``, ``DynamoStreamSource`` ...)."""
        return tuple(source for source in self.events if isinstance(source, kind))


@dataclass(frozen=True)
class StackDescription:
    """Everything the local stack creates and runs, resolved for one stack name."""

    stack_name: str
    region: str
    account_id: str
    template_path: Path | None
    parameters: Mapping[str, str]
    tables: tuple[TableSpec, ...]
    queues: tuple[QueueSpec, ...]
    schedule_groups: tuple[ScheduleGroupSpec, ...]
    functions: tuple[FunctionSpec, ...]
    outputs: Mapping[str, Any]
    attributes: Mapping[str, Mapping[str, str]]
    unmanaged: tuple[str, ...] = ()
    buckets: tuple[BucketSpec, ...] = ()
    secrets: tuple[SecretSpec, ...] = ()

    def table(self, logical_id: str) -> TableSpec:
        return _find(self.tables, logical_id, "table")

    def queue(self, logical_id: str) -> QueueSpec:
        return _find(self.queues, logical_id, "queue")

    def function(self, logical_id: str) -> FunctionSpec:
        return _find(self.functions, logical_id, "function")

    def bucket(self, logical_id: str) -> BucketSpec:
        return _find(self.buckets, logical_id, "bucket")


def _find(items: tuple[Any, ...], logical_id: str, kind: str) -> Any:
    for item in items:
        if item.logical_id == logical_id:
            return item
    raise TemplateError(f"the template declares no {kind} {logical_id!r}")


# --------------------------------------------------------------------------------------------
# Intrinsic functions


class _NoValue:
    """``AWS::NoValue``: removes the property or list item that holds it."""


NO_VALUE = _NoValue()
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class Resolver:
    """Evaluates intrinsic functions against the local stack's parameters and resources:
    those the SAM translator's output of a template uses (Ref, GetAtt, Sub, Join, Select, Split,
    If and the condition functions); any other is refused by name.

    ``attributes`` maps a resource's logical id to its ``Ref`` value and ``GetAtt`` attributes
    (``{"Ref": ..., "Arn": ..., "StreamArn": ...}``); :func:`predict_attributes` fills it
    before the emulator creates anything and the emulator overwrites what only it knows.
    """

    def __init__(
        self,
        *,
        template: Mapping[str, Any],
        stack_name: str,
        region: str,
        account_id: str,
        parameters: Mapping[str, str],
        attributes: Mapping[str, Mapping[str, str]],
    ) -> None:
        self.template = template
        self.stack_name = stack_name
        self.region = region
        self.account_id = account_id
        self.parameters = dict(parameters)
        self.attributes = attributes
        self._parameter_types = {
            name: str((spec or {}).get("Type", "String"))
            for name, spec in (template.get("Parameters") or {}).items()
        }
        self._conditions: dict[str, bool] = {}

    # -- public

    def resolve(self, value: Any) -> Any:
        """Resolve every intrinsic function inside ``value`` (recursively)."""
        result = self._resolve(value)
        return None if result is NO_VALUE else result

    def condition(self, name: str) -> bool:
        """The value of a named condition of the template's ``Conditions`` section."""
        if name not in self._conditions:
            conditions = self.template.get("Conditions") or {}
            if name not in conditions:
                raise TemplateError(f"unknown condition {name!r}")
            self._conditions[name] = bool(self._resolve(conditions[name]))
        return self._conditions[name]

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::StackName": self.stack_name,
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": (
                f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/"
                f"{self.stack_name}/00000000-0000-0000-0000-000000000000"
            ),
            "AWS::NotificationARNs": [],
        }
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            value = self.parameters[name]
            kind = self._parameter_types.get(name, "String")
            if kind == "CommaDelimitedList" or kind.startswith("List<"):
                return [item.strip() for item in value.split(",")]
            return value
        if name in self.attributes and "Ref" in self.attributes[name]:
            return self.attributes[name]["Ref"]
        raise TemplateError(f"!Ref {name}: no such parameter or resource")

    def get_att(self, logical_id: str, attribute: str) -> Any:
        try:
            return self.attributes[logical_id][attribute]
        except KeyError:
            raise TemplateError(
                f"!GetAtt {logical_id}.{attribute}: not available in the local stack"
            ) from None

    # -- evaluation

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            items = (self._resolve(item) for item in value)
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self.ref(str(argument))
            if key == "Condition" and isinstance(argument, str):
                return self.condition(argument)
            if key.startswith("Fn::"):
                return self._function(key[4:], argument)
        resolved = {key: self._resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def _function(self, name: str, argument: Any) -> Any:
        if name == "Sub":
            return self._sub(argument)
        if name == "GetAtt":
            if isinstance(argument, str):
                argument = argument.split(".", 1)
            logical_id, attribute = (self._resolve(part) for part in argument)
            return self.get_att(str(logical_id), str(attribute))
        if name == "Join":
            delimiter, items = argument
            return str(delimiter).join(str(item) for item in self._resolve(items))
        if name == "Select":
            index, items = self._resolve(argument)
            return items[int(index)]
        if name == "Split":
            delimiter, text = self._resolve(argument)
            return str(text).split(str(delimiter))
        if name == "If":
            condition, when_true, when_false = argument
            return self._resolve(when_true if self.condition(condition) else when_false)
        if name == "Equals":
            left, right = self._resolve(argument)
            return str(left) == str(right)
        if name == "Not":
            (operand,) = argument
            return not self._resolve(operand)
        if name == "And":
            return all(self._resolve(operand) for operand in argument)
        if name == "Or":
            return any(self._resolve(operand) for operand in argument)
        raise TemplateError(f"Fn::{name} is not supported by the local stack")

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = argument[0], self._resolve(argument[1] if len(argument) > 1 else {})
        else:
            text, variables = argument, {}

        def replace(match: re.Match[str]) -> str:
            expression = match.group(1)
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in variables:
                return str(variables[expression])
            if "." in expression and not expression.startswith("AWS::"):
                logical_id, attribute = expression.split(".", 1)
                return str(self.get_att(logical_id, attribute))
            return str(self.ref(expression))

        return _SUB_VARIABLE.sub(replace, str(text))


# --------------------------------------------------------------------------------------------
# Parameters and physical names


def _parameter_specs(template: Mapping[str, Any]) -> tuple[ParameterSpec, ...]:
    specs = []
    for name, raw in (template.get("Parameters") or {}).items():
        raw = raw or {}
        default = raw.get("Default")
        no_echo = raw.get("NoEcho", False)
        specs.append(
            ParameterSpec(
                name=name,
                type=str(raw.get("Type", "String")),
                default=None if default is None else _scalar(default),
                no_echo=no_echo is True or str(no_echo).lower() == "true",
                description=str(raw.get("Description", "")).strip(),
                min_length=int(raw["MinLength"]) if "MinLength" in raw else None,
                allowed_values=tuple(_scalar(v) for v in raw.get("AllowedValues", ())),
            )
        )
    return tuple(specs)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_scalar(item) for item in value)
    return str(value)


def resolve_parameters(
    template: Mapping[str, Any],
    overrides: Mapping[str, str] | None = None,
    *,
    generate_secrets: bool = True,
) -> dict[str, str]:
    """Parameter values for one stack start: overrides, else defaults, else generated secrets.

    A ``NoEcho`` parameter without a default (such as ``TaskTokenSecret``) is a secret the
    deployer must choose; locally nobody should have to, so it gets a fresh random value (when
    ``generate_secrets``). Any other parameter without a value is an error that names it.
    """
    overrides = dict(overrides or {})
    specs = _parameter_specs(template)
    known = {spec.name for spec in specs}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TemplateError(f"parameter overrides for undeclared parameters: {', '.join(unknown)}")
    values: dict[str, str] = {}
    missing = []
    for spec in specs:
        if spec.name in overrides:
            value = _scalar(overrides[spec.name])
        elif spec.default is not None:
            value = spec.default
        elif spec.no_echo and generate_secrets:
            value = secrets.token_urlsafe(max(32, spec.min_length or 0))
        else:
            missing.append(spec.name)
            continue
        if spec.min_length is not None and len(value) < spec.min_length:
            raise TemplateError(
                f"parameter {spec.name} must be at least {spec.min_length} characters long"
            )
        if spec.allowed_values and value not in spec.allowed_values:
            raise TemplateError(
                f"parameter {spec.name}={value!r} is not one of {list(spec.allowed_values)}"
            )
        values[spec.name] = value
    if missing:
        raise TemplateError(f"parameters without a value: {', '.join(missing)}")
    return values


def _resources(template: Mapping[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for logical_id, resource in (template.get("Resources") or {}).items():
        resource = resource or {}
        yield logical_id, str(resource.get("Type", "")), dict(resource.get("Properties") or {})


def predict_attributes(
    template: Mapping[str, Any],
    *,
    stack_name: str,
    region: str = DEFAULT_REGION,
    account_id: str = DEFAULT_ACCOUNT_ID,
    parameters: Mapping[str, str],
    endpoint_url: str | None = None,
) -> dict[str, dict[str, str]]:
    """``Ref``/``GetAtt`` values of every resource, as far as they are known before creation.

    Physical names follow CloudFormation's habit (``<stack>-<LogicalId>``) unless the template
    names the resource. Queue URLs need the emulator's endpoint; a stream ARN is only known once
    the table exists, so the emulator fills it in.
    """
    naming = Resolver(
        template=template,
        stack_name=stack_name,
        region=region,
        account_id=account_id,
        parameters=parameters,
        attributes={},
    )

    def physical(logical_id: str, properties: Mapping[str, Any], key: str) -> str:
        if properties.get(key) is not None:
            return str(naming.resolve(properties[key]))
        return f"{stack_name}-{logical_id}"

    sqs_base = endpoint_url.rstrip("/") if endpoint_url else f"https://sqs.{region}.amazonaws.com"
    attributes: dict[str, dict[str, str]] = {}
    for logical_id, kind, properties in _resources(template):
        if kind == "AWS::DynamoDB::Table":
            name = physical(logical_id, properties, "TableName")
            arn = f"arn:aws:dynamodb:{region}:{account_id}:table/{name}"
            attributes[logical_id] = {"Ref": name, "Arn": arn, "StreamArn": f"{arn}/stream/*"}
        elif kind == "AWS::SQS::Queue":
            name = physical(logical_id, properties, "QueueName")
            if _truthy(naming.resolve(properties.get("FifoQueue"))) and not name.endswith(".fifo"):
                name += ".fifo"
            url = f"{sqs_base}/{account_id}/{name}"
            arn = f"arn:aws:sqs:{region}:{account_id}:{name}"
            attributes[logical_id] = {"Ref": url, "QueueUrl": url, "Arn": arn, "QueueName": name}
        elif kind == "AWS::Lambda::Function":
            name = physical(logical_id, properties, "FunctionName")
            arn = f"arn:aws:lambda:{region}:{account_id}:function:{name}"
            attributes[logical_id] = {"Ref": name, "Arn": arn}
        elif kind == "AWS::SecretsManager::Secret":
            name = physical(logical_id, properties, "Name")
            # The emulator gives the real ARN (Secrets Manager appends six random characters).
            arn = f"arn:aws:secretsmanager:{region}:{account_id}:secret:{name}"
            attributes[logical_id] = {"Ref": arn, "Id": arn, "Name": name}
        elif kind == "AWS::Lambda::LayerVersion":
            name = physical(logical_id, properties, "LayerName")
            arn = f"arn:aws:lambda:{region}:{account_id}:layer:{name}:1"
            attributes[logical_id] = {"Ref": arn, "LayerVersionArn": arn}
        elif kind == "AWS::IAM::Role":
            name = physical(logical_id, properties, "RoleName")
            attributes[logical_id] = {
                "Ref": name,
                "Arn": f"arn:aws:iam::{account_id}:role/{name}",
                "RoleId": f"AROA{logical_id.upper()[:17]}",
            }
        elif kind == "AWS::IAM::ManagedPolicy":
            name = physical(logical_id, properties, "ManagedPolicyName")
            arn = f"arn:aws:iam::{account_id}:policy/{name}"
            attributes[logical_id] = {"Ref": arn, "PolicyArn": arn}
        elif kind == "AWS::Scheduler::ScheduleGroup":
            name = physical(logical_id, properties, "Name")
            arn = f"arn:aws:scheduler:{region}:{account_id}:schedule-group/{name}"
            attributes[logical_id] = {"Ref": name, "Arn": arn}
        elif kind == "AWS::SNS::Topic":
            name = physical(logical_id, properties, "TopicName")
            arn = f"arn:aws:sns:{region}:{account_id}:{name}"
            attributes[logical_id] = {"Ref": arn, "TopicArn": arn, "TopicName": name}
        elif kind == "AWS::S3::Bucket":
            name = physical(logical_id, properties, "BucketName").lower()
            attributes[logical_id] = {"Ref": name, "Arn": f"arn:aws:s3:::{name}"}
        elif kind == "AWS::ApiGatewayV2::Api":
            attributes[logical_id] = {"Ref": LOCAL_API_ID, "ApiId": LOCAL_API_ID}
        else:
            attributes[logical_id] = {"Ref": f"{stack_name}-{logical_id}"}
    return attributes


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _int(value: Any, default: int) -> int:
    return default if value is None else int(value)


# --------------------------------------------------------------------------------------------
# describe_stack


def describe_stack(
    template: Mapping[str, Any] | str | Path,
    *,
    stack_name: str = DEFAULT_STACK_NAME,
    region: str = DEFAULT_REGION,
    account_id: str = DEFAULT_ACCOUNT_ID,
    parameters: Mapping[str, str] | None = None,
    code_base: str | Path | None = None,
    endpoint_url: str | None = None,
    attributes: Mapping[str, Mapping[str, str]] | None = None,
) -> StackDescription:
    """Describe the tables, queues, secrets and functions of ``template`` for one local stack.

    A SAM template goes through the SAM translator first (:mod:`cadenza.local.sam`): what is
    described is the plain CloudFormation it produces (Lambda functions, event source
    mappings, the HTTP API's routes, EventBridge rules), as AWS would deploy it.

    ``parameters`` are overrides (see :func:`resolve_parameters`; pass the same values to every
    call for one stack, or secrets are generated afresh). ``code_base`` is the directory
    ``CodeUri``/``ContentUri`` are relative to (default: the template's directory, as in SAM).
    ``attributes`` are what the emulator learnt when it created the resources; they override
    the predicted ones.
    """
    template_path: Path | None = None
    if isinstance(template, str | Path):
        template_path = Path(template).resolve()
        document: Mapping[str, Any] = load_template(template_path)
    else:
        document = template
    if code_base is None:
        if template_path is None:
            raise TemplateError("code_base is required when the template is not a file")
        code_base = template_path.parent
    base = Path(code_base).resolve()

    values = resolve_parameters(document, parameters)
    if is_sam(document):
        translated = translate(document, values, region=region)
    else:
        translated = Translated(template=dict(document), code={}, layers={})
    cfn = translated.template
    known = predict_attributes(
        cfn,
        stack_name=stack_name,
        region=region,
        account_id=account_id,
        parameters=values,
        endpoint_url=endpoint_url,
    )
    for logical_id, extra in (attributes or {}).items():
        known.setdefault(logical_id, {}).update(extra)
    resolver = Resolver(
        template=cfn,
        stack_name=stack_name,
        region=region,
        account_id=account_id,
        parameters=values,
        attributes=known,
    )

    tables: list[TableSpec] = []
    queues: list[QueueSpec] = []
    groups: list[ScheduleGroupSpec] = []
    buckets: list[BucketSpec] = []
    stored_secrets: list[SecretSpec] = []
    lambdas: list[tuple[str, dict[str, Any]]] = []
    sources: dict[str, list[EventSource]] = {}
    unmanaged: list[str] = []
    resources = cfn.get("Resources") or {}
    for logical_id, kind, properties in _resources(cfn):
        condition = (resources[logical_id] or {}).get("Condition")
        if condition and not resolver.condition(condition):
            continue
        if kind == "AWS::DynamoDB::Table":
            tables.append(_table(logical_id, resolver.resolve(properties), known))
        elif kind == "AWS::SQS::Queue":
            queues.append(_queue(logical_id, properties, resolver, known))
        elif kind == "AWS::Scheduler::ScheduleGroup":
            groups.append(ScheduleGroupSpec(logical_id, known[logical_id]["Ref"]))
        elif kind == "AWS::S3::Bucket":
            buckets.append(BucketSpec(logical_id, known[logical_id]["Ref"]))
        elif kind == "AWS::SecretsManager::Secret":
            stored_secrets.append(_secret(logical_id, resolver.resolve(properties), known))
        elif kind == "AWS::Lambda::Function":
            lambdas.append((logical_id, properties))
        elif kind == "AWS::Lambda::EventSourceMapping":
            function, source = _mapping(logical_id, properties, resources, resolver)
            sources.setdefault(function, []).append(source)
        elif kind == "AWS::ApiGatewayV2::Api":
            for function, route in _routes(logical_id, properties):
                sources.setdefault(function, []).append(route)
        elif kind == "AWS::Events::Rule" and properties.get("ScheduleExpression"):
            for function, schedule in _rule_schedules(logical_id, properties, resolver):
                sources.setdefault(function, []).append(schedule)
        else:
            unmanaged.append(logical_id)
    functions = [
        _function(logical_id, properties, tuple(sources.get(logical_id, ())), translated,
                  resolver, known, base)
        for logical_id, properties in lambdas
    ]

    outputs: dict[str, Any] = {}
    for name, output in (cfn.get("Outputs") or {}).items():
        try:
            outputs[name] = resolver.resolve((output or {}).get("Value"))
        except TemplateError:
            continue
    return StackDescription(
        stack_name=stack_name,
        region=region,
        account_id=account_id,
        template_path=template_path,
        parameters=values,
        tables=tuple(tables),
        queues=tuple(queues),
        schedule_groups=tuple(groups),
        functions=tuple(functions),
        outputs=outputs,
        attributes=known,
        unmanaged=tuple(unmanaged),
        buckets=tuple(buckets),
        secrets=tuple(stored_secrets),
    )


def _table(
    logical_id: str, props: Mapping[str, Any], known: Mapping[str, Mapping[str, str]]
) -> TableSpec:
    def keys(schema: list[dict[str, Any]]) -> tuple[str, str | None]:
        hash_key = next((k["AttributeName"] for k in schema if k["KeyType"] == "HASH"), None)
        range_key = next((k["AttributeName"] for k in schema if k["KeyType"] == "RANGE"), None)
        if hash_key is None:
            raise TemplateError(f"table {logical_id} has no HASH key")
        return str(hash_key), None if range_key is None else str(range_key)

    def indexes(raw: list[dict[str, Any]] | None) -> tuple[IndexSpec, ...]:
        result = []
        for index in raw or []:
            hash_key, range_key = keys(index["KeySchema"])
            projection = index.get("Projection") or {}
            result.append(
                IndexSpec(
                    name=str(index["IndexName"]),
                    hash_key=hash_key,
                    range_key=range_key,
                    projection_type=str(projection.get("ProjectionType", "ALL")),
                    non_key_attributes=tuple(projection.get("NonKeyAttributes") or ()),
                )
            )
        return tuple(result)

    hash_key, range_key = keys(props.get("KeySchema") or [])
    stream = props.get("StreamSpecification") or {}
    ttl = props.get("TimeToLiveSpecification") or {}
    pitr = props.get("PointInTimeRecoverySpecification") or {}
    throughput = props.get("ProvisionedThroughput")
    return TableSpec(
        logical_id=logical_id,
        name=known[logical_id]["Ref"],
        hash_key=hash_key,
        range_key=range_key,
        attribute_types={
            str(a["AttributeName"]): str(a["AttributeType"])
            for a in props.get("AttributeDefinitions") or []
        },
        global_indexes=indexes(props.get("GlobalSecondaryIndexes")),
        local_indexes=indexes(props.get("LocalSecondaryIndexes")),
        billing_mode=str(props.get("BillingMode", "PROVISIONED")),
        provisioned_throughput=(
            (int(throughput["ReadCapacityUnits"]), int(throughput["WriteCapacityUnits"]))
            if throughput
            else None
        ),
        stream_view_type=str(stream["StreamViewType"]) if stream.get("StreamViewType") else None,
        ttl_attribute=str(ttl["AttributeName"]) if _truthy(ttl.get("Enabled")) else None,
        point_in_time_recovery=_truthy(pitr.get("PointInTimeRecoveryEnabled")),
    )


def _queue(
    logical_id: str,
    raw: Mapping[str, Any],
    resolver: Resolver,
    known: Mapping[str, Mapping[str, str]],
) -> QueueSpec:
    props = resolver.resolve(dict(raw))
    redrive = None
    policy = props.get("RedrivePolicy")
    if isinstance(policy, str):
        policy = json.loads(policy)
    if policy:
        target = str(policy["deadLetterTargetArn"])
        dlq = _logical_id_of(raw["RedrivePolicy"], "deadLetterTargetArn") if isinstance(
            raw.get("RedrivePolicy"), dict
        ) else None
        if dlq is None:
            dlq = next(
                (lid for lid, attrs in known.items() if attrs.get("Arn") == target), None
            )
        redrive = RedriveSpec(
            dead_letter_arn=target,
            max_receive_count=int(policy["maxReceiveCount"]),
            dead_letter_queue=dlq,
        )

    def optional_int(key: str) -> int | None:
        return None if props.get(key) is None else int(props[key])

    return QueueSpec(
        logical_id=logical_id,
        name=known[logical_id]["QueueName"],
        fifo=_truthy(props.get("FifoQueue")),
        content_based_deduplication=_truthy(props.get("ContentBasedDeduplication")),
        deduplication_scope=_optional_str(props.get("DeduplicationScope")),
        fifo_throughput_limit=_optional_str(props.get("FifoThroughputLimit")),
        visibility_timeout=optional_int("VisibilityTimeout"),
        message_retention_period=optional_int("MessageRetentionPeriod"),
        delay_seconds=optional_int("DelaySeconds"),
        receive_message_wait_time=optional_int("ReceiveMessageWaitTimeSeconds"),
        maximum_message_size=optional_int("MaximumMessageSize"),
        redrive=redrive,
    )


def _logical_id_of(container: Mapping[str, Any], key: str) -> str | None:
    """The logical id a property points at through ``!GetAtt X.Attr`` or ``!Ref X``."""
    value = container.get(key)
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Fn::GetAtt":
            if isinstance(argument, str):
                return argument.split(".", 1)[0]
            return str(argument[0])
        if function == "Ref":
            return str(argument)
    return None


def _local_path(value: Any, base: Path, what: str) -> Path:
    if not isinstance(value, str) or value.startswith("s3://"):
        raise TemplateError(f"{what}: only a local directory can be run locally, not {value!r}")
    return (base / value).resolve()


def _secret(logical_id: str, properties: Mapping[str, Any],
            known: Mapping[str, Mapping[str, str]]) -> SecretSpec:
    generate = properties.get("GenerateSecretString") or {}
    if generate.get("SecretStringTemplate") or generate.get("GenerateStringKey"):
        raise TemplateError(f"secret {logical_id}: only a generated plain string is emulated "
                            "(no SecretStringTemplate/GenerateStringKey)")
    value = properties.get("SecretString")
    return SecretSpec(
        logical_id=logical_id,
        name=known[logical_id]["Name"],
        secret_string=None if value is None else str(value),
        length=_int(generate.get("PasswordLength"), 32),
        exclude_punctuation=_truthy(generate.get("ExcludePunctuation")),
        exclude_characters=str(generate.get("ExcludeCharacters") or ""),
    )


def _points_at(value: Any) -> tuple[str, str] | None:
    """``(logical id, attribute)`` of a ``GetAtt`` (attribute ``Ref`` for a ``Ref``)."""
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Fn::GetAtt":
            parts = argument.split(".", 1) if isinstance(argument, str) else argument
            return str(parts[0]), str(parts[1])
        if function == "Ref":
            return str(argument), "Ref"
    return None


def _short_name(logical_id: str, function: str) -> str:
    """An event's name as SAM declared it: SAM names its resources ``<Function><Event>``."""
    if logical_id.startswith(function) and logical_id != function:
        return logical_id[len(function):]
    return logical_id


def _mapping(logical_id: str, raw: Mapping[str, Any], resources: Mapping[str, Any],
             resolver: Resolver) -> tuple[str, EventSource]:
    """An event source mapping: the function it invokes and what feeds it."""
    target = _points_at(raw.get("FunctionName"))
    source = _points_at(raw.get("EventSourceArn"))
    if target is None or source is None:
        raise TemplateError(f"event source mapping {logical_id}: FunctionName and "
                            "EventSourceArn must refer to resources of the template locally")
    function, (origin, attribute) = target[0], source
    props = resolver.resolve(dict(raw))
    name = _short_name(logical_id, function)
    failures = "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or [])
    enabled = props.get("Enabled")
    is_enabled = enabled is None or _truthy(enabled)
    kind = ((resources.get(origin) or {}).get("Type"))
    if kind == "AWS::SQS::Queue":
        return function, SqsSource(
            name=name,
            queue=origin,
            batch_size=_int(props.get("BatchSize"), 10),
            report_batch_item_failures=failures,
            maximum_batching_window=_int(props.get("MaximumBatchingWindowInSeconds"), 0),
            enabled=is_enabled,
        )
    if kind == "AWS::DynamoDB::Table" and attribute == "StreamArn":
        on_failure = ((raw.get("DestinationConfig") or {}).get("OnFailure") or {})
        destination = _points_at(on_failure.get("Destination"))
        return function, DynamoStreamSource(
            name=name,
            table=origin,
            batch_size=_int(props.get("BatchSize"), 100),
            starting_position=str(props.get("StartingPosition", "TRIM_HORIZON")),
            report_batch_item_failures=failures,
            maximum_retry_attempts=_int(props.get("MaximumRetryAttempts"), -1),
            bisect_batch_on_function_error=_truthy(props.get("BisectBatchOnFunctionError")),
            on_failure_queue=None if destination is None else destination[0],
            enabled=is_enabled,
        )
    raise TemplateError(f"event source mapping {logical_id}: {origin}.{attribute} is not an "
                        "SQS queue or a DynamoDB stream of the template")


_INTEGRATION_FUNCTION = re.compile(r"\$\{(\w+)\.Arn\}")
_ANY_METHOD = "x-amazon-apigateway-any-method"


def _routes(api: str, properties: Mapping[str, Any]) -> Iterator[tuple[str, HttpApiSource]]:
    """The routes of an HTTP API's OpenAPI body (what SAM writes for HttpApi events) and the
    function each one's Lambda proxy integration invokes."""
    for path, operations in ((properties.get("Body") or {}).get("paths") or {}).items():
        for method, operation in (operations or {}).items():
            integration = (operation or {}).get("x-amazon-apigateway-integration") or {}
            uri = integration.get("uri")
            text = uri.get("Fn::Sub") if isinstance(uri, dict) else uri
            found = _INTEGRATION_FUNCTION.search(text if isinstance(text, str) else "")
            if found is None:
                continue
            verb = "ANY" if method == _ANY_METHOD else str(method).upper()
            route = None if path in ("$default", "/$default") else str(path)
            yield found.group(1), HttpApiSource(name=f"{verb} {path}", path=route,
                                                method=verb, api=api)


def _rule_schedules(logical_id: str, properties: Mapping[str, Any],
                    resolver: Resolver) -> Iterator[tuple[str, ScheduleSource]]:
    """An EventBridge rule on a schedule (what SAM writes for Schedule events), per function
    it targets."""
    state = resolver.resolve(properties.get("State"))
    for target in properties.get("Targets") or []:
        pointed = _points_at((target or {}).get("Arn"))
        if pointed is None:
            continue
        payload = resolver.resolve(target.get("Input"))
        yield pointed[0], ScheduleSource(
            name=_short_name(logical_id, pointed[0]),
            expression=str(resolver.resolve(properties["ScheduleExpression"])),
            input=None if payload is None else str(payload),
            enabled=state is None or str(state).upper() == "ENABLED",
        )


def _function(
    logical_id: str,
    raw: Mapping[str, Any],
    events: tuple[EventSource, ...],
    translated: Translated,
    resolver: Resolver,
    known: Mapping[str, Mapping[str, str]],
    base: Path,
) -> FunctionSpec:
    handler = resolver.resolve(raw.get("Handler"))
    if not isinstance(handler, str) or "." not in handler:
        raise TemplateError(f"function {logical_id}: Handler must look like 'path/module.function'")
    module, _, function_name = handler.rpartition(".")
    module_path = module.replace(".", "/")
    code_root = _local_path(translated.code.get(logical_id), base, f"{logical_id}.CodeUri")
    handler_file = code_root / f"{module_path}.py"
    if not handler_file.is_file() and (code_root / module_path / "__init__.py").is_file():
        handler_file = code_root / module_path / "__init__.py"

    resources = translated.template.get("Resources") or {}
    layer_paths = []
    for layer in raw.get("Layers") or []:
        pointed = _points_at(layer)
        resource = resources.get(pointed[0] if pointed else "") or {}
        sam_id = (resource.get("Properties") or {}).get("LayerName")
        content = translated.layers.get(str(sam_id))
        if content is not None:
            layer_paths.append((base / content).resolve())

    variables = resolver.resolve(((raw.get("Environment") or {}).get("Variables")) or {})
    environment = {str(key): _scalar(value) for key, value in variables.items()}
    return FunctionSpec(
        logical_id=logical_id,
        name=known[logical_id]["Ref"],
        arn=known[logical_id]["Arn"],
        handler=handler,
        handler_module=module,
        handler_function=function_name,
        code_root=code_root,
        handler_file=handler_file,
        runtime=str(resolver.resolve(raw.get("Runtime")) or "python3.12"),
        timeout=_int(resolver.resolve(raw.get("Timeout")), 3),
        memory_size=_int(resolver.resolve(raw.get("MemorySize")), 128),
        environment=environment,
        events=events,
        layer_paths=tuple(layer_paths),
    )
