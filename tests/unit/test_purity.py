"""The engine's brain is pure: core/ and replay/ never reach AWS, the clock or randomness."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "sdk" / "cadenza"
FORBIDDEN_MODULES = {"boto3", "botocore", "pynamodb", "random", "secrets", "time", "uuid",
                     "socket", "httpx", "threading"}
FORBIDDEN_CALLS = {"now", "utcnow", "today"}  # datetime.now() and friends


def sources() -> list[Path]:
    return sorted([*PACKAGE.joinpath("core").rglob("*.py"),
                   *PACKAGE.joinpath("replay").rglob("*.py")])


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_is_pure(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module.split(".")[0]]
        else:
            names = []
        assert not set(names) & FORBIDDEN_MODULES, f"{path.name} imports {names}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            target = node.func.value
            if isinstance(target, ast.Name) and target.id in {"datetime", "date"}:
                assert node.func.attr not in FORBIDDEN_CALLS, f"{path.name} reads the clock"
