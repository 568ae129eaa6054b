"""The reward curve: one row per round from the per-round reports, for `dvc plots`."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from worldr1.errors import UserError
from worldr1.rewards.terms import evaluated, names

# From reports/rounds/rK-rewards.json (score) and reports/rounds/rK.json (update).
REWARD_KEYS = ("reward_mean", *(f"{t}_mean" for t in names()), "psnr_mean", "ssim_mean", "motion_mean", "failed")
UPDATE_KEYS = ("loss", "kl", "clip_fraction", "ratio_deviation", "grad_norm", "total_optimizer_steps")
SCHEMA = pa.schema(
    [
        ("round", pa.string()),
        ("phase", pa.string()),
        *[
            (k, pa.int64() if k in ("failed", "total_optimizer_steps") else pa.float64())
            for k in (*REWARD_KEYS, *UPDATE_KEYS)
        ],
    ]
)


def _read(path: Path) -> dict:
    if not path.is_file():
        raise UserError(f"{path} is missing", "run the round's stages first: dvc repro")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not valid JSON ({exc})", "rerun the stage that wrote it: dvc repro -f") from None


def reward_curve(rounds: dict[str, str], reports: Path) -> pa.Table:
    """`rounds` maps round name to phase, in order; a dynamic round has no 3D terms (empty cells)."""
    rows = []
    for name, phase in rounds.items():
        rewards, update = _read(reports / f"{name}-rewards.json"), _read(reports / f"{name}.json")
        rows.append(
            {
                "round": name,
                "phase": phase,
                **{k: rewards.get(k) for k in REWARD_KEYS},
                **{k: update.get(k) for k in UPDATE_KEYS},
            }
        )
    return pa.Table.from_pylist(rows, schema=SCHEMA)


# From reports/rounds/rK-probe.json (probe): the fixed probe set's means under each round's policy.
PROBE_KEYS = ("reward", "psnr_heldout", "ssim_heldout", *evaluated(), "motion", "p_consistent", "failed")
PROBE_SCHEMA = pa.schema(
    [("round", pa.string()), *[(k, pa.int64() if k == "failed" else pa.float64()) for k in PROBE_KEYS]]
)


def probe_curve(rounds: list[str], reports: Path) -> pa.Table:
    """One row per policy on the probe set, in round order: base first where the first round's probe
    measured it, then each round's policy after its update."""
    rows = []
    for n, name in enumerate(rounds):
        means = _read(reports / f"{name}-probe.json").get("means", {})
        labels = (["base"] if n == 0 and "base" in means else []) + [name]
        for label in labels:
            if label not in means:
                raise UserError(
                    f"{reports / f'{name}-probe.json'} has no numbers for {label}",
                    f"rerun the round's probe: dvc repro -f probe@{name}",
                )
            rows.append({"round": label, **{k: means[label].get(k) for k in PROBE_KEYS}})
    return pa.Table.from_pylist(rows, schema=PROBE_SCHEMA)


def to_csv(table: pa.Table) -> str:
    buf = io.BytesIO()
    pacsv.write_csv(table, buf, pacsv.WriteOptions(quoting_style="none"))
    return buf.getvalue().decode()
