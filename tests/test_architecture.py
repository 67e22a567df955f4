"""The tree shows the layers: every import (module-level or inside a function) points
down or sideways within a layer, there is no import cycle, and no module is long."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("harness", "tasks", "backends")

#: layer ranks: a module may import modules of its own rank or lower, never higher
RANKS = {
    "harness.core": 0,
    "harness.numerics": 1,
    "harness.zoo": 1,  # the model zoo and its framework dispatch, above the framework-free core
    "harness.planning": 2,
    "harness.store": 3,
    "harness.execution": 4,
    "harness.reporting": 5,
    "tasks": 2,
    "backends": 2,
    "harness.testing": 6,
    "harness.studies": 6,
    "harness.devtools": 6,
    "harness.cli": 7,
    "harness.__main__": 8,
    # the public API (`harness.api`, re-exported lazily by harness/__init__.py): what task
    # and back-end authors import, from the layers below them
    "harness.api": 2,
    "harness": 2,
}
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _rank(module: str) -> int:
    best = max((k for k in RANKS if module == k or module.startswith(k + ".")), key=len)
    return RANKS[best]


def _imports(name: str, path: Path) -> set[str]:
    """Project modules imported anywhere in `path` (function-level imports included)."""
    out: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: up `level - 1` packages from this one
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], base]).strip(".")
            targets = [*(f"{base}.{a.name}" for a in node.names), base]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def test_every_module_imports() -> None:
    for name in sorted(MODULES):
        importlib.import_module(name)
    for package in PACKAGES:
        assert list(pkgutil.iter_modules(importlib.import_module(package).__path__))


def test_imports_point_down_the_layers() -> None:
    upward = [
        f"{a} ({_rank(a)}) imports {b} ({_rank(b)})"
        for a, targets in GRAPH.items()
        for b in targets
        if _rank(b) > _rank(a) and not b.startswith(a + ".")
    ]
    assert not upward, "\n".join(sorted(upward))


def test_core_imports_nothing_else_of_the_harness() -> None:
    outside = {b for a, targets in GRAPH.items() if a.startswith("harness.core") for b in targets}
    assert all(b.startswith("harness.core") for b in outside), sorted(outside)


def test_no_import_cycle() -> None:
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(GRAPH.get(node, ())):
            # a package importing its own submodules (its __init__) is not a cycle
            if nxt.startswith(node + "."):
                continue
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if state.get(nxt) is None and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for module in sorted(GRAPH):
        if module not in state and (cycle := visit(module)):
            pytest.fail("import cycle: " + " -> ".join(cycle))


def test_no_module_is_long() -> None:
    lengths = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    long = {name: n for name, n in lengths.items() if n > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


#: where the public API must be the only way into the harness: in-tree tasks (their
#: private helpers in tasks/_common aside) and the example plugin, as a plugin author writes
PUBLIC_ONLY = [*(ROOT / "tasks").glob("*.py"), *(ROOT / "examples").rglob("*.py")]


def test_tasks_and_the_example_plugin_import_only_the_public_api() -> None:
    """#27: `from harness import ...`, never a module inside the package."""
    private = []
    for path in PUBLIC_ONLY:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            elif isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            else:
                continue
            private += [
                f"{path.relative_to(ROOT)}:{node.lineno} imports {m}"
                for m in modules
                if m.startswith("harness.")
            ]
    assert not private, "\n".join(private)


def test_the_public_api_loads_on_first_use() -> None:
    """`import harness` loads no numerical library (thread counts are set first); a name of
    `harness.api` loads it; a name outside it is an AttributeError."""
    import subprocess
    import sys

    code = (
        "import sys, harness; assert 'numpy' not in sys.modules; "
        "from harness import TrajectoryTask, register_task, Phase; "
        "from harness import api; assert sorted(api.__all__) == sorted(set(api.__all__)); "
        "assert all(getattr(harness, n) is getattr(api, n) for n in api.__all__); "
        "assert not hasattr(harness, 'protocols_private')"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_the_fault_hook_is_out_of_the_measurement_path() -> None:
    """#27: the test aid that injects faults lives in `harness.execution.faults`, which the
    worker hands to the measurement as its `on_stage`; the measurement imports none of it."""
    for module in ("harness.execution.measure", "harness.execution.measurement"):
        assert "harness.execution.faults" not in _imports(module, MODULES[module]), module
        assert "HARNESS_FAULT" not in MODULES[module].read_text(), module
    assert "harness.execution.faults" in _imports(
        "harness.execution.worker", MODULES["harness.execution.worker"]
    )


def test_renamed_public_names_still_import_with_a_deprecation_warning() -> None:
    """#27 gave the back-end one word in code (`AbstractBackend`, `register_backend`, the
    `backends` package) and the phases their own (`default_phases`): a plugin written against
    the old names still loads, told the new name once per use."""
    import warnings

    import harness

    for old, new in harness.RENAMED.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert getattr(harness, old) is getattr(harness, new)
        assert [str(w.message) for w in caught] == [f"harness.{old} is now harness.{new} (#27)"]
        assert issubclass(caught[0].category, DeprecationWarning)
    assert not hasattr(harness, "register_nothing")
