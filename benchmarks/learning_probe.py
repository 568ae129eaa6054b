"""Probe (issue 16): does Flow-GRPO move the toy policy, and toward what? Runs the round loop in one
process (rollout, reward, update, with the stages' own functions and one Trainer across rounds, as
resume gives) and measures a **fixed probe set** before the first round and after every update, so
the curve shows the policy changing rather than prompt noise.

The reward is chosen per run, to tell "the optimiser cannot move the policy" from "the reward does
not point where we want":
- `brightness`: the video's mean pixel value. Trivially learnable: if this does not rise, the update
  (lr, clip, steps) is too weak or broken, whatever the 3D reward does;
- `classifier`: the toy consistency classifier's P(consistent). A near-oracle 3D reward: what the
  policy can gain when the signal is clean (it is evaluate's independent check, so never train on
  it in the pipeline);
- `random`: a seeded random number per video. No signal at all: what the update does to the policy
  by itself (the drift any reward's noise adds);
- `pipeline`: the shipped reward (reconstruct, then the Scorer of params.yaml).
With `--negate` (brightness or classifier) the reward is minus the choice: its curve must then move
the other way, or the update does not follow the advantages' sign.

Per round it also prints what the reward points at inside a prompt's group, on the policy's own
samples: `advantage_alignment`, the mean within-group Pearson correlation of the advantages with the
classifier's P(consistent), and `term_alignment`, the same for each term (GRPO sees only a group's
ranking, so a reward teaches consistency only as far as this is positive).

Probe set: `--probe` train prompts (the first of the split) x `--probe-seeds` seeds, sampled with
the ODE from fixed noise, as evaluate samples. Per round it prints the probe means of brightness,
P(consistent), the shipped reward's terms and held-out PSNR (VideoScorer, as evaluate), whatever
the reward trained on, and after each update `psnr_heldout_base_softened`: the base's probe videos
softened to that round's twins' sharpness (evaluate's control), so the gain beyond softening is
`psnr_heldout` minus it.

`--hold motion,r_gen` (pipeline) takes the advantages' linear trend in those columns out within the
groups (`held_advantages`): a first-order constraint that holds them at the rollout policy's level.

Run from the project root once the toy stages and `base` exist (`dvc repro base toy-classifier`):
    python benchmarks/learning_probe.py --reward brightness --rounds 4 --prompts 4
    python benchmarks/learning_probe.py --reward pipeline --rounds 6 --set grpo.lr=1e-3
    python benchmarks/learning_probe.py --reward pipeline --rounds 4 --probe 16 --per-term-advantages
    python benchmarks/learning_probe.py --reward pipeline --rounds 4 --probe 16 --hold motion,r_gen
Results go to stdout and, as JSON, to --out.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
import yaml

from worldr1 import config, store
from worldr1.evaluate import EvalPrompt, sample_eval_video, softened_to
from worldr1.grpo.rollout import draw_batch, rollout_round
from worldr1.grpo.sampler import Schedule
from worldr1.grpo.trainer import Trainer
from worldr1.grpo.update import stored_samples
from worldr1.ids import derive_seed
from worldr1.policy import default_device, load_policy
from worldr1.reconstruct import load_reconstructor
from worldr1.reconstruct.run import reconstruct_round
from worldr1.rewards import load_judge
from worldr1.rewards.advantages import group_advantages
from worldr1.rewards.quality import Sharpness, load_quality
from worldr1.rewards.score import Scorer, round_videos
from worldr1.rewards.terms import REWARD_TERMS
from worldr1.score_video import Video, VideoScorer
from worldr1.toyworld.classifier import load_toy_classifier
from worldr1.video import read_mp4


def overridden(params: config.Params, sets: list[str]) -> config.Params:
    """params with `a.b=value` overrides (value parsed as YAML), validated like params.yaml."""
    raw = params.model_dump()
    for item in sets:
        key, _, value = item.partition("=")
        node = raw
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        if leaf not in node:
            raise SystemExit(f"--set {item}: no key {key} in params")
        node[leaf] = yaml.safe_load(value)
    return config.Params.model_validate(raw)


def per_term_advantages(rewards: pa.Table, adv_clip: float) -> pa.Table:
    """Advantages from each term standardised within its prompt's group, weighted and summed, then
    standardised again: a term whose spread is small (s_reproj) is not drowned by one whose spread
    is large (s_recon, r_gen). The motion guard scales its terms first, as `combine` does."""
    rows = rewards.to_pylist()
    ids = [r["prompt_id"] for r in rows]
    total: list[float | None] = [0.0 if r["status"] == "ok" and r["reward"] is not None else None for r in rows]
    for term in REWARD_TERMS:
        values = [
            r[term.name] * ((r["motion_factor"] or 0.0) if term.motion_guarded else 1.0)
            if r["status"] == "ok" and r[f"w_{term.name}"] and r[term.name] is not None
            else None
            for r in rows
        ]
        z, _ = group_advantages(ids, values, float("inf"))
        for i, r in enumerate(rows):
            if total[i] is not None and z[i] is not None:
                total[i] = total[i] + r[f"w_{term.name}"] * z[i]  # type: ignore[operator]
    advantages, _ = group_advantages(ids, total, adv_clip)
    column = rewards.schema.get_field_index("advantage")
    return rewards.set_column(column, "advantage", pa.array(advantages, pa.float64()))


def held_advantages(rewards: pa.Table, hold: list[str], adv_clip: float) -> pa.Table:
    """Advantages with no first-order pull on the `hold` columns (e.g. motion, r_gen): each column is
    centred within its prompt's group, and the advantages lose their least-squares projection on
    those columns over the round (one coefficient per column, pooled over the groups), then are
    rescaled to their former spread. The update's first-order change of a column's mean follows the
    advantages' covariance with it, which is then zero: a constraint that holds the column at the
    rollout policy's level, where a weight only trades it off."""
    rows = rewards.to_pylist()
    ok = [i for i, r in enumerate(rows) if r["advantage"] is not None and all(r[c] is not None for c in hold)]
    if len(ok) <= len(hold):
        return rewards  # nothing to fit the trends on
    adv = np.array([rows[i]["advantage"] for i in ok], dtype=np.float64)
    x = np.array([[rows[i][c] for c in hold] for i in ok], dtype=np.float64)
    groups = [rows[i]["prompt_id"] for i in ok]
    for g in set(groups):
        member = np.array([h == g for h in groups])
        x[member] -= x[member].mean(0)
    beta, *_ = np.linalg.lstsq(x, adv, rcond=None)
    residual = adv - x @ beta
    residual *= adv.std() / max(residual.std(), 1e-12)
    out: list[float | None] = [None] * len(rows)
    for i, a in zip(ok, np.clip(residual, -adv_clip, adv_clip)):
        out[i] = float(a)
    column = rewards.schema.get_field_index("advantage")
    return rewards.set_column(column, "advantage", pa.array(out, pa.float64()))


def simple_rewards(samples: pa.Table, rollout_dir: Path, fn, adv_clip: float) -> pa.Table:  # noqa: ANN001
    """A rewards table (the columns stored_samples reads) from `fn(frames)` per video."""
    rows = samples.to_pylist()
    rewards = [fn(read_mp4(rollout_dir / r["video"])) if r["status"] == "ok" else None for r in rows]
    adv, _ = group_advantages([r["prompt_id"] for r in rows], rewards, adv_clip)
    return pa.Table.from_pylist(
        [
            {"sample_id": r["sample_id"], "status": "ok" if x is not None else "failed", "reward": x, "advantage": a}
            for r, x, a in zip(rows, rewards, adv)
        ]
    )


def advantage_alignment(
    samples: pa.Table, rewards: pa.Table, p_consistent: dict[str, float], column: str = "advantage"
) -> float:
    """Mean over prompt groups of the Pearson correlation between a sample's advantage (or another
    rewards column) and its P(consistent): whether the reward, within a group, points toward the
    consistent samples (1) or not at all (0). Groups with no spread in either are left out."""
    group = {r["sample_id"]: r["prompt_id"] for r in samples.to_pylist()}
    pairs: dict[str, list[tuple[float, float]]] = {}
    for r in rewards.to_pylist():
        if r.get(column) is not None and r["sample_id"] in p_consistent:
            pairs.setdefault(group[r["sample_id"]], []).append((r[column], p_consistent[r["sample_id"]]))
    corr = [
        float(np.corrcoef(np.array(v).T)[0, 1])
        for v in pairs.values()
        if len(v) > 2 and np.ptp([a for a, _ in v]) > 0 and np.ptp([p for _, p in v]) > 0
    ]
    return float(np.mean(corr)) if corr else float("nan")


def brightness(frames: np.ndarray) -> float:
    return float(frames.mean() / 255.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reward", choices=["brightness", "classifier", "random", "pipeline"], default="pipeline")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--prompts", type=int, default=None, help="prompts per round (default prompts.batch_per_round)")
    ap.add_argument("--probe", type=int, default=8, help="fixed probe prompts (train split)")
    ap.add_argument("--probe-seeds", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], help="a params override, e.g. grpo.lr=1e-3")
    ap.add_argument(
        "--negate",
        action="store_true",
        help="reward minus the choice: the probe's curves must then move the other way (the update's sign)",
    )
    ap.add_argument(
        "--per-term-advantages",
        action="store_true",
        help="pipeline: each weighted term standardised within its group before the sum (GDPO-style)",
    )
    ap.add_argument(
        "--hold",
        default="",
        help="pipeline: columns (e.g. motion,r_gen) the advantages are made orthogonal to within groups",
    )
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.negate and args.reward == "pipeline":
        raise SystemExit("--negate is for the brightness and classifier rewards (the update's sign check)")

    torch.set_num_threads(max(1, torch.get_num_threads()))
    params = overridden(config.load(), args.set)
    paths = store.Paths()
    ro = params.rollout
    prompts = store.read_table(paths.prompts, store.PROMPTS)
    count = args.prompts or params.prompts.batch_per_round
    policy = load_policy(params.policy)
    policy.attach_adapter(params.policy, params.seed, Path(paths.policy_dir("base")))
    policy.prepare_training()
    schedule = Schedule.flow_match(ro.steps, ro.shift)
    trainer = Trainer(policy, params.grpo, ro.sde, schedule, ro.cfg, ro.negative_prompt)
    classifier = load_toy_classifier(Path(paths.toy_classifier))
    pipeline = args.reward == "pipeline"
    # The probe scores its videos like evaluate whatever the training reward, so every reward's curve
    # is in held-out PSNR too.
    reconstructor = load_reconstructor(
        params.reconstruct.backend, params.reconstruct.model, params.reconstruct.process_res
    )
    scorer = Scorer(params, load_judge(params.reward.judge), load_quality(params.reward.quality)) if pipeline else None
    video_scorer = VideoScorer(params, reconstructor)

    train = [r for r in prompts.to_pylist() if r["split"] == "train"][: args.probe]
    probe_set = [EvalPrompt(f"{r['prompt_id']}-{s}", r["text"]) for r in train for s in range(args.probe_seeds)]

    base_videos: list[np.ndarray] = []

    def held_out_psnr(video: np.ndarray, prompt: str, work: Path) -> float:
        row = video_scorer.score(
            [Video(Path("v.mp4"), video, float(ro.fps), ro.frames)], prompt, work, novel_path=False
        )
        first = row.rewards.to_pylist()[0]
        return first["psnr"] if first["status"] == "ok" and first["psnr"] is not None else np.nan

    def probe(tmp: Path) -> dict[str, float]:
        uncond = policy.encode([ro.negative_prompt]) if ro.cfg > 1 else None
        videos = [sample_eval_video(policy, params, p, uncond) for p in probe_set]
        out = {
            "brightness": float(np.mean([brightness(v) for v in videos])),
            "p_consistent": float(np.mean([classifier.p_consistent(v) for v in videos])),
        }
        cols: dict[str, list[float]] = {
            k: [] for k in ("reward", "psnr", "s_recon", "s_reproj", "s_traj", "r_gen", "motion")
        }
        for n, (p, v) in enumerate(zip(probe_set, videos)):
            scored = video_scorer.score(
                [Video(Path(f"{n}.mp4"), v, float(ro.fps), ro.frames)], p.text, tmp / f"probe-{n}", novel_path=False
            )
            row = scored.rewards.to_pylist()[0]
            for key, values in cols.items():
                values.append(row[key] if row["status"] == "ok" and row[key] is not None else np.nan)
        out.update({("psnr_heldout" if k == "psnr" else k): float(np.nanmean(v)) for k, v in cols.items()})
        if not base_videos:
            base_videos.extend(videos)
        else:
            # evaluate's softness control: each base probe video softened to this round's twin's sharpness
            sharp = Sharpness()
            softened = [
                held_out_psnr(softened_to(b, sharp.score(v, ""))[0], p.text, tmp / f"soft-{n}")
                for n, (p, b, v) in enumerate(zip(probe_set, base_videos, videos))
            ]
            out["psnr_heldout_base_softened"] = float(np.nanmean(softened))
        return out

    history = []
    with tempfile.TemporaryDirectory(prefix="worldr1-probe-") as tmpdir:
        tmp = Path(tmpdir)
        start = time.perf_counter()
        history.append({"round": -1, "probe": probe(tmp / "p-1")})
        print(json.dumps(history[-1]), flush=True)
        for k in range(args.rounds):
            name = f"r{k:03d}"
            rdir = tmp / name
            (rdir / "rollout").mkdir(parents=True)
            (rdir / "recon").mkdir()
            batch = draw_batch(prompts, "train", count, params.seed, name)
            samples = rollout_round(policy, params, name, "3d", batch, rdir / "rollout")
            if pipeline:
                recon = reconstruct_round(
                    reconstructor,
                    samples,
                    rdir / "rollout",
                    rdir / "recon",
                    params.reconstruct,
                    ro.fps,
                    default_device(),
                )
                videos = round_videos(samples.to_pylist(), recon, rdir / "rollout", rdir / "recon")
                rewards = scorer.reward(scorer.score(videos, "3d"), "3d")
                if args.per_term_advantages:
                    rewards = per_term_advantages(rewards, params.grpo.adv_clip)
                if args.hold:
                    rewards = held_advantages(rewards, args.hold.split(","), params.grpo.adv_clip)
            else:
                noise = np.random.default_rng(derive_seed(params.seed, name, "random-reward"))
                base_fn = {
                    "brightness": brightness,
                    "classifier": classifier.p_consistent,
                    "random": lambda v: float(noise.standard_normal()),
                }[args.reward]
                sign = -1.0 if args.negate else 1.0
                rewards = simple_rewards(samples, rdir / "rollout", lambda v: sign * base_fn(v), params.grpo.adv_clip)
            data = stored_samples(rdir / "rollout", samples, rewards, schedule, name)
            metrics = trainer.train(data.samples, np.random.default_rng(derive_seed(params.seed, name, "update")))
            p_train = {
                r["sample_id"]: classifier.p_consistent(read_mp4(rdir / "rollout" / r["video"]))
                for r in samples.to_pylist()
                if r["status"] == "ok"
            }
            entry = {
                "round": k,
                "batch_reward": data.reward_mean,
                "batch_reward_std": data.reward_std,
                "batch_p_consistent": float(np.mean(list(p_train.values()))),
                "advantage_alignment": advantage_alignment(samples, rewards, p_train),
                "term_alignment": {
                    column: advantage_alignment(samples, rewards, p_train, column)
                    for column in [*(t.name for t in REWARD_TERMS), "motion"]
                    if column in rewards.column_names and rewards[column].null_count < len(rewards)
                },
                "clip_fraction": metrics.clip_fraction,
                "approx_kl": metrics.as_dict()["approx_kl"],
                "grad_norm": metrics.as_dict()["grad_norm"],
                "steps": metrics.optimizer_steps,
                "probe": probe(tmp / f"p{k}"),
                "elapsed_s": round(time.perf_counter() - start, 1),
            }
            history.append(entry)
            print(json.dumps(entry), flush=True)
    result = {
        "reward": args.reward,
        "negate": args.negate,
        "rounds": args.rounds,
        "prompts": count,
        "group": ro.group_size,
        "sets": args.set,
        "history": history,
    }
    if args.out:
        store.write_json(str(args.out), result)


if __name__ == "__main__":
    main()
