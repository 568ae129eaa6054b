"""Offline reading of reward artifacts: pyarrow only, no GPU, no models."""

from __future__ import annotations

import glob as globlib
import math
from collections import defaultdict
from dataclasses import dataclass

import pyarrow as pa

from worldr1 import store
from worldr1.errors import UserError
from worldr1.rewards.terms import names

COLUMNS = (*names(), "reward", "psnr", "ssim", "motion")


def expand(paths: list[str]) -> list[str]:
    """Local globs expanded; URLs and plain paths kept as they are."""
    out: list[str] = []
    for p in paths:
        if "://" not in p and any(c in p for c in "*?["):
            found = sorted(globlib.glob(p))
            if not found:
                raise UserError(f"no file matches {p}", "check the pattern, e.g. 'data/rounds/*/rewards.parquet'")
            out += found
        else:
            out.append(p)
    return out


def load(paths: list[str]) -> pa.Table:
    """Rewards tables (store.REWARDS) concatenated; any unreadable or foreign file is a UserError."""
    tables = [store.read_table(p, store.REWARDS) for p in expand(paths)]
    if not tables:
        raise UserError(
            "no rewards file given", "pass a path, a glob or a URL: worldr1 audit data/rounds/r000/rewards.parquet"
        )
    return pa.concat_tables(tables)


@dataclass(frozen=True)
class Stat:
    n: int
    mean: float | None
    std: float | None
    lo: float | None
    hi: float | None


def stat(values: list) -> Stat:  # noqa: ANN001
    v = [float(x) for x in values if x is not None and math.isfinite(x)]
    if not v:
        return Stat(0, None, None, None, None)
    m = sum(v) / len(v)
    return Stat(len(v), m, math.sqrt(sum((x - m) ** 2 for x in v) / len(v)), min(v), max(v))


def ok_rows(table: pa.Table) -> list[dict]:
    return [r for r in table.to_pylist() if r["status"] == "ok"]


def per_term(rows: list[dict]) -> dict[str, Stat]:
    return {c: stat([r[c] for r in rows]) for c in COLUMNS}


def by_key(rows: list[dict], key) -> dict[str, dict[str, Stat]]:  # noqa: ANN001
    """Per-term statistics of the rows grouped by `key(row) -> list of group names`."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        for name in key(r):
            groups[name].append(r)
    return {name: per_term(rs) for name, rs in sorted(groups.items())}


def ranked(rows: list[dict], count: int) -> tuple[list[dict], list[dict]]:
    scored = sorted((r for r in rows if r["reward"] is not None), key=lambda r: r["reward"], reverse=True)
    return scored[:count], scored[::-1][:count]
