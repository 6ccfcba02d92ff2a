"""What the infra tests share: template.yaml as written and as the SAM translator expands it,
and readers of the IAM statements a function's role holds (in SAM's output and CDK's alike)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from cadenza.local.template import load_template

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "template.yaml"


class _NoManagedPolicies:
    """Stands in for samtranslator's ManagedPolicyLoader, which would call IAM."""

    def load(self) -> dict[str, str]:
        return {}


@pytest.fixture(scope="session")
def sam() -> dict[str, Any]:
    return load_template(TEMPLATE)


@pytest.fixture(scope="session")
def translated(sam: dict[str, Any]) -> dict[str, Any]:
    from samtranslator.translator.transform import transform

    document = copy.deepcopy(sam)
    # The translator only accepts S3 code locations; `sam build` puts real ones there.
    document["Globals"]["Function"]["CodeUri"] = "s3://placeholder-bucket/functions.zip"
    for resource in document["Resources"].values():
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            resource["Properties"]["ContentUri"] = "s3://placeholder-bucket/layer.zip"
        if resource["Type"] == "AWS::Serverless::Function" and "CodeUri" in resource["Properties"]:
            resource["Properties"]["CodeUri"] = "s3://placeholder-bucket/code.zip"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # the translator's pseudo parameters
        result: dict[str, Any] = transform(document, {}, _NoManagedPolicies())  # type: ignore[arg-type]
    return result


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(policy_document: dict[str, Any]) -> list[dict[str, Any]]:
    return listed(policy_document["Statement"])


def role_statements(template: dict[str, Any], function: str) -> list[dict[str, Any]]:
    """Every statement the function's role grants: inline policies and attached managed ones
    of the template (an AWS managed policy, which SAM adds when it makes a role, fails)."""
    resources = template["Resources"]
    role_ref = resources[function]["Properties"]["Role"]
    role = resources[role_ref["Fn::GetAtt"][0]]["Properties"]
    statements = [s for policy in role.get("Policies", [])
                  for s in _statements(policy["PolicyDocument"])]
    for arn in role.get("ManagedPolicyArns", []):
        assert isinstance(arn, dict) and "Ref" in arn, f"{function}: AWS managed policy {arn}"
        statements += _statements(resources[arn["Ref"]]["Properties"]["PolicyDocument"])
    return statements


def grants(statements: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(action, resource as JSON) of every Allow statement."""
    return [(action, json.dumps(resource, sort_keys=True))
            for s in statements if s["Effect"] == "Allow"
            for action in listed(s["Action"]) for resource in listed(s["Resource"])]
