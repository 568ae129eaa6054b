"""One writer per stage (worldr1.locks) and temps that a dead process left (store.sweep_dead_temps)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import run

from worldr1 import store
from worldr1.errors import UserError
from worldr1.locks import stage_lock

HOLD = """
import sys, time
from pathlib import Path
from worldr1.locks import stage_lock
with stage_lock("reconstruct@r000", Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(60)
"""


def test_second_writer_refuses_and_a_killed_holder_frees_the_lock(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(UserError, match=rf"reconstruct@r000 is already running \(pid {holder.pid} on "):
            with stage_lock("reconstruct@r000", tmp_path):
                pass
        with stage_lock("score@r000", tmp_path):  # another stage runs beside it
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with stage_lock("reconstruct@r000", tmp_path):  # no stale lock to clean up by hand
        assert (tmp_path / ".worldr1/locks/reconstruct@r000.lock").read_text().split()[0] == str(os.getpid())


def test_only_dead_processes_temps_are_swept(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    target = tmp_path / "rounds" / "r000" / "recon"
    target.parent.mkdir(parents=True)
    live = store.temp_sibling(target)
    live.mkdir()
    left = Path(str(store.temp_sibling(target)).replace(f"-{os.getpid()}-", f"-{dead_pid}-"))
    left.mkdir()
    (left / "big.bin").write_bytes(b"x" * 10)
    old = Path(str(store.temp_sibling(tmp_path / "r.json", "old")).replace(f"-{os.getpid()}-", f"-{dead_pid}-"))
    old.write_text("{}")
    other_host = tmp_path / f".r.json.tmp-00000000-{dead_pid}-abcdef01"
    other_host.write_text("{}")
    plain = tmp_path / ".keep.tmp"
    plain.write_text("not ours")
    assert sorted(store.sweep_dead_temps(tmp_path, recursive=True)) == sorted([left, old])
    assert live.is_dir() and other_host.exists() and plain.exists()


def test_atomic_writes_sweep_what_a_killed_writer_left(tmp_path: Path) -> None:
    killed = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    killed.kill()
    killed.wait()
    stray = Path(str(store.temp_sibling(tmp_path / "x.json")).replace(f"-{os.getpid()}-", f"-{killed.pid}-"))
    stray.write_text("{")
    store.write_json(str(tmp_path / "x.json"), {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


def test_a_stage_run_beside_a_running_one_refuses_in_one_line(project: Path) -> None:
    with stage_lock("prompts", project):  # as a `dvc repro` in progress holds it
        proc = run([sys.executable, "stages/prompts.py"], project, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"error: prompts is already running (pid {os.getpid()} on ")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (project / "data/prompts/prompts.parquet").exists()
    # What a killed run of any stage left is gone after the next stage run, wherever it lies.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left = [
        Path(str(store.temp_sibling(project / p)).replace(f"-{os.getpid()}-", f"-{int(dead.stdout)}-"))
        for p in ("data/rounds/r000/recon", "reports/rounds/r000-rewards.json")
    ]
    for path in left:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
    run([sys.executable, "stages/prompts.py"], project)
    assert not any(path.exists() for path in left)
