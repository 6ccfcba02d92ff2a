"""Imports point down the layers (DESIGN.md, "Shape of the repository").

Every ``import`` and ``from ... import`` of every module under sdk/cadenza and functions/ is
read from its syntax tree, deferred imports inside functions and ``TYPE_CHECKING`` blocks
included, with relative imports resolved to absolute module names (``from .. import core`` in
cadenza/service/engine.py is ``cadenza.core``). :data:`RULES` says, per layer, what it may
import (``only``) and what it must never import (``forbidden``); :data:`RULES` exceptions name
the one file allowed to break a rule and why.

The check is per file: it does not follow what an imported module imports in turn. Two facts
the per-file check cannot see, kept here as tests of their own:

* ``import cadenza.anything`` runs cadenza/__init__.py, the public facade, which imports the
  Worker and through it boto3; so at run time no cadenza module is boto3-free. The rules below
  are about what each layer's own code depends on, which is what keeps the engine testable
  and portable.
* cadenza.testing imports cadenza.service.engine, routes and tokens; the package __init__
  loads the AWS factory only when a caller asks for it (a deferred import this check still
  counts: :func:`test_imports_reach_no_forbidden_module_transitively` xfails), so a fresh
  ``import cadenza.testing`` loads no pynamodb; it still loads boto3 through the root package's
  ``Worker`` (:func:`test_importing_cadenza_testing_loads_no_aws`, boto3 case, xfails).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = (ROOT / "sdk", ROOT / "functions")
STDLIB = "<stdlib>"  # stands for any module of the standard library in ``only``


# --- the rules --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Allowed:
    """An import a rule permits: ``prefix`` (a module and its submodules), anywhere in the layer
    or, with ``file`` (relative to the repository root), only there."""

    prefix: str
    reason: str
    file: str | None = None


@dataclass(frozen=True)
class Rule:
    layer: str  # the module (and its submodules) the rule governs
    why: str
    only: tuple[Allowed, ...] | None = None  # when set, every import must be one of these
    forbidden: tuple[str, ...] = ()  # never imported (directly; transitively where tested)
    exceptions: tuple[Allowed, ...] = ()  # named files that may break ``forbidden``


AWS_SDKS = ("boto3", "botocore", "pynamodb", "aws_lambda_powertools")
WORKER_SIDE = ("cadenza.worker", "cadenza.lambda_worker", "cadenza._tasks",
               "cadenza._activity_executor")
CLIENT_SIDE = ("cadenza.client", "cadenza._http", "httpx")
TOOLS = ("cadenza.testing", "cadenza.local", "cadenza.cli")
STD = Allowed(STDLIB, "the standard library")

RULES: tuple[Rule, ...] = (
    Rule(
        "cadenza.error",
        "a leaf: every layer raises these errors, so they depend on nothing",
        only=(STD,),
    ),
    Rule(
        "cadenza.core",
        "the pure engine: events, decisions, state and the transition function",
        only=(
            STD,
            Allowed("msgspec", "fast, typed (de)serialization of records"),
            Allowed("cadenza.core", "itself"),
            Allowed("cadenza.error", "the transition function refuses commands with them"),
        ),
        forbidden=(*AWS_SDKS, *CLIENT_SIDE, *WORKER_SIDE, *TOOLS, "cadenza.replay",
                   "cadenza.service", "cadenza.aws", "cadenza.registry", "cadenza.workflow",
                   "cadenza.activity", "cadenza._workflow_context",
                   "cadenza._workflow_definition", "cadenza._activity_definition",
                   "cadenza._activity_context", "cadenza.data_converter"),
    ),
    Rule(
        "cadenza.replay",
        "pure: the deterministic event loop that runs workflow code over a history",
        only=(
            STD,
            Allowed("cadenza.replay", "itself"),
            Allowed("cadenza.core", "events, decisions, retry policies"),
            Allowed("cadenza.error", "NonDeterministicError, the failures it raises"),
            Allowed("cadenza._workflow_context", "the context workflow code calls into"),
            Allowed("cadenza._workflow_definition", "the workflow class it instantiates"),
            Allowed("cadenza.data_converter", "payloads of inputs, results and signals"),
        ),
        forbidden=(*AWS_SDKS, *CLIENT_SIDE, *WORKER_SIDE, *TOOLS, "cadenza.service",
                   "cadenza.aws"),
    ),
    Rule(
        "cadenza.service",
        "the engine's operations over ports; adapters are plugged in, never imported",
        forbidden=(*AWS_SDKS, *CLIENT_SIDE, *WORKER_SIDE, *TOOLS, "cadenza.aws"),
        exceptions=(
            Allowed("cadenza.aws", "the factory wires the AWS adapters into the ports",
                    file="sdk/cadenza/service/factory.py"),
            Allowed("boto3", "the factory builds the Scheduler client the timer queue uses",
                    file="sdk/cadenza/service/factory.py"),
        ),
    ),
    Rule(
        "cadenza.aws",
        "adapters implement the service's ports; they never call back up into it",
        forbidden=(*CLIENT_SIDE, *WORKER_SIDE, *TOOLS, "cadenza.service", "cadenza.replay"),
    ),
    Rule(
        "cadenza.testing",
        "the in-memory side: same ports as the AWS adapters, no AWS",
        forbidden=(*AWS_SDKS, "cadenza.aws", "cadenza.local", "cadenza.worker",
                   "cadenza.lambda_worker"),
    ),
    Rule(
        "functions",
        "Lambda entry points are thin: parse the event, call the service, shape the answer",
        only=(
            STD,
            Allowed("cadenza", "the service (and the helpers it exposes)"),
            Allowed("aws_lambda_powertools", "event parsing, batching, logs, metrics"),
        ),
        forbidden=(*WORKER_SIDE, *CLIENT_SIDE, *TOOLS),
    ),
)


# --- the check --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    file: str
    line: int
    target: str  # absolute module name
    statement: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.statement}"


@dataclass(frozen=True)
class Violation:
    rule: Rule
    found: Import
    what: str

    def __str__(self) -> str:
        return f"{self.found}  -> {self.found.target} {self.what} ({self.rule.layer})"


@dataclass
class Module:
    name: str
    file: str  # relative to the repository root
    source: str
    is_package: bool = False
    imports: list[Import] = field(default_factory=list)


def under(name: str, prefix: str) -> bool:
    if prefix == STDLIB:
        return name.partition(".")[0] in sys.stdlib_module_names
    return name == prefix or name.startswith(prefix + ".")


def module_name(path: Path) -> tuple[str, bool]:
    base = ROOT / "sdk" if path.is_relative_to(ROOT / "sdk") else ROOT
    parts = list(path.relative_to(base).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


def read_imports(module: Module, known: set[str]) -> list[Import]:
    """Every import of the module, as the absolute names of what it imports.

    ``from package import name`` imports the submodule ``package.name`` when there is one
    (among ``known``), else ``package`` itself.
    """
    tree = ast.parse(module.source, filename=module.file)
    lines = module.source.splitlines()
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    found: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".") if package else []
                if node.level - 1 > len(parts) - 1:
                    raise ValueError(f"{module.file}:{node.lineno}: relative import beyond "
                                     f"the top-level package")
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                origin = f"{base}.{node.module}" if node.module else base
            else:
                assert node.module is not None
                origin = node.module
            targets = [f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in known else origin
                       for alias in node.names]
        else:
            continue
        statement = lines[node.lineno - 1].strip() if node.lineno <= len(lines) else ""
        for target in dict.fromkeys(targets):
            found.append(Import(module.file, node.lineno, target, statement))
    return sorted(found, key=lambda i: (i.line, i.target))


def load_modules() -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for directory in SOURCE_DIRS:
        for path in sorted(directory.rglob("*.py")):
            name, is_package = module_name(path)
            if name.startswith("functions") or name.startswith("cadenza"):
                modules[name] = Module(name, str(path.relative_to(ROOT)), path.read_text(),
                                       is_package)
    known = set(modules)
    for module in modules.values():
        module.imports = read_imports(module, known)
    return modules


def rule_of(module_name: str, rules: Iterable[Rule] = RULES) -> Rule | None:
    matching = [rule for rule in rules if under(module_name, rule.layer)]
    return max(matching, key=lambda rule: len(rule.layer), default=None)


def check(rule: Rule, imports: Iterable[Import]) -> list[Violation]:
    """The imports (of modules of ``rule.layer``) that break the rule."""
    violations: list[Violation] = []
    for found in imports:
        excepted = any(under(found.target, allowed.prefix) and allowed.file == found.file
                       for allowed in rule.exceptions)
        if excepted:
            continue
        banned = next((p for p in rule.forbidden if under(found.target, p)), None)
        if banned is not None:
            violations.append(Violation(rule, found, f"is forbidden ({banned})"))
        elif rule.only is not None and not any(
            under(found.target, allowed.prefix) and allowed.file in (None, found.file)
            for allowed in rule.only
        ):
            violations.append(Violation(rule, found, "is not among what the layer may import"))
    return violations


def closure(
    start: Module, modules: dict[str, Module], stop: tuple[str, ...] = (),
) -> Iterator[tuple[Import, list[str]]]:
    """Every import reachable from ``start``'s own imports, with the chain of modules leading
    to it; modules under a prefix of ``stop`` are not entered (their import is the finding).
    Importing ``a.b.c`` runs the __init__ of ``a.b`` too; the root facade (cadenza/__init__.py)
    is left out, see the module docstring."""
    seen: set[str] = set()
    queue: list[tuple[Module, list[str]]] = [(start, [start.name])]
    while queue:
        module, chain = queue.pop(0)
        for found in module.imports:
            yield found, chain
            parts = found.target.split(".")
            for depth in range(2, len(parts) + 1):
                name = ".".join(parts[:depth])
                if name in modules and name not in seen and not any(
                        under(name, prefix) for prefix in stop):
                    seen.add(name)
                    queue.append((modules[name], [*chain, name]))


# --- the tests --------------------------------------------------------------------------------

MODULES = load_modules()


def report(violations: list[Violation]) -> None:
    for violation in violations:
        print(violation)
    if violations:
        pytest.fail(f"{len(violations)} import(s) break the layering:\n"
                    + "\n".join(str(v) for v in violations), pytrace=False)


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.layer)
def test_layer_imports_only_what_it_may(rule: Rule) -> None:
    governed = [m for m in MODULES.values() if rule_of(m.name) is rule]
    assert governed, f"no module is governed by {rule.layer}"
    report(check(rule, [i for m in governed for i in m.imports]))


TRANSITIVE = [
    pytest.param("cadenza.core", id="cadenza.core"),
    pytest.param("cadenza.replay", id="cadenza.replay"),
    pytest.param(
        "cadenza.testing", id="cadenza.testing",
        marks=pytest.mark.xfail(
            strict=True,
            reason="cadenza/testing/_env.py imports cadenza.service.engine/routes/tokens; "
                   "cadenza/service/__init__.py's __getattr__ imports service.factory (the AWS "
                   "adapters, pynamodb, boto3) when a caller asks for it: deferred, never run "
                   "by cadenza.testing, but an import this check counts",
        ),
    ),
]


@pytest.mark.parametrize("layer", TRANSITIVE)
def test_imports_reach_no_forbidden_module_transitively(layer: str) -> None:
    rule = rule_of(layer)
    assert rule is not None and rule.layer == layer
    violations: dict[Import, Violation] = {}  # one per offending import, its first chain
    for module in (m for m in MODULES.values() if under(m.name, layer)):
        for found, chain in closure(module, MODULES, stop=rule.forbidden):
            banned = next((p for p in rule.forbidden if under(found.target, p)), None)
            if banned is not None and found not in violations:
                violations[found] = Violation(rule, found, f"is forbidden ({banned}), reached "
                                                           f"by {' -> '.join(chain)}")
    report(sorted(violations.values(), key=lambda v: (v.found.file, v.found.line)))


THROUGH_FACADE = ("cadenza/__init__.py (run by any import of cadenza.*) imports cadenza.worker, "
                  "which imports boto3 and cadenza.aws.tasklists")


@pytest.mark.parametrize("modules", [
    pytest.param(("pynamodb", "cadenza.aws.store"), id="pynamodb"),
    pytest.param(("boto3", "botocore"), id="boto3",
                 marks=pytest.mark.xfail(strict=True, reason=THROUGH_FACADE)),
])
def test_importing_cadenza_testing_loads_no_aws(modules: tuple[str, ...]) -> None:
    """What ``import cadenza.testing`` really loads, in a fresh interpreter."""
    probe = ("import sys, cadenza.testing; "
             f"print(' '.join(m for m in {modules!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True,
                            text=True, cwd=ROOT).stdout.split()
    assert loaded == [], f"import cadenza.testing loads {loaded}"


def test_every_module_is_read() -> None:
    names = set(MODULES)
    for expected in ("cadenza.core.transitions", "cadenza.replay.loop", "cadenza.service.engine",
                     "cadenza.aws.store", "cadenza.testing._env", "functions.api.app"):
        assert expected in names
    assert MODULES["cadenza.service"].is_package


# --- the check itself -------------------------------------------------------------------------


def synthetic(name: str, source: str, *, is_package: bool = False) -> Module:
    file = "sdk/" + name.replace(".", "/") + ("/__init__.py" if is_package else ".py")
    module = Module(name, file, source, is_package)
    module.imports = read_imports(module, set(MODULES) | {name})
    return module


def test_relative_imports_resolve_to_absolute_names() -> None:
    module = synthetic("cadenza.service.fake", (
        "from .. import core, client\n"
        "from ..core.events import HistoryEvent\n"
        "from . import engine\n"
        "from .tokens import TaskTokens\n"
        "import os.path, boto3\n"
    ))
    assert [(i.line, i.target) for i in module.imports] == [
        (1, "cadenza.client"), (1, "cadenza.core"), (2, "cadenza.core.events"),
        (3, "cadenza.service.engine"), (4, "cadenza.service.tokens"), (5, "boto3"),
        (5, "os.path")]
    package = synthetic("cadenza.replay", "from . import loop\nfrom .. import error\n",
                        is_package=True)
    assert [i.target for i in package.imports] == ["cadenza.replay.loop", "cadenza.error"]


def test_the_check_finds_deferred_and_relative_violations() -> None:
    module = synthetic("cadenza.core.fake", (
        "from __future__ import annotations\n"
        "import json\n"
        "from ..error import BadRequestError\n"
        "\n"
        "def later():\n"
        "    import boto3\n"
        "    from ..service import engine\n"
        "    from .. import worker\n"
        "    import requests\n"
        "    return boto3, engine, worker, requests\n"
    ))
    core = rule_of(module.name)
    assert core is not None and core.layer == "cadenza.core"
    violations = check(core, module.imports)
    assert [(v.found.line, v.found.target) for v in violations] == [
        (6, "boto3"), (7, "cadenza.service.engine"), (8, "cadenza.worker"), (9, "requests")]
    assert str(violations[0]) == (
        "sdk/cadenza/core/fake.py:6: import boto3  -> boto3 is forbidden (boto3) (cadenza.core)")
    assert "not among what the layer may import" in str(violations[3])
    with pytest.raises(pytest.fail.Exception, match=r"core/fake.py:7: from \.\.service"):
        report(violations)


def test_an_exception_holds_only_in_the_file_it_names() -> None:
    source = "import boto3\nfrom ..aws.store import DynamoHistoryStore\n"
    service = rule_of("cadenza.service.factory")
    assert service is not None
    factory = synthetic("cadenza.service.factory", source)
    assert check(service, factory.imports) == []
    engine = synthetic("cadenza.service.engine", source)
    assert [v.found.target for v in check(service, engine.imports)] == [
        "boto3", "cadenza.aws.store"]


def test_the_transitive_check_follows_package_inits() -> None:
    modules = dict(MODULES)
    modules["cadenza.replay.fake"] = fake = synthetic(
        "cadenza.replay.fake", "from ..service.tokens import TaskTokens\n")
    reached = {found.target for found, _ in closure(fake, modules)}
    assert "cadenza.service.factory" in reached and "boto3" in reached
