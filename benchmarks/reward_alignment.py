"""Probe (issue 16): inside a prompt's group, where do the reward's terms point? GRPO only sees the
ranking of a group's samples, so a term helps learning 3D consistency only if, within groups, it
ranks the samples the way an independent judge of consistency does. The judge here is the toy
consistency classifier (evaluate's independent check, `reports/toy-classifier.json`: AUC 0.90 on
held-out clips); held-out PSNR is shown beside it.

For every stored round under data/rounds/ it reads rewards.parquet and the rollout videos and prints,
per term (weighted as in the round), the mean within-group Spearman correlation with P(consistent)
and with held-out PSNR, and the term's share of the within-group variance of the reward.

Run from the project root after `dvc repro` (or any rounds): python benchmarks/reward_alignment.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from worldr1 import store
from worldr1.rewards import combine
from worldr1.toyworld.classifier import load_toy_classifier
from worldr1.video import read_mp4

TERMS = tuple(t for t in combine.TERMS if t != "s_meta")  # the judge is off in the toy world


def group_rho(groups: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean Spearman correlation over groups with variation in both."""
    rhos = [spearmanr(a, b).statistic for a, b in groups if np.ptp(a) > 0 and np.ptp(b) > 0]
    return float(np.nanmean(rhos)) if rhos else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", nargs="*", default=None, help="round names (default: every stored round)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    paths = store.Paths()
    classifier = load_toy_classifier(Path(paths.toy_classifier))
    names = args.rounds or sorted(
        p.name for p in Path(paths.round_dir("r000")).parent.iterdir() if Path(paths.rewards(p.name)).exists()
    )
    rows = []
    for name in names:
        rollout = Path(paths.rollout_dir(name))
        rewards = {r["sample_id"]: r for r in store.read_table(paths.rewards(name), store.REWARDS).to_pylist()}
        for s in store.read_table(paths.samples(name), store.SAMPLES).to_pylist():
            r = rewards.get(s["sample_id"])
            if s["status"] != "ok" or r is None or r["status"] != "ok":
                continue
            w = {t: (r[f"w_{t}"] or 0.0) * (r[t] or 0.0) for t in TERMS}
            rows.append(
                {
                    "round": name,
                    "prompt_id": s["prompt_id"],
                    "reward": r["reward"],
                    "psnr": r["psnr"],
                    "motion": r["motion"],
                    "p": classifier.p_consistent(read_mp4(rollout / s["video"])),
                    **{f"w{t}": v for t, v in w.items()},
                    **{t: r[t] for t in TERMS},
                }
            )
    keys = sorted({(r["round"], r["prompt_id"]) for r in rows})
    groups = [[r for r in rows if (r["round"], r["prompt_id"]) == k] for k in keys]

    def col(g: list[dict], key: str) -> np.ndarray:
        return np.array([r[key] if r[key] is not None else np.nan for r in g], dtype=float)

    report: dict[str, dict[str, float]] = {}
    total_var = np.mean([np.var(col(g, "reward")) for g in groups])
    for key in ("reward", *TERMS, "motion", "psnr"):
        entry = {
            "rho_p_consistent": group_rho([(col(g, key), col(g, "p")) for g in groups]),
            "rho_psnr_heldout": group_rho([(col(g, key), col(g, "psnr")) for g in groups]),
        }
        if key in TERMS:
            entry["var_share"] = float(np.mean([np.var(col(g, f"w{key}")) for g in groups]) / total_var)
        report[key] = {k: round(v, 3) for k, v in entry.items()}
    print(f"{len(rows)} samples in {len(groups)} groups over {len(names)} rounds; within-group Spearman:")
    for key, entry in report.items():
        print(f"  {key:9s} " + "  ".join(f"{k} {v:+.3f}" for k, v in entry.items()))
    if args.out:
        store.write_json(str(args.out), {"rounds": names, "samples": len(rows), "groups": len(groups), "terms": report})


if __name__ == "__main__":
    main()
