"""`reproduce --confirm`: a finding must survive more training (#25).

Every cell whose claims include a FAIL or a KNOWN FAIL is trained again with `FACTOR` times
its evaluation budgets (Adam's iterations, the polish's evaluations) and its wall-clock
safety net, into `<out>/confirm/`; each such verdict is then shown beside the new one:
`held` when the better-trained model gives the same verdict, `flipped` when it does not
(then the first verdict was under-training, not a finding).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.core.claims import Claim, judge
from harness.planning.cell import Cell, cell_id

__all__ = ["FACTOR", "SUSPECT", "confirm_cells", "confirmation_rows"]

#: how much more training a confirmation gets
FACTOR = 10
#: the verdicts a confirmation re-trains
SUSPECT = frozenset({"FAIL", "KNOWN FAIL"})


def _suspect(record: Mapping[str, Any], claims: Sequence[Claim]) -> list[str]:
    return [c.id for c in claims if judge(c, record).verdict in SUSPECT]


def confirm_cells(
    cells: Sequence[Cell], records: Sequence[Mapping[str, Any]], claims_of: Any, factor: int = FACTOR
) -> dict[str, Cell]:
    """{cell id of the first run: its confirmation cell} for the cells of `cells` whose
    record has a FAIL or KNOWN FAIL: `factor` times the iterations, polish evaluations and
    safety net (a budget of 0, none, stays 0)."""
    by_id = {cell_id(c): c for c in cells}
    out: dict[str, Cell] = {}
    for record in records:
        cell = by_id.get(str(record.get("cell_id")))
        if cell is None or not _suspect(record, claims_of(str(record.get("task")))):
            continue
        more = copy.deepcopy(cell)
        for key in ("iters", "polish", "budget"):
            if key in more["train"]:
                more["train"][key] = type(more["train"][key])(more["train"][key] * factor)
        out[cell_id(cell)] = more
    return out


def confirmation_rows(
    first: Sequence[Mapping[str, Any]],
    again: Sequence[Mapping[str, Any]],
    pairs: Mapping[str, Cell],
    claims_of: Any,
) -> list[dict[str, str]]:
    """Per FAIL or KNOWN FAIL of `first`: the verdict and measured value before and after
    the longer training (`again`, the records of the cells `pairs` maps them to), the
    evaluations and wall time of each, and `held` or `flipped`."""
    by_id = {r.get("cell_id"): r for r in again}
    later = {first_id: by_id.get(cell_id(cell)) for first_id, cell in pairs.items()}
    rows = []
    for record in first:
        claims = {c.id: c for c in claims_of(str(record.get("task")))}
        for claim_id in _suspect(record, list(claims.values())):
            before = judge(claims[claim_id], record)
            other = later.get(str(record.get("cell_id")))
            after = judge(claims[claim_id], other) if other is not None else None
            rows.append(
                {
                    "task": str(record.get("task")),
                    "claim": claim_id,
                    "impl": str(record.get("impl")),
                    "seed": str(record.get("seed")),
                    "verdict": f"{before.verdict} {_fmt(before.measured)}",
                    "evals / s": _effort(record),
                    f"x{FACTOR} training": "no result"
                    if after is None
                    else f"{after.verdict} {_fmt(after.measured)}",
                    f"x{FACTOR} evals / s": "" if other is None else _effort(other),
                    "confirmed": ""
                    if after is None
                    else ("held" if after.verdict == before.verdict else "flipped"),
                }
            )
    return rows


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else ("" if value is None else str(value))


def _effort(record: Mapping[str, Any]) -> str:
    evals, wall = record.get("train_evals"), record.get("train_wall_s")
    return f"{evals} / {wall:.0f}" if isinstance(wall, int | float) else str(evals)


def confirm_folder(out: Path) -> Path:
    """Where the confirmation runs of the results folder `out` go."""
    return out / "confirm"
