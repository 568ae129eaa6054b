"""Probe (issue 16): which per-dimension clip suits a profile? Reruns one round's update with several
candidate `grpo.clip` values and prints, per candidate, how much of the round the trust region holds.

Each candidate starts from the same state the update stage starts from (the previous round's
adapter and trainer state, the stage's rng) and runs the whole round's update, so the numbers are
those `reports/rounds/rK.json` would show with that clip. Per candidate:
- `clip_fraction`: share of (sample, step) terms where the clip decides the loss (no gradient);
- `outside`: share with |r - 1| > clip whatever the advantage's sign (Flow-GRPO's `clipfrac`);
- `approx_kl`: mean 0.5 (log r)^2, `ratio_dev`: mean |r - 1|, `|log r| p90`: the 90th percentile,
  all per latent dimension.
The first minibatch is on-policy (r = 1): only later minibatches of the round can be clipped.

Run from the project root once the round's update inputs exist (rollout, rewards, the previous
round's policy), e.g. after `dvc repro update@r000`:
    python benchmarks/trust_region.py data/rounds/r000 --clips 1e-4,3e-4,1e-3,3e-3,1e-2
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

from worldr1 import config, store
from worldr1.grpo.sampler import Schedule
from worldr1.grpo.trainer import Trainer, UpdateMetrics
from worldr1.grpo.update import RoundData, load_trainer_state, stored_samples
from worldr1.ids import derive_seed
from worldr1.policy import load_policy

DEFAULT_CLIPS = "1e-4,3e-4,1e-3,3e-3,1e-2,3e-2"


def round_inputs(round_dir: Path, params: config.Params) -> tuple[str, Path, RoundData]:
    """The round's name, its previous policy directory and its trainable samples; exits with what
    is missing when the round has not run that far."""
    name = round_dir.name
    if name not in params.rounds:
        sys.exit(f"{round_dir}: round {name} is not in params.yaml (rounds: {', '.join(params.rounds) or 'none'})")
    prev = round_dir.parent / params.rounds[name].prev / "policy"
    needed = [round_dir / "rollout" / "samples.parquet", round_dir / "rewards.parquet", prev]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        sys.exit(
            f"{round_dir} lacks {', '.join(missing)}: run the pipeline up to the round's score stage "
            f"first (`dvc repro score@{name}`, or `dvc pull`), then rerun this"
        )
    ro = params.rollout
    schedule = Schedule.flow_match(ro.steps, ro.shift)
    data = stored_samples(
        round_dir / "rollout",
        store.read_table(str(needed[0]), store.SAMPLES),
        store.read_table(str(needed[1]), store.REWARDS),
        schedule,
        name,
    )
    if not data.samples:
        sys.exit(f"{round_dir}: no sample has an advantage, so the update has nothing to clip")
    return name, prev, data


def run_update(params: config.Params, name: str, prev: Path, data: RoundData, clip: float) -> UpdateMetrics:
    """The round's update as stages/update.py runs it in one process, with `grpo.clip` = clip."""
    ro = params.rollout
    policy = load_policy(params.policy)
    policy.attach_adapter(params.policy, params.seed, prev)
    policy.prepare_training()
    grpo = params.grpo.model_copy(update={"clip": clip})
    trainer = Trainer(policy, grpo, ro.sde, Schedule.flow_match(ro.steps, ro.shift), ro.cfg, ro.negative_prompt)
    load_trainer_state(trainer, prev)
    return trainer.train(data.samples, np.random.default_rng(derive_seed(params.seed, name, "update")))


def summary(metrics: UpdateMetrics, clip: float) -> dict[str, float | int | None]:
    report = metrics.as_dict()
    log_ratios = [math.sqrt(2 * t.approx_kl) for t in metrics.terms]
    outside = [abs(t.ratio - 1) > clip for t in metrics.terms]
    return {
        "clip": clip,
        "clip_fraction": report["clip_fraction"],
        "outside": float(np.mean(outside)) if outside else None,
        "approx_kl": report["approx_kl"],
        "ratio_dev": report["ratio_deviation"],
        "|log r| p90": float(np.quantile(log_ratios, 0.9)) if log_ratios else None,
        "steps": report["optimizer_steps"],
        "terms": report["terms"],
    }


def fmt(value: float | int | None) -> str:
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.3g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("round_dir", type=Path, help="the round's directory, e.g. data/rounds/r000")
    parser.add_argument("--clips", default=DEFAULT_CLIPS, help=f"comma-separated candidates (default {DEFAULT_CLIPS})")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args()
    if not args.round_dir.is_dir():
        sys.exit(
            f"{args.round_dir} is not a directory: run the pipeline up to that round's score stage first "
            f"(dvc repro), from the project root"
        )
    params = config.load(args.params)
    clips = [float(c) for c in args.clips.split(",") if c.strip()]
    name, prev, data = round_inputs(args.round_dir, params)
    dims = data.samples[0].latent_dims
    print(
        f"{name}: {len(data.samples)} samples, D = {dims:,} latent dimensions per step, "
        f"shipped clip {params.grpo.clip:g}, {params.grpo.inner_epochs} epochs of minibatches of "
        f"<= {params.grpo.minibatch_samples} samples"
    )
    rows = []
    for clip in clips:
        start = time.perf_counter()
        rows.append(summary(run_update(params, name, prev, data, clip), clip))
        print(f"  clip {clip:g} done in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    keys = list(rows[0])
    print("  ".join(f"{k:>13}" for k in keys))
    for row in rows:
        print("  ".join(f"{fmt(row[k]):>13}" for k in keys))


if __name__ == "__main__":
    main()
