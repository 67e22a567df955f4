"""The `memory-scaling` study (#14 item 3): the two sweeps it plans, the exponents it fits
(on synthetic records, where the slopes are known), the probe's RSS following the live
memory, and one small run end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness import cli
from harness.execution.build import build_cell
from harness.execution.measurement import MALLOC_NOTE, measure_memory_isolated
from harness.planning.matrix import plan
from harness.studies import STUDIES
from harness.studies.memory_scaling import exponent_rows

STUDY = STUDIES["memory-scaling"]


def _args(*argv: str) -> Any:
    return cli._parser().parse_args(["study", "memory-scaling", *argv])


def test_steps_sweep_keeps_the_observations_and_observations_sweep_keeps_the_spacing() -> None:
    args = _args("--impl", "numpy-adjoint,jax-checkpoint")
    steps, obs = STUDY.sweep_cells(args, "steps"), STUDY.sweep_cells(args, "observations")
    horizons = [2.0, 4.0, 8.0, 16.0, 32.0]
    for cells in (steps, obs):
        assert {c["task"] for c in cells} == {"linear"}
        assert {c["task_options"]["batch"] for c in cells} == {256}  # the default problem size
        assert sorted({c["task_options"]["t1"] for c in cells}) == horizons
        # numpy-adjoint, jax-checkpoint at equinox's default count and at 4 and 16
        assert len(cells) == len(horizons) * 4
    assert {c["task_options"]["n_obs"] for c in steps} == {11}
    assert {(c["task_options"]["t1"], c["task_options"]["n_obs"]) for c in obs} == {
        (t1, round(t1 / 0.1) + 1) for t1 in horizons
    }
    counts = {c["impl_options"].get("checkpoints", 0) for c in steps if c["impl"] == "jax-checkpoint"}
    assert counts == {0, 4, 16}


def test_no_extra_checkpoint_runs_without_jax_checkpoint_or_with_none() -> None:
    for argv in (("--impl", "numpy-adjoint"), ("--impl", "jax-checkpoint", "--checkpoints", "none")):
        cells = STUDY.cells(_args(*argv, "--horizons", "1,2"))
        assert len(cells) == 2 * 2  # two sweeps, two horizons, one variant


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sweeps", "steps,time"], "bad --sweeps=steps,time: 'time' is not one of steps, observations"),
        (["--checkpoints", "0"], "bad --checkpoints=0"),
    ],
)
def test_bad_sweep_options_are_one_line_usage_errors(argv: list[str], message: str, capsys) -> None:
    code = cli.main(["study", "memory-scaling", "--impl", "jax-checkpoint", *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1


def _rec(
    impl: str, t1: float, n_obs: int, nfe: int, framework: float, rss: float, **extra: Any
) -> dict[str, Any]:
    params = {"t1": t1, "n_obs": n_obs, **extra}
    return {
        "task": "linear", "impl": impl, "status": "ok", "params": params, "resolved_params": params,
        "nfe_forward": nfe, "peak_framework_bytes": framework, "peak_rss_bytes": rss,
        "solver_checkpoints": extra.get("checkpoints"),
    }  # fmt: skip


def test_exponents_against_steps_and_against_observations() -> None:
    """Storing every step: memory ~ steps; an adjoint: flat in steps, growing with the
    observations it keeps (k = 0.5 here); jax-checkpoint groups apart by checkpoint count."""
    steps = [
        r
        for t1, nfe in ((2, 40), (4, 80), (8, 160))
        for r in (
            _rec("rk4-unrolled", t1, 11, nfe, 1e5 * nfe, 2e5 * nfe),
            _rec("numpy-adjoint", t1, 11, nfe, 3e6, 4e6),
            _rec("jax-checkpoint", t1, 11, nfe, 1e6, 1e6, checkpoints=4),
            _rec("jax-checkpoint", t1, 11, nfe, 4e6, 4e6, checkpoints=16),
        )
    ]
    obs = [_rec("numpy-adjoint", t1, n, 10 * n, 1e5 * n**0.5, 1e5 * n**0.5) for t1, n in ((2, 21), (8, 81))]
    rows = {row["back-end"]: row for row in exponent_rows({"steps": steps, "observations": obs})}
    assert rows["rk4-unrolled"]["k steps (framework)"] == pytest.approx(1.0)
    assert rows["rk4-unrolled"]["k steps (rss)"] == pytest.approx(1.0)
    assert rows["rk4-unrolled"]["steps range"] == "40-160"
    assert rows["numpy-adjoint"]["k steps (framework)"] == pytest.approx(0.0, abs=1e-12)
    assert rows["numpy-adjoint"]["k observations (rss)"] == pytest.approx(0.5)
    assert rows["jax-checkpoint (checkpoints=4)"]["checkpoints"] == 4
    assert rows["jax-checkpoint (checkpoints=16)"]["k steps (framework)"] == pytest.approx(0.0, abs=1e-12)


def test_steady_state_rss_follows_the_stored_steps() -> None:
    """rk4-unrolled keeps every step (22 MB here): the steady-state peak RSS must show it.
    With glibc's default malloc it read 0.3 MB (freed blocks of the first call reused)."""
    (cell,) = plan("linear[batch=256,t1=4,n_obs=11]", "rk4-unrolled", sets={}, seeds=[0], iters=0,
                   device="cpu", dtype="float64")  # fmt: skip
    build_cell(cell)  # fails here, not in the child, when the back-end is missing
    out = measure_memory_isolated(cell)
    assert MALLOC_NOTE in out["rss_method"]
    assert out["peak_framework_bytes"] > 10e6
    assert out["peak_rss_bytes"] > 0.5 * out["peak_framework_bytes"]


def test_a_small_run_end_to_end(tmp_path: Path, capsys) -> None:
    out = tmp_path / "ms"
    code = cli.main(
        ["study", "memory-scaling", "--task", "linear[batch=8,hidden=8]", "--impl", "numpy-adjoint",
         "--horizons", "1,2", "--repeats", "1", "--quiet", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    assert "memory ~ x^k" in capsys.readouterr().out
    for sweep in ("steps", "observations"):
        assert len((out / sweep / "records.jsonl").read_text().splitlines()) == 2
        assert (out / sweep / "report.md").exists()
    (row,) = json.loads((out / "memory_scaling.json").read_text())["exponents"]
    assert row["back-end"] == "numpy-adjoint" and row["k steps (framework)"] is not None
    assert (out / "figures" / "memory_sweeps.png").exists()
