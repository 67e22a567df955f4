"""Hostile input, one table (issue #28): each row is a command line (with its environment
and the files it needs), and what must come of it: exit status 2 and exactly one line on
stderr matching the row's pattern (which names the input and what is valid), no
traceback, within 30 s.  A new surface adds rows here, not test functions.

Rows run the command line in this process (`harness.cli.main`, `harness.store.merge.main`)
unless marked `sub`: those run `python -m ...` in a subprocess, where what the real entry
point prints (a `Client.__del__` traceback, a plugin's `sys.exit`, tornado's logging)
would show.
"""

# ruff: noqa: E501  (the table below keeps one case to a row or two)

from __future__ import annotations

import contextlib
import dataclasses
import faulthandler
import gzip
import io
import os
import re
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness import cli
from harness.store import archive, merge

ROOT = Path(__file__).resolve().parent.parent
#: every case ends within this many seconds
DEADLINE_S = 30.0
RUN = ["run", "--task", "lotka_volterra", "--impl", "numpy-adjoint", "--iters", "1", "--quiet"]
DASK = [*RUN, "--engine", "dask"]
SLURM = [*DASK, "--cluster", "slurm"]

Setup = Callable[[Path, contextlib.ExitStack], dict[str, str]]


@dataclasses.dataclass(frozen=True)
class Case:
    """One hostile input: `argv` (`{name}` filled from what `setup` returns), `env` (set
    for the run; None deletes), the pattern of the one stderr line, and where it runs."""

    id: str
    argv: list[str]
    line: str
    setup: Setup | None = None
    env: dict[str, str | None] = dataclasses.field(default_factory=dict)
    tool: str = "harness"  # or "merge"
    sub: bool = False
    status: int = 2
    absent: str = ""  # a path that must not exist afterwards (refused before the folder is made)


# --------------------------------------------------------------------------- setups


def _record(**extra: Any) -> str:
    import json

    rec = {"task": "lotka_volterra", "impl": "numpy-adjoint", "status": "ok", "cell_id": "c1", **extra}
    return json.dumps(rec) + "\n"


def folder(tmp: Path, stack: contextlib.ExitStack) -> dict[str, str]:
    """A results folder of one plain record."""
    run = tmp / "run"
    run.mkdir(exist_ok=True)
    (run / "records.jsonl").write_text(_record())
    return {"dir": str(run), "tmp": str(tmp)}


def _npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _archive(members: dict[str, bytes], compress: int = zipfile.ZIP_STORED) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with zipfile.ZipFile(path, "w", compression=compress) as z:
            for name, data in members.items():
                z.writestr(name, data)

    return write


def _object_array(path: Path) -> None:
    np.savez(path, a=np.array([1, "x"], dtype=object))


def trajectory(write: Callable[[Path], None] | str) -> Setup:
    """A results folder whose record names `trajectories/t.npz`, written by `write` (or a
    special: "fifo")."""

    def setup(tmp: Path, stack: contextlib.ExitStack) -> dict[str, str]:
        run = tmp / "run"
        (run / "trajectories").mkdir(parents=True, exist_ok=True)
        path = run / "trajectories" / "t.npz"
        if write == "fifo":
            os.mkfifo(path)
        elif callable(write):
            write(path)
        (run / "records.jsonl").write_text(_record(trajectory_file="trajectories/t.npz"))
        other = tmp / "other"
        other.mkdir(exist_ok=True)
        (other / "records.jsonl").write_text(_record())
        return {"dir": str(run), "other": str(other), "tmp": str(tmp)}

    return setup


def bomb(tmp: Path, stack: contextlib.ExitStack) -> dict[str, str]:
    """4 MB of zeros deflated to a few kB, against a limit lowered to 1 MB (this process)."""
    stack.enter_context(_patched(archive, "MAX_ARCHIVE_BYTES", 2**20))
    data = _npy_header((2**19,)) + bytes(8 * 2**19)
    return trajectory(_archive({"a.npy": data}, zipfile.ZIP_DEFLATED))(tmp, stack)


@contextlib.contextmanager
def _patched(module: Any, name: str, value: Any) -> Iterator[None]:
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


def records_as(kind: str) -> Setup:
    """A results folder whose records.jsonl (or env.json) is not a regular file."""

    def setup(tmp: Path, stack: contextlib.ExitStack) -> dict[str, str]:
        run = tmp / "run"
        run.mkdir(exist_ok=True)
        target = run / ("env.json" if kind == "env-fifo" else "records.jsonl")
        if kind in ("fifo", "env-fifo"):
            os.mkfifo(target)
        elif kind == "device":
            target.symlink_to("/dev/zero")
        elif kind == "dangling":
            target.symlink_to(tmp / "nowhere")
        elif kind == "dir":
            target.mkdir()
        if kind == "env-fifo":
            (run / "records.jsonl").write_text(_record())
        return {"dir": str(run)}

    return setup


def locked(tmp: Path, stack: contextlib.ExitStack) -> dict[str, str]:
    """A results folder whose writer lock another process holds (as a run does)."""
    names = folder(tmp, stack)
    code = (
        "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDONLY); "
        "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, names["dir"]], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    stack.callback(holder.stdout.close)
    stack.callback(holder.wait)
    stack.callback(holder.kill)
    assert holder.stdout.readline().strip() == "held"
    return names


def read_only(tmp: Path, stack: contextlib.ExitStack) -> dict[str, str]:
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    names = folder(tmp, stack)
    ro = tmp / "ro"
    ro.mkdir()
    for path in (Path(names["dir"]), ro):
        path.chmod(0o555)
        stack.callback(path.chmod, 0o755)
    return {**names, "ro": str(ro)}


def study_claims(content: str | None) -> Setup:
    """A results folder with a `study_claims.json` of `content` (None: a FIFO)."""

    def setup(tmp: Path, stack: contextlib.ExitStack) -> dict[str, str]:
        names = folder(tmp, stack)
        path = Path(names["dir"]) / "study_claims.json"
        if content is None:
            os.mkfifo(path)
        else:
            path.write_text(content)
        return names

    return setup


def a_file(tmp: Path, stack: contextlib.ExitStack) -> dict[str, str]:
    names = folder(tmp, stack)
    (tmp / "file").write_text("x")
    return {**names, "file": str(tmp / "file")}


def plugin(body: str) -> Setup:
    def setup(tmp: Path, stack: contextlib.ExitStack) -> dict[str, str]:
        path = tmp / f"plugin_{abs(hash(body)) % 10**8}.py"
        path.write_text(body)
        return {"plugin": str(path), "tmp": str(tmp)}

    return setup


def _serve(tmp: Path, stack: contextlib.ExitStack, answer: bytes | None) -> dict[str, str]:
    """A TCP server on loopback that accepts and says nothing (`answer` None) or `answer`."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    stack.callback(server.close)
    conns: list[socket.socket] = []

    def loop() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = server.accept()
                conns.append(conn)
                if answer is not None:
                    conn.sendall(answer)

    threading.Thread(target=loop, daemon=True).start()
    stack.callback(lambda: [c.close() for c in conns])
    return {"addr": f"tcp://127.0.0.1:{port}"}


def silent(tmp: Path, stack: contextlib.ExitStack) -> dict[str, str]:
    return _serve(tmp, stack, None)


def http(tmp: Path, stack: contextlib.ExitStack) -> dict[str, str]:
    return _serve(tmp, stack, b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello\n" * 4)


def closed_port(tmp: Path, stack: contextlib.ExitStack) -> dict[str, str]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
    return {"addr": f"tcp://127.0.0.1:{port}"}


def dask_cluster(workers: int) -> Setup:
    """A Dask cluster in this process on loopback TCP: `{addr}` its scheduler (or, with a
    worker, `{worker}` the worker's address)."""

    def setup(tmp: Path, stack: contextlib.ExitStack) -> dict[str, str]:
        from distributed import LocalCluster

        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1",
            dashboard_address=None,
        )  # fmt: skip
        stack.callback(cluster.close)
        names = {"addr": cluster.scheduler_address}
        if workers:
            names["worker"] = next(iter(cluster.scheduler.workers))
        return names

    return setup


def no_sbatch(tmp: Path, stack: contextlib.ExitStack) -> dict[str, str]:
    empty = tmp / "bin"
    empty.mkdir()
    return {"path": str(empty)}


def mnist(kind: str) -> Setup:
    """A data_dir of four small MNIST IDX files, one of them made wrong by `kind`."""

    def idx(path: Path, array: np.ndarray) -> None:
        head = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
        raw = head + np.asarray(array, dtype=">u1").tobytes()
        if kind == "truncated" and "train-images" in path.name:
            raw = raw[:-100]
        path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)

    def setup(tmp: Path, stack: contextlib.ExitStack) -> dict[str, str]:
        data = tmp / "mnist"
        data.mkdir()
        labels = np.arange(30) % 10
        if kind == "label-out-of-range":
            labels[7] = 12
        images = np.zeros((30, 28, 28), dtype=np.uint8)
        suffix = ".gz" if kind == "gz-truncated" else ""
        idx(data / f"train-images-idx3-ubyte{suffix}", images)
        idx(data / "train-labels-idx1-ubyte", labels if kind != "count" else labels[:20])
        idx(data / "t10k-images-idx3-ubyte", images[:10])
        idx(
            data / "t10k-labels-idx1-ubyte", labels[:10] if kind != "labels-2d" else labels[:10].reshape(2, 5)
        )
        if kind == "gz-truncated":
            path = data / "train-images-idx3-ubyte.gz"
            path.write_bytes(path.read_bytes()[:-4] + (5).to_bytes(4, "little"))
        return {"data": str(data), "tmp": str(tmp)}

    return setup


# --------------------------------------------------------------------------- the table

MNIST = ["run", "--task", "odenet_digits", "--impl", "numpy-adjoint", "--quiet", "--out", "out"]

_BAD_NPY = _npy_header((2**40,))
_OPTION = r"bad --cluster-option"

CASES = [
    # -- Dask: --scheduler
    Case("scheduler-port-not-a-number", [*DASK, "--scheduler", "tcp://host:notaport"],
         r"bad --scheduler 'tcp://host:notaport': expected tcp://HOST:PORT", sub=True),
    Case("scheduler-unknown-scheme", [*DASK, "--scheduler", "foo://x:1"],
         r"unknown scheme 'foo'; choose from: tcp, tls"),
    Case("scheduler-inproc", [*DASK, "--scheduler", "inproc://x"], r"unknown scheme 'inproc'; choose from: tcp, tls"),
    Case("scheduler-tls-unconfigured", [*DASK, "--scheduler", "tls://127.0.0.1:1"],
         r"TLS needs Dask's TLS settings \(distributed\.comm\.tls\.ca-file"),
    Case("scheduler-port-out-of-range", [*DASK, "--scheduler", "127.0.0.1:99999"],
         r"bad --scheduler '127.0.0.1:99999': expected .*port 1-65535"),
    Case("scheduler-port-zero", [*DASK, "--scheduler", "tcp://127.0.0.1:0"], r"port 1-65535"),
    Case("scheduler-empty", [*DASK, "--scheduler", ""], r"bad --scheduler '': expected tcp://HOST:PORT"),
    Case("scheduler-newline", [*DASK, "--scheduler", "tcp://a\nb:1"], r"bad --scheduler 'tcp://a\\nb:1'"),
    Case("scheduler-no-port", [*DASK, "--scheduler", "tcp://somehost"], r"bad --scheduler 'tcp://somehost'"),
    Case("scheduler-silent-server", [*DASK, "--scheduler", "{addr}", "--connect-timeout", "1"],
         r"no Dask scheduler answered within 1 s", setup=silent, sub=True),
    Case("scheduler-http-server", [*DASK, "--scheduler", "{addr}", "--connect-timeout", "2"],
         r"something answers there that is not a Dask scheduler", setup=http, sub=True),
    Case("scheduler-silent-in-process", [*DASK, "--scheduler", "{addr}", "--connect-timeout", "1"],
         r"no Dask scheduler answered within 1 s", setup=silent),
    Case("scheduler-closed-port", [*DASK, "--scheduler", "{addr}", "--connect-timeout", "1"],
         r"cannot run on the Dask scheduler at tcp://127\.0\.0\.1:\d+: OSError", setup=closed_port),
    Case("scheduler-is-a-worker", [*DASK, "--scheduler", "{worker}", "--connect-timeout", "2"],
         r"it is a Dask worker, not a scheduler \(give the scheduler's address\)", setup=dask_cluster(1)),
    Case("scheduler-without-workers", [*DASK, "--scheduler", "{addr}", "--connect-timeout", "1", "--out", "nw"],
         r"cannot run on the Dask scheduler at tcp://.*: WorkerStartTimeoutError: Only 0/1 workers arrived",
         setup=dask_cluster(0), absent="nw"),
    Case("connect-timeout-zero", [*DASK, "--connect-timeout", "0"], r"bad --connect-timeout=0: must be"),
    Case("connect-timeout-nan", [*DASK, "--connect-timeout", "nan"], r"bad --connect-timeout=nan: must be"),
    Case("connect-timeout-huge", [*DASK, "--connect-timeout", "1e9"], r"bad --connect-timeout=1e\+09"),
    Case("connect-timeout-serial", [*RUN, "--connect-timeout", "5"], r"--connect-timeout needs --engine dask"),
    Case("scheduler-serial", [*RUN, "--scheduler", "tcp://127.0.0.1:8786"], r"--scheduler needs --engine dask"),
    Case("workers-zero", [*DASK, "--workers", "0"], r"bad --workers=0: must be an integer in \[1, 4096\]"),
    Case("timing-serial-engine", [*RUN, "--timing", "concurrent"], r"--timing needs --engine dask"),
    Case("timing-serial-explicit", [*RUN, "--timing", "serial"], r"--timing needs --engine dask"),
    Case("timing-bad-choice", [*DASK, "--timing", "parallel"], r"invalid choice: 'parallel'"),
    # -- SLURM: --cluster-option and sbatch
    Case("slurm-cores-negative", [*SLURM, "--cluster-option", "cores=-1"],
         rf"{_OPTION} cores=-1: must be an integer in \[1, 4096\]"),
    Case("slurm-cores-text", [*SLURM, "--cluster-option", "cores=many"], rf"{_OPTION} cores=many: must be an integer"),
    Case("slurm-cores-fraction", [*SLURM, "--cluster-option", "cores=1.5"], rf"{_OPTION} cores=1.5"),
    Case("slurm-cores-zero", [*SLURM, "--cluster-option", "cores=0"], rf"{_OPTION} cores=0"),
    Case("slurm-gpus-negative", [*SLURM, "--cluster-option", "gpus=-1"], rf"{_OPTION} gpus=-1: .*\[0, 64\]"),
    Case("slurm-gpus-huge", [*SLURM, "--cluster-option", "gpus=1e9"], rf"{_OPTION} gpus=1e9"),
    Case("slurm-memory-text", [*SLURM, "--cluster-option", "memory=lots"], rf"{_OPTION} memory=lots: .*8GB"),
    Case("slurm-memory-negative", [*SLURM, "--cluster-option", "memory=-5GB"], rf"{_OPTION} memory=-5GB"),
    Case("slurm-memory-overflow", [*SLURM, "--cluster-option", "memory=1e400GB"], rf"{_OPTION} memory=1e400GB"),
    Case("slurm-memory-zero", [*SLURM, "--cluster-option", "memory=0"], rf"{_OPTION} memory=0"),
    Case("slurm-walltime-word", [*SLURM, "--cluster-option", "walltime=forever"],
         rf"{_OPTION} walltime=forever: must be SLURM time"),
    Case("slurm-walltime-newline", [*SLURM, "--cluster-option", "walltime=01:00:00\n#SBATCH --x"],
         rf"{_OPTION} walltime='01:00:00\\n#SBATCH --x': control characters"),
    Case("slurm-queue-space", [*SLURM, "--cluster-option", "queue=a b"], rf"{_OPTION} queue=a b: must be a SLURM name"),
    Case("slurm-queue-semicolon", [*SLURM, "--cluster-option", "queue=gpu;reboot"], rf"{_OPTION} queue=gpu;reboot"),
    Case("slurm-account-subshell", [*SLURM, "--cluster-option", "account=$(id)"], rf"{_OPTION} account=\$\(id\)"),
    Case("slurm-python-newline", [*SLURM, "--cluster-option", "python=py\nrm"], rf"{_OPTION} python='py\\nrm'"),
    Case("slurm-prologue-newline", [*SLURM, "--cluster-option", "job_script_prologue=a\nb"],
         rf"{_OPTION} job_script_prologue='a\\nb'"),
    Case("slurm-unknown-key", [*SLURM, "--cluster-option", "colour=red"],
         r"unknown --cluster-option 'colour'; valid keys: queue, account"),
    Case("slurm-no-equals", [*SLURM, "--cluster-option", "cores"], rf"{_OPTION} 'cores': expected KEY=VALUE"),
    Case("slurm-empty-value", [*SLURM, "--cluster-option", "cores="], rf"{_OPTION} 'cores=': expected KEY=VALUE"),
    Case("slurm-no-sbatch", SLURM, r"--cluster slurm needs SLURM's sbatch on PATH", setup=no_sbatch,
         env={"PATH": "{path}"}, sub=True),
    Case("slurm-no-sbatch-in-process", SLURM, r"needs SLURM's sbatch on PATH", setup=no_sbatch,
         env={"PATH": "{path}"}),
    Case("slurm-job-script-bad-cores", [*SLURM, "--print-job-script", "--cluster-option", "cores=-1"],
         rf"{_OPTION} cores=-1"),
    Case("cluster-option-without-slurm", [*DASK, "--cluster-option", "cores=2"],
         r"--cluster-option needs --cluster slurm"),
    Case("scheduler-and-slurm", [*SLURM, "--scheduler", "tcp://127.0.0.1:8786"],
         r"give --scheduler ADDR .* or --cluster slurm, not both"),
    # -- plugins
    Case("plugin-sys-exit-3", ["list", "--plugin", "{plugin}"], r"plugin '.*' called sys\.exit\(3\) while loading",
         setup=plugin("import sys\nsys.exit(3)\n"), sub=True),
    Case("plugin-sys-exit-none", ["list", "--plugin", "{plugin}"], r"called sys\.exit\(None\)",
         setup=plugin("import sys\nsys.exit()\n")),
    Case("plugin-sys-exit-text", ["list", "--plugin", "{plugin}"], r"called sys\.exit\('bye'\)",
         setup=plugin("raise SystemExit('bye')\n")),
    Case("plugin-sys-exit-env", ["list"], r"plugin '.*' called sys\.exit\(0\)",
         setup=plugin("import sys\nsys.exit(0)\n"), env={"HARNESS_PLUGINS": "{plugin}"}, sub=True),
    Case("plugin-raises", ["list", "--plugin", "{plugin}"], r"plugin '.*' failed to load: RuntimeError: no",
         setup=plugin("raise RuntimeError('no')\n")),
    # what a failing plugin wrote to stderr while loading is dropped: the failure is one line
    Case("plugin-prints-then-raises", ["list", "--plugin", "{plugin}"],
         r"plugin '.*' failed to load: RuntimeError: no",
         setup=plugin("import sys\nprint('loading', file=sys.stderr)\nraise RuntimeError('no')\n")),
    Case("plugin-missing-file", ["list", "--plugin", "/no/such/plugin.py"],
         r"plugin '/no/such/plugin\.py' failed to load: FileNotFoundError"),
    Case("plugin-empty", ["list", "--plugin", " "], r"bad --plugin: empty name"),
    Case("plugin-missing-module", ["list", "--plugin", "no_such_module_xyz"],
         r"plugin 'no_such_module_xyz' failed to load: ModuleNotFoundError"),
    # -- reading results: records.jsonl, env.json
    Case("records-fifo", ["report", "{dir}"], r"results file '.*records\.jsonl': it is a FIFO, not a regular file",
         setup=records_as("fifo"), sub=True),
    Case("records-fifo-compare", ["compare", "{dir}", "{dir}"], r"it is a FIFO", setup=records_as("fifo")),
    Case("records-device", ["report", "{dir}"], r"it is a character device, not a regular file",
         setup=records_as("device")),
    Case("records-dangling-link", ["report", "{dir}"], r"'.*' is not a results folder: it has no records\.jsonl|cannot read",
         setup=records_as("dangling")),
    Case("records-directory", ["report", "{dir}"], r"is a directory", setup=records_as("dir")),
    Case("env-fifo", ["report", "{dir}"], r"env\.json '.*env\.json': it is a FIFO", setup=records_as("env-fifo")),
    Case("records-fifo-resume", [*RUN, "--resume", "{dir}"], r"it is a FIFO", setup=records_as("fifo")),
    Case("records-fifo-merge", ["{dir}", "--out", "{dir}/../m.csv"], r"it is a FIFO", setup=records_as("fifo"),
         tool="merge"),
    # -- reading results: trajectory archives
    Case("npz-huge-declared-report", ["report", "{dir}"], r"member 'a\.npy' declares 1099511627776 values",
         setup=trajectory(_archive({"a.npy": _BAD_NPY + bytes(64)})), sub=True),
    Case("npz-huge-declared-compare", ["compare", "{dir}", "{other}"], r"declares 1099511627776 values",
         setup=trajectory(_archive({"a.npy": _BAD_NPY + bytes(64)}))),
    Case("npz-huge-declared-merge", ["{dir}", "--out", "{tmp}/m.csv"], r"declares 1099511627776 values",
         setup=trajectory(_archive({"a.npy": _BAD_NPY + bytes(64)})), tool="merge"),
    Case("npz-huge-declared-predict", ["predict", "{dir}", "c1"], r"declares 1099511627776 values",
         setup=trajectory(_archive({"a.npy": _BAD_NPY + bytes(64)}))),
    Case("npz-bomb", ["report", "{dir}", "--no-figures"], r"its arrays would take 4194432 bytes, more than 1048576",
         setup=bomb),
    Case("npz-object", ["report", "{dir}"], r"member 'a\.npy' has dtype object", setup=trajectory(_object_array)),
    Case("npz-structured", ["report", "{dir}"], r"not a plain number type",
         setup=trajectory(_archive({"a.npy": _npy_header((2,), "|V16") + bytes(32)}))),
    Case("npz-not-a-zip", ["report", "{dir}"], r"corrupt trajectory file .*not an \.npz archive",
         setup=trajectory(lambda p: p.write_bytes(b"not a zip at all"))),
    Case("npz-not-npy-member", ["report", "{dir}"], r"member 'evil\.pkl' is not an \.npy array",
         setup=trajectory(_archive({"evil.pkl": b"\x80\x04N."}))),
    Case("npz-truncated-header", ["report", "{dir}"], r"corrupt trajectory file",
         setup=trajectory(_archive({"a.npy": b"\x93NUMPY\x01\x00"}))),
    Case("npz-fifo", ["report", "{dir}"], r"trajectory file '.*t\.npz' is not a file", setup=trajectory("fifo")),
    Case("npz-outside", ["report", "{dir}"], r"trajectory_file '\.\./x\.npz' that points outside",
         setup=lambda tmp, stack: {"dir": _outside(tmp)}),
    Case("study-claims-not-json", ["report", "{dir}"], r"corrupt study claims file '.*study_claims\.json': it is not JSON",
         setup=study_claims("{not json")),
    Case("study-claims-not-a-list", ["report", "{dir}"], r"study_claims\.json': it is not a list of objects",
         setup=study_claims('{"a": 1}')),
    Case("study-claims-measured-text", ["report", "{dir}"], r"a measured value is not a number",
         setup=study_claims('[{"claim": "x", "verdict": "PASS", "measured": "fast"}]')),
    Case("study-claims-fifo", ["report", "{dir}"], r"study claims file '.*': it is a FIFO", setup=study_claims(None)),
    # -- writing results
    Case("report-while-locked", ["report", "{dir}"], r"results folder '.*' is in use by another run", setup=locked),
    Case("report-target-while-locked", ["report", "{dir}", "--target", "1"], r"is in use by another run",
         setup=locked),
    Case("report-read-only", ["report", "{dir}"], r"cannot write the report into '.*': permission denied",
         setup=read_only),
    Case("report-empty-path", ["report", ""], r"argument directory: an empty path"),
    Case("compare-empty-path", ["compare", "", "x"], r"argument a: an empty path"),
    Case("predict-empty-path", ["predict", "", "c1"], r"argument directory: an empty path"),
    Case("run-out-empty", [*RUN, "--out", ""], r"argument --out: an empty path"),
    Case("run-resume-empty", [*RUN, "--resume", ""], r"argument --resume: an empty path"),
    Case("run-out-is-a-file", [*RUN, "--out", "{file}"], r"cannot use '.*file' as a results folder: it is a file",
         setup=a_file),
    Case("run-out-under-a-file", [*RUN, "--out", "{file}/run"], r"cannot create results folder .*a parent is a file",
         setup=a_file),
    Case("merge-out-empty", ["{dir}", "--out", ""], r"argument --out: an empty path", setup=folder, tool="merge"),
    Case("merge-out-directory", ["{dir}", "--out", "{tmp}"], r"cannot write --out '.*': it is a directory",
         setup=folder, tool="merge"),
    Case("merge-out-under-a-file", ["{dir}", "--out", "{file}/m.csv"], r"cannot write --out into '.*file': it is a file",
         setup=a_file, tool="merge"),
    Case("merge-out-read-only", ["{dir}", "--out", "{ro}/m.csv"], r"cannot write --out into '.*ro': permission denied",
         setup=read_only, tool="merge"),
    Case("merge-figure-under-a-file", ["{dir}", "--out", "{tmp}/m.csv", "--figure", "{file}/m.png"],
         r"cannot write --figure into '.*file': it is a file", setup=a_file, tool="merge"),
    Case("merge-no-arguments", [], r"the following arguments are required: dirs, --out", tool="merge"),
    # -- unchecked inputs: HARNESS_FAULT, --impl, error lines
    Case("fault-unknown-backend", RUN, r"bad HARNESS_FAULT='numpy-adjiont:hang': unknown back-end 'numpy-adjiont'; "
         r"choose from: .*numpy-adjoint", env={"HARNESS_FAULT": "numpy-adjiont:hang"}),
    Case("fault-unknown-mode", RUN, r"unknown mode 'hnag'; choose from: crash, segfault",
         env={"HARNESS_FAULT": "numpy-adjoint:hnag"}),
    Case("fault-unknown-stage", RUN, r"unknown stage 'trian'; choose from: reference, setup",
         env={"HARNESS_FAULT": "numpy-adjoint:hang:trian"}),
    Case("fault-too-many-parts", RUN, r"bad HARNESS_FAULT='a:b:c:d': expected IMPL:MODE\[:STAGE\]",
         env={"HARNESS_FAULT": "a:b:c:d"}),
    Case("fault-empty", RUN, r"bad HARNESS_FAULT='': expected IMPL:MODE", env={"HARNESS_FAULT": ""}),
    Case("fault-newline", RUN, r"bad HARNESS_FAULT='numpy-adjoint:hang\\\\n", env={"HARNESS_FAULT": "numpy-adjoint:hang\n"}),
    Case("fault-in-dask", DASK, r"unknown mode 'boom'", env={"HARNESS_FAULT": "numpy-adjoint:boom"}),
    Case("mnist-label-out-of-range", [*MNIST, "--set", "data_dir={data}"],
         r"data_dir '.*': 'train-labels-idx1-ubyte' holds labels 0\.\.12; labels must be digits 0-9",
         setup=mnist("label-out-of-range"), absent="out"),
    Case("mnist-label-count", [*MNIST, "--set", "data_dir={data}"],
         r"'train-labels-idx1-ubyte' holds shape \(20,\), not one label for each of 30 images", setup=mnist("count"), absent="out"),
    Case("mnist-labels-2d", [*MNIST, "--set", "data_dir={data}"], r"'t10k-labels-idx1-ubyte' holds shape \(2, 5\)",
         setup=mnist("labels-2d"), absent="out"),
    Case("mnist-images-truncated", [*MNIST, "--set", "data_dir={data}"],
         r"'train-images-idx3-ubyte': its header declares \(30, 28, 28\)", setup=mnist("truncated"), absent="out"),
    Case("mnist-gz-size", [*MNIST, "--set", "data_dir={data}"], r"'train-images-idx3-ubyte\.gz': its header declares",
         setup=mnist("gz-truncated"), absent="out"),
    Case("impl-with-space", ["run", "--task", "lotka_volterra", "--impl", "numpy adjoint"],
         r"bad selection 'numpy adjoint'.*; choose from: jax-backsolve, .*numpy-adjoint, .*all"),
    Case("task-with-space", ["run", "--task", "lotka volterra"], r"bad selection 'lotka volterra'.*choose from: .*lotka_volterra"),
    Case("task-newline", ["run", "--task", "no\nsuch"], r"bad selection 'no\\nsuch'.*; choose from: double_pendulum"),
    Case("task-unknown-escape", ["run", "--task", "no\x1b[2Jsuch"], r"unbalanced '\[' in 'no\\x1b\[2Jsuch'; choose from: double_pendulum"),
    Case("task-unknown-escape-color", ["run", "--task", "no\x1bsuch"], r"'no\\x1bsuch'.*; choose from: double_pendulum"),
    Case("task-unknown-unicode", ["run", "--task", "lötka"], r"bad selection 'lötka'.*; choose from: double_pendulum"),
    Case("set-newline", [*RUN, "--set", "rtol=1e-3\nx"], r"bad rtol=1e-3\\nx: must be"),
    Case("device-newline", [*RUN, "--device", "cuda\n:0"], r"unknown device 'cuda\\n:0'"),
    Case("argparse-newline", ["run", "--task", "x", "--bogus\nflag"], r"unrecognized arguments: --bogus\\nflag"),
    Case("seeds-escape", [*RUN, "--seeds", "1,\x1b[31m"], r"bad --seeds=\\x1b\[31m"),
]  # fmt: skip


def _outside(tmp: Path) -> str:
    run = tmp / "run"
    run.mkdir()
    (run / "records.jsonl").write_text(_record(trajectory_file="../x.npz"))
    return str(run)


# --------------------------------------------------------------------------- running a row


def _fill(text: str, names: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: names.get(m.group(1), m.group(0)), text)


def _in_process(case: Case, argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    entry = merge.main if case.tool == "merge" else cli.main
    try:
        status = entry(argv)
    except SystemExit as exc:  # argparse
        status = exc.code if isinstance(exc.code, int) else 1
    return status, capsys.readouterr().err


def _subprocess(case: Case, argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    module = "harness.store.merge" if case.tool == "merge" else "harness"
    proc = subprocess.run(
        [sys.executable, "-m", module, *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        timeout=DEADLINE_S + 30,
    )
    return proc.returncode, proc.stderr


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_is_one_line_and_exit_2(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HARNESS_FAULT", raising=False)
    monkeypatch.setenv("HARNESS_PLUGINS", os.environ.get("HARNESS_PLUGINS", ""))  # restored after
    with contextlib.ExitStack() as stack:
        names = case.setup(tmp_path, stack) if case.setup else {}
        argv = [_fill(a, names) for a in case.argv]
        env = {k: None if v is None else _fill(v, names) for k, v in case.env.items()}
        # a hang fails the run (the worker exits with the stacks dumped), never blocks it
        faulthandler.dump_traceback_later(DEADLINE_S * 2, exit=True, file=sys.__stderr__ or sys.stdout)
        start = time.perf_counter()
        try:
            if case.sub:
                child = {k: v for k, v in os.environ.items() if k not in env or env[k] is not None}
                child.update({k: v for k, v in env.items() if v is not None})
                status, err = _subprocess(case, argv, child)
            else:
                for key, value in env.items():
                    if value is None:
                        monkeypatch.delenv(key, raising=False)
                    else:
                        monkeypatch.setenv(key, value)
                status, err = _in_process(case, argv, capsys)
        finally:
            faulthandler.cancel_dump_traceback_later()
        elapsed = time.perf_counter() - start
    lines = err.strip().splitlines()
    assert status == case.status, err
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert re.search(case.line, lines[0]), lines[0]
    assert "Traceback" not in err
    assert elapsed < DEADLINE_S, f"{elapsed:.1f} s"
    assert not (case.absent and (tmp_path / case.absent).exists()), f"{case.absent} was made"


def test_the_table_holds_at_least_60_cases_with_distinct_ids() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 60


# --------------------------------------------------------------------------- what is written


def _hostile_folder(tmp: Path) -> tuple[Path, list[dict[str, Any]]]:
    """Two real records of the reference folder (lotka_volterra) with hostile names: a
    back-end named with `|` and matplotlib math, a reason with `|` and a newline."""
    import json
    import shutil

    source = ROOT / "results" / "reference"
    records = [json.loads(x) for x in (source / "records.jsonl").read_text().splitlines() if x.strip()]
    records = [r for r in records if r["task"] == "lotka_volterra" and r["status"] == "ok"][:2]
    assert len(records) == 2
    (tmp / "trajectories").mkdir()
    for record in records:
        shutil.copy(source / record["trajectory_file"], tmp / record["trajectory_file"])
    records[0] = {**records[0], "impl": "evil|impl $x^$"}
    records[1] = {**records[1], "impl": "a$b$c", "reason": "a|b\nc $\\frac$"}
    return tmp, records


def test_hostile_names_keep_the_markdown_tables_whole(tmp_path: Path) -> None:
    from harness.reporting.html_report import render_markdown

    folder, records = _hostile_folder(tmp_path)
    markdown = render_markdown(folder, records, [])
    blocks: list[list[str]] = [[]]
    for line in markdown.splitlines():
        if line.startswith("|"):
            blocks[-1].append(line)
        elif blocks[-1]:
            blocks.append([])
    tables = [b for b in blocks if b]
    assert tables and any("evil\\|impl" in line for b in tables for line in b)
    for table in tables:  # every row has as many cell borders (unescaped |) as its header
        borders = {len(re.findall(r"(?<!\\)\|", line)) for line in table}
        assert len(borders) == 1, table


def test_hostile_names_are_drawn_as_text_in_every_figure(tmp_path: Path) -> None:
    """A `$...$` in a back-end name was parsed as matplotlib math: on main (619e872) all
    five figures of these records failed with `ValueError: x^`."""
    pytest.importorskip("seaborn")
    from harness.reporting.html_report import build_figures

    folder, records = _hostile_folder(tmp_path)
    results = build_figures(records, folder)
    assert len(results) >= 4
    assert [(f.name, f.error) for f in results if f.error] == []


def test_a_valid_archive_passes_the_validator_unchanged(tmp_path: Path) -> None:
    from harness.store.validate import load_trajectory

    arrays = {"t": np.linspace(0, 1, 5), "y": np.arange(12.0).reshape(3, 4), "n": np.arange(3)}
    np.savez(tmp_path / "plain.npz", **arrays)
    np.savez_compressed(tmp_path / "packed.npz", **arrays)
    for name in ("plain.npz", "packed.npz"):
        loaded = load_trajectory(tmp_path, name)
        assert loaded is not None and set(loaded) == set(arrays)
        for key, value in arrays.items():
            np.testing.assert_array_equal(loaded[key], value)
