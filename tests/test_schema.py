"""The record schema (`harness.store.schema`): one definition, the `Record` TypedDict, whose
fields and kinds (`FIELDS`) the validator, `RECORD_FIELDS`, the writer (pyright on the
`Record` it builds; `merge` for computed fields; tests/test_engine.py: every key of a cell's
record is in it) and docs/records.md share (#27)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.store.results import RECORD_FIELDS
from harness.store.schema import FIELDS, Record, kind_problem, merge
from harness.store.validate import record_problem

ROOT = Path(__file__).resolve().parents[1]


def test_every_field_is_documented_and_every_documented_field_is_in_the_schema() -> None:
    text = (ROOT / "docs" / "records.md").read_text()
    missing = [name for name in FIELDS if f"`{name}`" not in text]
    assert not missing, f"fields docs/records.md does not describe: {missing}"
    assert RECORD_FIELDS == tuple(FIELDS)


def test_the_committed_reference_records_fit_the_schema() -> None:
    """What the writer produced over 96 cells: no field outside the schema, each of its kind."""
    for line in (ROOT / "results" / "reference" / "records.jsonl").read_text().splitlines():
        record = json.loads(line)
        assert set(record) <= set(FIELDS), set(record) - set(FIELDS)
        assert record_problem(record) is None


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("seed", "0", "has a seed that is not a number"),
        ("seed", True, "has a seed that is not a number"),
        ("train_converged", "yes", "has a train_converged that is not true or false"),
        ("params", [1], "has params that is not an object"),
        ("train_loss_history", [1.0, "x"], "has train_loss_history that is not a list of numbers"),
        ("state_names", ["x", 1], "has state_names that is not a list of strings"),
        ("seed", None, None),
        ("train_loss_history", [1.0, None], None),
        ("not_a_field", object(), None),
    ],
)
def test_each_kind_is_checked(name: str, value: object, problem: str | None) -> None:
    assert kind_problem(name, value) == problem
    record = {"task": "t", "impl": "i", "status": "ok", name: value}
    if name != "state_names":  # checked apart, with its own message
        assert record_problem(record) == problem
    assert all(re.fullmatch(r"[a-z0-9_]+", name) for name in FIELDS)


def test_fields_come_from_the_typed_record() -> None:
    """`FIELDS` is `Record`'s annotations in order; task, impl and status are `Required` (for
    pyright; the validator requires the same three)."""
    assert list(FIELDS) == list(Record.__annotations__)
    required = [k for k, v in Record.__annotations__.items() if "Required[" in str(v)]
    assert required == ["task", "impl", "status"]
    assert (
        FIELDS["seed"] == "number"
        and FIELDS["train_phases"] == "objects"
        and FIELDS["train_converged"] == "bool"
    )


def test_merge_refuses_a_name_outside_the_schema() -> None:
    """Fields computed by a lower layer (a training summary) merge only under schema names,
    so a misspelled field never reaches a results file."""
    record: Record = {"task": "t", "impl": "i", "status": "ok"}
    merge(record, {"train_evals": 3, "train_wall_s": 1.5})
    assert record["train_evals"] == 3
    with pytest.raises(KeyError, match="not record fields: train_eval, zz"):
        merge(record, {"train_eval": 3, "zz": 1})
    assert "train_eval" not in record
