"""Registries build components by name and explain unknown names."""

from __future__ import annotations

import pytest

import nasforge
from nasforge.errors import UnknownNameError
from nasforge.registry import Registry


def test_builtin_names():
    assert "nb201" in nasforge.spaces.names()
    assert {"random", "regularized-evolution"} <= set(nasforge.strategies.names())
    assert "nb201" in nasforge.tabular.names()
    assert "tabular" in nasforge.evaluators.names()


def test_unknown_name_lists_valid_ones_and_the_closest():
    with pytest.raises(UnknownNameError) as info:
        nasforge.strategies.create("randm", nasforge.spaces.create("nb201"))
    message = str(info.value)
    assert "choose from" in message and "random" in message and "Did you mean 'random'" in message
    assert info.value.valid == nasforge.strategies.names()


def test_register_and_refuse_a_second_owner_of_a_name():
    registry: Registry[object] = Registry("widget")

    @registry.register("a")
    class A:
        pass

    assert registry.create("a").__class__ is A
    assert registry.names() == ["a"] and "a" in registry
    with pytest.raises(ValueError, match="already registered"):

        @registry.register("a")
        class B:
            pass


def test_a_broken_leaf_module_does_not_hide_the_others(tmp_path, monkeypatch):
    package = tmp_path / "fakeleaves"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "good.py").write_text(
        "from tests_registry_target import REGISTRY\n"
        "@REGISTRY.register('good')\nclass Good:\n    pass\n"
    )
    (package / "broken.py").write_text("import a_module_that_does_not_exist\n")
    registry: Registry[object] = Registry("widget", "fakeleaves")
    target = tmp_path / "tests_registry_target.py"
    target.write_text("REGISTRY = None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import tests_registry_target

    tests_registry_target.REGISTRY = registry
    assert registry.names() == ["good"]
    with pytest.raises(UnknownNameError, match=r"fakeleaves\.broken.*a_module_that_does_not_exist"):
        registry.get("broken")
