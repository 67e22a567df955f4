"""ruff (lint and format) is part of the test command, so style cannot drift."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("args", [["check", "."], ["format", "--check", "."]], ids=["lint", "format"])
def test_ruff(args: list[str]) -> None:
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff not installed (pip install -e '.[test]')")
    proc = subprocess.run([ruff, *args], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_pyright_basic_on_the_harness() -> None:
    """pyright at basic level on `harness/`, `tasks/`, `backends/` and `examples/`
    ([tool.pyright] in pyproject.toml): no error."""
    pyright = shutil.which("pyright")
    if pyright is None:
        pytest.skip("pyright not installed (pip install -c constraints.txt -e '.[test]')")
    proc = subprocess.run([pyright], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr
