"""Per-prompt group statistics and Flow-GRPO advantages: `(r - mean) / (std + 1e-4)`, clipped."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

STD_EPS = 1e-4


@dataclass(frozen=True)
class GroupStats:
    mean: float | None
    std: float | None
    valid: int


def group_advantages(
    groups: Sequence[str], rewards: Sequence[float | None], clip: float
) -> tuple[list[float | None], dict[str, GroupStats]]:
    """Advantages of each sample within its group (the same prompt_id).

    A sample without a finite reward (failed) gets no advantage and does not count in its group's
    statistics; a group with fewer than two valid samples has nothing to compare and gives none.
    The std is the population std (ddof 0), as in Flow-GRPO.
    """
    if len(groups) != len(rewards):
        raise ValueError(f"{len(groups)} group ids for {len(rewards)} rewards")
    members: dict[str, list[float]] = defaultdict(list)
    for g, r in zip(groups, rewards):
        if r is not None and math.isfinite(r):
            members[g].append(float(r))
    stats = {
        g: GroupStats(float(np.mean(v)) if v else None, float(np.std(v)) if v else None, len(v))
        for g, v in members.items()
    }
    for g in groups:
        stats.setdefault(g, GroupStats(None, None, 0))
    out: list[float | None] = []
    for g, r in zip(groups, rewards):
        s = stats[g]
        if r is None or not math.isfinite(r) or s.valid < 2 or s.mean is None or s.std is None:
            out.append(None)
            continue
        out.append(float(np.clip((r - s.mean) / (s.std + STD_EPS), -clip, clip)))
    return out, stats
