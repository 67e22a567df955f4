"""`--task timeseries --set path=FILE.csv`: the user's own data.  Every malformed file is one
line naming the file and the line, exit status 2, before any cell."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness import cli
from harness.core import registry
from harness.core.errors import UsageError
from tasks._common.csv_series import read_series
from tasks.timeseries import EXAMPLE, TimeSeries

GOOD = "day,prey,predator\n0,1.0,2.0\n1,1.5,2.5\n2,2.0,2.0\n3,1.0,1.0\n"

#: (file bytes, what the error names): one case per way a file can be malformed
MALFORMED = {
    "empty": (b"", "empty file"),
    "no header": (b"0,1\n1,2\n2,3\n3,4\n", "line 1: no header row"),
    "no state column": (b"t\n0\n1\n2\n", "line 1: no state column"),
    "fewer than 3 rows": (b"t,x\n0,1\n1,2\n", "2 rows of numbers, at least 3 needed"),
    "non-numeric": (b"t,x\n0,1\n1,abc\n2,3\n", "line 3, column 'x': 'abc' is not a number"),
    "empty cell": (b"t,x\n0,1\n1,\n2,3\n", "line 3, column 'x': empty cell"),
    "nan": (b"t,x\n0,1\n1,nan\n2,3\n", "line 3, column 'x': nan is not finite"),
    "inf": (b"t,x\n0,1\n1,2\n2,-inf\n", "line 4, column 'x': -inf is not finite"),
    "unsorted": (b"t,x\n0,1\n2,2\n1,3\n", "line 4: time 1 is earlier than the row before"),
    "repeated": (b"t,x\n0,1\n1,2\n1,3\n", "line 4: time 1 is repeated"),
    "ragged": (b"t,x,y\n0,1,2\n1,2\n2,3,4\n", "line 3: 2 cells, the header has 3"),
    "not utf-8": (b"t,x\n0,1\n1,\xff\xfe\n2,3\n", "line 3: not UTF-8 text"),
    "unnamed column": (b"t,,y\n0,1,2\n1,2,3\n2,3,4\n", "line 1: column 2 has no name"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_file_is_one_line_naming_file_and_line(case: str, tmp_path: Path) -> None:
    content, expected = MALFORMED[case]
    path = tmp_path / "data.csv"
    path.write_bytes(content)
    with pytest.raises(UsageError, match="^" + str(path).replace("\\", "\\\\")) as info:
        read_series(path)
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_a_missing_file_exits_2_before_any_cell(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.csv"
    out = tmp_path / "run"
    assert cli.main(["run", "--task", "timeseries", "--set", f"path={missing}", "--out", str(out)]) == 2
    assert capsys.readouterr().err == f"error: {missing}: no such file\n"
    assert not out.exists(), "nothing written before the file is checked"


def test_the_series_becomes_a_training_window_and_a_forward_window(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text(GOOD)
    task = TimeSeries(path=str(path), t_split="1.5", standardise=False)
    data = task.make_data(0)
    assert data.t.tolist() == [0.0, 1.0] and data.t_forward.tolist() == [2.0, 3.0]
    assert data.y.shape == (2, 1, 2) and np.array_equal(data.y_true, data.y)
    assert data.y_forward[:, 0, :].tolist() == [[2.0, 2.0], [1.0, 1.0]]
    assert task.state_names == ("prey", "predator") and data.problems(task.model) == []
    assert TimeSeries(path=str(path)).make_data(0).t.tolist() == [0.0, 1.0, 2.0]  # 3/4 of 4 rows
    scaled = TimeSeries(path=str(path), train_fraction=1.0).make_data(0).y[:, 0, :]
    assert np.allclose(scaled.mean(axis=0), 0.0) and np.allclose(scaled.std(axis=0), 1.0)
    with pytest.raises(UsageError, match="at least 2 of the 4 rows"):
        TimeSeries(path=str(path), t_split="0.5")


def test_the_default_data_is_the_hudson_bay_series() -> None:
    """21 yearly hare and lynx counts, 1900-1920 (tasks/data/README.md); 16 train."""
    series = read_series(EXAMPLE)
    assert series.t[0] == 1900 and series.t[-1] == 1920 and series.y.shape == (21, 2)
    assert series.state_names == ("hare", "lynx") and series.y[3].tolist() == [77.4, 35.2]
    task = registry.get_task("timeseries")()
    assert task.noise_free_truth is False and task.make_data(0).n_obs == 16


@pytest.mark.slow
def test_the_example_runs_on_numpy_adjoint_and_its_records_say_there_is_no_truth(tmp_path: Path) -> None:
    """End to end on one back-end (the six are in the README's worked example): the record
    says `truth: observations` and names the states; the figure labels use them."""
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--task", "timeseries", "--impl", "numpy-adjoint",
         "--set", "iters=50", "--set", "polish=0", "--no-memory", "--repeats", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    from harness.store.results import load_records

    (record,) = load_records(out)
    assert record["truth"] == "observations"
    # the cost of a gradient measured again where training ended (#26)
    assert record["time_median_trained_s"] > 0 and record["nfe_forward_trained"] > 0
    assert 0 < record["grad_rel_error_trained"] < 1e-4, "measured 5e-8 to 1.3e-6 at the initial weights"
    assert "trained: vg ms, NFE, grad err" in proc.stdout
    assert record["state_names"] == ["hare (standardised)", "lynx (standardised)"]
    assert "RMSEs against the observations" in proc.stdout
    assert (out / "figures" / "trajectory-timeseries.png").is_file()
