"""Rollout: stored steps give back their log-probs (ratio 1 on-policy), reruns are byte-identical,
and the stage runs under DVC with clear errors for bad inputs."""

from __future__ import annotations

import filecmp
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from helpers import BIN, ROOT, Finished, copy_project, edit, run, stage_error
from safetensors import safe_open

from worldr1 import config, store
from worldr1.errors import UserError
from worldr1.grpo.rollout import draw_batch, rollout_round, round_batch
from worldr1.grpo.sampler import Schedule, recompute_log_probs
from worldr1.policy import load_wan
from worldr1.video import read_mp4

SMALL = {"batch_per_round": 2, "group_size": 2, "steps": 6, "frames": 9, "height": 32, "width": 32}


def small(params_dict: dict[str, Any]) -> dict[str, Any]:
    params_dict["policy"]["model"] = "tiny"
    params_dict["prompts"]["batch_per_round"] = SMALL["batch_per_round"]
    for key in ("group_size", "steps", "frames", "height", "width"):
        params_dict["rollout"][key] = SMALL[key]
    return params_dict


def prompts_table(n_train: int = 5, n_dynamic: int = 1) -> pa.Table:
    rows = [
        {
            "prompt_id": f"p{i:03d}",
            "split": "train" if i < n_train else "dynamic",
            "text": f"Camera orbit left. Scene number {i}.",
            "camera": ["orbit_left"],
        }
        for i in range(n_train + n_dynamic)
    ]
    return pa.Table.from_pylist(rows)


@pytest.fixture
def params(params_dict: dict[str, Any]) -> config.Params:
    return config.validate(small(params_dict))


def test_draw_batch_is_deterministic_and_checks_size() -> None:
    table = prompts_table()
    a = draw_batch(table, "train", 3, seed=0, round_name="r000")
    assert a == draw_batch(table, "train", 3, seed=0, round_name="r000")
    assert len({r.prompt_id for r in a}) == 3 and all(r.split == "train" for r in a)
    assert {r.prompt_id for r in draw_batch(table, "train", 5, seed=0, round_name="r001")} == {
        f"p{i:03d}" for i in range(5)
    }
    with pytest.raises(UserError, match="needs 2 dynamic prompts but the prompts table has 1"):
        draw_batch(table, "dynamic", 2, seed=0, round_name="r000")


def test_stored_steps_recompute_to_ratio_one(tmp_path: Path, params: config.Params) -> None:
    policy = load_wan(params.policy)
    policy.attach_adapter(params.policy, params.seed)
    with torch.no_grad():  # a non-trivial adapter, so the check covers the LoRA path too
        for name, p in policy.transformer.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02, generator=torch.Generator().manual_seed(2))
    samples = rollout_round(policy, params, "r000", "3d", round_batch(prompts_table(), params, "r000", "3d"), tmp_path)
    assert samples.num_rows == SMALL["batch_per_round"] * SMALL["group_size"]
    assert set(samples.column("status").to_pylist()) == {"ok"}
    ro = params.rollout
    schedule = Schedule.flow_match(ro.steps, ro.shift)
    uncond = policy.encode([ro.negative_prompt])
    for row in samples.to_pylist():
        with safe_open(str(tmp_path / row["steps"]), "pt") as f:
            t = {k: f.get_tensor(k) for k in f.keys()}
        assert t["steps"].tolist() == row["trained_steps"] == [0, 1, 2]
        stored = t["log_probs"]
        assert float(stored.double().sum()) == pytest.approx(row["log_prob_sum"])
        cond = policy.encode([row["prompt"]])
        args = (
            t["latents"][None],
            t["next_latents"][None],
            row["trained_steps"],
            schedule,
            cond,
            uncond,
            ro.cfg,
            ro.sde,
        )
        again = recompute_log_probs(policy, *args)[0]
        ratio = torch.exp(again.double() - stored.double())
        torch.testing.assert_close(ratio, torch.ones_like(ratio), rtol=0, atol=1e-5)
        # Moving the adapter moves the ratio: the check can fail.
        with torch.no_grad():
            lora_b = next(p for n, p in policy.transformer.named_parameters() if "lora_B" in n)
            saved = lora_b.clone()
            lora_b.add_(0.05)
            moved = torch.exp(recompute_log_probs(policy, *args)[0].double() - stored.double())
            lora_b.copy_(saved)
        assert (moved - 1).abs().max() > 1e-3
        frames = read_mp4(tmp_path / row["video"])
        assert frames.shape == (ro.frames, ro.height, ro.width, 3)


def test_same_seed_gives_byte_identical_round(tmp_path: Path, params: config.Params) -> None:
    outs = []
    for name in ("a", "b"):
        policy = load_wan(params.policy)
        policy.attach_adapter(params.policy, params.seed)
        out = tmp_path / name
        out.mkdir()
        table = rollout_round(policy, params, "r000", "3d", round_batch(prompts_table(), params, "r000", "3d"), out)
        store.write_table(
            str(out / "samples.parquet"), table, store.SAMPLES, store.Provenance("h", "v", {"policy": "tiny"})
        )
        outs.append(out)
    files = sorted(p.relative_to(outs[0]) for p in outs[0].rglob("*") if p.is_file())
    assert len(files) == 1 + 2 * 4
    match, mismatch, errors = filecmp.cmpfiles(outs[0], outs[1], [str(f) for f in files], shallow=False)
    assert not mismatch and not errors, mismatch


def test_dvc_repro_rollout_then_cache_hit(two_rounds: Finished, tmp_path: Path) -> None:
    for stage in ("prompts", "base", "rollout@r000"):
        assert f"Running stage '{stage}'" in two_rounds.stdout
    project = copy_project(two_rounds.path, tmp_path / "project")
    out = project / "data/rounds/r000/rollout"
    table = pq.read_table(out / "samples.parquet")
    assert table.num_rows == 4
    assert len(list((out / "videos").glob("*.mp4"))) == 4 and len(list((out / "steps").glob("*.safetensors"))) == 4
    meta = store.read_metadata_of(table)
    assert json.loads(meta["models"]) == {"policy": "tiny", "adapter": "base"}
    assert json.loads((project / "data/rounds/base/policy/state.json").read_text())["round"] == "base"
    second = run(["dvc", "repro", "rollout@r000"], project)
    assert "Running stage" not in second.stdout
    # A GRPO knob is not the rollout's business: still cached.
    edit(project, {"grpo.lr": 3.0e-4})
    assert "Running stage" not in run(["dvc", "repro", "rollout@r000"], project).stdout


def test_rollout_bad_inputs_leave_no_round_directory(two_rounds: Finished, tmp_path: Path) -> None:
    project = copy_project(two_rounds.path, tmp_path / "project")  # prompts and base made
    for name in ("r000", "r001"):
        shutil.rmtree(project / "data/rounds" / name)
    prompts = project / "data/prompts/prompts.parquet"
    kept = prompts.read_bytes()
    prompts.unlink()
    edit(project, {"rounds": {"r000": {"prev": "base", "phase": "3d"}}, "evaluate.policy": "r000"})
    out = project / "data/rounds/r000/rollout"
    # The prompts table is missing.
    assert "prompts.parquet not found" in stage_error(project, ["stages/rollout.py", "r000"])
    prompts.write_bytes(kept)
    # A round that is not in params.
    assert "round r005 is not in params.yaml" in stage_error(project, ["stages/rollout.py", "r005"])
    # A split with fewer prompts than the batch asks for.
    edit(
        project,
        {
            "prompts.batch_per_round": 600,
            "rounds": {"r000": {"prev": "base", "phase": "dynamic"}},
            "evaluate.policy": "r000",
        },
    )
    assert "needs 600 dynamic prompts but the prompts table has 515" in stage_error(
        project, ["stages/rollout.py", "r000"]
    )
    edit(
        project,
        {
            "prompts.batch_per_round": 2,
            "rounds": {"r000": {"prev": "base", "phase": "3d"}, "r001": {"prev": "r000", "phase": "3d"}},
        },
    )
    # A round whose previous adapter was never made.
    assert "no LoRA adapter at data/rounds/r000/policy" in stage_error(project, ["stages/rollout.py", "r001"])
    # An unknown model preset.
    edit(project, {"policy.model": "wan9"})
    assert "unknown policy.model 'wan9'" in stage_error(project, ["stages/rollout.py", "r000"], in_process=False)
    assert not out.exists() and not (project / "data/rounds/r001/rollout").exists()
    assert not [p for p in (project / "data/rounds").rglob("*.tmp")]


def test_sample_command_writes_a_video(two_rounds: Finished, tmp_path: Path) -> None:
    project = two_rounds.path  # only read: its params and base adapter
    target = tmp_path / "look.mp4"
    proc = run(
        [
            str(BIN / "worldr1"),
            "sample",
            "Camera pan left. A quiet harbour.",
            "--adapter",
            "data/rounds/base/policy",
            "--out",
            str(target),
        ],
        project,
    )
    assert "wrote" in proc.stderr
    assert read_mp4(target).shape == (9, 32, 32, 3)
    bad = run([str(BIN / "worldr1"), "sample", "x", "--adapter", "nope"], project, check=False)
    assert bad.returncode == 2 and "--adapter nope not found" in bad.stderr


def test_dvc_params_match_the_stage_scripts() -> None:
    from ruamel.yaml import YAML

    stages = YAML(typ="safe").load((ROOT / "dvc.yaml").read_text())["stages"]
    sys.path.insert(0, str(ROOT / "stages"))
    try:
        import base as base_stage  # type: ignore[import-not-found]
        import probe as probe_stage  # type: ignore[import-not-found]
        import rollout as rollout_stage  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    assert stages["base"]["params"] == base_stage.PARAMS
    assert stages["rollout"]["do"]["params"] == [*rollout_stage.PARAMS, "rounds.${key}"]
    assert stages["probe"]["do"]["params"] == probe_stage.PARAMS


def rollout_steps(tmp_path: Path, params_dict: dict[str, Any], key: str, flag: bool) -> list[dict[str, torch.Tensor]]:
    """Round r000 of the tiny policy with `rollout.<key>` set to `flag`: each sample's stored step tensors."""
    params_dict["rollout"][key] = flag
    params = config.validate(small(params_dict))
    policy = load_wan(params.policy)
    policy.attach_adapter(params.policy, params.seed)
    out = tmp_path / f"{key}-{flag}"
    out.mkdir()
    table = rollout_round(policy, params, "r000", "3d", round_batch(prompts_table(), params, "r000", "3d"), out)
    steps = []
    for row in table.to_pylist():
        with safe_open(str(out / row["steps"]), "pt") as f:
            steps.append({k: f.get_tensor(k) for k in ("latents", "next_latents")})
    return steps


def test_camera_init_changes_only_the_starting_noise(tmp_path: Path, params_dict: dict[str, Any]) -> None:
    # The state before step 0 of the first sample: its initial noise.
    plain, warped = (rollout_steps(tmp_path, params_dict, "camera_init", f)[0]["latents"][0] for f in (False, True))
    assert torch.equal(plain[:, 0], warped[:, 0])  # the first latent frame keeps its own noise
    assert not torch.equal(plain[:, 1:], warped[:, 1:])


def test_shared_noise_starts_a_group_from_one_noise_and_keeps_its_step_noises(
    tmp_path: Path, params_dict: dict[str, Any]
) -> None:
    runs = {flag: rollout_steps(tmp_path, params_dict, "shared_noise", flag) for flag in (False, True)}
    group = params_dict["rollout"]["group_size"]
    for flag, steps in runs.items():
        starts = [t["latents"][0] for t in steps[:group]]  # one prompt's group: the state before step 0
        assert all(torch.equal(s, starts[0]) for s in starts) == flag
    # Sample 0 of every group is the sample it was (its start is the group's): its generator draws
    # the same step noises whether or not the others share its start.
    for j in range(0, len(runs[False]), group):
        assert torch.equal(runs[False][j]["latents"], runs[True][j]["latents"])
        assert torch.equal(runs[False][j]["next_latents"], runs[True][j]["next_latents"])
