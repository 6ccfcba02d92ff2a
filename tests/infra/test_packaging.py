"""`pip install cadenza` is what a Lambda needs and nothing more.

The local stack's and the CLI's libraries (moto, werkzeug, PyYAML, rich, the SAM translator) are
the ``local`` extra. These tests import every Lambda entry point in a fresh interpreter whose
import system refuses those libraries (a meta-path finder placed before every other), so an
import of one of them anywhere on the Lambda code path, deferred imports run at import time
included, fails the test. The same finder makes the CLI answer with the extra to install.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from cadenza.cli import LOCAL_EXTRA_MODULES

REPO_ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]

#: Modules of the local extra and of the other extras and tools: none may load on Lambda.
REFUSED = sorted({*LOCAL_EXTRA_MODULES, "cfnlint", "aws_cdk", "constructs", "jsii", "samcli",
                  "flask", "pytest"})

#: The packages a Lambda function of the engine or a Lambda worker runs.
LAMBDA_PACKAGES = ("cadenza.core", "cadenza.replay", "cadenza.service", "cadenza.aws")
LAMBDA_MODULES = ("cadenza", "cadenza.worker", "cadenza.lambda_worker", "cadenza.client",
                  "api.app", "stream.app", "timer.app", "orders.lambda_app")

_REFUSE = """
import importlib.abc, sys
REFUSED = frozenset({refused!r})

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in REFUSED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (refused)", name=name)
        return None

sys.meta_path.insert(0, Refuse())
"""

_IMPORT_ALL = """
import importlib, json, pkgutil, sys
try:
    import rich
except ModuleNotFoundError:
    pass
else:
    raise SystemExit("the finder did not refuse rich")
imported = []
for name in {modules!r}:
    importlib.import_module(name)
    imported.append(name)
for package in {packages!r}:
    module = importlib.import_module(package)
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        importlib.import_module(info.name)
        imported.append(info.name)
loaded = sorted({{m.partition(".")[0] for m in sys.modules}} & REFUSED)
print(json.dumps({{"imported": imported, "loaded": loaded}}))
"""

#: What template.yaml gives every function, with dummy values: the handlers build the service
#: at import time (no request is made).
LAMBDA_ENVIRONMENT = {
    "CADENZA_HISTORY_TABLE": "history", "CADENZA_VISIBILITY_TABLE": "visibility",
    "CADENZA_QUEUE_PREFIX": "stack", "CADENZA_TASK_TOKEN_SECRET": "x" * 32,
    "CADENZA_TIMER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/timers",
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    "POWERTOOLS_TRACE_DISABLED": "1", "POWERTOOLS_SERVICE_NAME": "cadenza-test",
    "PATH": "/usr/bin:/bin",
}


def _run(code: str, *, paths: tuple[Path, ...] = ()) -> subprocess.CompletedProcess[str]:
    python_path = ":".join(str(p) for p in (REPO_ROOT / "sdk", *paths))
    return subprocess.run(
        [sys.executable, "-c", _REFUSE.format(refused=REFUSED) + code],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=110,
        env={**LAMBDA_ENVIRONMENT, "PYTHONPATH": python_path},
    )


def test_lambda_entry_points_import_nothing_of_the_local_extra() -> None:
    result = _run(_IMPORT_ALL.format(modules=LAMBDA_MODULES, packages=LAMBDA_PACKAGES),
                  paths=(REPO_ROOT / "functions", REPO_ROOT / "examples"))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    imported = set(report["imported"])
    assert {"api.app", "cadenza.lambda_worker", "cadenza.aws.store",
            "cadenza.service.engine", "cadenza.replay.loop"} <= imported


def test_the_finder_refuses_what_the_cli_imports() -> None:
    """The control: the same finder does break a module that needs the extra."""
    result = _run("import cadenza.cli.main")
    assert result.returncode != 0
    assert "ModuleNotFoundError" in result.stderr and "refused" in result.stderr


def test_the_cli_names_the_extra_to_install() -> None:
    result = _run("import sys\nfrom cadenza.cli import main\nsys.exit(main(['--help']))")
    assert result.returncode == 2, result.stderr
    assert "pip install 'cadenza[local]'" in result.stderr
    assert "Traceback" not in result.stderr


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0].lower().replace("_", "-")
            for r in requirements}


def test_runtime_dependencies_hold_no_local_or_tool_package() -> None:
    runtime = _names(PYPROJECT["dependencies"])
    assert runtime == {"boto3", "pynamodb", "aws-lambda-powertools", "msgspec", "httpx",
                       "sniffio"}
    extras = PYPROJECT["optional-dependencies"]
    assert {"moto", "werkzeug", "pyyaml", "rich", "aws-sam-translator"} <= _names(extras["local"])
    assert not runtime & _names(extras["local"])


def test_the_dev_extra_installs_the_local_one() -> None:
    """scripts/bootstrap installs `.[dev]`: the README's two commands still get everything."""
    (self_reference,) = [r for r in PYPROJECT["optional-dependencies"]["dev"]
                         if r.startswith("cadenza[")]
    assert {"local", "cdk"} <= set(self_reference[len("cadenza["):-1].split(","))
    assert "'.[dev]'" in (REPO_ROOT / "scripts" / "bootstrap").read_text()
