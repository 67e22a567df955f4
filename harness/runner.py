"""Runs the matrix of cells and writes one record per cell as it finishes.

For each cell: the task's reference gradient (cached per task configuration and seed),
first-call and steady-state timing, gradient error, NFE, peak memory in an isolated
process, a short training run and the task's metrics.  A back-end that is missing,
cannot run the task, raises or diverges gives a `skipped` or `failed` record with a
one-line reason; the other cells go on.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from harness import registry
from harness.cell import Cell, build_cell, build_task
from harness.measurement import measure_memory_isolated, relative_error, time_value_and_grad
from harness.metrics import extrapolate
from harness.models import Params
from harness.protocols import Dataset
from harness.results import ResultsStore

__all__ = ["run_cells"]

_REFERENCE_CACHE: dict[str, tuple[float, Params, str]] = {}


def _reference(cell: Cell) -> tuple[float, Params, str]:
    key = json.dumps([cell["task"], cell["task_options"], cell["seed"]], sort_keys=True)
    if key not in _REFERENCE_CACHE:
        task, data, params = build_task(cell)
        _REFERENCE_CACHE[key] = task.reference_gradient(params, data)
    return _REFERENCE_CACHE[key]


def cell_id(cell: Cell) -> str:
    """A file-name-safe id of a cell: task, back-end, seed and a hash of its options."""
    options = json.dumps(
        [
            cell["task_options"],
            cell["solver"],
            cell["impl_options"],
            cell["train"],
            cell["device"],
            cell["dtype"],
        ],
        sort_keys=True,
    )
    digest = hashlib.sha1(options.encode()).hexdigest()[:8]
    return f"{cell['task']}__{cell['impl']}__seed{cell['seed']}__{digest}"


def trajectories(
    predict: Callable[[np.ndarray, np.ndarray], np.ndarray], data: Dataset
) -> dict[str, np.ndarray]:
    """The trained model and the truth over backward window + training window + forward
    window (increasing times), and the observations: what the trajectory figures draw."""
    pred = extrapolate(predict, data)
    parts_t, parts_true, parts_pred = [data.t], [data.y_true], [pred["fit"]]
    if "backward" in pred:
        parts_t.insert(0, data.t_backward[::-1])
        parts_true.insert(0, data.y_backward[::-1])
        parts_pred.insert(0, pred["backward"][::-1])
    if "forward" in pred:
        parts_t.append(data.t_forward)
        parts_true.append(data.y_forward)
        parts_pred.append(pred["forward"])
    return {
        "t_obs": data.t,
        "y_obs": data.y,
        "t": np.concatenate(parts_t),
        "y_true": np.concatenate(parts_true),
        "y_pred": np.concatenate(parts_pred),
    }


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _base_record(cell: Cell, run_id: str, env: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "task": cell["task"],
        "impl": cell["impl"],
        "params": {**cell["task_options"], **cell["solver"], **cell["impl_options"], **cell["train"]},
        "device": cell["device"],
        "dtype": cell["dtype"],
        "seed": cell["seed"],
        "status": "ok",
        "reason": None,
        "env": dict(env),
    }


def measure_cell(
    cell: Cell,
    record: dict[str, Any],
    *,
    repeats: int,
    memory: bool,
    on_train_step: Callable[[int, float], None] | None = None,
    store: ResultsStore | None = None,
) -> None:
    """Fill `record` stage by stage; raises on failure, leaving what was measured in it."""
    cls = registry.get_implementation(cell["impl"])
    if missing := cls.missing():
        record.update(status="skipped", reason=f"unavailable ({', '.join(missing)} missing): {cls.install}")
        return
    task, data, _ = build_task(cell)
    if reason := cls.skip(task, cell["device"]):
        record.update(status="skipped", reason=reason)
        return

    record["stage"] = "reference"
    ref_loss, ref_grad, how = _reference(cell)
    record["grad_reference"] = how

    record["stage"] = "setup"
    impl, params = build_cell(cell)

    record["stage"] = "value_and_grad"
    timing, out = time_value_and_grad(impl, params, repeats=repeats)
    loss, grad = impl.to_numpy(out)
    record.update(
        loss_init=loss,
        loss_reference=ref_loss,
        grad_rel_error=relative_error(grad, ref_grad),
        time_first_s=timing.first_s,
        time_median_s=timing.median_s,
        time_iqr_s=timing.iqr_s,
        repeats=timing.repeats,
    )
    if not (math.isfinite(loss) and all(np.all(np.isfinite(g)) for g in grad.values())):
        raise FloatingPointError("non-finite loss or gradient at the initial parameters")

    record["stage"] = "nfe"
    record["nfe_forward"], record["nfe_backward"] = impl.count_nfe(params)
    record["solver_steps"] = getattr(impl, "n_steps", None)

    if memory:
        record["stage"] = "memory"
        record.update(measure_memory_isolated(cell))

    record["stage"] = "train"
    iters, lr = int(cell["train"]["iters"]), float(cell["train"]["lr"])
    record["train_iters"] = iters
    if iters > 0:
        result = impl.train(params, iters=iters, lr=lr, callback=on_train_step)
        history = [float(x) for x in result.loss_history]
        record.update(train_loss_history=history, train_time_s=result.time_s)
        final, _ = impl.value_and_grad(result.params)
        record["train_loss_final"] = final
        bad = next((i for i, x in enumerate([*history, final]) if not math.isfinite(x)), None)
        if bad is not None:
            raise FloatingPointError(f"training diverged: non-finite loss at iteration {bad}")
        record["stage"] = "metrics"
        trained = result.params
        predict = lambda t, y0: impl.predict(trained, t, y0)
        record["metrics"] = task.metrics(predict, data, trained)
        if store is not None:
            record["stage"] = "trajectories"
            record["trajectory_file"] = store.save_arrays(cell_id(cell), trajectories(predict, data))
    del record["stage"]


def run_cells(
    cells: Iterable[Cell],
    store: ResultsStore,
    *,
    run_id: str,
    env: Mapping[str, Any],
    repeats: int = 7,
    memory: bool = True,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Measure every cell, appending each record to `store` as soon as it is complete."""
    cells = list(cells)
    records = []
    outer = tqdm(cells, desc="matrix", unit="cell", disable=not progress, position=0)
    for cell in outer:
        outer.set_postfix_str(f"{cell['task']} / {cell['impl']}")
        record = _base_record(cell, run_id, env)
        iters = int(cell["train"]["iters"])
        inner = tqdm(
            total=iters,
            desc=f"train {cell['impl']}",
            unit="it",
            leave=False,
            disable=not progress or iters == 0,
            position=1,
        )

        def step(i: int, loss: float, inner: Any = inner) -> None:
            inner.update(1)
            inner.set_postfix_str(f"loss {loss:.3g}")

        start = time.perf_counter()
        try:
            measure_cell(cell, record, repeats=repeats, memory=memory, on_train_step=step, store=store)
        except KeyboardInterrupt:
            inner.close()
            raise
        except Exception as exc:  # a failing back-end is a result, not a crash
            record.update(status="failed", reason=f"{record.pop('stage', 'run')}: {_one_line(exc)}")
        finally:
            inner.close()
        record["cell_time_s"] = time.perf_counter() - start
        store.append(record)
        records.append(record)
    outer.close()
    return records
