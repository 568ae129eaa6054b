"""The main job's wall time and peak memory: `dvc repro` of the shipped params in a fresh copy of
the project (nothing cached), as `make repro` runs it after the install.

    python benchmarks/main_job.py [--runs 1]

Prints each stage's wall time (from the moment DVC announces it to the next announcement), the
total, and the largest resident set of any stage process (what must fit in memory at once).
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import typer

ROOT = Path(__file__).resolve().parent.parent
FILES = ["params.yaml", "dvc.yaml", ".dvcignore", ".dvc/config", "stages", "worldr1", "data/sources"]


def fresh_project(dest: Path) -> None:
    for name in FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)


def one_run(dest: Path) -> tuple[float, list[tuple[str, float]], float]:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "DVC_NO_ANALYTICS": "1",
        "HF_HUB_OFFLINE": "1",
    }
    start = time.perf_counter()
    stages: list[tuple[str, float]] = []
    current, since = None, start
    proc = subprocess.Popen(
        ["dvc", "repro"], cwd=dest, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("Running stage"):
            now = time.perf_counter()
            if current:
                stages.append((current, now - since))
            current, since = line.split("'")[1], now
    if proc.wait() != 0:
        raise SystemExit(f"dvc repro failed in {dest}")
    end = time.perf_counter()
    if current:
        stages.append((current, end - since))
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB on Linux
    return end - start, stages, peak_gb


def main(runs: int = typer.Option(1, help="fresh runs (each from nothing cached)")) -> None:
    for n in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            dest = Path(tmp) / "project"
            dest.mkdir()
            fresh_project(dest)
            total, stages, peak = one_run(dest)
        print(f"run {n + 1}: {total / 60:.1f} min, peak stage memory {peak:.2f} GB")
        for name, seconds in stages:
            print(f"  {name:18s} {seconds:6.1f} s")


if __name__ == "__main__":
    typer.run(main)
