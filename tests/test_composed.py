"""`harness.core.composed`: the one shape of problem back-ends see (encoder -> core ->
decoder), and the rule that back-ends never branch on model kinds."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.core.composed import compose
from harness.core.models import MLP, AbstractLayer, AbstractMap, Composite, Params

ROOT = Path(__file__).resolve().parents[1]
MODEL_KINDS = {"AbstractMap", "AbstractVectorField", "AbstractLayer", "Composite"}


class _Linear(AbstractLayer):
    """x -> x W, W of shape (n_in, n_out), named `key`."""

    def __init__(self, n_in: int, n_out: int, key: str) -> None:
        self.n_in, self.n_out, self.key = n_in, n_out, key

    @property
    def in_dim(self) -> int:
        return self.n_in

    @property
    def out_dim(self) -> int:
        return self.n_out

    def init_params(self, seed: int) -> Params:
        return {self.key: np.random.default_rng(seed).normal(size=(self.n_in, self.n_out))}

    def apply(self, params: Params, x: Any, xp: Any) -> Any:
        return x @ params[self.key]

    def vjp_numpy(self, params: Params, x: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, Params]:
        return a @ params[self.key].T, {self.key: x.T @ a}


class _Doubling(AbstractMap):
    """z -> 2 z, in three blocks (a discrete core)."""

    @property
    def n_evaluations(self) -> int:
        return 3

    def init_params(self, seed: int) -> Params:
        return {}

    def apply(self, params: Params, y0: Any, xp: Any) -> Any:
        return 2.0 * y0


def _recording_solve(calls: list[tuple[Params, np.ndarray, np.ndarray]]) -> Any:
    """A stand-in solver: records what it was given, returns h0 + t (a state per time)."""

    def solve(core: Params, t: np.ndarray, h0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        calls.append((core, t, h0))
        return h0[None] + t[:, None, None], t

    return solve


def test_a_bare_vector_field_is_its_own_core_with_identity_encoder_and_decoder() -> None:
    model = MLP((2, 8, 2))
    composed = compose(model)
    params = model.init_params(0)
    x, t, calls = np.ones((3, 2)), np.array([0.0, 0.5, 1.0]), []
    ys, reached = composed.states(params, t, x, np, _recording_solve(calls))
    assert composed.composite is None and composed.core is model and not composed.discrete
    assert composed.fixed_nfe is None and composed.field is model
    assert len(calls) == 1 and calls[0][0] is params and calls[0][2] is x  # nothing encoded
    np.testing.assert_array_equal(ys, x[None] + t[:, None, None])
    np.testing.assert_array_equal(reached, t)
    cot = np.ones((3, 3, 2))
    a_states, grads = composed.decode_vjp_numpy(params, ys, cot)
    assert a_states is cot and grads == {} and composed.encode_vjp_numpy(params, x, cot[0]) == {}


def test_a_composite_encodes_solves_the_core_on_its_own_parameters_and_decodes_every_state() -> None:
    model = Composite(_Linear(4, 2, "enc"), MLP((2, 8, 2)), _Linear(2, 3, "dec"))
    composed = compose(model)
    params = model.init_params(1)
    x, t, calls = np.random.default_rng(0).normal(size=(5, 4)), np.array([0.0, 1.0]), []
    ys, _ = composed.states(params, t, x, np, _recording_solve(calls))
    core_params, _, h0 = calls[0]
    assert set(core_params) == set(model.part_keys[1])  # the core never sees the layers' weights
    np.testing.assert_allclose(h0, x @ params["enc"])
    expected = np.stack([(x @ params["enc"] + s) @ params["dec"] for s in t])
    np.testing.assert_allclose(ys, expected)
    assert ys.shape == (2, 5, 3)
    a_states, grads = composed.decode_vjp_numpy(params, np.stack([h0, h0]), np.ones((2, 5, 3)))
    assert a_states.shape == (2, 5, 2) and set(grads) == {"dec"}
    assert set(composed.encode_vjp_numpy(params, x, np.ones((5, 2)))) == {"enc"}


def test_a_discrete_core_is_applied_never_solved_and_its_work_is_its_blocks() -> None:
    model = Composite(_Linear(4, 2, "enc"), _Doubling(), _Linear(2, 3, "dec"))
    composed = compose(model)
    params, x, calls = model.init_params(2), np.ones((2, 4)), []
    ys, _ = composed.states(params, np.array([0.0, 1.0]), x, np, _recording_solve(calls))
    assert calls == [] and composed.discrete and composed.fixed_nfe == (3, 3)
    np.testing.assert_allclose(ys[1], 2.0 * (x @ params["enc"]) @ params["dec"])
    with pytest.raises(TypeError, match="is a map: it has no vector field"):
        _ = composed.field


def test_stationary_times_hold_the_encoded_state_and_decode_it() -> None:
    model = Composite(_Linear(4, 2, "enc"), MLP((2, 8, 2)), _Linear(2, 3, "dec"))
    params, x = model.init_params(3), np.ones((2, 4))
    out = compose(model).stationary(params, np.array([0.5, 0.5, 0.5]), x)
    np.testing.assert_allclose(out, np.repeat(((x @ params["enc"]) @ params["dec"])[None], 3, axis=0))


def test_a_layer_alone_is_not_a_model_to_compose() -> None:
    with pytest.raises(TypeError, match="neither a vector field, a map nor a Composite"):
        compose(_Linear(2, 2, "w"))


def _model_kind_checks(path: Path) -> list[str]:
    """`isinstance(..., K)` / `issubclass` calls in `path` whose classes name a model kind."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in ("isinstance", "issubclass") and len(node.args) == 2:
                names = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
                if names & MODEL_KINDS:
                    found.append(f"{path.name}:{node.lineno}")
    return found


def test_no_back_end_branches_on_model_kinds() -> None:
    """#27: the harness composes encoder and decoder around the core once
    (`ComposedModel`); back-ends only declare the core kinds they build."""
    found = [hit for path in sorted((ROOT / "backends").glob("*.py")) for hit in _model_kind_checks(path)]
    assert found == []
    assert _model_kind_checks(ROOT / "harness" / "core" / "composed.py")  # the check can fail
