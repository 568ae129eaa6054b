"""The reward of a sample: a weighted sum of its valid terms, with the phase and the motion guard applied."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from worldr1.config import Phase, RewardWeightsConfig
from worldr1.rewards.terms import REWARD_TERMS, RewardTerm, names

TERMS = names()
#: the quality term, which `reward.quality_cap` bounds
QUALITY = "r_gen"


@dataclass(frozen=True)
class Combined:
    reward: float | None
    weights: dict[str, float]  # the weight each term actually got (0 when off or missing)


def combine(
    terms: dict[str, float | None],
    weights: RewardWeightsConfig,
    phase: Phase,
    motion_factor: float,
    registry: Sequence[RewardTerm] = REWARD_TERMS,
    quality_cap: float | None = None,
) -> Combined:
    """`R = sum_i w_i * term_i` over the terms that have a value.

    In a dynamic round the 3D terms are off (World-R1 trains those rounds on quality alone). The
    motion factor scales the motion-guarded terms: a frozen video under a moving prompt cannot win them.
    With `quality_cap`, r_gen counts as min(r_gen, cap): a guard against losing quality that pays
    nothing for more (the toy's sharpness stand-in pays for grain).
    """
    used: dict[str, float] = {}
    total, any_valid = 0.0, False
    for term in registry:
        name = term.name
        value = terms.get(name)
        w = 0.0 if (phase == "dynamic" and term.three_d) else float(getattr(weights, name))
        if value is None or not math.isfinite(value) or w == 0.0:
            used[name] = 0.0
            continue
        if term.motion_guarded:
            value *= motion_factor
        if name == QUALITY and quality_cap is not None:
            value = min(value, quality_cap)
        used[name] = w
        total += w * value
        any_valid = True
    return Combined(total if any_valid else None, used)
