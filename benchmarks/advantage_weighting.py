"""Probe (issue 16): how should a round's rewards be scaled into advantages? Flow-GRPO's own
configs divide every prompt group's centred rewards by one std over the whole batch
(`sample.global_std = True`); World-R1 divides each group by its own std, as `grpo.adv_std: group`
does. The two differ in which groups the update listens to: with a per-group std every group gets
the same total weight, so a group whose samples are all alike (their differences the reward's noise,
or a little more blur) is blown up to unit spread as much as a group with a broken sample in it;
with the batch's std a group weighs what its rewards spread.

On finished rounds (their rollout videos and rewards.parquet) this prints, per normalisation, the
pooled correlation over the whole round of the advantages with each sample's group-centred
P(consistent) (the toy classifier, evaluate's independent check), sharpness (`r_gen`) and motion:
the update's step is sum_i A_i grad log p_i, so this is how much of it points toward consistency, or
toward sharper and faster videos. It also prints how groups' reward spread goes with how well the
reward ranks their samples by P(consistent) (Spearman across groups).

    python benchmarks/advantage_weighting.py [--rounds r000,r001,r002,r003]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from worldr1 import config, store
from worldr1.rewards.advantages import group_advantages
from worldr1.toyworld.classifier import load_toy_classifier
from worldr1.video import read_mp4


def centred(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    out = values.astype(np.float64).copy()
    for g in np.unique(groups):
        out[groups == g] -= out[groups == g].mean()
    return out


def pooled_corr(a: np.ndarray, b: np.ndarray) -> float:
    """Uncentred cosine: both are centred within groups already."""
    den = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / den) if den > 0 else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", default="r000,r001,r002,r003")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    params = config.load()
    paths = store.Paths()
    classifier = load_toy_classifier(Path(paths.toy_classifier))
    result = {}
    for name in args.rounds.split(","):
        samples = {r["sample_id"]: r for r in store.read_table(paths.samples(name), store.SAMPLES).to_pylist()}
        rows = [
            r
            for r in store.read_table(paths.rewards(name), store.REWARDS).to_pylist()
            if r["status"] == "ok" and r["reward"] is not None
        ]
        rollout = Path(paths.rollout_dir(name))
        p = np.array([classifier.p_consistent(read_mp4(rollout / samples[r["sample_id"]]["video"])) for r in rows])
        groups = np.array([r["prompt_id"] for r in rows])
        reward = np.array([r["reward"] for r in rows])
        columns = {
            "p_consistent": p,
            **{k: np.array([r[k] for r in rows], dtype=float) for k in ("s_recon", "s_reproj", "r_gen", "motion")},
        }
        entry: dict[str, object] = {"samples": len(rows), "p_consistent": round(float(p.mean()), 4)}
        for std in ("group", "global"):
            adv = np.array(group_advantages(list(groups), list(reward), params.grpo.adv_clip, std)[0], dtype=float)
            adv = np.nan_to_num(adv)  # a group of one has nothing to compare
            entry[std] = {k: round(pooled_corr(adv, centred(v, groups)), 4) for k, v in columns.items()}
        stds, corrs = [], []
        for g in np.unique(groups):
            m = groups == g
            if m.sum() > 2 and np.ptp(reward[m]) > 0 and np.ptp(p[m]) > 0:
                stds.append(reward[m].std())
                corrs.append(np.corrcoef(reward[m], p[m])[0, 1])
        entry["groups"] = len(stds)
        entry["spread_vs_ranking_spearman"] = round(float(spearmanr(stds, corrs).statistic), 4)
        entry["group_reward_std"] = [round(float(x), 4) for x in stds]
        entry["group_corr_with_p"] = [round(float(x), 4) for x in corrs]
        result[name] = entry
        print(name, json.dumps({k: v for k, v in entry.items() if not k.startswith("group_")}), flush=True)
    if args.out:
        store.write_json(str(args.out), result)


if __name__ == "__main__":
    main()
