"""template.yaml through the SAM translator: the plain CloudFormation ``sam deploy`` would send.

The local stack reads what AWS reads. SAM's own translator (``samtranslator``, what ``sam
build``/``sam deploy`` and CloudFormation's transform run) expands the serverless resources
into Lambda functions, event source mappings, the HTTP API's OpenAPI body, IAM roles and
EventBridge rules, with the ``Globals`` merged in; :mod:`cadenza.local.template` then consumes
that output. Nothing here interprets SAM.

The translator runs offline: it accepts only S3 code locations, so each function's local
``CodeUri`` (and each layer's ``ContentUri``) is set aside and replaced by a placeholder, and
managed policy names are not looked up in IAM (the local stack enforces no IAM policy).
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from cadenza.local.errors import TemplateError

# The translator warns on every expansion that it recorded metrics nobody published (they are
# for the SAM CLI's telemetry): one line of noise at the top of every `cadenza dev`.
logging.getLogger("samtranslator.metrics").setLevel(logging.ERROR)

__all__ = ["SERVERLESS_TRANSFORM", "Translated", "is_sam", "translate"]

SERVERLESS_TRANSFORM = "AWS::Serverless-2016-10-31"
_PLACEHOLDER = "s3://cadenza-local-placeholder/code.zip"


@dataclass(frozen=True)
class Translated:
    """The CloudFormation SAM makes of a template, and the local paths it cannot carry."""

    template: dict[str, Any]
    #: A function's logical id -> its local CodeUri (relative to the template's directory).
    code: Mapping[str, str]
    #: A SAM layer's logical id -> its local ContentUri. SAM renames the layer's resource
    #: (``<LogicalId><hash>``); its ``LayerName`` keeps the SAM logical id.
    layers: Mapping[str, str]


def is_sam(document: Mapping[str, Any]) -> bool:
    transform = document.get("Transform")
    names = transform if isinstance(transform, list) else [transform]
    return SERVERLESS_TRANSFORM in names


class _NoManagedPolicies:
    """Stands in for the translator's managed-policy loader, which would call IAM."""

    def load(self) -> dict[str, str]:
        return {}


@contextmanager
def _region(region: str) -> Iterator[None]:
    # The translator reads the region of its pseudo parameters from the environment.
    saved = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = region
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = saved


def translate(document: Mapping[str, Any], parameters: Mapping[str, str], *,
              region: str) -> Translated:
    """Run the SAM translator over ``document`` (with its short tags already in long form)."""
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.translator.transform import transform

    sam = copy.deepcopy(dict(document))
    resources: dict[str, Any] = sam.get("Resources") or {}
    function_globals = ((sam.get("Globals") or {}).get("Function")) or {}
    default_code = function_globals.get("CodeUri")
    if isinstance(default_code, str) and not default_code.startswith("s3://"):
        function_globals["CodeUri"] = _PLACEHOLDER
    code: dict[str, str] = {}
    layers: dict[str, str] = {}
    for logical_id, resource in resources.items():
        kind = (resource or {}).get("Type")
        properties = (resource or {}).setdefault("Properties", {})
        if kind == "AWS::Serverless::Function":
            local = properties.get("CodeUri", default_code)
            if isinstance(local, str) and not local.startswith("s3://"):
                code[logical_id] = local
                properties["CodeUri"] = _PLACEHOLDER
        elif kind == "AWS::Serverless::LayerVersion":
            local = properties.get("ContentUri")
            if isinstance(local, str) and not local.startswith("s3://"):
                layers[logical_id] = local
                properties["ContentUri"] = _PLACEHOLDER
    try:
        with _region(region):
            output: dict[str, Any] = transform(sam, dict(parameters),
                                               _NoManagedPolicies())  # type: ignore[arg-type]
    except InvalidDocumentException as error:
        causes = "; ".join(str(cause) for cause in getattr(error, "causes", ())) or str(error)
        raise TemplateError(f"the SAM translator refused the template: {causes}") from error
    return Translated(template=output, code=code, layers=layers)
