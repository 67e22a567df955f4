"""`reproduce --confirm` and seeds: which cells are re-trained, how their verdicts are
compared, and the aggregate over seeds in the verdict table."""

from __future__ import annotations

from harness.core.claims import Claim
from harness.planning.cell import Cell, cell_id
from harness.reporting.tables import Verdicts, aggregate_verdict
from harness.studies.confirm import confirm_cells, confirmation_rows

FIT = Claim("fit", "000 §3.1", "fits", "Fig. 1", "fit", "<=", 0.05, "5%")
BACK = Claim("back", "000 §3.1", "fails backward", "Fig. 2", "back", ">=", 0.2, "a fifth", finding="follows")
CLAIMS = {"t": (FIT, BACK)}


def _cell(seed: int, impl: str = "a") -> Cell:
    return Cell(task="t", impl=impl, task_options={}, solver={}, impl_options={},
                train={"iters": 100, "polish": 50, "budget": 60.0, "lr": 0.01}, device="cpu",
                dtype="float64", seed=seed)  # fmt: skip


def _record(cell: Cell, fit: float, back: float, converged: bool = True, evals: int = 150) -> dict:
    return {"cell_id": cell_id(cell), "task": "t", "impl": cell["impl"], "seed": cell["seed"], "status": "ok",
            "metrics": {"fit": fit, "back": back}, "train_converged": converged, "train_converged_by": "rule",
            "train_evals": evals, "train_wall_s": 2.0}  # fmt: skip


def test_confirm_retrains_fail_and_known_fail_cells_with_ten_times_the_budgets() -> None:
    cells = [_cell(0), _cell(1), _cell(2)]
    records = [
        _record(cells[0], 0.01, 0.5),  # PASS, PASS
        _record(cells[1], 0.01, 0.1),  # PASS, KNOWN FAIL
        _record(cells[2], 0.3, 0.5, converged=False),  # NOT CONVERGED: not a finding to confirm
    ]
    pairs = confirm_cells(cells, records, CLAIMS.__getitem__)
    assert list(pairs) == [cell_id(cells[1])]
    again = pairs[cell_id(cells[1])]
    assert again["train"] == {"iters": 1000, "polish": 500, "budget": 600.0, "lr": 0.01}
    assert cells[1]["train"]["iters"] == 100  # the first run's cell is left alone


def test_confirmation_rows_say_held_or_flipped() -> None:
    cells = [_cell(0), _cell(1)]
    first = [_record(cells[0], 0.3, 0.5), _record(cells[1], 0.01, 0.1)]  # FAIL fit; KNOWN FAIL back
    pairs = confirm_cells(cells, first, CLAIMS.__getitem__)
    again = [
        _record(pairs[cell_id(cells[0])], 0.02, 0.5, evals=1500),  # the fit passes with more training
        _record(pairs[cell_id(cells[1])], 0.01, 0.12, evals=1500),  # still follows backward
    ]
    rows = confirmation_rows(first, again, pairs, CLAIMS.__getitem__)
    assert [(r["claim"], r["seed"], r["verdict"], r["x10 training"], r["confirmed"]) for r in rows] == [
        ("fit", "0", "FAIL 0.3", "PASS 0.02", "flipped"),
        ("back", "1", "KNOWN FAIL 0.1", "KNOWN FAIL 0.12", "held"),
    ]
    assert rows[0]["evals / s"] == "150 / 2" and rows[0]["x10 evals / s"] == "1500 / 2"
    # a confirmation cell that left no record: no result, neither held nor flipped
    rows = confirmation_rows(first, [], pairs, CLAIMS.__getitem__)
    assert {r["x10 training"] for r in rows} == {"no result"} and {r["confirmed"] for r in rows} == {""}


def test_seeds_aggregate_in_the_verdict_table() -> None:
    records = [_record(_cell(s), fit, 0.5) for s, fit in enumerate((0.01, 0.02, 0.03))]
    records += [_record(_cell(s, "b"), fit, 0.5) for s, fit in enumerate((0.01, 0.3, 0.04))]
    wide = {r["claim"]: r for r in Verdicts.of(records, CLAIMS).wide()}
    assert wide["fit"]["a"] == "PASS 3/3 0.02 [0.01, 0.03]"
    assert wide["fit"]["b"] == "MIXED 2/3 0.04 [0.01, 0.3]"
    assert wide["back"]["a"] == "PASS 3/3 0.5 [0.5, 0.5]"
    fails = [{"verdict": "FAIL", "measured": "0.3"}, {"verdict": "FAIL", "measured": "0.5"}]
    assert aggregate_verdict(fails) == "FAIL 0/2 0.4 [0.3, 0.5]"
    assert aggregate_verdict([{"verdict": "PASS", "measured": "0.01"}]) == "PASS 0.01"


def test_seeds_aggregate_but_configurations_do_not() -> None:
    """Records of one task on two windows (the HNN's pair beside the default run) are two
    rows of the verdict table, each labelled with its options; the seeds of each aggregate."""
    records = [
        {**_record(_cell(s), fit, 0.5), "resolved_params": {"t1": t1, "lr": 0.01, "budget": 60.0 + s}}
        for s, (t1, fit) in enumerate(((0.25, 0.01), (3.0, 0.3), (0.25, 0.03)))
    ]
    wide = {(r["task"], r["claim"]): r["a"] for r in Verdicts.of(records, CLAIMS).wide()}
    assert wide[("t (t1=0.25)", "fit")] == "PASS 2/2 0.02 [0.01, 0.03]"
    assert wide[("t (t1=3.0)", "fit")] == "FAIL 0.3"
    one = Verdicts.of(records[:1], CLAIMS).wide()
    assert {r["task"] for r in one} == {"t"}, "one configuration: the task's name alone"


def test_a_note_with_line_breaks_stays_one_line() -> None:
    """A failed cell's reason with a newline (a traceback's last lines) split the notes
    line in the report (#28)."""
    record = {**_record(_cell(0), 0.5, 0.5), "status": "failed", "reason": "train: boom\nsecond line"}
    del record["metrics"]  # failed before its metrics
    notes = Verdicts.of([record], CLAIMS).notes()
    assert notes and all("\n" not in line for line in notes)
    assert notes[0].endswith("train: boom second line")
