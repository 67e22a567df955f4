"""Forward and backward function evaluations of torchdiffeq's adjoint (`odeint_adjoint`,
dopri5) on small neural ODEs, with and without the seminorm of Kidger, Chen and Lyons
("'Hey, that's not an ODE': faster ODE adjoints via seminorms", ICML 2021).

The setting where the seminorm paper's saving applies: a neural ODE whose parameters
outnumber its state many times over (an MLP d-W-W-d on a batch of B states of size d:
about W^2 parameters against B d state entries), and one output time, so that the backward
solve is one long integral of the parameter adjoint rather than many short ones restarted
at every observation.

Three backward norms (`NORMS`): torchdiffeq's default, a mixed norm (the largest of the RMS
norms of time, state, state adjoint and parameter adjoint, each taken apart); its
seminorm (`adjoint_options=dict(norm="seminorm")`: the same without the parameter adjoint,
an integral that feeds nothing back into the solve); and one RMS norm over the whole
augmented state, parameter adjoint included, as the seminorm paper describes the usual
norm (its many entries then set the step).  The claim is judged against torchdiffeq's
default, what a user of torchdiffeq switches from; the full RMS norm is shown beside it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["NORMS", "STATE", "adjoint_evaluations"]

#: the backward norms compared
NORMS = ("default", "seminorm", "rms")

#: state size d and batch B of every network: 16 states of 4
STATE = (16, 4)


def _network(width: int, seed: int) -> Any:
    import torch

    torch.manual_seed(seed)
    d = STATE[1]
    mlp = torch.nn.Sequential(
        torch.nn.Linear(d, width), torch.nn.Tanh(), torch.nn.Linear(width, width), torch.nn.Tanh(),
        torch.nn.Linear(width, d),
    ).double()  # fmt: skip

    class Field(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mlp = mlp
            self.calls = 0

        def forward(self, t: Any, y: Any) -> Any:
            self.calls += 1
            return self.mlp(y)

    return Field()


def _full_rms(tensors: Any) -> Any:
    """One RMS norm over every entry of the augmented state (t, y, a_y, a_theta...)."""
    import torch

    flat = torch.cat([x.reshape(-1) for x in tensors])
    return flat.pow(2).mean().sqrt()


def _one(width: int, seed: int, norm: str, t1: float, tol: float) -> dict[str, Any]:
    import torch
    import torchdiffeq

    field = _network(width, seed)
    generator = torch.Generator().manual_seed(10_000 + seed)
    y0 = torch.randn(STATE, generator=generator, dtype=torch.float64)
    target = torch.randn(STATE, generator=generator, dtype=torch.float64)
    t = torch.tensor([0.0, t1], dtype=torch.float64)
    chosen = {"default": None, "seminorm": "seminorm", "rms": _full_rms}[norm]
    options = {} if chosen is None else {"adjoint_options": {"norm": chosen}}
    ys: Any = torchdiffeq.odeint_adjoint(field, y0, t, method="dopri5", rtol=tol, atol=tol, **options)
    forward, field.calls = field.calls, 0
    torch.mean((ys[-1] - target) ** 2).backward()
    return {
        "width": width, "seed": seed, "norm": norm, "t1": t1, "tol": tol,
        "parameters": sum(p.numel() for p in field.parameters()), "state": y0.numel(),
        "nfe_forward": forward, "nfe_backward": field.calls,
    }  # fmt: skip


def adjoint_evaluations(
    widths: Sequence[int], seeds: Sequence[int], *, t1: float, tol: float
) -> list[dict[str, Any]]:
    """Per width, seed and backward norm (`NORMS`): forward and backward evaluations of
    `odeint_adjoint` (the same network, initial state and target for every norm),
    parameter and state counts."""
    return [_one(w, s, norm, t1, tol) for w in widths for s in seeds for norm in NORMS]
