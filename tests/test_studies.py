"""Studies: registered one module each; the CLI's choices come from the registry; one
sweep end to end."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from harness import cli
from harness.studies import STUDIES
from harness.studies.base import AbstractStudy, register_study


def test_the_cli_offers_every_registered_study(capsys) -> None:
    assert set(STUDIES) == {
        "work-precision", "memory-scaling", "determinism", "batch-scaling", "gradient-methods",
        "solver-claims",
    }  # fmt: skip
    with pytest.raises(SystemExit):
        cli.main(["study", "--help"])
    out = capsys.readouterr().out
    for name, study in STUDIES.items():
        assert name in out and study.help.split()[0] in out


def test_a_new_study_is_one_registered_class(capsys) -> None:
    class Count(AbstractStudy):
        name = "test-count"
        help = "plans nothing and says so"

        def cells(self, args: argparse.Namespace) -> list:
            return []

        def run(self, args: argparse.Namespace, out: Path) -> int:
            print(f"{self.name}: {len(self.cells(args))} cells for {args.task}")
            return 0

    register_study(Count)
    try:
        assert cli.main(["study", "test-count"]) == 0
    finally:
        del STUDIES["test-count"]
    assert "test-count: 0 cells for lotka_volterra" in capsys.readouterr().out


def test_work_precision_plans_a_grid_per_backend() -> None:
    args = cli._parser().parse_args(
        ["study", "work-precision", "--task", "linear_adjoint", "--impl", "numpy-adjoint,rk4-unrolled",
         "--tols", "1e-4,1e-6", "--substeps", "1,2,4"]
    )  # fmt: skip
    cells = STUDIES["work-precision"].cells(args)
    assert [c["impl"] for c in cells].count("numpy-adjoint") == 2
    assert [c["impl"] for c in cells].count("rk4-unrolled") == 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["study", "work-precision", "--tols", "x"], "bad --tols=x"),
        (["study", "memory-scaling", "--task", "lotka_volterra_params"], "has no t1 / n_obs options"),
        (["study", "nope"], "invalid choice: 'nope'"),
    ],
)
def test_bad_study_input_is_one_line(argv: list[str], message: str, capsys) -> None:
    try:
        code = cli.main(argv)
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_determinism_runs_twice_and_compares(tmp_path: Path, capsys) -> None:
    argv = ["study", "determinism", "--task", "linear_adjoint", "--impl", "numpy-adjoint", "--iters", "2",
            "--repeats", "1", "--quiet", "--out", str(tmp_path / "det")]  # fmt: skip
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "bitwise identical" in out
    assert (tmp_path / "det" / "a" / "records.jsonl").is_file() and (tmp_path / "det" / "b").is_dir()
