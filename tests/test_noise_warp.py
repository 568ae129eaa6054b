"""Camera-aware initial noise: still N(0, 1) element-wise, correlated across frames along the target motion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from worldr1.grpo.noise_warp import WARP_WEIGHT, homographies, warp_noise
from worldr1.prompts.camera import Primitive as P
from worldr1.prompts.camera_path import MotionScale

SCALE = MotionScale()


def noise(seed: int = 0, shape: tuple[int, ...] = (16, 6, 32, 48)) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def corr(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    return float(((a - a.mean()) * (b - b.mean())).mean() / (a.std() * b.std()))


@pytest.mark.parametrize("moves", [[P.PUSH_IN], [P.ORBIT_LEFT, P.PAN_RIGHT], [P.MOVE_LEFT, P.PULL_OUT, P.PAN_LEFT], []])
def test_elements_stay_standard_normal(moves: list[P]) -> None:
    warped = warp_noise(noise(), moves, SCALE)
    assert warped.shape == noise().shape
    assert torch.equal(warped[:, 0], noise()[:, 0])
    assert float(warped.mean()) == pytest.approx(0.0, abs=0.02)
    assert float(warped.std()) == pytest.approx(1.0, abs=0.02)


def test_fixed_camera_repeats_the_first_frame() -> None:
    base = noise()
    warped = warp_noise(base, [P.FIXED], SCALE)
    for k in range(1, 6):
        assert corr(warped[:, k], base[:, 0]) == pytest.approx(WARP_WEIGHT, abs=0.03)


def test_pan_right_moves_the_noise_left_in_the_image() -> None:
    base = noise()
    warped = warp_noise(base, [P.PAN_RIGHT], SCALE)
    hs = homographies([P.PAN_RIGHT], 6, 32, 48, SCALE)
    shift = hs[-1] @ np.array([24.0, 16.0, 1.0])
    dx = int(round(shift[0] / shift[2] - 24.0))
    assert dx < -1  # the scene slides left when the camera turns right
    # Near the centre, frame k at column c shows what frame 0 had at column c - dx (the flow of a
    # pan grows toward the edges, so compare a narrow band).
    last, first = warped[:, -1], base[:, 0]
    best = max(range(-16, 17), key=lambda s: corr(last[:, :, 20:28], first[:, :, 20 - s : 28 - s]))
    assert abs(best - dx) <= 1
    assert corr(last[:, :, 20:28], first[:, :, 20 - best : 28 - best]) > 0.5
    assert abs(corr(last[:, :, 20:28], first[:, :, 20:28])) < 0.1


def test_homography_of_a_push_in_magnifies_about_the_centre() -> None:
    hs = homographies([P.PUSH_IN], 6, 32, 48, SCALE)
    centre = hs[-1] @ np.array([24.0, 16.0, 1.0])
    corner = hs[-1] @ np.array([4.0, 4.0, 1.0])
    assert centre[:2] / centre[2] == pytest.approx([24.0, 16.0])
    assert np.all(np.abs(corner[:2] / corner[2] - [24.0, 16.0]) > np.abs(np.array([4.0, 4.0]) - [24.0, 16.0]))
