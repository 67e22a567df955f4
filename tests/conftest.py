"""Shared fixtures: tasks, data and reference gradients are built once per session."""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import importlib.util

import numpy as np

if importlib.util.find_spec("jax") is not None:
    import jax

    jax.config.update("jax_enable_x64", True)  # before any JAX array exists

from harness import testing
from harness.core import registry
from harness.core.models import Params, flatten, unflatten

registry.discover()

SEED = 0


def problem(task_name: str):
    """(task, data, initial params, reference loss, reference grad) for the default options
    (`harness.testing.problem`, computed once per session)."""
    return testing.problem(registry.TASKS[task_name]()).astuple()


def backend(impl_name: str, task_name: str):
    """A set-up implementation on `problem(task_name)`, or a pytest skip with the reason
    (`harness.testing.backend`)."""
    return testing.backend(registry.IMPLEMENTATIONS[impl_name], problem(task_name)[0])


rel_error = testing.rel_error


def fd_vjp(model: Any, params: Params, y: np.ndarray, a: np.ndarray, h: float = 1e-6):
    """Central differences of phi = sum(a * f(y; params)) in y and in every parameter."""

    def phi(p: Params, yy: np.ndarray) -> float:
        return float(np.sum(a * model.rhs(p, yy, np)))

    a_y = np.zeros_like(y)
    for idx in np.ndindex(y.shape):
        e = np.zeros_like(y)
        e[idx] = h
        a_y[idx] = (phi(params, y + e) - phi(params, y - e)) / (2 * h)
    theta = flatten(params)
    a_p = np.zeros_like(theta)
    for j in range(theta.size):
        e = np.zeros_like(theta)
        e[j] = h
        a_p[j] = (phi(unflatten(theta + e, params), y) - phi(unflatten(theta - e, params), y)) / (2 * h)
    return a_y, a_p


def check_vjp(model: Any, params: Params, y: np.ndarray, a: np.ndarray) -> None:
    """The model's hand-written VJP against `fd_vjp`."""
    a_y, a_p = model.vjp_numpy(params, y, a)
    fd_y, fd_p = fd_vjp(model, params, y, a)
    assert a_y.shape == y.shape
    assert list(a_p) == list(params)
    # h = 1e-6: truncation O(h^2 f''') ~ 1e-12, rounding O(1e-16 |phi| / h) ~ 1e-10
    np.testing.assert_allclose(a_y, fd_y, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(flatten(a_p), fd_p, rtol=1e-6, atol=1e-8)
