"""pytest parametrisations over the registered tasks and back-ends."""

from __future__ import annotations

from typing import Any

from harness.core import registry

__all__ = ["parametrize_backends", "parametrize_tasks"]


def parametrize_tasks(argname: str = "task_name", names: Any = None) -> Any:
    """`@pytest.mark.parametrize(argname, names)` over the registered task names (sorted),
    or over `names`."""
    import pytest

    registry.discover()
    return pytest.mark.parametrize(argname, sorted(registry.TASKS) if names is None else list(names))


def parametrize_backends(argname: str = "impl_name", names: Any = None) -> Any:
    """`@pytest.mark.parametrize(argname, names)` over the registered back-end names (sorted),
    or over `names`."""
    import pytest

    registry.discover()
    return pytest.mark.parametrize(argname, sorted(registry.BACKENDS) if names is None else list(names))
