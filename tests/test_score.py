"""Reward combination and the quality stand-in (the score stage end to end: test_update_stage, test_reconstruct_stage)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from worldr1 import config
from worldr1.errors import UserError
from worldr1.rewards import load_judge
from worldr1.rewards.combine import combine
from worldr1.rewards.quality import Sharpness, load_quality


def weights(params_dict: dict[str, Any], **w: float) -> config.RewardWeightsConfig:
    params_dict["reward"]["weights"].update(w)
    return config.validate(params_dict).reward.weights


def test_combine_weights_phase_and_motion(params_dict: dict[str, Any]) -> None:
    w = weights(params_dict, s_recon=1.0, s_reproj=0.5, s_traj=2.0, s_meta=0.5, r_gen=1.0)
    terms = {"s_recon": 0.8, "s_reproj": 0.6, "s_traj": 0.5, "s_meta": 0.4, "r_gen": 0.3}
    assert combine(terms, w, "3d", 1.0).reward == pytest.approx(0.8 + 0.3 + 1.0 + 0.2 + 0.3)
    # The motion guard scales the terms a frozen video could win (s_recon, s_reproj, s_traj), not the judge's.
    assert combine(terms, w, "3d", 0.5).reward == pytest.approx(0.4 + 0.15 + 0.5 + 0.2 + 0.3)
    dynamic = combine(terms, w, "dynamic", 1.0)
    assert dynamic.reward == pytest.approx(0.3)
    assert dynamic.weights == {"s_recon": 0.0, "s_reproj": 0.0, "s_traj": 0.0, "s_meta": 0.0, "r_gen": 1.0}
    missing = combine({**terms, "s_traj": None, "s_meta": float("nan")}, w, "3d", 1.0)
    assert missing.reward == pytest.approx(0.8 + 0.3 + 0.3) and missing.weights["s_traj"] == 0.0
    assert combine(dict.fromkeys(terms), w, "3d", 1.0).reward is None


def test_quality_cap_bounds_r_gen_in_the_reward_only(params_dict: dict[str, Any]) -> None:
    w = weights(params_dict, s_recon=1.0, s_reproj=0.0, s_traj=0.0, s_meta=0.0, r_gen=0.5)
    low, high = {"s_recon": 0.5, "r_gen": 0.3}, {"s_recon": 0.5, "r_gen": 0.9}
    assert combine(high, w, "3d", 1.0).reward == pytest.approx(0.5 + 0.45)
    # Above the cap more quality pays nothing; below it a loss of quality costs as before.
    assert combine(high, w, "3d", 1.0, quality_cap=0.4).reward == pytest.approx(0.5 + 0.2)
    assert combine(low, w, "3d", 1.0, quality_cap=0.4).reward == pytest.approx(0.5 + 0.15)
    params_dict["reward"]["quality_cap"] = 0.0
    with pytest.raises(UserError, match="reward.quality_cap"):
        config.validate(params_dict)


def test_sharpness_prefers_sharp_frames() -> None:
    rng = np.random.default_rng(0)
    sharp = (rng.random((3, 32, 32, 3)) * 255).astype(np.uint8)
    blurred = (sharp.astype(float) + np.roll(sharp, 1, 1) + np.roll(sharp, 1, 2) + np.roll(sharp, 2, 1)) / 4
    flat = np.full_like(sharp, 128)
    q = Sharpness()
    assert q.score(sharp, "") > q.score(blurred.astype(np.uint8), "") > q.score(flat, "") == 0.0
    with pytest.raises(UserError, match="unknown reward.quality"):
        load_quality("hps")


def test_unknown_judge_is_a_user_error() -> None:
    assert load_judge("off") is None
    with pytest.raises(UserError, match="unknown reward.judge 'gpt'"):
        load_judge("gpt")
