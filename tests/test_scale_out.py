"""Scale out: the heavy stages under torchrun with 2 gloo ranks make the artifacts one process makes
(the update also with its model sharded by FSDP), a dead rank publishes nothing, `launch` and `fsdp`
rerun nothing, and the step tensors stay off the remote."""

from __future__ import annotations

import dataclasses
import filecmp
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import fsdp_ranks
import pytest
import torch
from helpers import BIN, ONE_THREAD, ROOT, Finished, copy_project, edit, ran, run
from safetensors.torch import load_file

from worldr1 import distributed
from worldr1.distributed import World, fsdp_mesh_shape, joined, world_from_env
from worldr1.errors import UserError
from worldr1.launch import command, launch_line
from worldr1.policy.lora import WEIGHTS

ROUND = "data/rounds/r000"
TWO_RANKS = f"{BIN}/torchrun --standalone --nproc-per-node 2"
# Round r000's heavy stages, and evaluate (base against r001): run again by two ranks.
HEAVY = (["rollout", "r000"], ["reconstruct", "r000"], ["score", "r000"], ["update", "r000"], ["evaluate"])


@dataclasses.dataclass(frozen=True)
class Projects:
    one: Path  # every stage in one process (the shared two-round project: read only)
    two: Path  # a copy, its heavy stages rerun by two ranks
    died: subprocess.CompletedProcess[str]  # rollout@r000 of `two` with rank 1 killed
    left: list[str]  # what that left under data/rounds/r000


def launched(project: Path, stage: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    """A stage started as dvc.yaml starts it, with one torch thread per rank."""
    script, *args = stage
    return run([str(BIN / "python"), "-m", "worldr1.launch", f"stages/{script}.py", *args], project, check, ONE_THREAD)


@pytest.fixture(scope="module")
def projects(two_rounds: Finished, tmp_path_factory: pytest.TempPathFactory) -> Projects:
    one = two_rounds.path
    two = copy_project(one, tmp_path_factory.mktemp("scale") / "two")
    edit(two, {"launch": f"{TWO_RANKS} {ROOT / 'tests/dying_rank.py'}"})
    shutil.rmtree(two / ROUND / "rollout")  # as `dvc repro` does before running the stage
    died = launched(two, HEAVY[0], check=False)
    left = sorted(str(p.relative_to(two / ROUND)) for p in (two / ROUND).rglob("*"))
    edit(two, {"launch": TWO_RANKS, "fsdp": True})  # the update with its transformer sharded
    for stage in HEAVY:
        launched(two, stage)
    return Projects(one, two, died, left)


def same_files(a: Path, b: Path) -> None:
    """The same files with the same bytes (DVC's .gitignore entries aside)."""
    names = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file() and p.name != ".gitignore")
    assert names == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file() and p.name != ".gitignore")
    _, mismatch, errors = filecmp.cmpfiles(a, b, [str(n) for n in names], shallow=False)
    assert not mismatch and not errors


def test_world_from_torchrun_and_slurm_env() -> None:
    assert world_from_env({}) == World()
    assert world_from_env({"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1"}) == World(3, 8, 1)
    step = {"SLURM_PROCID": "9", "SLURM_STEP_NUM_TASKS": "16", "SLURM_LOCALID": "1", "SLURM_NTASKS": "48"}
    assert world_from_env(step) == World(9, 16, 1)
    # An salloc shell or a batch script: job-wide Slurm variables, but no srun step: one process.
    assert world_from_env({"SLURM_PROCID": "0", "SLURM_NTASKS": "48", "SLURM_LOCALID": "0"}) == World()
    with pytest.raises(UserError, match="RANK=8 does not fit WORLD_SIZE=8"):
        world_from_env({"RANK": "8", "WORLD_SIZE": "8"})
    # Blocks dealt round-robin: every item to exactly one rank, in order within a rank.
    items = list(range(11))
    shares = [World(r, 3).mine(items, block=2) for r in range(3)]
    assert shares == [[0, 1, 6, 7], [2, 3, 8, 9], [4, 5, 10]]


def test_launch_line_and_its_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")  # torchrun is in the venv
    params = tmp_path / "params.yaml"
    params.write_text("launch: torchrun --standalone --nproc-per-node 8\n")
    assert launch_line(params) == "torchrun --standalone --nproc-per-node 8"
    assert command("torchrun --nproc-per-node 8", "stages/rollout.py", ["r000"]) == [
        "/bin/sh",
        "-c",
        'exec torchrun --nproc-per-node 8 "$@"',
        "worldr1-launch",
        "stages/rollout.py",
        "r000",
    ]
    assert command("python", "stages/score.py", ["r001"])[1:] == ["stages/score.py", "r001"]
    params.write_text("launch: trochrun --nproc-per-node 8\n")
    with pytest.raises(UserError, match="launch starts with 'trochrun', which is not on PATH"):
        launch_line(params)
    params.write_text('launch: "srun \'python"\n')
    with pytest.raises(UserError, match="is not a valid command line"):
        launch_line(params)
    # `launch: python` is one process even inside another launcher's environment.
    (tmp_path / "params.yaml").write_text("launch: python\n")
    (tmp_path / "show.py").write_text("import os, sys; print(os.environ.get('WORLD_SIZE'), sys.argv[1:])\n")
    inside = {"RANK": "1", "WORLD_SIZE": "2", "SLURM_STEP_NUM_TASKS": "2"}
    shown = run([str(BIN / "python"), "-m", "worldr1.launch", "show.py", "r000"], tmp_path, env=inside).stdout
    assert shown.strip() == "None ['r000']"
    # Through the module, as dvc.yaml runs it: one line, exit 2, before anything starts.
    (tmp_path / "params.yaml").write_text("launch: [torchrun]\n")
    bad = run([str(BIN / "python"), "-m", "worldr1.launch", "stages/rollout.py", "r000"], tmp_path, check=False)
    assert bad.returncode == 2 and bad.stderr.startswith("error: launch in params.yaml must be one command line")


def test_ranks_without_a_rendezvous_address_are_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    with pytest.raises(UserError, match="rank 1 of 2 but MASTER_ADDR and MASTER_PORT not set"), joined(World(1, 2)):
        pass


def test_a_dead_rank_publishes_nothing_and_a_rerun_completes(projects: Projects) -> None:
    assert projects.died.returncode != 0
    # The SIGTERM can land while the progress bar draws, so the error may follow the bar on its line.
    said = [line[line.index("error:") :] for line in projects.died.stderr.splitlines() if "error:" in line]
    # Rank 0 sees its peer's socket close at the merge (or, if the launcher is quicker, its SIGTERM).
    assert said and (
        "rank 0 of 2 lost a peer while merging the samples parts" in said[0] or "stopped by its launcher" in said[0]
    ), projects.died.stderr
    assert "nothing was written" in said[0] and "Root Cause" in projects.died.stderr  # torchrun's summary
    # No rollout, no shared temporary directory, no parts: only what the round had besides.
    assert not [p for p in projects.left if p.startswith("rollout") or ".tmp" in p], projects.left
    assert (projects.two / ROUND / "rollout/samples.parquet").is_file()  # the rerun


def test_two_ranks_make_the_artifacts_of_one_process(projects: Projects) -> None:
    one, two = projects.one, projects.two
    # Rollout, reconstruction, score: byte for byte (the Parquet tables, the videos, the step tensors).
    for part in ("rollout", "recon"):
        same_files(one / ROUND / part, two / ROUND / part)
    assert (one / ROUND / "rewards.parquet").read_bytes() == (two / ROUND / "rewards.parquet").read_bytes()
    # Update (FSDP): the same adapter, optimizer state and EMA within fp32 tolerance (the gradient
    # sums differ in order).
    for name in (WEIGHTS, f"ema/{WEIGHTS}", "trainer.safetensors"):
        a, b = load_file(str(one / ROUND / "policy" / name)), load_file(str(two / ROUND / "policy" / name))
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)
    ra, rb = (json.loads((p / "reports/rounds/r000.json").read_text()) for p in (one, two))
    assert ra["optimizer_steps"] == rb["optimizer_steps"] == 2 and ra["terms"] == rb["terms"] == 12
    assert ra["on_policy_ratio_deviation"] == rb["on_policy_ratio_deviation"] == 0.0
    for key in ("loss", "kl", "clip_fraction", "grad_norm"):
        assert rb[key] == pytest.approx(ra[key], rel=1e-4, abs=1e-9)
    # Evaluate: the same videos, so the same numbers.
    ea, eb = (json.loads((p / "reports/eval.json").read_text()) for p in (one, two))
    assert ea["videos"] == eb["videos"] and ea["means"] == eb["means"]
    # No part files or shared temporary directories are left behind.
    assert not [p for p in (two / "data").rglob("*") if ".tmp" in p.name or p.name == "parts"]


def test_fsdp_shards_within_a_node_and_changes_no_number(tmp_path: Path) -> None:
    out = tmp_path / "ranks.pt"
    run([str(BIN / "python"), str(ROOT / "tests/fsdp_ranks.py"), str(out)], tmp_path, env=ONE_THREAD)
    ranks = torch.load(out)
    # Replicated, each rank holds a block's whole weight; under FSDP over 2 nodes of 2 ranks, half of
    # it: sharded within the node, one replica per node (HSDP).
    assert ranks["replicate"]["held"] == (576, 576) and ranks["fsdp"]["held"] == (288, 576)
    assert ranks["fsdp"]["placements"] == "(Replicate(), Shard(dim=0))"
    # The gathered weights are the loaded ones bit for bit, and uneven shares are padded with terms
    # that weigh nothing (ranks 2 and 3 only ever pad): the same numbers as replicated ranks, exactly...
    replicate, fsdp = ranks["replicate"], ranks["fsdp"]
    assert replicate["metrics"] == fsdp["metrics"]
    assert replicate["metrics"]["optimizer_steps"] == 6 and replicate["metrics"]["skipped_nonfinite"] == 3
    for part in ("adapter", "trainer"):
        assert replicate[part].keys() == fsdp[part].keys()
        assert all(torch.equal(replicate[part][k], fsdp[part][k]) for k in replicate[part])
    # ...and those of one process within fp32 tolerance.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        one = fsdp_ranks.update(World(), fsdp=False)
    finally:
        torch.set_num_threads(threads)
    assert one["metrics"].keys() == fsdp["metrics"].keys()
    for key, value in one["metrics"].items():
        assert fsdp["metrics"][key] == pytest.approx(value, rel=1e-4, abs=1e-9), key
    for part in ("adapter", "trainer"):
        for key in one[part]:
            torch.testing.assert_close(fsdp[part][key], one[part][key], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("local_ranks", "shape"),
    [
        ([0, 1, 0, 1], (2, 2)),  # two nodes of two: shard within each, one replica per node
        ([0, 1, 2, 3], (1, 4)),  # one node
        ([0, 0, 0], (1, 3)),  # one rank per node: shard over all of them
        ([0, 1, 2, 0, 1], (1, 5)),  # uneven nodes
        ([0, 1, 1, 0], (1, 4)),  # ranks not laid out node by node
    ],
)
def test_fsdp_mesh_shards_within_a_node_when_the_layout_allows(local_ranks: list[int], shape: tuple[int, int]) -> None:
    assert fsdp_mesh_shape(local_ranks) == shape


def test_launch_and_fsdp_are_no_stage_params(two_rounds: Finished, tmp_path: Path) -> None:
    project = copy_project(two_rounds.path, tmp_path / "project")
    edit(project, {"launch": TWO_RANKS, "fsdp": True})
    assert ran(run(["dvc", "repro", "--dry"], project).stdout) == set()


def test_remote_keeps_the_chain_but_not_the_step_tensors(two_rounds: Finished, tmp_path: Path) -> None:
    one = copy_project(two_rounds.path, tmp_path / "one")
    run(["dvc", "remote", "add", "-d", "store", str(tmp_path / "remote")], one)
    run(["dvc", "push", "--run-cache"], one)
    # Another machine: the project's git files, then the remote.
    other = tmp_path / "other"
    other.mkdir()
    for name in (
        "params.yaml",
        "dvc.yaml",
        "dvc.lock",
        ".dvcignore",
        ".dvc/config",
        "stages",
        "worldr1",
        "data/sources",
    ):
        src = one / name
        (other / name).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, other / name)
    run(["git", "init", "-q"], other)
    # Audit before any pull: DVC's fsspec filesystem reads the rewards from the remote.
    audited = run([str(BIN / "worldr1"), "audit", "dvc://data/rounds/r001/rewards.parquet"], other).stdout
    assert "4 samples" in audited and not (other / "data/rounds").exists()
    run(["dvc", "pull", "--run-cache", "--allow-missing"], other)
    rollout = other / ROUND / "rollout"
    assert (rollout / "samples.parquet").read_bytes() == (one / ROUND / "rollout/samples.parquet").read_bytes()
    assert len(list((rollout / "videos").glob("*.mp4"))) == 4 and not (rollout / "steps").exists()
    assert (other / ROUND / "policy" / WEIGHTS).is_file() and (other / ROUND / "rewards.parquet").is_file()
    # Nothing to redo for the missing step tensors: the next round would start from r000's adapter.
    assert ran(run(["dvc", "repro", "--allow-missing", "--dry"], other).stdout) == set()


def test_a_failing_rank_finishes_its_clean_up_whatever_the_launcher_sends() -> None:
    # A rank that sees its peer die removes what it wrote; torchrun's SIGTERM, which follows at once,
    # must not cut that removal short (a temporary directory was left behind, once, in CI).
    previous = signal.signal(signal.SIGTERM, distributed._stopped)
    cleaned = False
    try:
        with pytest.raises(RuntimeError, match="lost a peer"):
            try:
                with distributed.cleanup_uninterrupted():
                    raise RuntimeError("rank 0 of 2 lost a peer while merging")
            finally:
                os.kill(os.getpid(), signal.SIGTERM)  # the launcher, during the clean-up
                cleaned = True
        assert cleaned and signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)
