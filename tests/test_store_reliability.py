"""The results store under faults: one locked writer, appends that lose nothing, `--out`
as a new run (`--resume`, `--force`, `--retry-failed`), robust loading of every file of a
folder and filesystem errors, each one a one-line error (exit 2) or a record, never a
traceback.  Cells are the cheapest there are: numpy-adjoint on linear_adjoint, one
training iteration, one repeat, no memory probe."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness import cli
from harness.core.errors import UsageError
from harness.store import atomic
from harness.store.lock import FolderBusy, folder_lock, holds_lock
from harness.store.results import DuplicateCell, ResultsStore, load_records

ROOT = Path(__file__).resolve().parent.parent
CELL = ["--task", "linear_adjoint", "--impl", "numpy-adjoint", "--iters", "1", "--repeats", "1"]
CHEAP = [*CELL, "--no-memory", "--quiet"]


def harness(*args: str, fault: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("HARNESS_FAULT", None)
    if fault:
        env["HARNESS_FAULT"] = fault
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )


def one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """The run ended with exit 2 and one line on stderr (no traceback) holding `needles`."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def main_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """`python -m harness ARGV` in this process: exit 2 and one error line."""
    code = cli.main(list(argv))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def record(cell: str, **extra: Any) -> dict[str, Any]:
    return {"run_id": "r", "cell_id": cell, "task": "t", "impl": "i", "status": "ok", **extra}


# --------------------------------------------------------------------------- a real run, once


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results folder of one real cell (with its trajectory file)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    proc = harness("run", *CHEAP, "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture
def copy(finished: Path, tmp_path: Path) -> Path:
    """A private copy of `finished` to change."""
    target = tmp_path / "run"
    shutil.copytree(finished, target)
    return target


def lines_of(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (folder / "records.jsonl").read_text().splitlines() if x.strip()]


# --------------------------------------------------------------------------- one writer, locked


def test_run_into_a_locked_folder_is_refused_before_any_cell(tmp_path: Path) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    with folder_lock(out):
        proc = harness("run", *CHEAP, "--out", str(out))
    one_line_error(proc, str(out), "in use by another run", f"process {os.getpid()}")
    assert not (out / "records.jsonl").exists() and not (out / "env.json").exists()


@pytest.mark.serial  # racing processes; the lock within 1 s
def test_two_runs_started_together_one_runs_one_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "same"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("HARNESS_FAULT", None)
    cmd = [sys.executable, "-m", "harness", "run", *CHEAP, "--out", str(out)]
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], results
    _, _, err = next(r for r in results if r[0] == 2)
    assert len(err.strip().splitlines()) == 1 and str(out) in err and "Traceback" not in err
    # refused as busy while the other ran, or as holding its record once it had finished
    assert "in use by another run" in err or "already holds 1 records" in err
    assert len(lines_of(out)) == 1


def test_the_lock_is_released_on_every_exit_path(tmp_path: Path) -> None:
    for exc in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(exc)), folder_lock(tmp_path):
            assert holds_lock(tmp_path)
            raise exc
        assert not holds_lock(tmp_path)
    probe = "import sys; from harness.store.lock import folder_lock; folder_lock(sys.argv[1]).__enter__()"
    proc = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path)], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr  # free again for another process


def test_a_lock_held_by_another_process_is_refused_and_freed_when_it_dies(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from harness.store.lock import folder_lock\n"
            "with folder_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)",
            str(tmp_path),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderBusy, match=f"process {holder.pid}"), folder_lock(tmp_path):
            pass
    finally:
        holder.kill()
        holder.communicate()
    with folder_lock(tmp_path):  # SIGKILL leaves no stale lock
        pass


def test_the_lock_is_reentrant_and_appends_inside_a_session_do_not_deadlock(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    with store.lock(), store.lock():
        store.append(record("a"))
        store.append(record("b"))
    assert [r["cell_id"] for r in load_records(tmp_path)] == ["a", "b"]


def _append_many(args: tuple[str, int, int]) -> int:
    folder, start, count = args
    store = ResultsStore(Path(folder))
    for n in range(start, start + count):
        store.append(record(f"cell{n:04d}", seed=n))
    return count


def _append_locked(args: tuple[str, int, int]) -> int:
    folder, start, count = args
    store = ResultsStore(Path(folder))
    with store.lock(wait=True):  # the session's way: one lock for many appends
        for n in range(start, start + count):
            store.append(record(f"cell{n:04d}", seed=n))
    return count


def test_150_plus_150_appends_from_a_pool_into_two_folders_lose_nothing(tmp_path: Path) -> None:
    folders = [tmp_path / "a", tmp_path / "b"]
    work = [(str(folders[i % 2]), 1000 * (i % 2) + 25 * (i // 2), 25) for i in range(12)]
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        assert sum(pool.map(_append_many, work)) == 300
    for folder in folders:
        records = load_records(folder)
        assert len(records) == 150 and len({r["cell_id"] for r in records}) == 150
        assert len((folder / "summary.csv").read_text().strip().splitlines()) == 151


@pytest.mark.parametrize("worker", [_append_many, _append_locked])
def test_concurrent_appends_into_one_folder_are_serialised(tmp_path: Path, worker: Any) -> None:
    work = [(str(tmp_path), start, 40) for start in (0, 100)]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        assert sum(pool.map(worker, work)) == 80
    ids = [r["cell_id"] for r in load_records(tmp_path)]
    assert len(ids) == 80 and len(set(ids)) == 80


def test_a_cell_is_held_once_appending_it_again_is_refused_or_replaces(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    store.append(record("a", status="failed"))
    with pytest.raises(DuplicateCell, match="already holds cell a"):
        store.append(record("a"))
    store.append(record("a", status="ok", seed=3), replace=True)
    assert [(r["cell_id"], r["status"], r["seed"]) for r in load_records(tmp_path)] == [("a", "ok", 3)]


def test_compare_says_so_when_a_folder_holds_a_cell_twice(
    copy: Path, finished: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (copy / "records.jsonl").read_text()
    (copy / "records.jsonl").write_text(text + text)
    err = main_error(capsys, "compare", str(finished), str(copy))
    assert "run B holds cell linear_adjoint__numpy-adjoint" in err and "2 times" in err


# --------------------------------------------------------------------------- --out means a new run


def test_out_into_a_folder_with_records_is_refused(copy: Path) -> None:
    before = (copy / "records.jsonl").read_bytes()
    one_line_error(
        harness("run", *CHEAP, "--out", str(copy)),
        f"{copy} already holds 1 records: --resume {copy} to go on, --force to start over",
    )
    assert (copy / "records.jsonl").read_bytes() == before


def test_resume_goes_on_under_another_machines_env(copy: Path) -> None:
    env = json.loads((copy / "env.json").read_text())
    env.update(git_commit="0" * 40, platform="another machine")
    (copy / "env.json").write_text(json.dumps(env))
    old = lines_of(copy)[0]
    proc = harness("run", *CHEAP, "--seeds", "0,1", "--resume", str(copy))
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = lines_of(copy)
    assert len(records) == 2 and records[0] == old  # seed 0 skipped, seed 1 measured
    assert records[1]["seed"] == 1 and records[1]["env"]["git_commit"] != "0" * 40
    assert json.loads((copy / "env.json").read_text())["platform"] == "another machine"


def test_force_starts_over_keeping_nothing(copy: Path) -> None:
    old = lines_of(copy)[0]
    (copy / "figures" / "stale.png").write_bytes(b"old")
    (copy / "trajectories" / "stale.npz").write_bytes(b"old")
    (copy / "notes.txt").write_text("the user's own file")
    proc = harness("run", *CHEAP, "--out", str(copy), "--force")
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = lines_of(copy)
    assert len(records) == 1 and records[0]["run_id"] != old["run_id"]
    assert (
        not (copy / "figures" / "stale.png").exists() and not (copy / "trajectories" / "stale.npz").exists()
    )
    assert (copy / "notes.txt").read_text() == "the user's own file"  # not one of the run's files


def test_retry_failed_runs_a_failed_cell_again(tmp_path: Path) -> None:
    out = tmp_path / "crashed"
    proc = harness("run", *CHEAP, "--out", str(out), fault="numpy-adjoint:crash")
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    assert [r["status"] for r in lines_of(out)] == ["failed"]
    proc = harness("run", *CHEAP, "--resume", str(out))  # a plain resume keeps the failure
    assert proc.returncode in (0, 1) and [r["status"] for r in lines_of(out)] == ["failed"]
    proc = harness("run", *CHEAP, "--resume", str(out), "--retry-failed")
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = lines_of(out)
    assert [r["status"] for r in records] == ["ok"] and records[0]["trajectory_file"]


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--retry-failed"], "--retry-failed needs --resume DIR"),
        (["--force", "--resume", "{out}"], "not both"),
        (["--resume", "{out}/nowhere"], "no results folder at"),
    ],
)
def test_inconsistent_resume_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra, needle
) -> None:
    argv = ["run", *CHEAP, *(x.format(out=tmp_path) for x in extra)]
    assert needle in main_error(capsys, *argv)


# --------------------------------------------------------------------------- robust loading


def _npz(folder: Path) -> Path:
    return folder / lines_of(folder)[0]["trajectory_file"]


def _edit_record(folder: Path, **changes: Any) -> None:
    rec = lines_of(folder)[0]
    rec.update(changes)
    for key in [k for k, v in changes.items() if v is _DROP]:
        rec.pop(key)
    (folder / "records.jsonl").write_text(json.dumps(rec) + "\n")


_DROP = object()


def _save_npy(path: Path) -> None:
    with path.open("wb") as fh:
        np.save(fh, np.zeros(3))


CORRUPTIONS = {
    "not UTF-8": (
        lambda f: (f / "records.jsonl").write_bytes(
            (f / "records.jsonl").read_bytes() + b'{"task": "\xff"}\n'
        ),
        "records.jsonl': line 2 is not UTF-8",
    ),
    "not JSON": (
        lambda f: (f / "records.jsonl").write_text((f / "records.jsonl").read_text() + "{not json\n"),
        "records.jsonl': line 2 is not JSON",
    ),
    "JSON but not an object": (
        lambda f: (f / "records.jsonl").write_text("[1, 2]\n"),
        "line 1 is JSON but not an object",
    ),
    "no status": (
        lambda f: _edit_record(f, status=_DROP),
        "line 1 is not a harness record: it has no status",
    ),
    "task not a string": (lambda f: _edit_record(f, task=3), "line 1 has a task that is not a string"),
    "params not a dict": (lambda f: _edit_record(f, params=[1]), "line 1 has params that is not an object"),
    "claims not a list": (lambda f: _edit_record(f, claims="ok"), "line 1 has claims that are not a list"),
    "claim not an object": (
        lambda f: _edit_record(f, claims=[1]),
        "line 1 has a claim that is not an object",
    ),
    "time a string": (
        lambda f: _edit_record(f, time_median_s="fast"),
        "line 1 has a time_median_s that is not a number",
    ),
    "history not numbers": (
        lambda f: _edit_record(f, train_loss_history=["a"]),
        "train_loss_history that is not a list of numbers",
    ),
    "env.json not an object": (
        lambda f: (f / "env.json").write_text("[]\n"),
        "env.json': it is JSON but not an object",
    ),
    "env.json not JSON": (lambda f: (f / "env.json").write_text("{"), "env.json': it is not JSON"),
    "env.json not UTF-8": (lambda f: (f / "env.json").write_bytes(b'{"a": "\xfe"}'), "line 1 is not UTF-8"),
    "truncated trajectory": (
        lambda f: _npz(f).write_bytes(_npz(f).read_bytes()[:200]),
        "corrupt trajectory file",
    ),
    "trajectory not npz": (lambda f: _npz(f).write_text("hello"), "corrupt trajectory file"),
    "trajectory a .npy": (lambda f: _save_npy(_npz(f)), "not an .npz archive"),
    "trajectory outside": (
        lambda f: _edit_record(f, trajectory_file="../../etc/passwd"),
        "trajectory_file '../../etc/passwd' that points outside the results folder",
    ),
    "trajectory absolute": (
        lambda f: _edit_record(f, trajectory_file="/etc/passwd"),
        "is not a path inside the results folder",
    ),
    "trajectory a symlink out": (
        lambda f: (_npz(f).unlink(), _npz(f).symlink_to("/etc/passwd")),
        "points outside the results folder",
    ),
    "records.jsonl a directory": (
        lambda f: ((f / "records.jsonl").unlink(), (f / "records.jsonl").mkdir()),
        "records.jsonl' is a directory",
    ),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_a_corrupt_folder_is_one_line_for_report_and_compare(
    corruption: str, copy: Path, finished: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corrupt, needle = CORRUPTIONS[corruption]
    corrupt(copy)
    assert needle in main_error(capsys, "report", str(copy))
    assert needle in main_error(capsys, "compare", str(finished), str(copy))
    assert str(copy) in main_error(capsys, "compare", str(copy), str(finished))


def test_report_and_compare_of_a_corrupt_folder_print_no_traceback(copy: Path, finished: Path) -> None:
    _edit_record(copy, claims={"not": "a list"})
    one_line_error(harness("report", str(copy)), str(copy / "records.jsonl"), "line 1")
    one_line_error(harness("compare", str(finished), str(copy)), "line 1 has claims")


def test_merge_of_a_corrupt_folder_is_one_line(copy: Path, tmp_path: Path, capsys) -> None:
    from harness.store import merge

    (copy / "env.json").write_text('"a string"')
    assert merge.main([str(copy), "--out", str(tmp_path / "merged.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "env.json': it is JSON but not an object" in err[0]


def test_resume_of_a_corrupt_folder_is_refused_before_any_cell(copy: Path) -> None:
    (copy / "records.jsonl").write_text((copy / "records.jsonl").read_text() + '{"task": 1}\n')
    before = (copy / "records.jsonl").read_bytes()
    one_line_error(harness("run", *CHEAP, "--seeds", "0,1", "--resume", str(copy)), "line 2")
    assert (copy / "records.jsonl").read_bytes() == before  # nothing measured, nothing appended


def test_an_unreadable_old_line_never_aborts_an_append(tmp_path: Path) -> None:
    (tmp_path / "records.jsonl").write_bytes(b"\xff\xfe garbage\n" + json.dumps(record("a")).encode() + b"\n")
    ResultsStore(tmp_path).append(record("b"))  # the old line is kept byte for byte
    assert (tmp_path / "records.jsonl").read_bytes().startswith(b"\xff\xfe garbage\n")
    assert len((tmp_path / "summary.csv").read_text().strip().splitlines()) == 3


# --------------------------------------------------------------------------- filesystem errors


def test_out_that_is_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("x")
    assert "it is a file" in main_error(capsys, "run", *CHEAP, "--out", str(tmp_path / "file"))


def test_out_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    one_line_error(harness("run", *CHEAP, "--out", str(tmp_path / "file" / "run")), "a parent is a file")


@pytest.mark.parametrize("name", ["records.jsonl", "env.json", "summary.csv"])
def test_a_directory_where_a_file_belongs(tmp_path: Path, name: str, capsys) -> None:
    (tmp_path / "run" / name).mkdir(parents=True)
    err = main_error(capsys, "run", *CHEAP, "--out", str(tmp_path / "run"))
    assert f"'{name}' is a directory" in err or f"{name}' is a directory" in err


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """`folder` read-only: chmod 0o555, or for root (whom modes do not stop) the immutable
    attribute (`chattr +i`); a skip where neither works."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(folder)], capture_output=True).returncode:
        pytest.skip("running as root and chattr +i is not available: modes do not stop root")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(folder)], check=True)


def test_out_in_a_read_only_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    locked = tmp_path / "ro"
    locked.mkdir()
    with read_only(locked):
        err = main_error(capsys, "run", *CHEAP, "--out", str(locked / "run"))
        assert f"cannot create results folder '{locked / 'run'}'" in err
        err = main_error(capsys, "run", *CHEAP, "--out", str(locked))
        assert f"cannot write results folder '{locked}': permission denied" in err


def test_a_read_only_folder_mid_run_is_one_line(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "run")
    store.append(record("a"))
    with read_only(tmp_path / "run"), pytest.raises(UsageError, match=r"cannot write .*records\.jsonl"):
        store.append(record("b"))
    assert [r["cell_id"] for r in load_records(tmp_path / "run")] == ["a"]


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_files_get_the_usual_permissions(tmp_path: Path, mask: int) -> None:
    old = os.umask(mask)
    try:
        path = atomic.write_text_atomic(tmp_path / "f.txt", "x")
        ResultsStore(tmp_path, env={"a": 1}).append(record("a"))
    finally:
        os.umask(old)
    for p in (path, tmp_path / "records.jsonl", tmp_path / "summary.csv", tmp_path / "env.json"):
        assert p.stat().st_mode & 0o777 == 0o666 & ~mask, p


@pytest.mark.serial  # racing processes; the lock within 1 s
def test_a_killed_writer_leaves_no_stale_lock_or_torn_file(tmp_path: Path) -> None:
    code = (
        "import sys, os, signal; from pathlib import Path; from harness.store.results import ResultsStore\n"
        "s = ResultsStore(Path(sys.argv[1]))\n"
        "with s.lock():\n"
        "    s.append({'cell_id': 'a', 'task': 't', 'impl': 'i', 'status': 'ok'})\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, capture_output=True)
    assert proc.returncode == -9
    started = time.monotonic()
    with folder_lock(tmp_path):
        assert time.monotonic() - started < 1
    assert [r["cell_id"] for r in load_records(tmp_path)] == ["a"]


def test_training_stopped_by_its_budget_is_budget_bound_not_a_difference() -> None:
    """A cell whose training stopped at its wall-clock budget after other iteration counts
    ran as far as the machine's speed let it: its trained loss and metrics are not compared
    (`budget-bound`), everything else still is; equal counts compare as usual."""
    from harness.store.compare import compare_runs

    def rec(iters: int, loss: float, grad: float = 1e-8) -> dict:
        return {"cell_id": "c", "task": "t", "impl": "i", "status": "ok", "train_stopped": "budget",
                "train_iters_run": iters, "train_loss_final": loss, "grad_rel_error": grad,
                "metrics": {"fit": loss}}  # fmt: skip

    [bound] = compare_runs([rec(200, 0.1)], [rec(210, 0.09)])
    assert (
        bound.reproduced and bound.label == "budget-bound" and "200 vs 210 iterations" in (bound.note or "")
    )
    [differs] = compare_runs([rec(200, 0.1)], [rec(210, 0.09, grad=2e-8)])
    assert differs.label == "differs" and any("grad_rel_error" in d for d in differs.differences)
    [same] = compare_runs([rec(200, 0.1)], [rec(200, 0.09)])
    assert same.label == "differs" and any("train_loss_final" in d for d in same.differences)


def test_training_that_reached_its_target_by_another_path_is_path_bound() -> None:
    """Two records that both stopped at their target loss after other iteration counts (CPU
    rounding took another path): trained loss and metrics are not compared (`path-bound`);
    everything else is, and equal counts compare as usual."""
    from harness.store.compare import compare_runs

    def rec(iters: int, loss: float, grad: float = 1e-8, stopped: str = "target") -> dict:
        return {"cell_id": "c", "task": "t", "impl": "i", "status": "ok", "train_stopped": stopped,
                "train_iters_run": iters, "train_loss_final": loss, "grad_rel_error": grad,
                "metrics": {"fit": loss}}  # fmt: skip

    [bound] = compare_runs([rec(2656, 1e-3)], [rec(2736, 1.1e-3)])
    assert (
        bound.reproduced and bound.label == "path-bound" and "2656 vs 2736 iterations" in (bound.note or "")
    )
    [differs] = compare_runs([rec(2656, 1e-3)], [rec(2736, 1e-3, grad=2e-8)])
    assert differs.label == "differs"
    [iters] = compare_runs([rec(100, 1e-3, stopped="iters")], [rec(100, 2e-3, stopped="iters")])
    assert iters.label == "differs" and any("train_loss_final" in d for d in iters.differences)
