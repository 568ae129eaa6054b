"""Probe (issue 16): how much of evaluate's held-out PSNR is motion and sharpness, and how much is left
for consistency to move?

Reads an evaluate report (reports/eval.json: per video its held-out PSNR, motion, `r_gen` sharpness
and the toy classifier's P(consistent)) and prints, per policy label:
- the correlation of held-out PSNR with motion, sharpness and P(consistent) across its videos;
- the least-squares fit `psnr ~ 1 + motion + sharpness + p_consistent`, its coefficients with their
  standard errors, and the partial correlation of PSNR and P(consistent) with motion and sharpness
  held (both residualised on them);
Then, from the base videos' fit, the evaluated policy's paired gain split into what its change of
motion and sharpness predicts, what its change of P(consistent) predicts, and the rest; and the
gain the fit predicts for every base video made consistent (P(consistent) = 1) at its own motion
and sharpness: a ceiling for an honest gain, as far as the classifier measures consistency.
Last, the same split from the prompts' paired changes (the gain of each prompt's video regressed
on its changes of the covariates): within a prompt, so the content the cross-section confounds
drops out, and its intercept is the gain at no change of motion, sharpness or P(consistent).

Cross-sectional, so a correlation, not a cause: a video the classifier scores high may differ in
ways the two covariates miss.

    python benchmarks/psnr_explained.py [--eval reports/eval.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

COVARIATES = ("motion", "r_gen", "p_consistent")


def table(videos: list[dict], label: str) -> dict[str, np.ndarray]:
    """Columns of a label's videos that have every value (prompt ids kept for pairing)."""
    keys = ("psnr_heldout", *COVARIATES)
    rows = [v for v in videos if v["policy"] == label and all(isinstance(v.get(k), (int, float)) for k in keys)]
    out = {k: np.array([v[k] for v in rows], float) for k in keys}
    out["prompt_id"] = np.array([v["prompt_id"] for v in rows])
    return out


def fit(t: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """OLS of held-out PSNR on 1 + the covariates: coefficients and their standard errors."""
    x = np.column_stack([np.ones(len(t["psnr_heldout"]))] + [t[k] for k in COVARIATES])
    y = t["psnr_heldout"]
    return ols(x, y)


def ols(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    resid = y - x @ beta
    dof = max(len(y) - x.shape[1], 1)
    cov = (resid @ resid / dof) * np.linalg.pinv(x.T @ x)
    return beta, np.sqrt(np.diag(cov))


def partial_corr(t: dict[str, np.ndarray]) -> float:
    """Correlation of PSNR and P(consistent), each with motion and sharpness regressed out."""
    x = np.column_stack([np.ones(len(t["motion"])), t["motion"], t["r_gen"]])

    def residual(y: np.ndarray) -> np.ndarray:
        return y - x @ np.linalg.lstsq(x, y, rcond=None)[0]

    return float(np.corrcoef(residual(t["psnr_heldout"]), residual(t["p_consistent"]))[0, 1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--eval", type=Path, default=Path("reports/eval.json"))
    args = ap.parse_args()
    report = json.loads(args.eval.read_text())
    videos, evaluated = report["videos"], report["evaluated"]
    tables = {label: table(videos, label) for label in ("base", evaluated)}
    for label, t in tables.items():
        beta, se = fit(t)
        corr = {k: round(float(np.corrcoef(t["psnr_heldout"], t[k])[0, 1]), 3) for k in COVARIATES}
        coefs = {k: f"{b:+.2f} +- {s:.2f}" for k, b, s in zip(("const", *COVARIATES), beta, se)}
        print(json.dumps({"policy": label, "videos": len(t["motion"]), "corr": corr, "fit_db": coefs}))
        print(json.dumps({"policy": label, "partial_corr_psnr_p_consistent": round(partial_corr(t), 3)}))

    base, new = tables["base"], tables[evaluated]
    beta, _ = fit(base)
    coef = dict(zip(COVARIATES, beta[1:]))
    pos = {p: i for i, p in enumerate(base["prompt_id"])}
    pairs = [(pos[p], j) for j, p in enumerate(new["prompt_id"]) if p in pos]
    i, j = (np.array(x) for x in zip(*pairs))

    def change(key: str) -> float:
        return float(np.mean(new[key][j] - base[key][i]))

    gain = change("psnr_heldout")
    moved = {k: coef[k] * change(k) for k in COVARIATES}
    rest = gain - sum(moved.values())
    print(
        json.dumps(
            {
                "paired": len(pairs),
                "gain_db": round(gain, 3),
                "predicted_by_motion_db": round(moved["motion"], 3),
                "predicted_by_sharpness_db": round(moved["r_gen"], 3),
                "predicted_by_p_consistent_db": round(moved["p_consistent"], 3),
                "unexplained_db": round(rest, 3),
                "ceiling_all_consistent_db": round(float(coef["p_consistent"] * np.mean(1 - base["p_consistent"])), 3),
            }
        )
    )
    deltas = {k: new[k][j] - base[k][i] for k in ("psnr_heldout", *COVARIATES)}
    beta, se = ols(np.column_stack([np.ones(len(j))] + [deltas[k] for k in COVARIATES]), deltas["psnr_heldout"])
    split = {f"paired_by_{k}_db": round(float(b * deltas[k].mean()), 3) for k, b in zip(COVARIATES, beta[1:])}
    print(json.dumps({**split, "paired_intercept_db": f"{beta[0]:+.3f} +- {se[0]:.3f}"}))


if __name__ == "__main__":
    main()
