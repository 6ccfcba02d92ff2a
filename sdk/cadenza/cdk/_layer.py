"""The Lambda layer: the cadenza package installed with its runtime dependencies, nothing else.

The same recipe as layer/Makefile (which ``sam build`` runs): a wheel of the package, then
``pip install --target`` for Lambda's platform (manylinux wheels for CPython 3.12), so any local
Python 3.11+ builds it without Docker. Docker (the CDK's Python bundling image) is only the
fallback when the local pip fails.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

#: pip's options that pick wheels for Lambda's interpreter instead of this machine's.
LAMBDA_PLATFORM = ("--platform", "manylinux2014_x86_64", "--implementation", "cp",
                   "--python-version", "3.12", "--only-binary=:all:")


def checkout_root() -> Path | None:
    """The repository this package is imported from (an editable install), if it is one."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / "pyproject.toml").is_file() and (root / "sdk" / "cadenza").is_dir() \
        else None


def _source_digest(root: Path) -> str:
    """What the layer is made of: pyproject.toml, the README (the wheel's description) and
    the package's files."""
    digest = hashlib.sha256((root / "pyproject.toml").read_bytes())
    digest.update((root / "README.md").read_bytes())
    for path in sorted((root / "sdk" / "cadenza").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


@jsii.implements(ILocalBundling)
class _LocalPip:
    def __init__(self, *, project: Path | None, requirement: str) -> None:
        self.project = project
        self.requirement = requirement

    def try_bundle(self, output_dir: str, *, image: Any = None, **_: Any) -> bool:
        target = str(Path(output_dir) / "python")
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
        try:
            with tempfile.TemporaryDirectory() as scratch:
                install = self.requirement
                if self.project is not None:
                    # From a copy of what the package is made of: nothing is written into
                    # the project, and builds at once share no setuptools build directory.
                    source, wheels = Path(scratch) / "src", Path(scratch) / "wheel"
                    (source / "sdk").mkdir(parents=True)
                    for name in ("pyproject.toml", "README.md"):
                        shutil.copy2(self.project / name, source / name)
                    shutil.copytree(self.project / "sdk" / "cadenza", source / "sdk" / "cadenza",
                                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
                    subprocess.run([*pip, "wheel", "--no-deps", "--wheel-dir", str(wheels),
                                    str(source)], check=True)
                    (install,) = (str(p) for p in wheels.glob("cadenza-*.whl"))
                subprocess.run([*pip, "install", "--no-compile", "--upgrade", "--target",
                                target, *LAMBDA_PLATFORM, install], check=True)
        except (OSError, subprocess.CalledProcessError, ValueError):
            shutil.rmtree(target, ignore_errors=True)
            return False  # Docker bundling instead
        return True


def cadenza_layer_code(source: str | Path | None = None) -> lambda_.Code:
    """The layer's code. ``source`` is a project directory (with pyproject.toml) or a pip
    requirement; by default the checkout this module is imported from, else the installed
    version of cadenza from the package index."""
    project: Path | None
    if source is None:
        project = checkout_root()
        requirement = "" if project else f"cadenza=={metadata.version('cadenza')}"
    elif Path(source).is_dir():
        project, requirement = Path(source).resolve(), ""
    else:
        project, requirement = None, str(source)
    if project is not None:
        asset_dir, asset_hash = project, _source_digest(project)
        command = ("pip wheel --no-deps --wheel-dir /tmp/wheels /asset-input && "
                   "pip install --target /asset-output/python /tmp/wheels/cadenza-*.whl")
    else:
        asset_dir = Path(__file__).resolve().parent
        asset_hash = hashlib.sha256(requirement.encode()).hexdigest()
        command = f"pip install --target /asset-output/python '{requirement}'"
    return lambda_.Code.from_asset(
        str(asset_dir),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=asset_hash,
        bundling=BundlingOptions(
            image=DockerImage.from_registry("public.ecr.aws/sam/build-python3.12"),
            command=["bash", "-c", command],
            local=_LocalPip(project=project, requirement=requirement),
        ),
    )
