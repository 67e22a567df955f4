"""Figures and the HTML report, on synthetic records and trajectory files (no real runs)."""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("seaborn")

from harness.core.claims import Claim, judge_record
from harness.reporting import figures, html_report
from harness.reporting.figures import catalog, style

IMPLS = ("jax-checkpoint", "numpy-adjoint", "rk4-unrolled", "torch-adjoint")
ENV = {
    "date": "2026-01-01T00:00:00+00:00",
    "git_commit": "0123456789abcdef",
    "python": "3.11.7",
    "cpu": "Test CPU",
    "threads": {"OMP_NUM_THREADS": "1"},
    "versions": {"numpy": "2.0"},
}


@pytest.fixture(autouse=True, scope="module")
def _low_resolution() -> Any:
    """Small PNGs keep the test fast; the drawing code is the same."""
    saved, style.DPI = style.DPI, 40
    yield
    style.DPI = saved


def record(task: str, impl: str, **fields: Any) -> dict[str, Any]:
    """A complete `ok` record with plausible numbers; `fields` override."""
    solver = {"dt": 0.1} if impl == "rk4-unrolled" else {"rtol": 1e-7, "atol": 1e-7}
    rec = {
        "run_id": "test",
        "task": task,
        "impl": impl,
        "params": {**solver, "iters": 5, "lr": 0.01},
        "device": "cpu",
        "dtype": "float64",
        "seed": 0,
        "status": "ok",
        "reason": None,
        "loss_init": 1.0,
        "grad_rel_error": 1e-8 * (1 + IMPLS.index(impl)),
        "time_first_s": 0.5,
        "time_median_s": 1e-3 * (1 + IMPLS.index(impl)),
        "time_iqr_s": 1e-4,
        "repeats": 7,
        "nfe_forward": 50,
        "nfe_backward": 100,
        "peak_rss_bytes": 0 if impl == "numpy-adjoint" else 2e5,
        "peak_rss_first_call_bytes": 3e7,
        "peak_framework_bytes": 1e5 * (1 + IMPLS.index(impl)),
        "train_iters": 5,
        "train_loss_final": 0.1,
        "train_time_s": 0.2,
        "train_converged": True,
        "train_converged_by": "gradient norm 1e-08 <= 1e-06 x its initial 0.1",
        "metrics": {"fit_rmse": 0.1},
        "env": ENV,
    }
    rec.update(fields)
    return rec


def with_trajectory(
    rec: dict[str, Any], run_dir: Path, n_state: int, seed: int = 0, energy: bool = False
) -> dict[str, Any]:
    """Write a trajectory file for `rec` (backward + training + forward window) and point to
    it; with `energy`, the file holds `H_true` and `H_pred` too (a task that has an energy)."""
    rng = np.random.default_rng(seed)
    t = np.linspace(-1.0, 2.0, 31)
    phase = np.arange(n_state)[None, None, :]
    y_true = 0.1 * np.cos(2 * t[:, None, None] + phase) * np.ones((1, 2, 1))
    y_pred = y_true + 0.01 * rng.standard_normal(y_true.shape)
    inside = (t >= 0) & (t <= 1)
    name = f"trajectories/{rec['task']}__{rec['impl']}__{len(list(run_dir.glob('trajectories/*')))}.npz"
    (run_dir / "trajectories").mkdir(exist_ok=True)
    arrays: dict[str, Any] = {
        "t_obs": t[inside],
        "y_obs": y_true[inside],
        "t": t,
        "y_true": y_true,
        "y_pred": y_pred,
    }
    if energy:
        arrays["H_true"] = 0.5 * np.sum(y_true[:, 0, :] ** 2, axis=-1)
        arrays["H_pred"] = 0.5 * np.sum(y_pred[:, 0, :] ** 2, axis=-1)
    np.savez(run_dir / name, **arrays)
    rec["trajectory_file"] = name
    return rec


def full_records(run_dir: Path) -> list[dict[str, Any]]:
    """Records with every kind of data: trajectories (pendulum and Lotka-Volterra), loss
    histories over three seeds, a tolerance / dt sweep, a horizon sweep, failed and
    skipped cells."""
    records = []
    for impl in IMPLS:
        for seed in range(3):
            history = list(np.exp(-0.3 * np.arange(10)) * (1 + 0.1 * seed))
            times = list(np.geomspace(0.01, 1.0, 10))
            rec = record(
                "double_pendulum", impl, seed=seed, train_loss_history=history, train_time_history=times
            )
            records.append(with_trajectory(rec, run_dir, 4, seed, energy=True) if seed == 0 else rec)
        rec = record("lotka_volterra", impl, train_loss_history=[1.0, 0.5, 0.2])
        records.append(with_trajectory(rec, run_dir, 2))
        for value in (1e-4, 1e-6):  # work-precision sweep
            solver = {"dt": value * 1e3} if impl == "rk4-unrolled" else {"rtol": value, "atol": value}
            err = value * (1 + IMPLS.index(impl))
            records.append(record("lotka_volterra", impl, params={**solver, "iters": 0}, grad_rel_error=err))
        for t1 in (5.0, 20.0, 40.0):  # horizon sweep (t1 = 10 is the default record above)
            rec = record("lotka_volterra", impl, peak_framework_bytes=1e4 * t1, peak_rss_bytes=1e3 * t1)
            rec["params"] = {**rec["params"], "t1": t1}
            records.append(rec)
    records.append(record("double_pendulum", "torch-adjoint", status="failed", reason="train: boom"))
    records.append(record("lotka_volterra", "numpy-adjoint", status="skipped", reason="unavailable"))
    # a mini-batch classifier: the accuracy figure's per-epoch test accuracy
    mnist = record(
        "odenet_mnist", "torch-adjoint", params={"rtol": 1e-3, "atol": 1e-3, "iters": 3, "lr": 0.1}
    )
    mnist["metrics"] = {
        "test_accuracy": 0.9,
        "epoch_test_accuracy": [0.5, 0.8, 0.9],
        "test_accuracy_003": 0.9958,
    }
    records.append(mnist)
    return records


def write_records(run_dir: Path, records: list[dict[str, Any]]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (run_dir / "env.json").write_text(json.dumps(ENV))


def is_png(path: Path | None) -> bool:
    return path is not None and path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def full_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """One report over every kind of data, shared by the tests that only read it."""
    run_dir = tmp_path_factory.mktemp("run")
    write_records(run_dir, full_records(run_dir))
    return run_dir, html_report.write_report(run_dir)  # records read from the folder


def test_every_figure_written_when_its_data_exist(full_report: tuple[Path, dict[str, Path]]) -> None:
    tmp_path, paths = full_report
    expected = {
        "trajectory-double_pendulum",
        "trajectory-lotka_volterra",
        "hamiltonian-double_pendulum",
        "loss",
        "bars",
        "work_precision",
        "memory_scaling",
        "pareto",
    }
    assert expected <= set(paths)
    assert "hamiltonian-lotka_volterra" not in paths  # its trajectory files hold no energy
    for name in expected:
        assert is_png(paths[name]), name
        assert paths[name].parent == tmp_path / "figures"
    assert paths["markdown"] == tmp_path / "report.md" and paths["html"] == tmp_path / "report.html"
    assert not [p for p in tmp_path.rglob(".*")], "temporary files left behind"


def test_figures_skipped_without_their_data(tmp_path: Path) -> None:
    # one setting per back-end, no trajectory files, no loss history
    records = [record("lotka_volterra", impl) for impl in IMPLS]
    out = tmp_path / "figures"
    assert figures.trajectory_figure(records, tmp_path, out, "lotka_volterra") is None
    assert figures.hamiltonian_figure(records, tmp_path, out, "double_pendulum") is None
    assert figures.loss_figure(records, out) is None
    assert figures.work_precision_figure(records, out) is None
    assert figures.memory_scaling_figure(records, out) is None
    assert figures.memory_exponents(records) == {}
    assert is_png(figures.bars_figure(records, out))
    assert is_png(figures.pareto_figure(records, out))
    # a trajectory file named in the record but missing on disk is no data either
    missing = [record("lotka_volterra", "numpy-adjoint", trajectory_file="trajectories/gone.npz")]
    assert figures.trajectory_figure(missing, tmp_path, out, "lotka_volterra") is None


def test_only_failed_cells_give_a_report_without_figures(tmp_path: Path) -> None:
    records = [record("lotka_volterra", impl, status="failed", reason=f"{impl} broke") for impl in IMPLS]
    paths = html_report.write_report(tmp_path, records)
    assert set(paths) == {"markdown", "html"}
    page = paths["html"].read_text()
    assert "jax-checkpoint broke" in page and "No figure applies" in page


def test_memory_exponents_recover_known_slopes() -> None:
    records = []
    for t1 in (1.0, 2.0, 4.0, 8.0, 16.0):
        for impl, k in (("rk4-unrolled", 1.0), ("jax-checkpoint", 0.5), ("torch-adjoint", 0.0)):
            rec = record("lotka_volterra", impl, peak_framework_bytes=3e4 * t1**k, peak_rss_bytes=7e5 * t1**k)
            rec["params"] = {**rec["params"], "t1": t1}
            records.append(rec)
    exps = figures.memory_exponents(records)
    for impl, k in (("rk4-unrolled", 1.0), ("jax-checkpoint", 0.5), ("torch-adjoint", 0.0)):
        for kind in ("framework", "rss"):
            assert abs(exps[("lotka_volterra", impl, kind)] - k) < 1e-9


def test_memory_exponents_read_the_default_horizon_from_the_resolved_params() -> None:
    """A default-horizon record gives no t1 in `params`; its `resolved_params` (the task's
    default, 10, filled in) put it in the sweep."""
    default = record("lotka_volterra", "rk4-unrolled", peak_framework_bytes=10.0 * 1e4)
    default["resolved_params"] = {**default["params"], "t1": 10.0, "n_obs": 50}
    rec = record("lotka_volterra", "rk4-unrolled", peak_framework_bytes=40.0 * 1e4)
    rec["params"] = {**rec["params"], "t1": 40.0}
    rec["resolved_params"] = {**rec["params"], "n_obs": 200}
    k = figures.memory_exponents([default, rec])[("lotka_volterra", "rk4-unrolled", "framework")]
    assert math.isclose(k, 1.0, abs_tol=1e-9)
    # an old record without `resolved_params` is read from its `params`
    assert figures.effective_settings(record("linear", "rk4-unrolled")) == {"dt": 0.1, "iters": 5, "lr": 0.01}


def test_html_is_self_contained(full_report: tuple[Path, dict[str, Path]]) -> None:
    tmp_path, _ = full_report
    page = (tmp_path / "report.html").read_text()
    sources = re.findall(r'src="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert 'src="http' not in page and "<link" not in page and "<script" not in page
    assert "url(" not in page  # no CSS fetches either
    assert "<style>" in page
    # the summary, the reasons of failed/skipped cells and the provenance are there
    assert "train: boom" in page and "unavailable" in page
    assert "0123456789abcdef" in page and "Test CPU" in page
    assert page.index("Provenance") > page.index("Figures")
    markdown = (tmp_path / "report.md").read_text()
    assert "| task" in markdown and "figures/loss.png" in markdown


def test_a_failing_figure_does_not_stop_the_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom in the loss figure")

    spec = catalog.FIGURES["loss"]
    monkeypatch.setitem(
        catalog.FIGURES, "loss", catalog.FigureSpec("loss", spec.caption, broken, order=spec.order)
    )
    records = [record("lotka_volterra", impl, train_loss_history=[1.0, 0.5]) for impl in IMPLS]
    paths = html_report.write_report(tmp_path, records)
    assert "loss" not in paths and is_png(paths["bars"]) and is_png(paths["pareto"])
    for name in ("report.md", "report.html"):
        assert "loss: RuntimeError: boom in the loss figure" in (tmp_path / name).read_text()


def test_mean_band_is_a_t_interval() -> None:
    curves = [[1.0, 2.0, 3.0], [3.0, 2.0, 1.0], [2.0, 2.0, 2.0, 9.0]]  # the longer one is truncated
    mean, lo, hi = figures.mean_band(curves)
    assert np.allclose(mean, [2.0, 2.0, 2.0])
    half = 4.302652729911275 * 1.0 / math.sqrt(3)  # t(0.975, 2) * sd / sqrt(n)
    assert np.allclose(hi - mean, [half, 0.0, half]) and np.allclose(mean - lo, hi - mean)
    one = figures.mean_band([[1.0, 0.5]])
    assert all(np.allclose(a, [1.0, 0.5]) for a in one)


def test_labels_name_only_the_varying_parameters() -> None:
    records = [
        record("lotka_volterra", "jax-checkpoint", params={"rtol": x, "atol": x}) for x in (1e-3, 1e-6)
    ]
    records.append(record("lotka_volterra", "rk4-unrolled"))
    labels = set(figures.group_labels(figures.group_records(records)).values())
    assert labels == {"jax-checkpoint (tol=0.001)", "jax-checkpoint (tol=1e-06)", "rk4-unrolled"}


def test_metrics_one_table_per_task_and_text_metrics_listed() -> None:
    from harness.reporting.tables import format_records
    from harness.store.compare import _differs

    records = [
        record("lotka_volterra", "numpy-adjoint", metrics={"fit_rmse": 0.1}),
        record("hybrid_lotka_volterra", "numpy-adjoint", metrics={"formula": "1.07 cat^0.95 - cat", "n": 2}),
    ]
    text = format_records(records, verdicts=False)
    tables = [block for block in text.split("\n\n") if block.startswith("| task")]
    assert len(tables) == 3  # the summary, then one metrics table per task
    assert "formula" not in tables[2] and "| n " in tables[2].replace("|   n", "| n ")
    assert "- hybrid_lotka_volterra / numpy-adjoint: formula = 1.07 cat^0.95 - cat" in text
    html = html_report.render_html(Path("x"), records, [], {})
    assert "What the fits found" in html and "cat^0.95" in html
    assert _differs("metric.formula", "a", "a") is None
    assert _differs("metric.formula", "a", "b") == "metric.formula: 'a' vs 'b'"


CLAIMS = (
    Claim("fit", "000 §3.2, Fig. 3", "keeps up", "Fig. 3", "fit_rmse_relative", "<=", 0.05, "5%"),
    Claim(
        "extrapolates-forward",
        "000 §3.2, Fig. 4",
        "forward",
        "Fig. 4",
        "extrap_forward_rmse_relative",
        "<=",
        0.1,
        "10%",
    ),
    Claim(
        "fails-backward",
        "000 §3.2, Fig. 4",
        "fails backward",
        "Fig. 4: backward branch departs",
        "extrap_backward_rmse_relative",
        ">=",
        0.2,
        "a fifth",
        finding="the trained model follows the truth backward too: the report's failure is not reproduced",
    ),
)


def test_reports_open_with_the_claims_verdicts_and_draw_time_to_target(tmp_path: Path) -> None:
    """'Does it reproduce the source?' comes before the timing tables, in markdown and HTML,
    from the verdicts the records hold; the loss-against-wall-time figure marks the target
    and the budget."""
    records = []
    for i, impl in enumerate(IMPLS):
        history = list(np.geomspace(1.0, 1e-4, 20))
        times = list(np.geomspace(0.01, 1.0, 20) * (1 + i))
        metrics = {
            "fit_rmse_relative": 0.02 if impl != "torch-adjoint" else 0.4,
            "extrap_forward_rmse_relative": 0.05,
            "extrap_backward_rmse_relative": 0.06,
        }
        stopped = "budget" if impl == "torch-adjoint" else "target"
        records.append(
            record(
                "lotka_volterra",
                impl,
                metrics=metrics,
                train_loss_history=history,
                train_time_history=times,
                train_target_loss=1e-3,
                train_budget_s=2.0,
                train_stopped=stopped,
                train_converged=stopped != "budget",
                train_iters_to_target=None if stopped == "budget" else 15,
                train_time_to_target_s=None if stopped == "budget" else times[14],
            )
        )
        records[-1]["claims"] = judge_record(CLAIMS, records[-1])
    write_records(tmp_path, records)
    paths = html_report.write_report(tmp_path)
    assert is_png(paths["time-to-target-lotka_volterra"])
    markdown = (tmp_path / "report.md").read_text()
    assert markdown.index("## Does it reproduce the source?") < markdown.index("## Results")
    fit_row = next(line for line in markdown.splitlines() if line.startswith("| lotka_volterra | fit "))
    assert "PASS 0.02" in fit_row and "NOT CONVERGED 0.4" in fit_row
    assert "KNOWN FAIL" in markdown and "the report's failure is not reproduced" in markdown
    page = (tmp_path / "report.html").read_text()
    assert page.index("Does it reproduce the source?") < page.index("<h2>Results</h2>")
    # the source, document and test columns wrap, so the verdicts are in view (#26)
    verdict_table = page[page.index("Does it reproduce the source?") : page.index("<h2>Results</h2>")]
    assert verdict_table.count('class="text wrap-m"') == 2 * 3 and 'class="text wrap-xs"' in verdict_table


def test_every_registered_figure_has_a_caption_and_is_in_the_html(
    full_report: tuple[Path, dict[str, Path]],
) -> None:
    """The figure registry is what the report draws: each figure, with its caption."""
    tmp_path, paths = full_report
    page = (tmp_path / "report.html").read_text()
    assert list(figures.FIGURES) and len({s.name for s in figures.FIGURES.values()}) == len(figures.FIGURES)
    for name, spec in figures.FIGURES.items():
        assert spec.name == name and len(spec.caption.split()) >= 10, name
        drawn = [p for p in paths if p == name or (spec.per_task and p.startswith(f"{name}-"))]
        assert drawn, f"figure {name} not drawn from the full synthetic folder"
        for key in drawn:
            assert f'<figure id="{key}">' in page
        assert html.escape(spec.caption) in page, name
    # the file names stay as they were
    for key in (
        "trajectory-double_pendulum",
        "hamiltonian-double_pendulum",
        "time-to-target-double_pendulum",
    ):
        assert paths[key].name == f"{key}.png"
    assert {paths[k].name for k in ("loss", "bars", "work_precision", "memory_scaling", "pareto")} == {
        "loss.png",
        "bars.png",
        "work_precision.png",
        "memory_scaling.png",
        "pareto.png",
    }


def test_a_folder_is_drawn_without_the_task_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reporting reads only the folder: the task registry unusable, a task this install
    does not know, and the energy figure for a task whose name says nothing of pendulums
    because its trajectory files hold H_true and H_pred."""
    import sys

    from harness.core import registry

    def refuse() -> None:
        raise RuntimeError("reporting must not discover tasks")

    monkeypatch.setattr(registry, "discover", refuse)
    monkeypatch.setattr(registry, "TASKS", {})
    before = set(sys.modules)
    records = []
    for impl in IMPLS:
        rec = record("spring", impl, train_loss_history=[1.0, 0.5, 0.2], metrics={"fit_rmse_relative": 0.01})
        rec["resolved_params"] = {**rec["params"], "t1": 10.0}
        rec["claims"] = judge_record(CLAIMS[:1], rec)
        records.append(with_trajectory(rec, tmp_path, 2, energy=True))
        rec = record("plain", impl)
        records.append(with_trajectory(rec, tmp_path, 2))
    write_records(tmp_path, records)
    paths = html_report.write_report(tmp_path)
    assert is_png(paths["hamiltonian-spring"]) and is_png(paths["trajectory-spring"])
    assert "hamiltonian-plain" not in paths and is_png(paths["trajectory-plain"])
    page = paths["html"].read_text()
    assert '<figure id="hamiltonian-spring">' in page and "PASS 0.01" in page
    assert not [m for m in set(sys.modules) - before if m == "tasks" or m.startswith("tasks.")]


def test_verdicts_are_the_recorded_ones_unless_the_caller_passes_claims(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recorded verdicts by default; re-judged with the claims a caller passes (the claims
    as declared now); computed once per report."""
    from harness.reporting.tables import Verdicts, format_records, verdict_counts

    rec = record("lotka_volterra", "numpy-adjoint", metrics={"fit_rmse_relative": 0.03})
    rec["claims"] = judge_record(CLAIMS[:1], rec)
    records = [rec, record("other", "numpy-adjoint")]  # a record without claims
    assert verdict_counts(records) == {"PASS": 1}
    stricter = (Claim("fit", "§1", "fits", "Fig. 1", "fit_rmse_relative", "<=", 0.01, "1%"),)
    assert verdict_counts(records, {"lotka_volterra": stricter}) == {"FAIL": 1}
    text = format_records(records, claims={"lotka_volterra": stricter})
    row = next(line for line in text.splitlines() if line.startswith("| lotka_volterra | fit "))
    assert "| §1 " in row and "FAIL 0.03" in row
    calls = []
    original = Verdicts.of.__func__  # type: ignore[attr-defined]

    def counting(cls: type[Verdicts], *args: Any, **kwargs: Any) -> Verdicts:
        calls.append(args)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(Verdicts, "of", classmethod(counting))
    paths = html_report.write_report(tmp_path, records, claims={"lotka_volterra": stricter})
    assert len(calls) == 1
    for name in ("markdown", "html"):
        assert "FAIL 0.03" in paths[name].read_text()


def test_user_strings_are_escaped_in_html_and_markdown(tmp_path: Path) -> None:
    """Task names, back-end names, statuses and reasons are user input (plugins, hand-edited
    folders): no raw markup reaches either report, in text or in attribute values."""
    evil = '<script>alert("x")</script>'
    records = [
        record(evil, "numpy-adjoint", status="failed", reason=f'train: {evil} & "quoted"'),
        {**record("linear", "numpy-adjoint"), "impl": evil, "status": f'x" onmouseover="{evil}'},
    ]
    write_records(tmp_path, records)
    paths = html_report.write_report(tmp_path)
    page, md = Path(paths["html"]).read_text(), Path(paths["markdown"]).read_text()
    assert "<script>" not in page and 'onmouseover="' not in page  # quotes escaped in attributes
    assert "<script>" not in md and "<" not in md.replace("&lt;", "")  # no tag can open in markdown
    assert "&lt;script&gt;" in page and "&lt;script&gt;" in md


def test_one_call_shows_no_spread_and_headers_say_what_they_hold() -> None:
    """`--repeats 1` printed "± 0" as a spread, "train s" did not say it leaves the first
    call's compilation out, and "to target it/s" held iterations / seconds (#26)."""
    from harness.reporting.tables import TRAIN_HEADER, format_records

    once = record("lotka_volterra", "numpy-adjoint", repeats=1, time_iqr_s=0.0)
    often = record("lotka_volterra", "jax-checkpoint", train_iters_to_target=170, train_time_to_target_s=0.5)
    text = format_records([once, often])
    assert "2 ± " not in text and "1 ± 0.1" in text
    assert TRAIN_HEADER in text and "to target (iters, s)" in text and "170, 0.5" in text
    iqr = html_report.summary_table([once, often])["vg IQR ms"].tolist()
    assert iqr == ["–", "0.1"]


def test_without_memory_the_figures_do_not_describe_memory(tmp_path: Path) -> None:
    """After `--no-memory`, pareto.png explained marker area as peak memory with a "1 MB"
    legend marker and the bars caption described RSS panels that were not drawn (#26)."""
    from harness.reporting.figures import bars, catalog, pareto

    memoryless = ("peak_rss_bytes", "peak_rss_first_call_bytes", "peak_framework_bytes")
    records = [
        {k: v for k, v in record("lotka_volterra", impl).items() if k not in memoryless} for impl in IMPLS
    ]
    assert pareto.describe(records) == pareto.CAPTION_NO_MEMORY
    assert "memory" not in bars.describe(records).replace("No memory was measured (--no-memory).", "")
    assert "RSS" not in bars.describe(records)
    with_memory = [record("lotka_volterra", impl) for impl in IMPLS]
    assert (pareto.describe(with_memory), bars.describe(with_memory)) == (pareto.CAPTION, bars.CAPTION)
    plan = {p.name: p.caption for p in catalog.figure_plan(records, tmp_path, tmp_path)}
    assert plan["pareto"] == pareto.CAPTION_NO_MEMORY
    figure = pareto.pareto_figure(records, tmp_path)
    assert figure is not None and figure.exists()


def test_a_backend_keeps_its_colour_whatever_ran_beside_it() -> None:
    """Colours were assigned in sorted order of the back-ends present, so a back-end's
    colour changed between runs (#26)."""
    alone = style.palette(["torch-adjoint", "spiral-solver"])
    together = style.palette([*style.KNOWN_BACKENDS, "spiral-solver", "another-plugin"])
    assert alone["torch-adjoint"] == together["torch-adjoint"]
    assert alone["spiral-solver"] == together["spiral-solver"]
    assert len(set(together.values())) == len(together), "no two back-ends share a colour"
