"""Small summaries of a rewards table: the per-round metrics DVC tracks."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from worldr1.rewards.terms import names


def finite_mean(values: list) -> float | None:  # noqa: ANN001
    """Mean of the finite numbers in `values` (None and NaN skipped), to 6 decimals; None if there are none."""
    vals = [float(v) for v in values if v is not None and math.isfinite(v)]
    return round(sum(vals) / len(vals), 6) if vals else None


def round_summary(rows: pa.Table) -> dict[str, object]:
    ok = rows.filter(pa.compute.equal(rows.column("status"), "ok"))
    out: dict[str, object] = {
        "samples": rows.num_rows,
        "failed": rows.num_rows - ok.num_rows,
        "reward_mean": finite_mean(ok.column("reward").to_pylist()),
    }
    for name in (*names(), "psnr", "ssim", "motion"):
        out[f"{name}_mean"] = finite_mean(ok.column(name).to_pylist())
    return out


def auc(good: list[float], bad: list[float]) -> float | None:
    """P(good > bad) over all pairs, ties half, NaNs left out (-inf is a value: below everything);
    None when either side is empty."""
    a, b = np.array(good, dtype=np.float64), np.array(bad, dtype=np.float64)
    a, b = a[~np.isnan(a)][:, None], b[~np.isnan(b)][None, :]
    if not a.size or not b.size:
        return None
    return round(float(np.mean((a > b) + 0.5 * (a == b))), 4)
