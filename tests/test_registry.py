"""Registries build components by name and explain unknown names."""

from __future__ import annotations

import pytest

import nasforge
from nasforge.errors import PluginError, UnknownNameError
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


def test_a_second_thread_waits_for_the_first_discovery(tmp_path, monkeypatch):
    # the first use discovers the entries; a thread asking meanwhile must not be told that
    # a name does not exist
    import threading

    package = tmp_path / "slowleaves"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a_slow.py").write_text("import time\ntime.sleep(0.3)\n")
    (package / "widget.py").write_text(
        "from tests_registry_slow import REGISTRY\n"
        "@REGISTRY.register('late')\nclass Late:\n    pass\n"
    )
    (tmp_path / "tests_registry_slow.py").write_text("REGISTRY = None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import tests_registry_slow

    registry: Registry[object] = Registry("widget", "slowleaves")
    tests_registry_slow.REGISTRY = registry
    start = threading.Barrier(2)
    seen: list[object] = []

    def look() -> None:
        start.wait()
        try:
            seen.append(type(registry.create("late")).__name__)
        except UnknownNameError as error:
            seen.append(error)

    threads = [threading.Thread(target=look) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert seen == ["Late", "Late"]


def _plugin(root, dist, modules, entries, group="nasforge.test-widgets"):
    """A distribution ``dist`` in ``root``: package files and a dist-info with entry points."""
    for path, source in modules.items():
        (root / path).write_text(source)
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entries.items())
    (info / "entry_points.txt").write_text(f"[{group}]\n{lines}")


def test_plugins_register_under_their_entry_point_names(tmp_path, monkeypatch):
    _plugin(
        tmp_path,
        "widgets-extra",
        {"widgets_extra.py": "class Blue:\n    pass\n\ndef make_red():\n    return 'red'\n"},
        {"blue": "widgets_extra:Blue", "red": "widgets_extra:make_red"},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry: Registry[object] = Registry("widget", group="nasforge.test-widgets")
    assert registry.names() == ["blue", "red"] and registry.problems() == []
    assert registry.create("red") == "red" and type(registry.create("blue")).__name__ == "Blue"
    assert registry.get("blue").registry_name == "blue"
    assert "'widgets-extra' 1.0" in registry.origin("blue")
    assert "'blue = widgets_extra:Blue'" in registry.origin("blue")


def test_nasforge_registries_read_one_group_each():
    from nasforge.registry import ENTRY_POINT_GROUPS

    assert nasforge.spaces._REGISTRY.group == "nasforge.spaces"
    assert nasforge.tabular._REGISTRY.group == "nasforge.benchmarks"
    assert set(ENTRY_POINT_GROUPS.values()) == {
        f"nasforge.{g}"
        for g in ("spaces", "strategies", "evaluators", "proxies", "oneshot", "benchmarks")
    }
    assert Registry("widget").group is None


def test_a_plugin_that_fails_is_named_and_the_others_load(tmp_path, monkeypatch, caplog):
    _plugin(
        tmp_path,
        "widgets-good",
        {"widgets_good.py": "class Good:\n    pass\n"},
        {"good": "widgets_good:Good"},
    )
    _plugin(
        tmp_path,
        "widgets-bad",
        {"widgets_bad.py": "raise RuntimeError('boom at import')\n"},
        {"bad": "widgets_bad:Bad", "module-only": "widgets_good"},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry: Registry[object] = Registry("widget", group="nasforge.test-widgets")
    assert registry.names() == ["good"]
    with pytest.raises(PluginError) as info:
        registry.get("bad")
    message = str(info.value)
    assert "'widgets-bad' 1.0" in message and "'bad = widgets_bad:Bad'" in message
    assert "RuntimeError: boom at import" in message and "pip uninstall widgets-bad" in message
    with pytest.raises(
        PluginError, match=r"names a module.*'module-only = widgets_good:ClassName'"
    ):
        registry.get("module-only")
    assert len(registry.problems()) == 2
    assert "boom at import" in caplog.text
    with pytest.raises(UnknownNameError, match="Did you mean 'good'"):
        registry.get("goood")


def test_a_plugin_cannot_take_a_name_already_registered(tmp_path, monkeypatch):
    registry: Registry[object] = Registry("widget", group="nasforge.test-widgets")
    target = tmp_path / "widget_target.py"
    target.write_text("REGISTRY = None\n")
    _plugin(
        tmp_path,
        "widgets-a",
        {"widgets_a.py": "class Mine:\n    pass\n"},
        {
            "same": "widgets_a:Mine",
            "builtin": "widgets_a:Mine",
        },
    )
    _plugin(
        tmp_path,
        "widgets-b",
        {
            "widgets_b.py": "from widget_target import REGISTRY\n\n"
            "@REGISTRY.register('builtin')\nclass Theirs:\n    pass\n"
        },
        {"other": "widgets_b:Theirs"},
    )
    _plugin(
        tmp_path,
        "widgets-c",
        {"widgets_c.py": "class Same:\n    pass\n"},
        {"same": "widgets_c:Same"},
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import widget_target

    widget_target.REGISTRY = registry

    @registry.register("builtin")
    class Builtin:
        pass

    registry._discover()
    assert registry.get("builtin") is Builtin  # nasforge's own entries keep their names
    assert registry.get("same").__module__ == "widgets_a"  # the first distribution keeps it
    builtin, decorated, same = registry.problems()
    assert builtin.startswith("widget 'builtin' of plugin distribution 'widgets-a' 1.0 (entry ")
    assert "already registered by tests.test_registry." in builtin and "Builtin" in builtin
    # a plugin module whose decorator takes a taken name: both origins named
    assert decorated.startswith(
        "widget 'builtin' of widgets_b.Theirs from plugin distribution 'widgets-b' 1.0"
    )
    assert "already registered by tests.test_registry." in decorated
    assert same.startswith("widget 'same' of plugin distribution 'widgets-c' 1.0")
    assert "already registered by plugin distribution 'widgets-a' 1.0" in same
    with pytest.raises(
        PluginError, match=r"'other' is unavailable: widget 'builtin' of widgets_b.Theirs"
    ):
        registry.get("other")
