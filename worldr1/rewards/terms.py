"""The reward's terms in one registry: every list of them in the project is derived from `REWARD_TERMS`.

Adding a term is its module (the score, and a `<name>_columns` function that `Scorer.score_one`
calls through `worldr1.rewards.score.COMPUTE`), one entry below with a bump of `REWARDS_VERSION`,
and its weight in params.yaml and the profiles (every knob is explicit there). The weights model,
the rewards table's columns, the combination, the audit pages, the curves and the evaluation read
the rest from the entry.

This module imports nothing of the project: config, store, the audit and every stage read it, so
it must not drag a model or a stage into their imports (or into their DVC deps).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RewardTerm:
    name: str
    #: read off the reconstruction, so computed after it and off in dynamic rounds (World-R1
    #: trains those rounds on quality alone); otherwise computed from the video alone, every round
    three_d: bool
    #: a frozen video under a moving prompt could win it, so the motion factor scales it
    motion_guarded: bool
    #: its colour in the HTML audit; a field, so a term cannot lack one
    colour: str
    #: the raw metrics behind it, float columns of the rewards table (after the terms, in this order)
    metrics: tuple[str, ...] = ()
    #: those of `metrics` whose non-finite value fails the sample, as the term's own value does
    finite: tuple[str, ...] = ()
    #: it can be null for a reason other than a failure, which a `<name>_reason` string column gives
    has_reason: bool = False
    #: evaluate and probe report it; s_recon they split into input and held-out PSNR/SSIM/LPIPS instead
    evaluated: bool = True

    @property
    def weight_column(self) -> str:
        """The weight the term got in a sample's reward (0 when off in the phase or missing)."""
        return f"w_{self.name}"

    @property
    def reason_column(self) -> str | None:
        return f"{self.name}_reason" if self.has_reason else None

    @property
    def columns(self) -> tuple[str, ...]:
        """What computing the term may write into a rewards row."""
        return (self.name, *self.metrics, *([self.reason_column] if self.reason_column else []))


#: In the rewards table's column order; the sum and its float rounding follow it too.
REWARD_TERMS: tuple[RewardTerm, ...] = (
    RewardTerm(
        "s_recon",
        three_d=True,
        motion_guarded=True,
        colour="#2f6fb0",
        metrics=("psnr", "ssim", "lpips"),
        finite=("psnr", "ssim"),
        evaluated=False,
    ),
    RewardTerm(
        "s_reproj",
        three_d=True,
        motion_guarded=True,
        colour="#1f9aa8",
        metrics=("reproj_psnr", "reproj_bad"),
        finite=("reproj_psnr",),
    ),
    RewardTerm(
        "s_traj",
        three_d=True,
        motion_guarded=True,
        colour="#d9731a",
        metrics=("traj_translation", "traj_rotation"),
        has_reason=True,
    ),
    RewardTerm("s_meta", three_d=True, motion_guarded=False, colour="#2e9a58"),
    RewardTerm("r_gen", three_d=False, motion_guarded=False, colour="#8a4fbf"),
)

#: store.REWARDS's schema version. The terms' columns are most of that table, so bump it with any
#: change to the entries above: a file of the old set is then refused ("rerun its stage"), not misread.
REWARDS_VERSION = 2  # v2: s_reproj (with reproj_psnr, reproj_bad, w_s_reproj)


def names(terms: Sequence[RewardTerm] = REWARD_TERMS) -> tuple[str, ...]:
    return tuple(t.name for t in terms)


def evaluated(terms: Sequence[RewardTerm] = REWARD_TERMS) -> tuple[str, ...]:
    """The terms evaluate and probe report (in registry order)."""
    return tuple(t.name for t in terms if t.evaluated)


def metric_columns(terms: Sequence[RewardTerm] = REWARD_TERMS) -> tuple[str, ...]:
    return tuple(m for t in terms for m in t.metrics)


def reason_columns(terms: Sequence[RewardTerm] = REWARD_TERMS) -> tuple[str, ...]:
    return tuple(t.reason_column for t in terms if t.reason_column)


def weight_columns(terms: Sequence[RewardTerm] = REWARD_TERMS) -> tuple[str, ...]:
    return tuple(t.weight_column for t in terms)


def finite_columns(terms: Sequence[RewardTerm] = REWARD_TERMS) -> tuple[str, ...]:
    """The columns whose non-finite value fails a sample, in the order its error names them."""
    return (*names(terms), *(m for t in terms for m in t.finite))


def colours(terms: Sequence[RewardTerm] = REWARD_TERMS) -> dict[str, str]:
    return {t.name: t.colour for t in terms}
