"""A stage killed (SIGKILL: no cleanup runs) at three points of its run leaves nothing the next
`dvc repro` of that stage does not sweep, and DVC never takes a half-written output.

reconstruct@r000 of the shared tiny rounds, after a change of one of its params, killed inside
`dvc repro`: just after it started, with its temp directory part-filled, and with nearly every
sample written. (Had nothing changed, DVC would restore the stage's outputs from its cache without
running it; what a dead run left is then ignored by DVC and swept by the next stage that runs.)"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from helpers import ONE_THREAD, Finished, copy_project, edit, run, run_env

from worldr1 import store
from worldr1.locks import LOCKS

STAGE = "reconstruct@r000"
RECON = Path("data/rounds/r000/recon")


def temps(project: Path) -> list[Path]:
    return [p for p in project.rglob(".*") if store.TEMP_NAME.match(p.name)]


def renders_in_temp(project: Path) -> int:
    parts = [p for p in (project / RECON.parent).glob(".recon.tmp-*") if p.is_dir()]
    return max((len(list((p / "renders").glob("*"))) for p in parts if (p / "renders").is_dir()), default=0)


def stage_pid(project: Path) -> int | None:
    text = (project / LOCKS / f"{STAGE}.lock").read_text() if (project / LOCKS / f"{STAGE}.lock").exists() else ""
    return int(text.split()[0]) if text.strip() else None


def kill_stage_when(project: Path, ready: Callable[[], bool]) -> int:
    """Run `dvc repro` of the stage and SIGKILL the stage's process once `ready()`."""
    (project / LOCKS / f"{STAGE}.lock").unlink(missing_ok=True)
    proc = subprocess.Popen(
        ["dvc", "repro", STAGE],
        cwd=project,
        env={**run_env(), **ONE_THREAD},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while (pid := stage_pid(project)) is None or not ready():
        assert proc.poll() is None, "the stage finished before the kill point"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    assert proc.wait(timeout=120) != 0
    return pid


def test_killed_stage_leaves_nothing_after_the_next_repro(two_rounds: Finished, tmp_path: Path) -> None:
    project = copy_project(two_rounds.path, tmp_path / "project")
    edit(project, {"reconstruct.conf_percentile": 29.0})
    samples = len(list((project / "data/rounds/r000/rollout/videos").glob("*.mp4")))
    assert samples >= 3

    kill_stage_when(project, lambda: True)  # early: it has just started
    kill_stage_when(project, lambda: renders_in_temp(project) >= 1)  # middle: a part-filled temp
    assert temps(project), "a SIGKILL mid-write leaves its temp behind"
    killed = kill_stage_when(project, lambda: renders_in_temp(project) >= samples - 1)  # late: nearly done
    assert temps(project)
    assert not (project / RECON).exists()  # DVC removed the old output, and nothing half-made replaced it

    run(["dvc", "repro", STAGE], project, env=ONE_THREAD)
    assert temps(project) == []
    assert "up to date" in run(["dvc", "status", STAGE], project).stdout
    assert sorted(p.name for p in (project / RECON / "renders").iterdir()) == sorted(
        p.name for p in (two_rounds.path / RECON / "renders").iterdir()
    )
    assert stage_pid(project) != killed  # the stage ran again, and swept
