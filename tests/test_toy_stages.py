"""The toy profile under `dvc repro`, at test sizes: toy-data, toy-pretrain and toy-classifier run
once and are cached, the pretrained policy loads through the policy interface and samples, a round and evaluate
run on the toy models, and a reward weight reruns only what reads it."""

from __future__ import annotations

import json
import runpy
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from helpers import ROOT, edit, ran, run
from ruamel.yaml import YAML

from worldr1 import config
from worldr1.grpo.sampler import Schedule, sample
from worldr1.policy import load_policy
from worldr1.profiles import use_profile

SMALL_TOY = {
    "prompts.toy": {"train": 8, "test": 2},
    "prompts.batch_per_round": 2,
    "rollout.group_size": 2,
    "rollout.steps": 4,
    "toy.data.clips": 12,
    "toy.policy.net": {
        "latent_channels": 4,
        "autoencoder_width": 8,
        "patch": 1,
        "heads": 2,
        "head_dim": 8,
        "ffn_dim": 32,
        "layers": 1,
        "text_dim": 16,
        "max_words": 40,
    },
    "toy.policy.autoencoder": {"steps": 3, "batch": 8, "lr": 1.0e-3},
    "toy.policy.train": {"steps": 3, "batch": 4, "lr": 1.0e-3},
    "toy.reconstructor.net": {"width": 8, "levels": 2},
    "toy.reconstructor.train": {"steps": 3, "batch": 4, "lr": 1.0e-3},
    "toy.classifier.net": {"width": 4},
    "toy.classifier.train": {"steps": 3, "batch": 4, "lr": 1.0e-3},
    "toy.classifier.heldout": 4,
    "rounds": {"r000": {"prev": "base", "phase": "3d"}},
    "evaluate.policy": "r000",
    "evaluate.prompts": 2,
    "grpo.minibatch_samples": 2,
    "validity.clips": 2,
    "probe": {"prompts": 1, "seeds": 1},
}


@pytest.mark.parametrize(
    ("stage", "script"),
    [
        ("toy-data", "toy_data"),
        ("toy-pretrain", "toy_pretrain"),
        ("toy-classifier", "toy_classifier"),
        ("reward-validity", "reward_validity"),
    ],
)
def test_dvc_params_match_the_stage_scripts(stage: str, script: str) -> None:
    stages = YAML(typ="safe").load((ROOT / "dvc.yaml").read_text())["stages"]
    module = runpy.run_path(str(ROOT / "stages" / f"{script}.py"), run_name="params")
    assert stages[stage]["params"] == module["PARAMS"]


@pytest.fixture
def toy_project(project: Path) -> Path:
    shutil.copy2(ROOT / "params.yaml", project / "params.yaml")
    use_profile(project / "params.yaml", "toy")
    edit(project, SMALL_TOY)
    return project


def test_toy_profile_loop_cache_and_one_weight_rerun(toy_project: Path) -> None:
    p = toy_project
    first = run(["dvc", "repro"], p)
    assert ran(first.stdout) == {
        "enhance",
        "prompts",
        "toy-data",
        "toy-pretrain",
        "toy-classifier",
        "reward-validity",
        "base",
        "rollout@r000",
        "reconstruct@r000",
        "score@r000",
        "update@r000",
        "probe@r000",
        "report",
        "evaluate",
    }
    assert ran(run(["dvc", "repro"], p).stdout) == set()

    clips = pq.read_table(p / "data/toy/clips/clips.parquet").to_pylist()
    assert len(clips) == 12 and {c["consistent"] for c in clips} == {True, False}
    rewards = pq.read_table(p / "data/rounds/r000/rewards.parquet").to_pylist()
    assert len(rewards) == 4 and all(r["status"] == "ok" and r["s_recon"] is not None for r in rewards)
    # The consistency classifier, in a stage of its own, with its accuracy on held-out clips of seeds
    # of their own; toy-pretrain's report is the policy's and the reconstructor's only.
    classifier = json.loads((p / "reports/toy-classifier.json").read_text())
    assert classifier["classifier_heldout_clips"] == 4 and 0 <= classifier["classifier_heldout_accuracy"] <= 1
    assert "classifier_heldout_auc" in classifier and classifier["classifier_heldout_by_corruption"]
    assert classifier["clips"] == 12 and classifier["classifier_loss_last"] is not None
    assert not any(k.startswith("classifier") for k in json.loads((p / "reports/toy-pretrain.json").read_text()))
    assert (p / "data/toy/classifier/config.json").is_file()
    recon = pq.read_table(p / "data/rounds/r000/recon/recon.parquet")
    assert json.loads(recon.schema.metadata[b"worldr1.models"])["reconstructor"] == "toy"
    # The reward's validity on held-out labelled clips, with the trained and the true geometry.
    validity = json.loads((p / "reports/reward-validity.json").read_text())
    assert validity["seeds"] == 2 and validity["videos"] == len(
        [r for r in validity["rows"] if r["geometry"] == "trained"]
    )
    assert {r["kind"] for r in validity["rows"]} >= {
        "consistent",
        "scene_swap",
        "frozen",
        "noise",
        "shuffled",
        "flicker",
    }
    assert {r["geometry"] for r in validity["rows"]} == {"trained", "true"}
    assert set(validity["auc"]["scene_swap"]) >= {"reward", "s_recon", "s_reproj", "s_traj"}
    report = json.loads((p / "reports/eval.json").read_text())
    assert set(report["means"]) == {"base", "r000", "base_softened"} and report["prompts"] == 2
    assert report["means"]["base"]["psnr_heldout"] is not None
    # The softness control: each base video blurred down to its r000 twin's sharpness (the toy
    # profile's r_gen), never sharper than it, and its change scored against it as against base.
    by = {(v["policy"], v["prompt_id"]): v for v in report["videos"]}
    for (label, prompt), v in by.items():
        if label == "base_softened" and v["blur_px"] == 0:  # r000's video was as sharp: base itself
            assert v["r_gen"] == pytest.approx(by[("base", prompt)]["r_gen"])
        elif label == "base_softened":
            # no sharper than its r000 twin (r_gen reads both back from H.264, hence the tolerance)
            assert v["blur_px"] > 0 and v["r_gen"] <= by[("r000", prompt)]["r_gen"] + 0.01
    assert set(report["delta_vs_base_softened"]) == set(report["delta"])
    # ...and the check the reward does not optimise: the toy classifier's P(consistent) of each video.
    assert all(0 <= report["means"][label]["p_consistent"] <= 1 for label in ("base", "r000"))
    assert "p_consistent" in report["delta"] and all(0 <= v["p_consistent"] <= 1 for v in report["videos"])

    # The stage's pretrained policy, through the policy interface, with the round's adapter.
    params = config.load(p / "params.yaml")
    policy = load_policy(params.policy, torch.device("cpu"), root=str(p))
    policy.attach_adapter(params.policy, params.seed, p / "data/rounds/r000/policy")
    ro = params.rollout
    text = policy.encode(["Camera orbit left. A red cube on a grey and white checkered floor under a blue sky."])
    traj = sample(
        policy,
        text,
        policy.encode([""]),
        [torch.Generator().manual_seed(0)],
        policy.latent_shape(ro.frames, ro.height, ro.width),
        Schedule.flow_match(ro.steps, ro.shift),
        ro.cfg,
        ro.sde,
        [],
    )
    frames = policy.decode(traj.final)
    assert frames.shape == (1, ro.frames, ro.height, ro.width, 3) and frames.dtype == torch.uint8

    # A reward weight reruns the stages that read it (and DVC what follows them), never the toy
    # models or the rollout. A dry run: DVC decides from the declared params and deps alone, and
    # running them would only repeat the stages above.
    edit(p, {"reward.weights.s_traj": 0.75})
    assert ran(run(["dvc", "repro", "--dry"], p).stdout) == {"reward-validity", "score@r000", "probe@r000", "evaluate"}
