"""Fixtures and pytest hooks; the plain helpers the tests share live in helpers.py."""

from __future__ import annotations

import copy
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from helpers import ONE_THREAD, ROOT, TWO_ROUNDS, Finished, edit, make_project, run

from worldr1 import config


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


@pytest.fixture
def project(tmp_path: Path, tiny_params_file: Path) -> Path:
    """A copy of the project in a fresh git repository, ready for `dvc repro`, on the tiny profile."""
    return make_project(tmp_path / "project", tiny_params_file)


@pytest.fixture(scope="session")
def two_rounds(tmp_path_factory: pytest.TempPathFactory, tiny_params_file: Path) -> Finished:
    """Two small tiny-profile rounds and evaluate, every stage run once by `dvc repro` with one
    thread per process; shared by the update-stage and scale-out tests (a minute and a half)."""
    dest = make_project(tmp_path_factory.mktemp("two-rounds") / "project", tiny_params_file)
    edit(dest, TWO_ROUNDS)
    return Finished(dest, run(["dvc", "repro"], dest, env=ONE_THREAD).stdout)


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
