"""Evaluate's softness control (worldr1/evaluate.py `softened_to`, `summary` with a control label);
the stage itself runs in test_toy_stages."""

from __future__ import annotations

import math

import numpy as np
import pytest

from worldr1.evaluate import METRICS, SOFTENED, softened_to, summary
from worldr1.rewards.quality import Sharpness


def texture(seed: int = 0) -> np.ndarray:
    """A small video with edges at every scale (blocks plus noise), at a contrast that leaves its
    sharpness mid-range (about 0.35), where the score's tanh is not saturated."""
    rng = np.random.default_rng(seed)
    blocks = np.kron(rng.random((5, 8, 8, 3)), np.ones((1, 4, 4, 1)))
    return np.clip(255 * (0.4 + 0.25 * (0.7 * blocks + 0.3 * rng.random((5, 32, 32, 3)))), 0, 255).astype(np.uint8)


def test_softened_to_reaches_the_target_sharpness_from_above() -> None:
    frames, measure = texture(), Sharpness()
    sharp = measure.score(frames, "")
    stds = []
    for share in (0.97, 0.9, 0.6):
        soft, std = softened_to(frames, share * sharp)
        got = measure.score(soft, "")
        # no sharper than asked, and not much softer: the bisection stops where the curve crosses it
        assert got <= share * sharp and got == pytest.approx(share * sharp, abs=0.01)
        assert soft.dtype == np.uint8 and soft.shape == frames.shape
        stds.append(std)
    assert 0 < stds[0] < stds[1] < stds[2]
    again, std = softened_to(frames, 0.9 * sharp)
    assert std == stds[1] and np.array_equal(again, softened_to(frames, 0.9 * sharp)[0])


def test_softened_to_stops_at_the_widest_blur_for_a_target_no_blur_reaches() -> None:
    soft, std = softened_to(texture(2), 0.0)
    assert std == 64.0 and Sharpness().score(soft, "") > 0.0


def test_softened_to_leaves_a_video_that_is_no_sharper_as_it_is() -> None:
    frames = texture(1)
    sharp = Sharpness().score(frames, "")
    for target in (sharp, sharp + 0.1):
        soft, std = softened_to(frames, target)
        assert std == 0.0 and soft is frames


def rows_for(label: str, psnr: list[float], status: str = "ok") -> list[dict[str, object]]:
    return [
        {"policy": label, "prompt_id": f"p{i}", "status": status, **dict.fromkeys(METRICS), "psnr_heldout": v}
        for i, v in enumerate(psnr)
    ]


def test_summary_reports_the_change_against_the_control_with_its_paired_error() -> None:
    rows = rows_for("base", [20.0, 21.0, 22.0]) + rows_for("r001", [22.0, 22.5, 24.5])
    rows += rows_for(SOFTENED, [21.0, 21.5, 23.0])
    out = summary(rows, ["base", "r001", SOFTENED], "base", "r001", SOFTENED)
    assert out["delta"]["psnr_heldout"] == pytest.approx(2.0)
    assert out[f"delta_vs_{SOFTENED}"]["psnr_heldout"] == pytest.approx(1.1666667, abs=1e-6)
    # per prompt: +1.0, +1.0, +1.5
    sem = np.std([1.0, 1.0, 1.5], ddof=1) / math.sqrt(3)
    assert out[f"delta_vs_{SOFTENED}_sem"]["psnr_heldout"] == pytest.approx(sem, abs=1e-6)
    assert out["means"][SOFTENED]["videos"] == 3
    # no control, no control keys
    assert set(summary(rows, ["base", "r001"], "base", "r001")) == {"means", "delta", "delta_sem"}
