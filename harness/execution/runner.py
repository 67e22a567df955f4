"""Runs the matrix of cells, each in a process of its own, one record per cell.

For each cell: the task's reference gradient, first-call and steady-state timing,
gradient error, NFE, peak memory (in a further isolated process), a short training run,
the task's metrics and the trajectories for the figures.  The worker process saves its
record after every stage, so that a crash, a NaN or a timeout leaves a `failed` record
with its reason and everything measured before; the other cells go on.  Missing
libraries and unsupported combinations are `skipped` with a one-line reason.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from harness.core import registry
from harness.core.claims import judge_record
from harness.execution.build import build_cell, build_task
from harness.execution.measurement import measure_memory_isolated, relative_error, time_value_and_grad
from harness.numerics.training import TrainingMonitor
from harness.planning.cell import Cell, cell_id
from harness.planning.config import STOP_KEY
from harness.store.results import ResultsStore, write_json_atomic

__all__ = ["measure_cell", "run_cells", "skip_reason"]

#: test aid: ``HARNESS_FAULT="IMPL:MODE[:STAGE]"`` makes that back-end's worker crash
#: (killed by SIGKILL), hang, or produce NaN parameters at STAGE (default: train)
FAULT_VARIABLE = "HARNESS_FAULT"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def base_record(cell: Cell, run_id: str, env: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "cell_id": cell_id(cell),
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


def skip_reason(cell: Cell) -> str | None:
    """Why a cell cannot run (library missing, model kind or device unsupported), or None.

    Decided without importing any framework, in the parent process."""
    cls = registry.get_implementation(cell["impl"])
    if missing := cls.missing():
        return f"unavailable ({', '.join(missing)} missing): {cls.install}"
    return cls.skip(registry.get_task(cell["task"])(**cell["task_options"]), cell["device"])


def _inject_fault(cell: Cell, stage: str) -> None:
    spec = os.environ.get(FAULT_VARIABLE, "")
    impl, _, rest = spec.partition(":")
    mode, _, at = rest.partition(":")
    if impl != cell["impl"] or stage != (at or "train"):
        return
    if mode == "crash":
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "hang":
        time.sleep(1e6)


def measure_cell(
    cell: Cell,
    record: dict[str, Any],
    *,
    repeats: int,
    memory: bool,
    store: ResultsStore | None = None,
    on_train_step: Callable[[int, float], None] | None = None,
    checkpoint: Callable[[dict[str, Any]], None] = lambda record: None,
) -> None:
    """Fill `record` stage by stage, calling `checkpoint(record)` after each; raises on
    failure with `record["stage"]` naming the stage that failed."""

    def stage(name: str) -> None:
        record["stage"] = name
        checkpoint(record)
        _inject_fault(cell, name)

    task, data, params = build_task(cell)
    if os.environ.get(FAULT_VARIABLE, "").startswith(f"{cell['impl']}:nan"):
        params = {k: np.full_like(v, np.nan) for k, v in params.items()}

    stage("reference")
    _, ref_grad, how = task.reference_gradient(task.init_params(cell["seed"]), data)
    record["grad_reference"] = how

    stage("setup")
    impl, _ = build_cell(cell)

    stage("value_and_grad")
    timing, out = time_value_and_grad(impl, params, repeats=repeats)
    loss, grad = impl.to_numpy(out)
    record.update(
        loss_init=loss,
        grad_rel_error=relative_error(grad, ref_grad),
        time_first_s=timing.first_s,
        time_median_s=timing.median_s,
        time_iqr_s=timing.iqr_s,
        repeats=timing.repeats,
    )
    if not (math.isfinite(loss) and all(np.all(np.isfinite(g)) for g in grad.values())):
        raise FloatingPointError("non-finite loss or gradient at the initial parameters")

    stage("nfe")
    record["nfe_forward"], record["nfe_backward"] = impl.count_nfe(params)
    record["solver_steps"] = getattr(impl, "n_steps", None)

    if memory:
        stage("memory")
        record.update(measure_memory_isolated(cell))

    stage("train")
    train = cell["train"]
    iters, lr = int(train["iters"]), float(train["lr"])
    record["train_iters"] = iters
    if iters > 0:
        monitor = TrainingMonitor(
            target=float(train.get("target", 0.0)),
            budget_s=float(train.get("budget", 0.0)),
            stop_at_target=bool(train.get(STOP_KEY, True)),
            on_step=on_train_step,
        )
        result = task.fit(
            impl, params, iters=iters, lr=lr, callback=monitor, curriculum=int(train.get("curriculum", 0))
        )
        history = [float(x) for x in result.loss_history]
        record.update(train_loss_history=history, train_time_s=result.time_s, **monitor.summary())
        bad = next((i for i, x in enumerate(history) if not math.isfinite(x)), None)
        if bad is not None:
            raise FloatingPointError(f"training diverged: non-finite loss at iteration {bad}")
        final, _ = impl.value_and_grad(result.params)
        record["train_loss_final"] = final
        if not math.isfinite(final):
            raise FloatingPointError(f"training diverged: non-finite loss after {len(history)} iterations")
        stage("metrics")
        trained = result.params
        predict = lambda t, y0: impl.predict(trained, t, y0)
        record["metrics"] = {**result.info, **task.metrics(predict, data, trained)}
        if store is not None:
            stage("trajectories")
            record["trajectory_file"] = store.save_arrays(cell_id(cell), task.trajectories(predict, data))
    del record["stage"]
    checkpoint(record)


# -- the parent side: one worker process per cell ---------------------------------------


def _run_worker(job: Mapping[str, Any], *, timeout: float) -> tuple[dict[str, Any] | None, str | None]:
    """Run `python -m harness.execution.worker` on `job`; returns (the record it saved, why it died)."""
    with tempfile.TemporaryDirectory(prefix="harness-cell-") as tmp:
        job_path, record_path = Path(tmp) / "job.json", Path(tmp) / "record.json"
        job_path.write_text(json.dumps({**job, "record_path": str(record_path)}))
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness.execution.worker", str(job_path)], start_new_session=True
        )
        died = None
        try:
            code = proc.wait(timeout=timeout)
            if code < 0:
                died = f"crashed: killed by signal {signal.Signals(-code).name}"
            elif code != 0:
                died = f"crashed: worker exited with status {code}"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            died = f"timed out after {timeout:g} s"
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        record = json.loads(record_path.read_text()) if record_path.is_file() else None
        return record, died


def run_cells(
    cells: Iterable[Cell],
    store: ResultsStore,
    *,
    run_id: str,
    env: Mapping[str, Any],
    repeats: int = 7,
    memory: bool = True,
    timeout: float = 1800.0,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Measure every cell not yet in `store`, each in its own worker process with a
    timeout, appending each record to `store` as soon as the cell ends."""
    done = store.finished_ids()
    cells = [c for c in cells if cell_id(c) not in done]
    records = []
    outer = tqdm(cells, desc="matrix", unit="cell", disable=not progress, position=0)
    for cell in outer:
        outer.set_postfix_str(f"{cell['task']} / {cell['impl']}")
        record = base_record(cell, run_id, env)
        start = time.perf_counter()
        if reason := skip_reason(cell):
            record.update(status="skipped", reason=reason)
        else:
            job = {
                "cell": cell,
                "record": record,
                "repeats": repeats,
                "memory": memory,
                "store_dir": str(store.dir),
                "progress": progress,
            }
            saved, died = _run_worker(job, timeout=timeout)
            record = saved or record
            if died is not None:
                stage = record.pop("stage", "start")
                record.update(status="failed", reason=f"{stage}: {died}")
        record["cell_time_s"] = time.perf_counter() - start
        record["claims"] = judge_record(registry.get_task(cell["task"]).claims, record)
        store.append(record)
        records.append(record)
    outer.close()
    return records


def measure_in_worker(job: Mapping[str, Any]) -> None:
    """The worker's side: measure one cell, saving the record after every stage."""
    record_path = Path(job["record_path"])
    record: dict[str, Any] = dict(job["record"])
    save = lambda rec: write_json_atomic(record_path, rec)
    cell: Cell = job["cell"]
    iters = int(cell["train"]["iters"])
    bar = tqdm(
        total=iters,
        desc=f"train {cell['task']}/{cell['impl']}",
        unit="it",
        leave=False,
        disable=not job["progress"] or iters == 0,
        position=1,
    )

    def step(i: int, loss: float) -> None:
        bar.update(1)
        bar.set_postfix_str(f"loss {loss:.3g}")

    store = ResultsStore.open(Path(job["store_dir"]))
    try:
        measure_cell(
            cell,
            record,
            repeats=job["repeats"],
            memory=job["memory"],
            store=store,
            on_train_step=step,
            checkpoint=save,
        )
    except Exception as exc:  # a failing back-end is a result, not a crash
        record.update(status="failed", reason=f"{record.pop('stage', 'run')}: {_one_line(exc)}")
        save(record)
    finally:
        bar.close()
