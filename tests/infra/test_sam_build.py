"""`sam build` works from a clone: no Docker, any local Python 3.11+ (the layer is built by
layer/Makefile for Lambda's CPython 3.12 with manylinux wheels), and the layer holds the
package with its runtime dependencies only.

Runs aws-sam-cli from the dev extra against the real template.yaml, building into a temporary
directory. It downloads the runtime dependencies' wheels (pip's cache makes later runs quick).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cadenza.cli import LOCAL_EXTRA_MODULES

REPO_ROOT = Path(__file__).resolve().parents[2]
SAM = Path(sys.executable).with_name("sam")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not SAM.is_file():
        pytest.fail(f"aws-sam-cli is part of the dev extra but {SAM} is missing: "
                    "run ./scripts/bootstrap")
    build_dir = tmp_path_factory.mktemp("sam-build")
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", "PYTHON": sys.executable,
           "PATH": f"{SAM.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("DOCKER_HOST", None)
    result = subprocess.run(
        [str(SAM), "build", "--build-dir", str(build_dir),
         "--cache-dir", str(tmp_path_factory.mktemp("sam-cache"))],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=550,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert "Build Succeeded" in result.stdout
    return build_dir


@pytest.mark.timeout(600)
def test_the_layer_is_the_package_and_its_runtime_dependencies(built: Path) -> None:
    site = built / "CadenzaLayer" / "python"
    assert (site / "cadenza" / "service" / "engine.py").is_file()
    for runtime in ("pynamodb", "aws_lambda_powertools", "msgspec", "httpx", "sniffio", "boto3"):
        assert (site / runtime).is_dir(), runtime
    # Wheels for Lambda's interpreter, not this machine's.
    assert list((site / "msgspec").glob("_core.cpython-312-x86_64-linux-gnu.so"))
    present = {path.name for path in site.iterdir()}
    leaked = sorted(present & {*LOCAL_EXTRA_MODULES, "pytest", "aws_cdk", "samcli", "cfnlint",
                               "flask", "mypy"})
    assert leaked == []


@pytest.mark.timeout(600)
def test_functions_are_their_code_directories(built: Path) -> None:
    for function in ("ApiFunction", "StreamFunction", "TimerFunction"):
        assert (built / function / function.removesuffix("Function").lower() / "app.py").is_file()
        assert not (built / function / "cadenza").exists()  # the package is the layer's
    assert (built / "OrdersWorkerFunction" / "orders" / "lambda_app.py").is_file()
    # The built template points each resource at what was built for it.
    from cadenza.local.template import load_template

    resources = load_template(built / "template.yaml")["Resources"]
    assert resources["CadenzaLayer"]["Properties"]["ContentUri"] == "CadenzaLayer"
    assert resources["ApiFunction"]["Properties"]["CodeUri"] == "ApiFunction"
