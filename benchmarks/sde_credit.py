"""Probe (issue 16): how much of a prompt group's spread in 3D consistency do the trained SDE steps
cause? Flow-GRPO's gradient credits a sample's advantage to the noise of its stochastic steps
only; whatever the initial noise x_T decides is, to that gradient, unexplained variance.

For each of `--prompts` train prompts, `--initial` initial noises and `--sde` step-noise seeds per
initial noise, one rollout sample (the rollout's sampler, SDE on the trained steps) is scored by the
toy consistency classifier, P(consistent). Per prompt the spread splits into
- within x_T: the variance over step noises at a fixed x_T (what the SDE steps decide), and
- total: the variance over every sample of the prompt (a group with its own x_T per sample).
Printed per noise level: the mean within-x_T share of the total, and how often a fixed x_T gives
samples on both sides of 0.5 (the SDE can flip a video between consistent and broken), with the mean
P(consistent) of the SDE samples beside that of the ODE (evaluate's sampler) from the same x_T: the
gap is how far what the rollout rewards lies from what evaluate measures.

Run from the project root once `base` and `toy-classifier` exist:
    python benchmarks/sde_credit.py --noise-levels 0.7 1.0 --out /tmp/sde_credit.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from worldr1 import config, store
from worldr1.grpo.sampler import Schedule, sample, trained_steps
from worldr1.ids import derive_seed
from worldr1.policy import load_policy
from worldr1.toyworld.classifier import load_toy_classifier


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--initial", type=int, default=4, help="initial noises per prompt")
    ap.add_argument("--sde", type=int, default=4, help="step-noise seeds per initial noise")
    ap.add_argument("--noise-levels", type=float, nargs="+", default=[0.7])
    ap.add_argument("--kind", choices=["flow_grpo", "cps"], default=None, help="the SDE (default rollout.sde.kind)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    params = config.load()
    paths = store.Paths()
    ro = params.rollout
    prompts = [r for r in store.read_table(paths.prompts, store.PROMPTS).to_pylist() if r["split"] == "train"]
    policy = load_policy(params.policy)
    policy.attach_adapter(params.policy, params.seed, Path(paths.policy_dir("base")))
    classifier = load_toy_classifier(Path(paths.toy_classifier))
    schedule = Schedule.flow_match(ro.steps, ro.shift)
    shape = policy.latent_shape(ro.frames, ro.height, ro.width)
    uncond = policy.encode([ro.negative_prompt]) if ro.cfg > 1 else None
    results = []
    for level in args.noise_levels:
        sde = ro.sde.model_copy(update={"noise_level": level, "kind": args.kind or ro.sde.kind})
        steps = trained_steps(schedule, sde, np.random.default_rng(0))
        within, total, flips, sde_p, ode_p = [], [], [], [], []
        for prompt in prompts[: args.prompts]:
            cond = policy.encode([prompt["text"]])
            p = np.zeros((args.initial, args.sde))
            for n in range(args.initial):
                x_t = torch.randn(
                    shape,
                    generator=torch.Generator().manual_seed(derive_seed(params.seed, "credit", prompt["prompt_id"], n)),
                )
                ode = sample(
                    policy, cond, uncond, [torch.Generator()], shape, schedule, ro.cfg, sde, [], initial=x_t[None]
                )
                ode_p.append(classifier.p_consistent(policy.decode(ode.final)[0].cpu().numpy()))
                for m in range(args.sde):
                    g = torch.Generator().manual_seed(derive_seed(params.seed, "credit", prompt["prompt_id"], n, m))
                    traj = sample(policy, cond, uncond, [g], shape, schedule, ro.cfg, sde, steps, initial=x_t[None])
                    p[n, m] = classifier.p_consistent(policy.decode(traj.final)[0].cpu().numpy())
            sde_p.append(float(p.mean()))
            within.append(float(p.var(axis=1).mean()))
            total.append(float(p.var()))
            flips.append(float(np.mean([(row > 0.5).any() and (row <= 0.5).any() for row in p])))
        entry = {
            "kind": sde.kind,
            "noise_level": level,
            "trained_steps": steps,
            "within_x_t_var": float(np.mean(within)),
            "total_var": float(np.mean(total)),
            "within_share": float(np.mean(within) / max(np.mean(total), 1e-12)),
            "x_t_with_both_outcomes": float(np.mean(flips)),
            "p_consistent_sde": float(np.mean(sde_p)),
            "p_consistent_ode": float(np.mean(ode_p)),
        }
        results.append(entry)
        print(json.dumps(entry), flush=True)
    if args.out:
        store.write_json(
            str(args.out), {"prompts": args.prompts, "initial": args.initial, "sde": args.sde, "results": results}
        )


if __name__ == "__main__":
    main()
