"""Fixtures and pytest hooks; the plain helpers the tests share live in helpers.py."""

from __future__ import annotations

import copy
import fcntl
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
    thread per process; shared by the update-stage, rollout, reconstruct-stage, kill and scale-out
    tests (two minutes). Built once per test run: the xdist workers share one copy (the first
    builds it under a lock, the other finds it), which the tests only read."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    home = shared / "two-rounds"
    with open(shared / "two-rounds.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stdout = home / "dvc-repro.stdout"
        if not stdout.exists():
            shutil.rmtree(home, ignore_errors=True)  # a build that failed halfway
            home.mkdir()
            dest = make_project(home / "project", tiny_params_file)
            edit(dest, TWO_ROUNDS)
            stdout.write_text(run(["dvc", "repro"], dest, env=ONE_THREAD).stdout)
    return Finished(home / "project", stdout.read_text())


# Under `make test` the suite runs on two xdist workers (Makefile). Each worker and every process it
# starts gets one torch thread: the suite is CPU-bound (stage processes importing and building
# models), and two workers of two threads each on two cores ran slower than one worker.
if os.environ.get("PYTEST_XDIST_WORKER"):
    import torch

    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"

#: The order the two xdist workers take the test files in (`--dist loadfile --no-loadscope-reorder`,
#: Makefile; each takes two at the start, then the next as one finishes). Scale-out builds the
#: shared `two_rounds` project (about 2.5 min) while the other worker runs the toy-world stages and
#: models, about as long; the other files that read the project come after it is built (taken
#: earlier, they waited on its lock). The rest follow.
FIRST = [
    "test_scale_out",
    "test_toy_stages",
    "test_toy_models",
    "test_roundtrip",
    "test_kill",
    "test_reconstruct_stage",
    "test_update_stage",
    "test_rollout",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.module.__name__
        return FIRST.index(name) if name in FIRST else len(FIRST)

    items.sort(key=rank)
