"""Plugins from outside the tree: `--plugin`, `HARNESS_PLUGINS` and entry points, in the
parent and in the worker and memory-probe processes (the example `examples/spiral_plugin`).

The plugin's run on every back-end with the memory probe is the command line's end-to-end
test, `tests/test_cli.py::test_a_plugin_task_end_to_end_on_every_backend`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.core import plugins, registry
from harness.core.errors import UsageError
from harness.store.results import load_records

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "spiral_plugin"
SPIRAL_FILE = EXAMPLE / "spiral_plugin" / "task.py"


def harness(*args: str, pythonpath: tuple[Path, ...] = (), **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != plugins.ENV_VARIABLE}
    environ["PYTHONPATH"] = os.pathsep.join(str(p) for p in (*pythonpath, ROOT))
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**environ, **env},
        timeout=900,
    )


def listed_tasks(out: str) -> set[str]:
    return {line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| ")}


def ok_records(folder: Path) -> dict[str, dict]:
    records = load_records(folder)
    assert records, "no records written"
    bad = [(r["impl"], r["status"], r.get("reason")) for r in records if r["status"] != "ok"]
    assert not bad, bad
    return {r["impl"]: r for r in records}


def test_entry_point_of_installed_example_is_listed_and_runs(tmp_path: Path) -> None:
    """`pip install` the example package (from a copy: the build writes beside the sources)."""
    source, target = tmp_path / "src", tmp_path / "site"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target_args = ["--target", str(target), str(source)]
    pip = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            *target_args,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert pip.returncode == 0, pip.stderr
    assert "spiral" not in listed_tasks(harness("list").stdout)
    listing = harness("list", pythonpath=(target,))
    assert listing.returncode == 0, listing.stderr
    assert "spiral" in listed_tasks(listing.stdout)
    out = tmp_path / "run"
    run = harness(
        "run",
        "--task",
        "spiral",
        "--impl",
        "numpy-adjoint",
        "--set",
        "iters=1",
        "--no-memory",
        "--repeats",
        "1",
        "--quiet",
        "--out",
        str(out),
        pythonpath=(target,),
    )
    assert run.returncode in (0, 1), run.stderr
    assert set(ok_records(out)) == {"numpy-adjoint"}


def test_entry_point_may_name_a_class(tmp_path: Path) -> None:
    """An entry point that names an undecorated class registers it."""
    (tmp_path / "class_plugin.py").write_text(
        "from tasks.linear import Linear\n\n\nclass Renamed(Linear):\n    name = 'linear_renamed'\n"
    )
    info = tmp_path / "class_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: class-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[neuralode_harness.tasks]\nrenamed = class_plugin:Renamed\n")
    proc = harness("list", pythonpath=(tmp_path,))
    assert proc.returncode == 0, proc.stderr
    assert {"linear", "linear_renamed"} <= listed_tasks(proc.stdout)


def test_environment_variable_loads_plugins() -> None:
    proc = harness("list", HARNESS_PLUGINS=os.pathsep.join(["", str(SPIRAL_FILE.relative_to(ROOT))]))
    assert proc.returncode == 0, proc.stderr
    assert "spiral" in listed_tasks(proc.stdout)


BAD_PLUGINS = {
    "no_such_module_xyz": "plugin 'no_such_module_xyz' failed to load: ModuleNotFoundError: No module",
    "missing/plugin.py": "missing/plugin.py' failed to load: FileNotFoundError: no such file",
    "raises.py": "failed to load: RuntimeError: plugin says no",
    "syntax.py": "failed to load: SyntaxError:",
    "clash.py": "task name 'linear' of clash.Clash is taken by tasks.linear.Linear",
}


@pytest.mark.parametrize("name", sorted(BAD_PLUGINS))
def test_bad_plugin_is_one_line_and_exit_2(name: str, tmp_path: Path) -> None:
    (tmp_path / "raises.py").write_text("raise RuntimeError('plugin says no')\n")
    (tmp_path / "syntax.py").write_text("def broken(:\n")
    (tmp_path / "clash.py").write_text(
        "from harness.core.registry import register_task\nfrom tasks.linear import Linear\n\n\n"
        "@register_task\nclass Clash(Linear):\n    name = 'linear'\n"
    )
    spec = str(tmp_path / name) if name.endswith(".py") and "/" not in name else name
    commands = [["list"]]
    if name in ("raises.py", "clash.py"):
        commands.append(["run", "--task", "linear", "--impl", "numpy-adjoint"])
    for command in commands:
        proc = harness(*command, "--plugin", spec)
        assert proc.returncode == 2, (proc.stdout, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert lines[0].startswith("error: plugin '"), lines[0]
        assert BAD_PLUGINS[name] in lines[0]
        assert "Traceback" not in proc.stderr


def test_add_to_environment_resolves_files_once(tmp_path: Path) -> None:
    environ: dict[str, str] = {plugins.ENV_VARIABLE: "already.there"}
    plugins.add_to_environment(["my.module", "rel/plugin.py", "my.module"], environ)
    plugins.add_to_environment(["rel/plugin.py"], environ)
    assert plugins.environment_plugins(environ) == [
        "already.there",
        "my.module",
        os.path.abspath("rel/plugin.py"),
    ]
    with pytest.raises(UsageError, match="empty"):
        plugins.add_to_environment([" "], environ)


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Load plugins in-process and leave no trace for other tests: the registry, the loaded
    plugins, `sys.path`, the example's modules."""
    registry.discover()
    monkeypatch.setattr(registry, "TASKS", dict(registry.TASKS))
    monkeypatch.setattr(plugins, "_loaded", {})
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    for name in [m for m in sys.modules if m == "spiral_plugin" or m.startswith("spiral_plugin.")]:
        del sys.modules[name]


def test_discover_loads_the_environment_plugin_once(isolated: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process: a plugin added to `HARNESS_PLUGINS` after a first `discover()` is loaded
    by the next, and a file inside a package imports under its dotted name."""
    monkeypatch.setenv(plugins.ENV_VARIABLE, str(SPIRAL_FILE))
    registry.discover()
    registry.discover()
    spiral = registry.get_task("spiral")
    assert spiral.__module__ == "spiral_plugin.task"
    assert plugins.load("spiral_plugin.task") is sys.modules["spiral_plugin.task"]
    assert plugins.load(str(SPIRAL_FILE)) is sys.modules["spiral_plugin.task"]


def test_example_passes_check_task(isolated: None) -> None:
    """The example plugin passes the public conformance checks a third party would run."""
    from harness.testing import check_task

    plugins.load(str(SPIRAL_FILE))
    check_task(registry.get_task("spiral"))


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["study", "work-precision", "--plugin", "b.py"], ["b.py"]),
        (["study", "--plugin", "a.py", "work-precision"], ["a.py"]),
        (["study", "--plugin", "a.py", "work-precision", "--plugin", "b.py"], ["a.py", "b.py"]),
        (["run", "--task", "spiral", "--plugin", "a.py"], ["a.py"]),
    ],
)
def test_plugin_option_after_a_study_name(argv: list[str], expected: list[str]) -> None:
    """`study NAME --plugin FILE` was 'unrecognized arguments' (#26); both places count."""
    from harness.cli import parse

    assert parse(argv).plugin == expected


def test_records_name_the_file_that_defined_the_task(isolated: None) -> None:
    """Records carried no trace of the plugin file that defined a task (#26): each names the
    task's and the back-end's module, file, SHA-256 and the plugin spec that loaded it."""
    import hashlib

    from harness.execution.runner import base_record
    from harness.planning.matrix import plan

    plugins.load(str(SPIRAL_FILE))
    (cell,) = plan("spiral", "numpy-adjoint", sets={}, seeds=[0], iters=0, device="cpu", dtype="float64")
    sources = base_record(cell, "run", {})["sources"]
    assert sources["task"] == {
        "module": "spiral_plugin.task",
        "file": str(SPIRAL_FILE),
        "sha256": hashlib.sha256(SPIRAL_FILE.read_bytes()).hexdigest(),
        "plugin": str(SPIRAL_FILE),
    }
    assert sources["impl"]["module"] == "backends.numpy_adjoint" and sources["impl"]["plugin"] is None


def test_what_a_plugin_writes_to_stderr_while_loading_is_kept_when_it_loads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plugin's warnings at import reach stderr after a load that succeeds; after one that
    fails they are dropped, so that the failure is one line (tests/test_hostile_inputs.py)."""
    good, bad = tmp_path / "warns_then_loads.py", tmp_path / "warns_then_fails.py"
    good.write_text("import sys\nprint('careful: old data', file=sys.stderr)\n")
    bad.write_text("import sys\nprint('loading', file=sys.stderr)\nraise RuntimeError('no')\n")
    try:
        plugins.load(str(good))
        assert capsys.readouterr().err == "careful: old data\n"
        with pytest.raises(UsageError, match="failed to load: RuntimeError: no"):
            plugins.load(str(bad))
        assert capsys.readouterr().err == ""
    finally:
        sys.modules.pop("warns_then_loads", None)
