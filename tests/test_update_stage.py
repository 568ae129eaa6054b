"""The whole loop under `dvc repro`: two rounds of prompts -> rollout -> reconstruct -> score ->
update, then the report; caching, resume across stage processes, the adapter in diffusers, bad input."""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from helpers import BIN, Finished, copy_project, edit, ran, run, stage_error
from safetensors.torch import load_file, save_file

from worldr1 import config, store
from worldr1.errors import UserError
from worldr1.grpo.sampler import Schedule
from worldr1.grpo.trainer import Trainer
from worldr1.grpo.update import stored_samples
from worldr1.ids import derive_seed
from worldr1.policy import load_wan
from worldr1.policy.lora import WEIGHTS
from worldr1.policy.tiny import tiny_pipeline


def rewrite(path: Path, table: pa.Table) -> None:
    path.unlink()  # it may be a link into DVC's cache: never write through it
    pq.write_table(table, path)


def replay_in_one_process(project: Path) -> dict[str, torch.Tensor]:
    """Both rounds' updates with one Trainer object, from the stages' own rollouts and rewards, with
    one torch thread as the stages had."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _replay(project)
    finally:
        torch.set_num_threads(threads)


def _replay(project: Path) -> dict[str, torch.Tensor]:
    params = config.load(project / "params.yaml")
    ro = params.rollout
    schedule = Schedule.flow_match(ro.steps, ro.shift)
    policy = load_wan(params.policy)
    policy.attach_adapter(params.policy, params.seed, project / "data/rounds/base/policy")
    trainer = Trainer(policy, params.grpo, ro.sde, schedule, ro.cfg, ro.negative_prompt)
    for name in ("r000", "r001"):
        rounds = project / "data/rounds" / name
        data = stored_samples(
            rounds / "rollout",
            pq.read_table(rounds / "rollout/samples.parquet"),
            pq.read_table(rounds / "rewards.parquet"),
            schedule,
            name,
        )
        trainer.train(data.samples, np.random.default_rng(derive_seed(params.seed, name, "update")))
    out = project / "replayed"
    policy.save_adapter(out, params.policy)
    return load_file(str(out / WEIGHTS))


def test_two_rounds_loop_cache_resume_and_report(two_rounds: Finished, tmp_path: Path) -> None:
    project = copy_project(two_rounds.path, tmp_path / "project")
    assert ran(two_rounds.stdout) == {
        "enhance",
        "prompts",
        "toy-data",
        "toy-pretrain",
        "toy-classifier",
        "reward-validity",
        "base",
        "report",
        "evaluate",
        *(f"{s}@{r}" for s in ("rollout", "reconstruct", "score", "update", "probe") for r in ("r000", "r001")),
    }
    # The tiny profile has no toy reconstructor: reward-validity leaves a note, not a measurement.
    assert "reason" in json.loads((project / "reports/reward-validity.json").read_text())
    assert ran(run(["dvc", "repro"], project).stdout) == set()

    # The rewards and the update's metrics.
    rewards = pq.read_table(project / "data/rounds/r001/rewards.parquet")
    assert rewards.schema.names == store.REWARDS.schema.names and rewards.num_rows == 4
    assert json.loads(store.read_metadata_of(rewards)["models"])["judge"] == "qwen3-vl (tiny random)"
    by_group: dict[str, list[float]] = {}
    for r in rewards.to_pylist():
        if r["status"] == "ok":
            assert r["reward"] is not None and 0 <= r["r_gen"] <= 1 and r["s_recon"] is not None and r["w_r_gen"] == 1.0
            by_group.setdefault(r["prompt_id"], []).append(r["advantage"])
        else:
            assert r["error"] and r["advantage"] is None
    assert by_group and all(abs(sum(v)) < 1e-6 for v in by_group.values())
    audited = run(
        [str(BIN / "worldr1"), "audit", "data/rounds/r000/rewards.parquet", "data/rounds/r001/rewards.parquet"], project
    ).stdout
    assert "8 samples" in audited and "by camera move" in audited
    scores = json.loads((project / "reports/rounds/r001-rewards.json").read_text())
    assert scores["samples"] == 4 and set(scores) >= {"reward_mean", "s_recon_mean", "s_traj_mean", "failed"}
    report = json.loads((project / "reports/rounds/r000.json").read_text())
    # Exact recomputation of the rollout's log-probs (on this CPU), also in r001 where the adapter is no longer zero.
    assert report["on_policy_ratio_deviation"] == 0.0 and report["attention"] == "_native_flash"
    assert json.loads((project / "reports/rounds/r001.json").read_text())["on_policy_ratio_deviation"] == 0.0
    assert report["optimizer_steps"] == 2 and report["skipped_nonfinite"] == 0 and report["terms"] == 4 * 3
    state = json.loads((project / "data/rounds/r001/policy/state.json").read_text())
    assert state["round"] == "r001" and state["prev"] == "r000" and state["optimizer_steps"] == 4
    with (project / "reports/rewards.csv").open() as f:
        curve = list(csv.DictReader(f))
    assert [r["round"] for r in curve] == ["r000", "r001"] and all(float(r["reward_mean"]) >= 0 for r in curve)
    plots = run(["dvc", "plots", "show", "--json"], project)
    assert "reward_mean" in plots.stdout and "r001" in plots.stdout and "p_consistent" in plots.stdout

    # The fixed probe set: the same prompt and noises under every policy, base measured by the first round.
    probes = {r: json.loads((project / f"reports/rounds/{r}-probe.json").read_text()) for r in ("r000", "r001")}
    assert set(probes["r000"]["means"]) == {"base", "r000"} and set(probes["r001"]["means"]) == {"r001"}
    assert "delta" in probes["r000"] and "delta" not in probes["r001"]
    ids = [[v["prompt_id"] for v in p["videos"] if v["policy"] == r] for r, p in probes.items()]
    assert ids[0] == ids[1] and len(ids[0]) == 2 and len({i.split("~")[0] for i in ids[0]}) == 1
    assert all(v["status"] == "ok" and v["psnr_heldout"] is not None for p in probes.values() for v in p["videos"])
    with (project / "reports/probe.csv").open() as f:
        probe_curve = list(csv.DictReader(f))
    assert [r["round"] for r in probe_curve] == ["base", "r000", "r001"]
    assert [float(r["reward"]) for r in probe_curve] == pytest.approx(
        [probes["r000"]["means"][k]["reward"] for k in ("base", "r000")] + [probes["r001"]["means"]["r001"]["reward"]]
    )

    # The evaluation: base and r001 on the same test prompts and seeds, every metric of the protocol.
    ev = json.loads((project / "reports/eval.json").read_text())
    assert ev["evaluated"] == "r001" and ev["prompts"] == 2 and set(ev["means"]) == {"base", "r001", "base_softened"}
    assert [(v["policy"], v["prompt_id"]) for v in ev["videos"]][:3] == [
        ("base", ev["videos"][0]["prompt_id"]),
        ("r001", ev["videos"][0]["prompt_id"]),
        ("base_softened", ev["videos"][0]["prompt_id"]),  # the softness control, in every profile
    ]
    for name in ("base", "r001"):
        means = ev["means"][name]
        assert means["videos"] == 2 and means["failed"] == 0
        assert all(means[m] is not None for m in ("psnr_input", "psnr_heldout", "ssim_heldout", "motion", "r_gen"))
        assert means["p_consistent"] is None  # no toy classifier with the tiny profile
    assert ev["delta"]["motion"] == round(ev["means"]["r001"]["motion"] - ev["means"]["base"]["motion"], 6)
    pairs = {(v["policy"], v["prompt_id"]): v["motion"] for v in ev["videos"]}
    diffs = [pairs[("r001", p)] - pairs[("base", p)] for (label, p) in pairs if label == "base"]
    assert ev["delta_sem"]["motion"] == pytest.approx(abs(diffs[0] - diffs[1]) / 2, abs=2e-6)  # s.e. of two values
    assert "psnr_heldout" in two_rounds.stdout and "vs base softened" in two_rounds.stdout  # the before/after table

    # Resume: the stage processes (state saved and reloaded between rounds) equal one process.
    staged = load_file(str(project / "data/rounds/r001/policy" / WEIGHTS))
    replayed = replay_in_one_process(project)
    assert staged.keys() == replayed.keys()
    for key in staged:
        torch.testing.assert_close(staged[key], replayed[key], rtol=0, atol=0)  # bit-exact on a CPU
    base = load_file(str(project / "data/rounds/base/policy" / WEIGHTS))
    assert any(not torch.equal(staged[k], base[k]) for k in staged)

    # The saved adapter loads into diffusers' WanPipeline and changes what it makes.
    pipe = tiny_pipeline()
    kwargs = {
        "prompt": "Camera orbit left. A red cube.",
        "num_frames": 5,
        "height": 32,
        "width": 32,
        "num_inference_steps": 3,
        "output_type": "latent",
    }
    plain = pipe(**kwargs, generator=torch.Generator().manual_seed(0)).frames
    pipe.load_lora_weights(str(project / "data/rounds/r001/policy"), weight_name=WEIGHTS)
    adapted = pipe(**kwargs, generator=torch.Generator().manual_seed(0)).frames
    assert not torch.allclose(plain, adapted)

    # A GRPO knob reruns the update, not the round's rollout, reconstruction or score.
    edit(project, {"grpo.lr": 2.0e-3})
    assert ran(run(["dvc", "repro", "update@r000"], project).stdout) == {"update@r000"}

    # Bad input, on the same project (a fresh one costs a minute of stages).
    rewards_path = project / "data/rounds/r000/rewards.parquet"
    table = pq.read_table(rewards_path)
    meta = table.schema.metadata

    # A group with no valid sample is skipped and counted; the other still trains.
    group = table.column("prompt_id")[0].as_py()
    rows = [
        {**r, "status": "failed", "error": "test", "advantage": None} if r["prompt_id"] == group else r
        for r in table.to_pylist()
    ]
    rewrite(rewards_path, pa.Table.from_pylist(rows, schema=table.schema).replace_schema_metadata(meta))
    run([sys.executable, "stages/update.py", "r000"], project)
    report = json.loads((project / "reports/rounds/r000.json").read_text())
    assert report["skipped_groups"] == 1 and report["skipped_samples"] == 2 and report["samples"] == 2
    saved = (project / "data/rounds/r000/policy" / WEIGHTS).read_bytes()

    # Rewards that do not belong to the rollout: one line, exit 2, the old policy left as it was.
    rewrite(rewards_path, table.slice(1).replace_schema_metadata(meta))
    assert "the rewards of r000 do not match its rollout (1 sample ids differ)" in stage_error(
        project, ["stages/update.py", "r000"]
    )
    assert (project / "data/rounds/r000/policy" / WEIGHTS).read_bytes() == saved

    # The previous round's adapter is missing.
    rewrite(rewards_path, table)
    (project / "data/rounds/base/policy" / WEIGHTS).unlink()
    assert "no LoRA adapter at data/rounds/base/policy" in stage_error(project, ["stages/update.py", "r000"])
    assert (project / "data/rounds/r000/policy" / WEIGHTS).read_bytes() == saved


def test_step_tensors_that_do_not_fit_their_row_are_one_line(two_rounds: Finished, tmp_path: Path) -> None:
    rollout = shutil.copytree(two_rounds.path / "data/rounds/r000/rollout", tmp_path / "rollout")
    samples, rewards = (
        pq.read_table(rollout / "samples.parquet"),
        pq.read_table(two_rounds.path / "data/rounds/r000/rewards.parquet"),
    )
    params = config.load(two_rounds.path / "params.yaml")
    schedule = Schedule.flow_match(params.rollout.steps, params.rollout.shift)
    path = rollout / samples.to_pylist()[0]["steps"]
    whole = load_file(str(path))

    def broken(tensors: dict[str, torch.Tensor], message: str) -> None:
        path.unlink()  # it may be a link into DVC's cache: never write through it
        save_file(tensors, str(path))
        with pytest.raises(UserError, match=message) as err:
            stored_samples(rollout, samples, rewards, schedule, "r000")
        assert err.value.fix == "rerun the rollout: dvc repro -f rollout@r000"

    broken({k: v for k, v in whole.items() if k != "next_latents"}, "lack next_latents")
    broken({**whole, "latents": whole["latents"][:1]}, "states or log-probs for another number of steps than 3")
    broken({**whole, "steps": whole["steps"] + 1}, "records steps")
    broken({**whole, "timesteps": whole["timesteps"] + 1}, "another schedule")
    path.write_bytes(b"not safetensors")
    with pytest.raises(UserError, match="are unreadable"):
        stored_samples(rollout, samples, rewards, schedule, "r000")
