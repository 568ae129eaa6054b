"""Small summaries of a rewards table: the per-round metrics DVC tracks."""

from __future__ import annotations

import math

import pyarrow as pa

from worldr1.rewards.combine import TERMS


def _mean(values: list) -> float | None:  # noqa: ANN001
    vals = [float(v) for v in values if v is not None and math.isfinite(v)]
    return round(sum(vals) / len(vals), 6) if vals else None


def round_summary(rows: pa.Table) -> dict[str, object]:
    ok = rows.filter(pa.compute.equal(rows.column("status"), "ok"))
    out: dict[str, object] = {"samples": rows.num_rows, "failed": rows.num_rows - ok.num_rows,
                              "reward_mean": _mean(ok.column("reward").to_pylist())}
    for name in (*TERMS, "psnr", "ssim", "motion"):
        out[f"{name}_mean"] = _mean(ok.column(name).to_pylist())
    return out
