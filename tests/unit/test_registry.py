"""Registry, workflow definitions and activity definitions."""

from __future__ import annotations

import asyncio
import inspect
from dataclasses import dataclass
from datetime import timedelta

import pytest

from cadenza import activity, workflow
from cadenza.activity import ActivityDefinition
from cadenza.data_converter import DefaultDataConverter
from cadenza.registry import Registry
from cadenza.workflow import WorkflowDefinition


@dataclass
class Item:
    name: str
    qty: int


# --- workflows -----------------------------------------------------------------------------


def test_registry_workflow_decorator_forms_return_the_class() -> None:
    registry = Registry()

    @registry.workflow
    class Plain:
        @workflow.run
        async def run(self) -> None: ...

    @registry.workflow()
    class Called:
        @workflow.run
        async def run(self) -> None: ...

    @registry.workflow(name="custom-name")
    class Named:
        @workflow.run
        async def run(self) -> None: ...

    assert inspect.isclass(Plain) and Plain.__name__ == "Plain"
    assert sorted(registry.workflows) == ["Called", "Plain", "custom-name"]
    assert registry.get_workflow("custom-name").cls is Named
    assert registry.get_workflow("Called").cls is Called
    assert WorkflowDefinition.of(Named).name == "custom-name"


def test_workflow_defn_is_reused_by_registries() -> None:
    @workflow.defn(name="Shipping")
    class Ship:
        @workflow.run
        async def run(self) -> None: ...

    first, second = Registry(), Registry()
    first.workflow(Ship)
    second.workflow(Ship)

    assert first.get_workflow("Shipping") is second.get_workflow("Shipping")
    assert first.get_workflow("Shipping") is WorkflowDefinition.of(Ship)
    # Both registries hold the same definition: merging them is not a clash.
    assert sorted(Registry.of(first, second).workflows) == ["Shipping"]


def test_workflow_definition_collects_run_signals_and_queries() -> None:
    @workflow.defn
    class Order:
        @workflow.run
        async def execute(self, item: Item, note: str = "none") -> int:
            return item.qty

        @workflow.signal(name="add")
        def add(self, item: Item) -> None: ...

        @workflow.signal
        async def cancel_order(self) -> None: ...

        @workflow.query(name="status")
        def status(self) -> str:
            return "ok"

    definition = WorkflowDefinition.of(Order)

    assert definition.name == "Order"
    assert definition.run_method_name == "execute"
    assert definition.run_parameter_types == [Item, str]
    assert definition.result_type is int
    assert set(definition.signals) == {"add", "cancel_order"}
    assert definition.signals["cancel_order"].is_async
    assert not definition.signals["add"].is_async
    assert set(definition.queries) == {"status"}
    converter = DefaultDataConverter()
    assert definition.decode_input(converter, '{"name":"pen","qty":2}') == [Item("pen", 2), "none"]
    assert definition.signals["add"].decode_args(converter, '{"name":"a","qty":1}') == [
        Item("a", 1)
    ]


def test_workflow_definition_validation() -> None:
    with pytest.raises(ValueError, match=r"no @workflow\.run"):

        @workflow.defn
        class NoRun:
            async def run(self) -> None: ...

    with pytest.raises(ValueError, match=r"more than one @workflow\.run"):

        @workflow.defn
        class TwoRuns:
            @workflow.run
            async def a(self) -> None: ...

            @workflow.run
            async def b(self) -> None: ...

    with pytest.raises(ValueError, match="async def"):

        class SyncRun:
            @workflow.run
            def run(self) -> None: ...

    with pytest.raises(ValueError, match="signal 'x' is handled by both"):

        @workflow.defn
        class DuplicateSignal:
            @workflow.run
            async def run(self) -> None: ...

            @workflow.signal(name="x")
            def a(self) -> None: ...

            @workflow.signal(name="x")
            def b(self) -> None: ...

    with pytest.raises(ValueError, match="must be synchronous"):

        class AsyncQuery:
            @workflow.query(name="q")
            async def q(self) -> int:
                return 1

    with pytest.raises(ValueError, match="only positional parameters"):

        @workflow.defn
        class KeywordOnly:
            @workflow.run
            async def run(self, *, flag: bool) -> None: ...

    with pytest.raises(TypeError, match="not a workflow"):
        WorkflowDefinition.of(Item)


def test_duplicate_workflow_name_raises_key_error() -> None:
    registry = Registry()

    @registry.workflow(name="Same")
    class A:
        @workflow.run
        async def run(self) -> None: ...

    with pytest.raises(KeyError, match="Same"):

        @registry.workflow(name="Same")
        class B:
            @workflow.run
            async def run(self) -> None: ...


def test_unknown_names_raise_key_error() -> None:
    registry = Registry()

    with pytest.raises(KeyError, match="not registered"):
        registry.get_workflow("missing")
    with pytest.raises(KeyError, match="not registered"):
        registry.get_activity("missing")


def test_workflow_api_outside_a_workflow_raises() -> None:
    assert not workflow.in_workflow()
    with pytest.raises(RuntimeError, match="only be called from workflow code"):
        workflow.now()
    with pytest.raises(RuntimeError, match="only be called from workflow code"):
        asyncio.run(workflow.execute_activity("a", None))


def test_workflow_info_aliases() -> None:
    info = workflow.WorkflowInfo(
        workflow_id="w", run_id="r", workflow_type="T", task_list="tl", domain="d"
    )

    assert (info.workflow_run_id, info.workflow_task_list, info.workflow_domain) == (
        "r",
        "tl",
        "d",
    )
    assert info.attempt == 0 and info.memo == {}


# --- activities ----------------------------------------------------------------------------


def test_registry_activity_decorator_forms() -> None:
    registry = Registry()

    @registry.activity
    def plain(x: int) -> int:
        return x + 1

    @registry.activity()
    async def called(x: int) -> int:
        return x * 2

    @registry.activity(name="named-one")
    def named(x: int) -> str:
        return str(x)

    assert isinstance(plain, ActivityDefinition)
    assert sorted(registry.activities) == ["called", "named-one", "plain"]
    assert registry.get_activity("named-one") is named
    assert plain.name == "plain" and named.name == "named-one"
    # Outside workflows the definitions behave like the functions.
    assert plain(1) == 2
    assert asyncio.run(called(4)) == 8
    assert named.result_type is str
    assert called.is_async and not plain.is_async
    assert inspect.iscoroutinefunction(called.fn)


def test_activity_defn_and_with_options() -> None:
    @activity.defn(name="greet")
    async def greet(name: str) -> str:
        return f"hi {name}"

    configured = greet.with_options(start_to_close_timeout=timedelta(seconds=5))
    reconfigured = configured.with_options(task_list="other")

    assert greet.options == {}
    assert configured.options == {"start_to_close_timeout": timedelta(seconds=5)}
    assert reconfigured.options == {
        "start_to_close_timeout": timedelta(seconds=5),
        "task_list": "other",
    }
    assert reconfigured.name == "greet"
    assert asyncio.run(reconfigured("bo")) == "hi bo"
    registry = Registry()
    registry.activity(greet)
    assert registry.get_activity("greet") is greet


def test_register_activities_binds_methods() -> None:
    class Inventory:
        def __init__(self, stock: int) -> None:
            self.stock = stock

        @activity.method
        def reserve(self, qty: int) -> bool:
            return qty <= self.stock

        @activity.method(name="inventory.release")
        async def release(self, qty: int) -> int:
            return self.stock + qty

        def helper(self) -> None: ...

    registry = Registry()
    found = registry.register_activities(Inventory(stock=3))

    assert len(found) == 2
    assert sorted(registry.activities) == ["Inventory.reserve", "inventory.release"]
    reserve = registry.get_activity("Inventory.reserve")
    assert reserve.is_bound
    assert reserve.invoke([2]) is True
    assert asyncio.run(registry.get_activity("inventory.release").invoke([1])) == 4
    assert reserve.signature.type_hints == [int]
    with pytest.raises(ValueError, match="unbound method"):
        Registry().register_activity(Inventory.reserve)
    with pytest.raises(ValueError, match=r"no @activity\.method"):
        Registry().register_activities(object())


def test_duplicate_activity_names_raise_key_error() -> None:
    registry = Registry()

    @registry.activity
    def dup() -> None: ...

    with pytest.raises(KeyError, match="dup"):
        registry.activity(name="dup")(lambda: None)


def test_merging_registries() -> None:
    left, right = Registry(), Registry()

    @left.activity
    def a() -> None: ...

    @right.activity
    def b() -> None: ...

    @right.workflow
    class W:
        @workflow.run
        async def run(self) -> None: ...

    merged = left + right
    also = Registry.of(left, right)

    assert sorted(merged.activities) == ["a", "b"]
    assert sorted(also.activities) == ["a", "b"]
    assert list(merged.workflows) == ["W"]
    assert sorted(left.activities) == ["a"]  # inputs unchanged

    clash = Registry()
    clash.activity(name="a")(lambda: None)
    with pytest.raises(KeyError, match="'a'"):
        left + clash
    with pytest.raises(KeyError):
        Registry.of(left, clash)
