"""The two reference gradients agree with each other (they share only the model's VJP)."""

from __future__ import annotations

import pytest
from conftest import problem, rel_error

from harness.numerics.reference import adjoint_reference_gradient


@pytest.mark.parametrize("task_name", ["linear", "lotka_volterra", "double_pendulum"])
def test_adjoint_reference_matches_forward_sensitivities(task_name: str) -> None:
    """Both at rtol = atol = 1e-12: agreement to 1e-10 relative leaves room for the solvers'
    global errors (measured: 5e-14 to 7e-13)."""
    task, data, params, loss, grad = problem(task_name)
    adj_loss, adj_grad, how = adjoint_reference_gradient(task.model, params, data)
    assert adj_loss == pytest.approx(loss, rel=1e-10)
    assert rel_error(adj_grad, grad) < 1e-10
    assert "adjoint" in how
