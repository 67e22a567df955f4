"""Parameter grids, fault isolation, resumption and reproducibility verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import cli
from harness.core.errors import UsageError
from harness.planning.grid import expand_grid, split_selection
from harness.planning.matrix import plan
from harness.store.compare import compare_runs
from harness.store.results import ResultsStore, load_records


def test_split_selection_keeps_commas_inside_brackets() -> None:
    assert split_selection("a[x=1,2],b, c[y=3]") == ["a[x=1,2]", "b", "c[y=3]"]
    with pytest.raises(UsageError, match="unbalanced"):
        split_selection("a[x=1")


def test_expand_grid_is_a_product() -> None:
    name, points = expand_grid("jax-checkpoint[rtol=1e-3,1e-5,atol=1e-8;max_steps=100,200]")
    assert name == "jax-checkpoint"
    assert len(points) == 4 and points[0] == {"rtol": "1e-3", "atol": "1e-8", "max_steps": "100"}
    assert expand_grid("numpy-adjoint") == ("numpy-adjoint", [{}])
    with pytest.raises(UsageError, match="before any key"):
        expand_grid("x[1,2]")


def _plan(task: str, impl: str, **kw):
    return plan(task, impl, sets=kw.get("sets", {}), seeds=kw.get("seeds", [0]), iters=0, device="cpu",
                dtype="float64")  # fmt: skip


def test_plan_expands_grids_seeds_and_drops_duplicates() -> None:
    cells = _plan("lotka_volterra[t1=5,10]", "numpy-adjoint[tol=1e-4,1e-6],rk4-unrolled", seeds=[0, 1])
    assert len(cells) == 2 * (2 + 1) * 2
    rk4 = [c for c in cells if c["impl"] == "rk4-unrolled"]
    assert all(c["solver"] == {"dt": 0.1} for c in rk4)
    adjoint = {(c["task_options"]["t1"], c["solver"]["rtol"], c["solver"]["atol"], c["seed"])
               for c in cells if c["impl"] == "numpy-adjoint"}  # fmt: skip
    assert (5.0, 1e-4, 1e-4, 1) in adjoint
    # a task grid over rtol does not multiply RK4, which ignores rtol
    assert len(_plan("lotka_volterra[rtol=1e-4,1e-6]", "rk4-unrolled")) == 1


@pytest.mark.parametrize(
    ("task", "impl", "message"),
    [
        ("lotka_volterra", "numpy-adjoint[dt=0.1]", "unknown grid key 'dt' for back-end numpy-adjoint"),
        ("lotka_volterra[colour=red]", "numpy-adjoint", "unknown grid key 'colour' for task lotka_volterra"),
        ("lotka_volterra[t1=long]", "numpy-adjoint", "bad t1=long"),
    ],
)
def test_bad_grids_are_one_line_errors(task: str, impl: str, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("[", r"\[")):
        _plan(task, impl)


def _run(tmp: Path, impls: str, *extra: str) -> int:
    return cli.main(["run", "--task", "linear_adjoint", "--impl", impls, "--iters", "2", "--repeats", "1",
                     "--no-memory", "--quiet", *extra])  # fmt: skip


@pytest.mark.parametrize(
    ("fault", "extra", "reason"),
    [
        ("rk4-unrolled:crash", (), "train: crashed: killed by signal SIGKILL"),
        # the cell reaches its hang in about 3 s (torch's import, the gradient, the timings):
        # 15 s leaves room on a loaded machine, and the test waits the timeout out
        ("rk4-unrolled:hang:nfe", ("--timeout", "15"), "nfe: timed out after 15 s"),
        ("rk4-unrolled:nan", (), "value_and_grad: FloatingPointError: non-finite loss or gradient"),
        ("rk4-unrolled:nan:train", (), "train: FloatingPointError: training diverged"),
    ],
    ids=["crash", "hang", "nan", "nan-at-train"],
)
def test_a_failing_backend_leaves_the_others_intact(
    tmp_path: Path, monkeypatch, fault, extra, reason
) -> None:
    monkeypatch.setenv("HARNESS_FAULT", fault)
    out = tmp_path / "run"
    assert _run(tmp_path, "rk4-unrolled,numpy-adjoint", "--out", str(out), *extra) == 1  # a cell failed
    records = {r["impl"]: r for r in load_records(out)}
    assert records["numpy-adjoint"]["status"] == "ok"
    assert records["numpy-adjoint"]["grad_rel_error"] < 1e-8
    failed = records["rk4-unrolled"]
    assert failed["status"] == "failed" and failed["reason"].startswith(reason), failed["reason"]
    if fault != "rk4-unrolled:nan":  # measured before the fault: kept
        assert failed["grad_rel_error"] < 1e-8 and failed["time_median_s"] > 0


def test_resume_skips_finished_cells(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert _run(tmp_path, "numpy-adjoint", "--out", str(out)) == 0
    first = load_records(out)
    assert _run(tmp_path, "numpy-adjoint,rk4-unrolled", "--resume", str(out)) == 0
    records = load_records(out)
    assert [r["impl"] for r in records] == ["numpy-adjoint", "rk4-unrolled"]
    assert records[0] == first[0]
    assert records[1]["run_id"] != first[0]["run_id"]


def test_store_append_is_atomic_and_keeps_earlier_records(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path, {"x": 1})
    for i in range(3):
        store.append({"task": "t", "impl": f"i{i}", "status": "ok", "cell_id": f"c{i}"})
    assert [r["impl"] for r in load_records(tmp_path)] == ["i0", "i1", "i2"]
    assert store.finished_ids() == {"c0", "c1", "c2"}
    assert not list(tmp_path.glob(".*.tmp"))


def _record(**kw):
    base = {"task": "lotka_volterra", "impl": "numpy-adjoint", "seed": 0, "device": "cpu", "dtype": "float64",
            "cell_id": "c1", "status": "ok", "loss_init": 6.27, "grad_rel_error": 1.0e-8, "nfe_forward": 87,
            "nfe_backward": 707, "time_median_s": 0.018, "time_first_s": 0.02, "train_loss_final": 0.27,
            "metrics": {"fit_rmse": 0.5}, "params": {"rtol": 1e-7}}  # fmt: skip
    return {**base, **kw}


def test_compare_verdicts() -> None:
    a = [_record()]
    assert compare_runs(a, [_record(time_median_s=0.025)])[0].reproduced
    assert not compare_runs(a, [_record(time_median_s=0.05)])[0].reproduced
    assert compare_runs(a, [_record(time_median_s=0.05)], times=False)[0].reproduced
    verdict = compare_runs(
        a, [_record(cell_id="c2", params={"rtol": 1e-6}, grad_rel_error=1e-7, nfe_backward=500)]
    )[0]
    assert not verdict.reproduced
    assert any("option rtol: 1e-07 vs 1e-06" in d for d in verdict.differences)
    assert any(d.startswith("grad_rel_error") for d in verdict.differences)
    assert [v.differences for v in compare_runs(a, [])] == [["missing in B"]]


def test_compare_command_exit_status(tmp_path: Path, capsys) -> None:
    for name, rec in (("a", _record()), ("b", _record()), ("c", _record(loss_init=6.3))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "records.jsonl").write_text(json.dumps(rec) + "\n")
    assert cli.main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert "1 of 1 cells reproduced" in capsys.readouterr().out
    assert cli.main(["compare", str(tmp_path / "a"), str(tmp_path / "c")]) == 1
    assert "loss_init: 6.27 vs 6.3" in capsys.readouterr().out


def test_compare_common_cells_only(tmp_path: Path, capsys) -> None:
    """`compare A B` counted the cells B lacks as differing and exited 1 (#26); `--common`
    compares the cells both hold and says how many each lacks."""
    folders = {"a": [_record(), _record(cell_id="c2", impl="jax-checkpoint")], "b": [_record()], "c": []}
    for name, records in folders.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    a, b, c = (str(tmp_path / name) for name in folders)
    assert cli.main(["compare", a, b]) == 1
    assert "1 of 2 cells reproduced, 1 differ" in capsys.readouterr().out
    assert cli.main(["compare", a, b, "--common"]) == 0
    assert "1 of 1 cells reproduced; 1 not compared (missing in B)" in capsys.readouterr().out
    assert cli.main(["compare", b, a, "--common"]) == 0
    assert "1 not compared (missing in A)" in capsys.readouterr().out
    assert cli.main(["compare", a, c, "--common"]) == 1
    assert "no cell in common" in capsys.readouterr().err


def test_iters_is_a_short_run_with_no_polish_unless_asked() -> None:
    """`--iters 3` ran the task's L-BFGS polish after 3 Adam steps (up to 3000 evaluations
    on `linear`, 16 s a cell); it means N iterations in all.  `--set iters=N` and an explicit
    `--set polish=M` keep the polish."""
    from harness.planning.matrix import plan

    def train(sets: dict, iters: int | None) -> dict:
        (cell,) = plan(
            "linear", "numpy-adjoint", sets=sets, seeds=[0], iters=iters, device="cpu", dtype="float64"
        )
        return cell["train"]

    assert (train({}, 3)["iters"], train({}, 3)["polish"]) == (3, 0)
    assert train({"polish": "7"}, 3)["polish"] == 7
    assert train({"iters": "3"}, None)["polish"] == 3000 == train({}, None)["polish"]
