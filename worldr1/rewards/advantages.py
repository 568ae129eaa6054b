"""Per-prompt group statistics and Flow-GRPO advantages: `(r - group mean) / (std + 1e-4)`, clipped.

The std is the group's own (`group`, World-R1's `sample.global_std = False`) or that of every
reward of the round (`global`, Flow-GRPO's default `sample.global_std = True`). With the group's,
every group moves the policy as much: a group of near-equal samples has its reward noise blown up to
unit spread. With the round's, a group weighs what its rewards spread."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

STD_EPS = 1e-4
#: whose std scales a group's centred rewards
AdvantageStd = Literal["group", "global"]


@dataclass(frozen=True)
class GroupStats:
    mean: float | None
    std: float | None
    valid: int


def group_advantages(
    groups: Sequence[str], rewards: Sequence[float | None], clip: float, std: AdvantageStd = "group"
) -> tuple[list[float | None], dict[str, GroupStats]]:
    """Advantages of each sample within its group (the same prompt_id).

    A sample without a finite reward (failed) gets no advantage and does not count in its group's
    statistics; a group with fewer than two valid samples has nothing to compare and gives none.
    The std (`std`: the group's or every valid reward's) is the population std (ddof 0), as in
    Flow-GRPO; `stats` keep each group's own.
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
    if std not in ("group", "global"):
        raise ValueError(f"advantage std {std!r}: group or global")
    every = [r for v in members.values() for r in v]
    round_std = float(np.std(every)) if every else 0.0
    out: list[float | None] = []
    for g, r in zip(groups, rewards):
        s = stats[g]
        if r is None or not math.isfinite(r) or s.valid < 2 or s.mean is None or s.std is None:
            out.append(None)
            continue
        scale = s.std if std == "group" else round_std
        out.append(float(np.clip((r - s.mean) / (scale + STD_EPS), -clip, clip)))
    return out, stats
