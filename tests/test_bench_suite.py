"""The asv suite (benchmarks/) without asv, and the merge of results folders.

The suite must import without asv, cover every registered task and back-end, skip (raise
`NotImplementedError` in `setup`) where a back-end's library is missing, and run; the
merge must give one table with the package versions of each run as columns.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

from harness.core import registry
from harness.store.merge import find_runs, merge_runs, merge_table

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # benchmarks/ is not an installed package

MODULES = ("bench_gradient", "bench_solve", "bench_accuracy")


def _classes() -> list[type]:
    out = []
    for name in MODULES:
        module = importlib.import_module(f"benchmarks.{name}")
        out += [v for v in vars(module).values() if isinstance(v, type) and v.__module__ == module.__name__]
    return out


def _benchmark_methods(cls: type) -> list[str]:
    return [n for n in dir(cls) if n.startswith(("time_", "peakmem_", "track_"))]


def test_suite_imports_without_asv() -> None:
    assert "asv" not in sys.modules and "asv_runner" not in sys.modules
    classes = _classes()
    assert classes, "no benchmark classes found"
    assert "asv" not in sys.modules and "asv_runner" not in sys.modules


@pytest.mark.parametrize("cls", _classes(), ids=lambda c: c.__name__)
def test_params_cover_the_registries(cls: type) -> None:
    registry.discover()
    assert cls.param_names == ("task", "impl")
    tasks, impls = cls.params
    assert tasks == sorted(registry.TASKS)
    assert impls == sorted(registry.BACKENDS)
    assert _benchmark_methods(cls)
    for name in _benchmark_methods(cls):
        if name.startswith("track_"):
            assert getattr(cls, name).unit, f"{cls.__name__}.{name} has no unit"


def test_cells_are_the_command_lines() -> None:
    from benchmarks import common
    from harness.planning.matrix import plan

    for task in common.TASKS:
        for impl in common.IMPLS:
            expected = plan(task, impl, sets={}, seeds=[0], iters=None, device="cpu", dtype="float64")
            assert [common.make_cell(task, impl)] == expected


def test_setup_skips_an_unavailable_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmarks import bench_gradient, bench_solve, common

    cls = registry.get_backend("numpy-adjoint")
    monkeypatch.setattr(cls, "requires", ("no_such_module_for_this_test",))
    for bench in (bench_gradient.ValueAndGrad(), bench_gradient.FirstCall(), bench_solve.ForwardSolve()):
        with pytest.raises(NotImplementedError, match="no_such_module_for_this_test"):
            bench.setup("lotka_volterra", "numpy-adjoint")
    from benchmarks import bench_accuracy

    assert "skip" in bench_accuracy.measure("lotka_volterra", "numpy-adjoint")
    with pytest.raises(NotImplementedError):
        common.require("lotka_volterra", "numpy-adjoint")


def test_tiny_benchmarks_run() -> None:
    from benchmarks import bench_accuracy, bench_gradient, bench_solve

    args = ("linear_adjoint", "numpy-adjoint")
    solve = bench_solve.ForwardSolve()
    solve.setup(*args)
    solve.time_forward_solve(*args)
    grad = bench_gradient.ValueAndGrad()
    grad.setup(*args)
    grad.time_value_and_grad(*args)
    first = bench_gradient.FirstCall()
    first.setup(*args)
    assert 0 < first.track_first_call_time(*args) < 10
    entry = bench_accuracy.measure(*args)
    work = bench_accuracy.GradientWork()
    cache = {"linear_adjoint/numpy-adjoint": entry}
    work.setup(cache, *args)
    assert work.track_grad_rel_error(cache, *args) < 1e-8  # closed-form reference (conformance bound)
    assert work.track_nfe_forward(cache, *args) > 0 and work.track_nfe_backward(cache, *args) > 0


def _write_run(folder: Path, versions: dict[str, str], time_s: float) -> None:
    folder.mkdir(parents=True)
    base = {"run_id": folder.name, "status": "ok", "seed": 0, "params": {"rtol": 1e-7}}
    rows = [
        {**base, "task": task, "impl": "jax-checkpoint", "time_median_s": time_s, "grad_rel_error": 1e-8}
        for task in ("lotka_volterra", "double_pendulum")
    ]
    env = {"git_commit": "abc", "date": "2026-01-01", "versions": versions}
    lines = [json.dumps({**row, "env": env}) for row in rows]
    (folder / "records.jsonl").write_text("\n".join(lines) + "\n")


def test_merge_runs_gives_one_table_with_versions(tmp_path: Path) -> None:
    _write_run(tmp_path / "cmp-a", {"numpy": "2.4.6", "jax": "0.10.2", "jaxlib": "0.10.2"}, 1e-3)
    _write_run(tmp_path / "cmp-b", {"numpy": "2.4.6", "jax": "0.9.2", "jaxlib": "0.9.2"}, 2e-3)
    frame = merge_runs([tmp_path])  # a folder of results folders
    assert len(frame) == 4
    assert set(frame["source"]) == {"cmp-a", "cmp-b"}
    assert {"version.jax", "version.jaxlib", "version.numpy", "versions"} <= set(frame.columns)
    assert set(frame["versions"]) == {"jax 0.10.2, jaxlib 0.10.2", "jax 0.9.2, jaxlib 0.9.2"}
    assert frame.loc[frame["source"] == "cmp-b", "time_median_ms"].tolist() == pytest.approx([2.0, 2.0])
    assert "jax 0.9.2" in merge_table(frame)
    same = merge_runs([tmp_path / "cmp-a", tmp_path / "cmp-a"])  # given twice: read once
    assert len(same) == 2 and set(same["versions"]) == {"same versions"}


def test_merge_figure_and_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("seaborn")
    from harness.store import merge

    _write_run(tmp_path / "runs" / "cmp-a", {"torchdiffeq": "0.2.5"}, 0.3)
    _write_run(tmp_path / "runs" / "cmp-b", {"torchdiffeq": "0.2.4"}, 0.31)
    out = tmp_path / "merged.csv"
    assert merge.main([str(tmp_path / "runs"), "--out", str(out)]) == 0
    assert out.is_file() and out.with_suffix(".png").stat().st_size > 1000
    assert "torchdiffeq 0.2.4" in capsys.readouterr().out


def test_merge_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.store import merge

    assert merge.main([str(tmp_path / "nothing"), "--out", str(tmp_path / "m.csv")]) == 2
    assert "no results folder at" in capsys.readouterr().err
    with pytest.raises(Exception, match="no results folder"):
        find_runs([tmp_path])


def test_lockfile_replaces_pins() -> None:
    from harness.devtools.lockfile import replace_pins

    lock = [
        "# lock",
        "jax==0.10.2",
        "jaxlib==0.10.2",
        "lineax==0.1.1",
        "typing_extensions==4.16.0",
        "torch==2.13.0",
    ]
    out = replace_pins(lock, ["jax==0.9.2", "JAXLIB==0.9.2"], drop=["lineax", "typing-extensions"])
    assert out[:2] == ["# lock", "torch==2.13.0"]
    assert out[-2:] == ["jax==0.9.2", "JAXLIB==0.9.2"]
    assert replace_pins(lock) == lock
    with pytest.raises(ValueError, match="bad pin"):
        replace_pins(lock, ["==1.0"])


def test_lockfile_keeps_torch_pinned_in_every_tox_comparison() -> None:
    """Every cmp-* environment installs through harness.devtools.lockfile, which never replaces torch."""
    import configparser

    from harness.devtools.lockfile import replace_pins

    ini = configparser.ConfigParser(interpolation=None)
    ini.read(ROOT / "tox.ini")
    section = next(s for s in ini.sections() if s.startswith("testenv:cmp-"))
    assert "harness.devtools.lockfile" in ini[section]["install_command"]
    pins = [
        line.split(":", 1)[1].split("=", 1)[1]
        for line in ini[section]["set_env"].splitlines()
        if ": pin" in line
    ]
    assert pins and not any("torch==" in pin for pin in pins)
    lock = (ROOT / "constraints.txt").read_text().splitlines()
    for pin in pins:
        assert "torch==2.13.0" in replace_pins(lock, pin.strip().split(","))


def test_asv_dashboard_assets_map_to_npm_packages() -> None:
    from harness.reporting.asvhtml import npm_source

    assert npm_source("https://code.jquery.com/jquery-3.3.1.min.js") == (
        "jquery",
        "3.3.1",
        ["dist/jquery.min.js"],
    )
    assert npm_source("https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css") == (
        "bootstrap",
        "3.1.1",
        ["dist/css/bootstrap.min.css"],
    )
    package, version, paths = npm_source(
        "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.time.min.js"
    )
    assert (package, version) == ("flot", "0.8.3") and "jquery.flot.time.js" in paths
    with pytest.raises(ValueError, match="no rule"):
        npm_source("https://example.invalid/x.js")
