"""The code's habits, enforced by the test command: ruff's lint rules and formatting on the whole
repository, mypy on the library (both configured in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False)


def test_ruff_lint() -> None:
    done = run("ruff", "check", "--no-cache", ".")
    assert done.returncode == 0, f"ruff check . (fix: ruff check --fix .)\n{done.stdout}{done.stderr}"


def test_ruff_format() -> None:
    done = run("ruff", "format", "--no-cache", "--check", ".")
    assert done.returncode == 0, f"ruff format --check . (fix: ruff format .)\n{done.stdout}{done.stderr}"


def test_mypy() -> None:
    done = run("mypy")
    assert done.returncode == 0, f"mypy (configured in pyproject.toml)\n{done.stdout}{done.stderr}"
