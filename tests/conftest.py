from __future__ import annotations

import copy
import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from worldr1 import config

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# What a DVC run of the pipeline needs from the checkout.
PROJECT_FILES = ["params.yaml", "dvc.yaml", ".dvcignore", ".dvc/config", "stages", "worldr1", "data/sources"]


@pytest.fixture(scope="session")
def tiny_params_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped params.yaml switched to the tiny profile (real Wan/DA3/Qwen classes, random
    weights), as `worldr1 profile use tiny` does: what most tests run the real code paths with."""
    from worldr1.profiles import use_profile

    path = tmp_path_factory.mktemp("tiny") / "params.yaml"
    shutil.copy2(ROOT / "params.yaml", path)
    use_profile(path, "tiny")
    return path


@pytest.fixture(scope="session")
def shipped_params(tiny_params_file: Path) -> dict[str, Any]:
    return config.read_yaml(tiny_params_file)


@pytest.fixture
def params_dict(shipped_params: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(shipped_params)


def run_env() -> dict[str, str]:
    """The environment of a stage run: this venv first on PATH, DVC quiet and offline."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    env["HF_HUB_OFFLINE"] = "1"
    env["COLUMNS"] = "200"  # rich wraps tables to the terminal; keep lines whole for the asserts
    return env


def run(args: list[str], cwd: Path, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=cwd, env={**run_env(), **(env or {})}, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


@pytest.fixture
def project(tmp_path: Path, tiny_params_file: Path) -> Path:
    """A copy of the project in a fresh git repository, ready for `dvc repro`, on the tiny profile."""
    return make_project(tmp_path / "project", tiny_params_file)


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


#: One torch thread per stage process, as torchrun gives each rank: CPU reductions split over
#: threads round differently, so runs compared byte for byte hold the threads fixed.
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


@dataclasses.dataclass(frozen=True)
class Finished:
    path: Path     # read-only: copy it (`copy_project`) to change anything
    stdout: str    # what `dvc repro` printed


@pytest.fixture(scope="session")
def two_rounds(tmp_path_factory: pytest.TempPathFactory, tiny_params_file: Path) -> Finished:
    """Two small tiny-profile rounds and evaluate, every stage run once by `dvc repro` with one
    thread per process; shared by the update-stage and scale-out tests (a minute and a half)."""
    from test_rollout import edit
    from test_update_stage import TWO_ROUNDS

    dest = make_project(tmp_path_factory.mktemp("two-rounds") / "project", tiny_params_file)
    edit(dest, TWO_ROUNDS)
    return Finished(dest, run(["dvc", "repro"], dest, env=ONE_THREAD).stdout)


def copy_project(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest, symlinks=True)
    return dest


# Under `make test` the suite runs on two xdist workers (Makefile). Each worker and every process it
# starts gets one torch thread: the suite is CPU-bound (stage processes importing and building
# models), and two workers of two threads each on two cores ran slower than one worker.
if os.environ.get("PYTEST_XDIST_WORKER"):
    import torch

    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"

#: Files that share the slowest fixtures, scheduled first: with `--dist loadfile` each file is one
#: unit (a module fixture is built once), and the longest units first balance two workers best.
HEAVY = ["two_rounds", "test_toy_stages", "test_toy_models"]


def _unit(item: pytest.Item) -> str:
    return "two_rounds" if "two_rounds" in getattr(item, "fixturenames", ()) else item.module.__name__


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: HEAVY.index(u) if (u := _unit(item)) in HEAVY else len(HEAVY))
