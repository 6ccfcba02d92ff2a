"""The README's unit test of a workflow runs as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parents[2] / "README.md"


async def test_the_readme_unit_test_passes() -> None:
    section = README.read_text().split("### Testing a workflow without a stack", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None, "the README lost its unit-test example"
    assert len(code.group(1).splitlines()) <= 30
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(code.group(1), str(README), "exec"), namespace)
    await namespace["test_order"]()
