"""Helpers and constants shared by the test modules: import them from here, never from another
test module or from conftest.py (which keeps only fixtures and pytest hooks).

Running the project: `run` and `run_env` (a stage's environment), `make_project`/`copy_project`
and `edit` (a project's params.yaml), `stage_error` and `ran` (what a stage or `dvc repro` said);
the small-run settings `SMALL_PARAMS`, `TWO_ROUNDS` and `ONE_THREAD`."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# What a DVC run of the pipeline needs from the checkout.
PROJECT_FILES = ["params.yaml", "dvc.yaml", ".dvcignore", ".dvc/config", "stages", "worldr1", "data/sources"]

#: One torch thread per stage process, as torchrun gives each rank: CPU reductions split over
#: threads round differently, so runs compared byte for byte hold the threads fixed.
ONE_THREAD = {"OMP_NUM_THREADS": "1"}

SMALL_PARAMS = {
    "policy.model": "tiny",
    "prompts.batch_per_round": 2,
    "rollout.group_size": 2,
    "rollout.steps": 6,
    "rollout.frames": 9,
    "rollout.height": 32,
    "rollout.width": 32,
}

TWO_ROUNDS = {
    **SMALL_PARAMS,
    "rounds": {"r000": {"prev": "base", "phase": "3d"}, "r001": {"prev": "r000", "phase": "3d"}},
    "grpo.minibatch_samples": 2,
    "grpo.lr": 1.0e-3,
    "evaluate.policy": "r001",
    "evaluate.prompts": 2,
    "probe.prompts": 1,
    "probe.seeds": 2,
    "reconstruct.process_res": 56,
}  # DA3's smallest sensible working size: the tests' slowest model


@dataclasses.dataclass(frozen=True)
class Finished:
    path: Path  # read-only: copy it (`copy_project`) to change anything
    stdout: str  # what `dvc repro` printed


def run_env() -> dict[str, str]:
    """The environment of a stage run: this venv first on PATH, DVC quiet and offline."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    env["HF_HUB_OFFLINE"] = "1"
    env["COLUMNS"] = "200"  # rich wraps tables to the terminal; keep lines whole for the asserts
    return env


def run(
    args: list[str], cwd: Path, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=cwd, env={**run_env(), **(env or {})}, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def make_project(dest: Path, tiny_params_file: Path) -> Path:
    dest.mkdir()
    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    shutil.copy2(tiny_params_file, dest / "params.yaml")
    run(["git", "init", "-q"], dest)
    return dest


def copy_project(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, symlinks=True)
    return dest


def edit(project: Path, changes: dict[str, Any]) -> None:
    """Set params keys (dotted paths) in the project's params.yaml, keeping the rest."""
    from ruamel.yaml import YAML

    yaml = YAML()
    path = project / "params.yaml"
    doc = yaml.load(path.read_text())
    for key, value in changes.items():
        *parents, last = key.split(".")
        node = doc
        for p in parents:
            node = node[p]
        node[last] = value
    with path.open("w") as f:
        yaml.dump(doc, f)


def ran(stdout: str) -> set[str]:
    return {line.split("'")[1] for line in stdout.splitlines() if line.startswith("Running stage")}


def stage_error(project: Path, args: list[str], in_process: bool = True) -> str:
    """The one error line of a stage script run on `project`, which must exit 2.

    In this process by default (the same `stage()` wrapper runs; a fresh interpreter costs ~5 s
    of imports per case); `in_process=False` checks the real process boundary too."""
    if in_process:
        code, stderr = _run_stage_here(project, args)
    else:
        proc = run([sys.executable, *args], project, check=False)
        code, stderr = proc.returncode, proc.stderr
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Fix:" in lines[0], stderr
    return lines[0]


def _run_stage_here(project: Path, args: list[str]) -> tuple[int | str | None, str]:
    buf = io.StringIO()
    cwd, argv = Path.cwd(), sys.argv
    os.chdir(project)
    sys.argv = list(args)
    try:
        with contextlib.redirect_stderr(buf):
            runpy.run_path(args[0], run_name="__main__")
        code: int | str | None = 0
    except SystemExit as exc:
        code = exc.code
    finally:
        os.chdir(cwd)
        sys.argv = argv
    return code, buf.getvalue()
